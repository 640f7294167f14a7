"""Find the object: explore an apartment into memory, then walk back to an object that was passed.

One protocol, shared by ``glasses-sim find`` (and so ``make demo``) and ``benchmarks/bench_planner.py``:

    env = ApartmentEnv(FindConfig().world())
    ep = draw_episode(env, emb, seed=0, attempt=0, cfg=FindConfig())   # an Episode, or a skip reason (str)
    ids = remember_walk(mem, emb, ep)                                   # every frame -> a keyframe with its pose
    goal = goal_from_keyframe(mem, ids[ep.goal_frame], emb.model_id, emb.dim)
    result = run_policy("hierarchical_pose", env, emb, ep.object, ep.start, planner.step, cfg.max_steps, seed)

1. The wearer explores: a persistent random walk of ``explore_steps`` steps. A walk has passed an
   object when it came within 0.8 m of it facing it within 15 degrees; walks that passed none, that
   end fewer than ``min_oracle_steps`` shortest-path steps from the object, or where the oracle's
   grid finds no path are skipped (the reason is returned).
2. The goal is the remembered moment the object was seen closest and most squarely (a keyframe, as if
   picked from the timeline); the object passed longest ago is chosen.
3. From where the walk ended a policy gets ``max_steps`` steps. Success = it stops (says "reached";
   the oracle stops at the end of its plan, random at the end of the budget) within 1 m of the object,
   facing it within 20 degrees (the world's ``near_and_facing``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from glasses_runtime.memory import EpisodicMemory, KeyframeIn
from glasses_runtime.planner import HierarchicalConfig, HierarchicalPlanner, MPCConfig, MPCPlanner
from glasses_runtime.tokens import reduce_tokens
from simulator.world import (
    NoPathError,
    RandomWalk,
    ShortestPathOracle,
    WorldConfig,
    WorldError,
    near_and_facing,
)

# "Passed an object": came within 0.8 m of it, facing it within 15 degrees (it was clearly seen). Success
# is judged with the world's 1 m / 20 degrees: returning to the remembered pose with a small error still counts.
PASS = (0.8, 15.0)
OBJECTS = ("key", "ball", "box", "medkit", "duckie", "cone")
POLICIES = ("oracle", "random", "flat_mpc", "hierarchical", "hierarchical_pose")
# Planning from the camera alone (token world model, place recognition, no pose), its upper bound with
# the dead-reckoned pose cost, its "nothing moves" ablation, and the pooled-vector (one embedding per
# frame) world model with the same place graph and no pose.
LATENT_POLICIES = ("latent", "latent_pose", "latent_still", "pooled_latent")
TOKEN_POLICIES = ("latent", "latent_pose", "latent_still")


@dataclass(frozen=True)
class FindConfig:
    """explore_steps: random-walk length recorded into memory. max_steps: T, the budget to reach the
    object. min_oracle_steps: skip walks that end this close (shortest path) to it. pose_weight: the
    dead-reckoned pose cost of ``hierarchical_pose``. size/rows/cols: the apartment and its frames."""

    explore_steps: int = 200
    max_steps: int = 100
    min_oracle_steps: int = 6
    pose_weight: float = 2.0
    size: int = 128
    rows: int = 2
    cols: int = 2

    def __post_init__(self) -> None:
        if self.explore_steps < 1 or self.max_steps < 1:
            raise ValueError("explore_steps and max_steps must be >= 1")
        if self.min_oracle_steps < 0 or self.pose_weight < 0:
            raise ValueError("min_oracle_steps and pose_weight must be >= 0")

    def world(self) -> WorldConfig:
        return WorldConfig(rows=self.rows, cols=self.cols, size=self.size, objects=OBJECTS)


class FrameEmbedder(Protocol):
    """Frames -> unit embeddings of one encoder (``model_id``, ``dim``)."""

    model_id: str
    dim: int

    def many(self, frames: np.ndarray) -> np.ndarray: ...  # uint8 [N, H, W, 3] -> float32 [N, D]

    def embed(self, rgb: np.ndarray) -> np.ndarray: ...  # uint8 [H, W, 3] -> float32 [D]


class RuntimeEmbedder:
    """A ``FrameEmbedder`` over the runtime's encoders (``glasses_runtime.engines.encoder.load_encoder``:
    an int8 ``.pte`` or a checkpoint), one frame per call as on the glasses."""

    def __init__(self, encoder: Any) -> None:
        self.encoder = encoder
        self.model_id, self.dim = encoder.model_id, encoder.dim
        self.source_id = getattr(encoder, "source_id", None)

    def embed(self, rgb: np.ndarray) -> np.ndarray:
        return np.asarray(self.encoder.encode(self.encoder.preprocess(rgb)), dtype=np.float32).reshape(-1)

    def many(self, frames: np.ndarray) -> np.ndarray:
        return np.stack([self.embed(f) for f in frames])

    def embed_tokens(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(unit embedding [D], reduced token grid [h, w, Dt] or None when the encoder has no tokens)."""
        z, tok = self.encoder.encode_with_tokens(self.encoder.preprocess(rgb))
        return np.asarray(z, dtype=np.float32).reshape(-1), None if tok is None else reduce_tokens(tok)

    def many_tokens(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        out = [self.embed_tokens(f) for f in frames]
        toks = [t for _, t in out]
        return np.stack([z for z, _ in out]), None if toks[0] is None else np.stack(toks)


@dataclass
class Episode:
    """One valid exploration: the walk (frames, poses, times), the object to find, and its goal moment."""

    world_seed: int
    walk_seed: int
    object: str
    frames: np.ndarray  # uint8 [N, H, W, 3]
    poses: list[tuple]
    t_ns: list[int]
    goal_frame: int  # index into frames: the moment that saw the object closest and most squarely
    oracle_steps: int  # shortest path from the walk's end to the object

    @property
    def start(self) -> tuple:
        return self.poses[-1]


def episode_seeds(seed: int, attempt: int) -> tuple[int, int]:
    """(world seed, walk seed) of attempt ``attempt`` of a run seeded ``seed``."""
    world_seed, walk_seed, _ = (
        int(s) for s in np.random.SeedSequence([seed, attempt]).generate_state(3) % 2**31
    )
    return world_seed, walk_seed


def explore(env: Any, world_seed: int, walk_seed: int, steps: int) -> dict:
    frame, info = env.reset(seed=world_seed)
    walk = RandomWalk(env, walk_seed)
    frames, poses, t_ns = [frame], [tuple(info["pose"])], [info["t_ns"]]
    for _ in range(steps):
        frame, _, _, _, info = env.step(walk.act())
        walk.observe(info)
        frames.append(frame)
        poses.append(tuple(info["pose"]))
        t_ns.append(info["t_ns"])
    passed = {
        n: [i for i, p in enumerate(poses) if near_and_facing(p, env.object_position(n)[::2], *PASS)]
        for n in env.object_names
    }
    return {"frames": np.stack(frames), "poses": poses, "t_ns": t_ns, "passed": passed}


def bearing_error(env: Any, name: str, pose: tuple) -> float:
    """|angle between the heading and the direction to the object|, radians."""
    ox, _, oz = env.object_position(name)
    b = math.atan2(-(oz - pose[2]), ox - pose[0])
    return abs((b - pose[3] + math.pi) % (2 * math.pi) - math.pi)


def view_margin(env: Any, name: str, pose: tuple) -> float:
    """How close to the edge of "near and facing" a pose is (smaller = squarer, closer view)."""
    ox, _, oz = env.object_position(name)
    cfg = env.config
    dist = math.hypot(ox - pose[0], oz - pose[2]) / cfg.reach_m
    return dist + bearing_error(env, name, pose) / math.radians(cfg.facing_tolerance_deg)


def draw_episode(env: Any, seed: int, attempt: int, cfg: FindConfig) -> Episode | str:
    """Explore world ``attempt`` of run ``seed``; -> the Episode, or why it was skipped:
    "no object" (the walk passed none), "too close" (it ended near the object), "no path"."""
    world_seed, walk_seed = episode_seeds(seed, attempt)
    ex = explore(env, world_seed, walk_seed, cfg.explore_steps)
    passed = sorted(n for n, idx in ex["passed"].items() if idx)
    if not passed:
        return "no object"
    name = min(passed, key=lambda n: ex["passed"][n][-1])  # the object passed longest ago
    goal_frame = min(ex["passed"][name], key=lambda i: view_margin(env, name, ex["poses"][i]))
    try:
        oracle_steps = len(ShortestPathOracle(env).plan(name, start=env.pose))
    except NoPathError:  # the conservative nav grid sees no way from here: no ground truth to compare
        return "no path"
    if oracle_steps < cfg.min_oracle_steps:
        return "too close"
    return Episode(
        world_seed, walk_seed, name, ex["frames"], ex["poses"], ex["t_ns"], goal_frame, oracle_steps
    )


def remember_walk(
    mem: EpisodicMemory,
    emb: FrameEmbedder,
    ep: Episode,
    z: np.ndarray | None = None,
    tokens: np.ndarray | None = None,
) -> list[int]:
    """Record every frame of the walk, with its pose (and its reduced token grid when given or when the
    embedder makes them), as a keyframe of a new session -> keyframe ids."""
    if z is None:
        z, tokens = emb.many_tokens(ep.frames) if hasattr(emb, "many_tokens") else (emb.many(ep.frames), None)
    toks = [None] * len(z) if tokens is None else list(tokens)
    sid = mem.start_session("find-the-object")
    return mem.add_keyframes(
        [
            KeyframeIn(int(t), e, emb.model_id, pose=tuple(p), tokens=tk)
            for t, e, p, tk in zip(ep.t_ns, z, ep.poses, toks, strict=True)
        ],
        sid,
    )


def enrollment_views(env: Any, name: str) -> list[np.ndarray]:
    """Close-up views of the object from 8 directions (the free ones), as a user's enrollment photos."""
    ox, _, oz = env.object_position(name)
    dist_m = max(0.8, env.object_radius(name) + 0.5)  # the agent is a 0.4 m disc
    views = []
    for k in range(8):
        a = 2 * math.pi * k / 8
        x, z = ox + dist_m * math.cos(a), oz - dist_m * math.sin(a)
        yaw = math.atan2(-(oz - z), ox - x)  # heading (cos yaw, -sin yaw) points at the object
        try:
            env.set_pose(x, z, yaw)
        except WorldError:
            continue
        views.append(env.render_frame())
    return views


def planner_configs(pose_weight: float) -> dict[str, Any]:
    """The planners' configurations by policy name (documented defaults; pose cost for hierarchical_pose)."""
    hier = HierarchicalConfig()
    return {
        "flat_mpc": MPCConfig(),
        "hierarchical": hier,
        "hierarchical_pose": hier.with_pose_cost(pose_weight),
    }


def make_step_fn(
    kind: str,
    world_model: Any,
    graph: Any,
    goal: Any,
    pose_weight: float,
    token_world_model: Any = None,
    token_map: Any = None,
) -> Callable | None:
    """The planner of a policy as ``step(z, pose, tokens) -> Guidance``; None for oracle and random.

    Latent policies see no pose (``latent_pose`` is the labelled upper bound); the token policies need
    ``token_world_model`` and ``token_map`` (the remembered keyframes' token grids)."""
    from glasses_runtime.planner.navigator import LatentNavigator, NavigatorConfig
    from glasses_runtime.planner.token_dynamics import StillTokenWorldModel

    cfg = planner_configs(pose_weight)
    if kind == "flat_mpc":
        flat = MPCPlanner(world_model, cfg[kind])
        return lambda z, pose, tokens=None: flat.step(z, goal.embedding)
    if kind in ("hierarchical", "hierarchical_pose", "pooled_latent"):
        hier = HierarchicalPlanner(
            world_model, graph, cfg["hierarchical" if kind == "pooled_latent" else kind]
        )
        hier.set_goal(goal)
        if kind == "pooled_latent":
            return lambda z, pose, tokens=None: hier.step(z, None)
        return lambda z, pose, tokens=None: hier.step(z, pose)
    if kind in TOKEN_POLICIES:
        if token_world_model is None or token_map is None:
            raise ValueError(f"policy {kind!r} needs the token world model and the keyframes' token grids")
        twm = StillTokenWorldModel(token_world_model) if kind == "latent_still" else token_world_model
        ncfg = NavigatorConfig(
            pose_weight=pose_weight if kind == "latent_pose" else 0.0,
            samples=twm.samples or NavigatorConfig.samples,
            horizon=twm.horizon or NavigatorConfig.horizon,
        )
        nav = LatentNavigator(twm, token_map, ncfg)
        nav.set_goal(goal.keyframe_id)
        if kind == "latent_pose":
            return lambda z, pose, tokens=None: nav.step(tokens, pose)
        return lambda z, pose, tokens=None: nav.step(tokens)
    if kind in ("oracle", "random"):
        return None
    raise ValueError(f"unknown policy {kind!r}; choose one of {', '.join(POLICIES + LATENT_POLICIES)}")


StepCallback = Callable[[int, np.ndarray, tuple, Any], None]  # (step, frame, pose, guidance or None)


def run_policy(
    kind: str,
    env: Any,
    emb: FrameEmbedder,
    name: str,
    start: tuple,
    step_fn: Callable | None,
    max_steps: int,
    seed: int,
    on_step: StepCallback | None = None,
) -> dict:
    """Walk from ``start`` with one policy; ``step_fn(z [D], pose) -> Guidance`` for the planners.
    ``on_step`` sees every frame before the action it leads to (and the final frame, guidance None)."""
    env.set_pose(start[0], start[2], start[3])
    frame = env.render_frame()
    pose = tuple(env.pose)
    passed, stopped, steps, plan_ms = False, False, 0, []
    rng = np.random.default_rng(seed)
    if kind == "oracle":
        actions = ShortestPathOracle(env).plan(name)
        for a in actions[:max_steps]:
            if on_step is not None:
                on_step(steps, frame, pose, None)
            frame, _, _, _, info = env.step(a)
            pose = tuple(info["pose"])
            steps += 1
            passed |= env.near_and_facing(name)
        stopped = len(actions) <= max_steps
    else:
        for _ in range(max_steps):
            g = None
            if kind == "random":
                a = int(rng.integers(4))
            else:
                if kind in TOKEN_POLICIES:
                    z, tokens = emb.embed_tokens(frame)
                else:
                    z, tokens = emb.embed(frame), None
                g = step_fn(z, pose, tokens)
                plan_ms.append(g.plan_ms)
                if on_step is not None:
                    on_step(steps, frame, pose, g)
                if g.reached:
                    stopped = True
                    break
                a = g.action
            if on_step is not None and g is None:
                on_step(steps, frame, pose, None)
            frame, _, _, _, info = env.step(a)
            pose = tuple(info["pose"])
            steps += 1
            passed |= env.near_and_facing(name)
    if on_step is not None and (kind == "oracle" or not stopped):  # the final view, if not shown yet
        on_step(steps, frame, pose, None)
    here = env.near_and_facing(name)
    return {
        "end_pose": [round(float(v), 3) for v in env.pose],
        "stopped": stopped,
        "success": bool(stopped or kind == "random") and here,
        "passed": bool(passed or here),
        "steps": steps,
        "plan_ms": plan_ms,
    }


class FindError(Exception):
    """No episode could be set up (e.g. no walk passed an object); the message names the fix."""


class FindTheObject:
    """One "find the object" episode for the simulator and the demo, with the runtime's engines.

    task = FindTheObject(load_encoder("encoder.pte"), load_world_model_file("world_model.pte"), seed=0)
    ep = task.prepare()                    # explore, remember every frame, pick the goal keyframe
    result = task.run(on_step=callback)    # the planner walks back; callback(step, frame, pose, guidance)
    task.close()
    """

    def __init__(
        self,
        encoder: Any,
        world_model: Any,
        *,
        seed: int = 0,
        config: FindConfig | None = None,
        policy: str = "hierarchical_pose",
        max_attempts: int = 100,
    ) -> None:
        from glasses_runtime.planner import check_encoder
        from simulator.world import ApartmentEnv

        if policy not in POLICIES:
            raise ValueError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)}")
        check_encoder(world_model, encoder)
        self.cfg = config or FindConfig()
        self.emb = RuntimeEmbedder(encoder)
        self.world_model, self.seed, self.policy, self.max_attempts = world_model, seed, policy, max_attempts
        self.env = ApartmentEnv(self.cfg.world())
        self.episode: Episode | None = None
        self.skipped: dict[str, int] = {"no object": 0, "too close": 0, "no path": 0}
        self.goal: Any = None
        self.graph: Any = None
        self.keyframes = 0

    def prepare(self, memory_path: Any = None) -> Episode:
        """Explore worlds of this seed until a walk passes an object, remember that walk (in a fresh
        memory at ``memory_path``, else a temporary one) and aim at the object's best-seen keyframe."""
        import tempfile
        from pathlib import Path

        from glasses_runtime.planner import PlaceGraph, goal_from_keyframe

        for attempt in range(self.max_attempts):
            ep = draw_episode(self.env, self.seed, attempt, self.cfg)
            if isinstance(ep, Episode):
                break
            self.skipped[ep] += 1
        else:
            raise FindError(
                f"none of {self.max_attempts} walks of {self.cfg.explore_steps} steps passed an object far enough "
                "from where it ended; try another --seed or more --explore-steps"
            )
        with tempfile.TemporaryDirectory(prefix="find-") as tmp:
            path = Path(memory_path) if memory_path is not None else Path(tmp) / "memory.db"
            with EpisodicMemory.open(path) as mem:
                ids = remember_walk(mem, self.emb, ep)
                self.goal = goal_from_keyframe(mem, ids[ep.goal_frame], self.emb.model_id, self.emb.dim)
                self.graph = PlaceGraph.from_memory(mem, self.emb.model_id)
        self.goal = replace(self.goal, label=f"{ep.object} (keyframe {self.goal.keyframe_id})")
        self.keyframes = len(ids)
        self.episode = ep
        return ep

    def run(self, on_step: StepCallback | None = None) -> dict:
        if self.episode is None:
            self.prepare()
        ep = self.episode
        assert ep is not None
        step_fn = make_step_fn(self.policy, self.world_model, self.graph, self.goal, self.cfg.pose_weight)
        r = run_policy(
            self.policy,
            self.env,
            self.emb,
            ep.object,
            ep.start,
            step_fn,
            self.cfg.max_steps,
            ep.world_seed,
            on_step,
        )
        plan = r.pop("plan_ms")
        ms = np.array(plan) if plan else None
        return {
            "object": ep.object,
            "policy": self.policy,
            "world_seed": ep.world_seed,
            "explore_steps": self.cfg.explore_steps,
            "keyframes_remembered": self.keyframes,
            "goal_keyframe": self.goal.keyframe_id,
            "oracle_steps": ep.oracle_steps,
            "walks_skipped": dict(self.skipped),
            **r,
            "max_steps": self.cfg.max_steps,
            "replan_ms_p50": round(float(np.median(ms)), 2) if ms is not None else None,
            "replan_ms_p95": round(float(np.percentile(ms, 95)), 2) if ms is not None else None,
        }

    def close(self) -> None:
        self.env.close()

    def __enter__(self) -> FindTheObject:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
