"""Benchmark "find the object": explore an apartment, then find your way back to an object you passed.

    .venv/bin/python benchmarks/bench_planner.py --world-model runs/wm128/world_model.safetensors

Per seeded episode (2x2 MiniWorld apartment, 96 px, discrete actions, six objects):

1. The wearer explores: a persistent random walk of ``--explore-steps`` steps. Every frame is embedded
   with the frozen encoder and recorded, with its pose, into a fresh episodic memory. A walk has passed
   an object when it came within 0.8 m of it facing it within 15 degrees; walks that passed none, and
   walks that end fewer than ``--min-oracle-steps`` shortest-path steps from the object, are counted
   and skipped.
2. The goal is the remembered moment the object was seen closest and most squarely (a keyframe id,
   ``goal_from_keyframe``, as if picked from the timeline; the object passed longest ago is chosen).
   Object goals through enrollment are measured separately: the object is enrolled from 8 close-up
   views and ``goal_from_object`` (its last sighting, ``mem.where``) is checked for pointing at a
   keyframe that is near and facing it.
3. From where the walk ended, each policy gets ``--max-steps`` steps. Success = it stops (says
   "reached"; the oracle stops at the end of its plan, random at the end of the budget) within 1 m of
   the object and facing it within 20 degrees. ``passed through`` counts episodes where it was there
   at some step.

Policies: oracle shortest path (ground-truth map), random (uniform actions), flat MPC (CEM toward the
goal embedding), hierarchical (place graph over the memory's keyframes, localised by pose, CEM to each
subgoal's embedding) and hierarchical_pose (the same plus the optional dead-reckoned pose cost).
Replan times are the planner's own wall time per step (frame embedding excluded), eager PyTorch on
``--threads`` CPU threads. Writes benchmarks/results/planner.json and prints a markdown table. Not a
test: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_models.checkpoint import file_sha256, load_encoder  # noqa: E402
from edge_models.preprocess import normalize, resize_center_crop  # noqa: E402
from edge_models.world_model import load_world_model  # noqa: E402
from glasses_runtime.memory import EpisodicMemory, KeyframeIn  # noqa: E402
from glasses_runtime.planner import (  # noqa: E402
    HierarchicalConfig,
    HierarchicalPlanner,
    ModuleWorldModel,
    MPCConfig,
    MPCPlanner,
    PlaceGraph,
    UnknownGoalError,
    goal_from_keyframe,
    goal_from_object,
)
from simulator.world import (  # noqa: E402
    ApartmentEnv,
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
POLICIES = ("oracle", "random", "flat_mpc", "hierarchical", "hierarchical_pose")


class Embedder:
    """Frozen encoder: RGB uint8 [N, H, W, 3] -> unit float32 [N, D]."""

    def __init__(self, path: str) -> None:
        self.enc = load_encoder(path).inference_copy()
        self.size = self.enc.config.img_size
        self.model_id = file_sha256(path)
        self.dim = self.enc.config.width

    @torch.inference_mode()
    def many(self, frames: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(frames), 64):
            x = normalize(np.stack([resize_center_crop(f, self.size) for f in frames[i : i + 64]]))
            out.append(torch.nn.functional.normalize(self.enc.embed(x)[1], dim=-1).numpy())
        return np.concatenate(out)

    def embed(self, rgb: np.ndarray) -> np.ndarray:
        return self.many(rgb[None])[0]


def explore(env: ApartmentEnv, world_seed: int, walk_seed: int, steps: int) -> dict:
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


def bearing_error(env: ApartmentEnv, name: str, pose: tuple) -> float:
    """|angle between the heading and the direction to the object|, radians."""
    ox, _, oz = env.object_position(name)
    b = math.atan2(-(oz - pose[2]), ox - pose[0])
    return abs((b - pose[3] + math.pi) % (2 * math.pi) - math.pi)


def view_margin(env: ApartmentEnv, name: str, pose: tuple) -> float:
    """How close to the edge of "near and facing" a pose is (smaller = squarer, closer view)."""
    ox, _, oz = env.object_position(name)
    cfg = env.config
    dist = math.hypot(ox - pose[0], oz - pose[2]) / cfg.reach_m
    return dist + bearing_error(env, name, pose) / math.radians(cfg.facing_tolerance_deg)


def enrollment_views(env: ApartmentEnv, name: str) -> list[np.ndarray]:
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


def run_policy(
    kind: str, env: ApartmentEnv, emb: Embedder, name: str, start: tuple, step_fn, max_steps: int, seed: int
) -> dict:
    """step_fn(z [D], pose) -> Guidance for the planners; None for oracle and random."""
    env.set_pose(start[0], start[2], start[3])
    frame = env.render_frame()
    pose = env.pose
    passed, stopped, steps, plan_ms = False, False, 0, []
    rng = np.random.default_rng(seed)
    if kind == "oracle":
        actions = ShortestPathOracle(env).plan(name)
        for a in actions[:max_steps]:
            frame, _, _, _, info = env.step(a)
            steps += 1
            passed |= env.near_and_facing(name)
        stopped = len(actions) <= max_steps
    else:
        for _ in range(max_steps):
            if kind == "random":
                a = int(rng.integers(4))
            else:
                g = step_fn(emb.embed(frame), tuple(pose))
                plan_ms.append(g.plan_ms)
                if g.reached:
                    stopped = True
                    break
                a = g.action
            frame, _, _, _, info = env.step(a)
            pose = info["pose"]
            steps += 1
            passed |= env.near_and_facing(name)
    return {
        "end_pose": [round(float(v), 3) for v in env.pose],
        "stopped": stopped,
        "success": bool(stopped or kind == "random") and env.near_and_facing(name),
        "passed": bool(passed or env.near_and_facing(name)),
        "steps": steps,
        "plan_ms": plan_ms,
    }


def time_engines(model: torch.nn.Module, pte: str, threads: int, n: int = 200) -> dict:
    """ms per flat-MPC replan (default config) with the eager model and with the exported .pte, same inputs."""
    from glasses_runtime.engines.pte import PteEngine
    from glasses_runtime.planner import PteWorldModel

    rng = np.random.default_rng(0)
    z = rng.standard_normal((n + 2, model.config.embed_dim)).astype(np.float32)
    out = {}
    for name, wm in (
        ("eager", ModuleWorldModel(model)),
        ("pte", PteWorldModel(PteEngine(pte, threads=threads))),
    ):
        planner = MPCPlanner(wm, MPCConfig())
        planner.observe(z[0])
        times = []
        for i in range(n):
            times.append(planner.step(z[i + 1], z[-1]).plan_ms)
        out[name] = {
            "replan_ms_p50": round(float(np.median(times)), 2),
            "replan_ms_p95": round(float(np.percentile(times, 95)), 2),
        }
    return out


def summarise(rows: list[dict], kind: str) -> dict:
    rs = [r[kind] for r in rows]
    ok = [r for r in rs if r["success"]]
    ms = np.array([m for r in rs for m in r["plan_ms"]]) if any(r["plan_ms"] for r in rs) else None
    return {
        "success_rate": round(len(ok) / len(rs), 3),
        "passed_rate": round(sum(r["passed"] for r in rs) / len(rs), 3),
        "mean_steps_success": round(float(np.mean([r["steps"] for r in ok])), 1) if ok else None,
        "mean_steps_all": round(float(np.mean([r["steps"] for r in rs])), 1),
        "replan_ms_p50": round(float(np.percentile(ms, 50)), 2) if ms is not None else None,
        "replan_ms_p95": round(float(np.percentile(ms, 95)), 2) if ms is not None else None,
        "replans": int(len(ms)) if ms is not None else 0,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--world-model",
        required=True,
        help="world_model.safetensors (python -m edge_models.world_model.train)",
    )
    p.add_argument("--encoder", default=str(ROOT / "edge_models/weights/vit_pico.safetensors"))
    p.add_argument("--episodes", type=int, default=50, help="valid episodes (walks that passed an object)")
    p.add_argument("--explore-steps", type=int, default=200)
    p.add_argument("--max-steps", type=int, default=100, help="T: step budget to reach the object")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--min-oracle-steps",
        type=int,
        default=6,
        help="skip walks that end this close (shortest path) to the object",
    )
    p.add_argument(
        "--threads", type=int, default=1, help="torch threads (the tiny MLP does not gain from more)"
    )
    p.add_argument("--policies", default=",".join(POLICIES))
    p.add_argument("--pose-weight", type=float, default=2.0, help="pose cost weight of hierarchical_pose")
    p.add_argument(
        "--pte", help="also time replans with this exported world model (.pte); --episodes 0: only that"
    )
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/planner.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    policies = args.policies.split(",")
    t_start = time.perf_counter()
    emb = Embedder(args.encoder)
    model, meta = load_world_model(args.world_model)
    if meta.get("encoder_sha256") != emb.model_id:
        print(
            "error: the world model was trained on another encoder's embeddings; pass --encoder",
            file=sys.stderr,
        )
        return 1
    wm = ModuleWorldModel(model)
    if args.pte:
        print(json.dumps({"threads": args.threads, "replan": time_engines(model, args.pte, args.threads)}))
        if args.episodes == 0:
            return 0
    flat_cfg = MPCConfig()
    hier_cfg = HierarchicalConfig()
    pose_cfg = HierarchicalConfig(
        mpc=replace(hier_cfg.mpc, energy=replace(hier_cfg.mpc.energy, pose_weight=args.pose_weight))
    )
    env = ApartmentEnv(
        WorldConfig(rows=2, cols=2, size=96, objects=("key", "ball", "box", "medkit", "duckie", "cone"))
    )
    rows, skipped, too_close, no_path, attempt = [], 0, 0, 0, 0
    while len(rows) < args.episodes:
        ss = np.random.SeedSequence([args.seed, attempt])
        world_seed, walk_seed, pick_seed = (int(s) for s in ss.generate_state(3) % 2**31)
        attempt += 1
        ex = explore(env, world_seed, walk_seed, args.explore_steps)
        passed = sorted(n for n, idx in ex["passed"].items() if idx)
        if not passed:
            skipped += 1
            continue
        # the object passed longest ago; its goal moment: the frame that saw it closest and most squarely
        name = min(passed, key=lambda n: ex["passed"][n][-1])
        goal_frame = min(ex["passed"][name], key=lambda i: view_margin(env, name, ex["poses"][i]))
        start = ex["poses"][-1]
        try:
            oracle_steps = len(ShortestPathOracle(env).plan(name, start=env.pose))
        except NoPathError:  # the conservative nav grid sees no way from here; no ground truth to compare
            no_path += 1
            continue
        if oracle_steps < args.min_oracle_steps:
            too_close += 1  # the walk ended at the object: nothing to find
            continue
        z_all = emb.many(ex["frames"])
        row: dict = {
            "world_seed": world_seed,
            "object": name,
            "goal_pose": [round(float(v), 3) for v in ex["poses"][goal_frame]],
            "goal_view_margin": round(view_margin(env, name, ex["poses"][goal_frame]), 3),
        }
        with tempfile.TemporaryDirectory() as tmp, EpisodicMemory.open(Path(tmp) / "m.db") as mem:
            sid = mem.start_session("sim")
            ids = mem.add_keyframes(
                [
                    KeyframeIn(int(t), z, emb.model_id, pose=tuple(po))
                    for t, z, po in zip(ex["t_ns"], z_all, ex["poses"], strict=True)
                ],
                sid,
            )
            goal = goal_from_keyframe(mem, ids[goal_frame], emb.model_id, emb.dim)
            views = enrollment_views(env, name)
            row["object_goal"] = "no views"
            if views:
                mem.enroll(name, emb.many(np.stack(views)), emb.model_id)
                try:
                    og = goal_from_object(mem, name, emb.model_id, emb.dim)
                    row["object_goal"] = (
                        "right place" if env.near_and_facing(name, og.pose) else "wrong place"
                    )
                except UnknownGoalError:
                    row["object_goal"] = "not found"
            graph = PlaceGraph.from_memory(mem, emb.model_id)
        for kind in policies:
            step_fn = None
            if kind == "flat_mpc":
                flat = MPCPlanner(wm, flat_cfg)
                step_fn = lambda z, pose, flat=flat, g=goal.embedding: flat.step(z, g)  # noqa: E731
            elif kind.startswith("hier"):
                hier = HierarchicalPlanner(wm, graph, hier_cfg if kind == "hierarchical" else pose_cfg)
                hier.set_goal(goal)
                step_fn = hier.step
            row[kind] = run_policy(kind, env, emb, name, start, step_fn, args.max_steps, world_seed)
        rows.append(row)
        print(
            f"episode {len(rows)}/{args.episodes} seed {world_seed} {name}: "
            + " ".join(f"{k}={'ok' if row[k]['success'] else '--'}/{row[k]['steps']}" for k in policies),
            file=sys.stderr,
        )
    env.close()
    summary = {k: summarise(rows, k) for k in policies}
    result = {
        "benchmark": "find the object",
        "config": {k: v for k, v in vars(args).items() if k != "out"},
        "world": "2x2 MiniWorld apartment, 96 px, discrete actions (30 deg turns, 0.25 m steps), objects key/ball/box",
        "episodes": len(rows),
        "walks_without_object_skipped": skipped,
        "walks_ending_near_the_object_skipped": too_close,
        "walks_where_the_oracle_found_no_path_skipped": no_path,
        "goal_from_object": {
            k: sum(r["object_goal"] == k for r in rows)
            for k in ("right place", "wrong place", "not found", "no views")
        },
        "world_model": {"path": args.world_model, "train": json.loads(meta.get("train", "{}"))},
        "planner_defaults": {
            "flat": repr(flat_cfg),
            "hierarchical": repr(hier_cfg),
            "pose_weight": args.pose_weight,
        },
        "summary": summary,
        "torch_threads": args.threads,
        "seconds": round(time.perf_counter() - t_start, 1),
        "episodes_detail": [
            {
                k: ({kk: vv for kk, vv in v.items() if kk != "plan_ms"} if isinstance(v, dict) else v)
                for k, v in r.items()
            }
            for r in rows
        ],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(markdown(result))
    return 0


def markdown(result: dict) -> str:
    lines = [
        "| policy | success | passed through | mean steps (successes) | replan ms p50 / p95 |",
        "|---|---|---|---|---|",
    ]
    for k, s in result["summary"].items():
        ms = f"{s['replan_ms_p50']} / {s['replan_ms_p95']}" if s["replan_ms_p50"] is not None else "-"
        lines.append(
            f"| {k} | {s['success_rate'] * 100:.0f}% | {s['passed_rate'] * 100:.0f}% | {s['mean_steps_success']} | {ms} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
