"""MiniWorld object and place recognition for any image embedder: the world figures of the encoder benchmark.

    .venv/bin/python benchmarks/world_recognition.py --model edge_models/weights/vit_pico.safetensors \\
        --episodes 5 --size 96 --json

    from benchmarks.world_recognition import object_recognition, place_recognition   # repo root on sys.path
    r = object_recognition(embed, episodes=50, seed=7919, rows=2, cols=2, size=96)       # r["rate"]
    r = place_recognition(embed, episodes=50, queries_per_episode=4, seed=7919, rows=2, cols=2, size=96)

``embed(list of RGB uint8 [H, W, 3]) -> float32 [N, D]`` (unit norm; the memory normalises anyway).

Walk (both figures). Attempt i of a run seeded ``seed`` explores the world and walk drawn from
``SeedSequence([seed, i, SALT])``: the salt keeps these worlds apart from rollouts that
``simulator.world.collect`` draws from the same seed numbers, so pass a seed no training run used.
The world is ``FindConfig(rows, cols, size).world()`` (the six objects of "find the object", 30 degree
turns, 0.25 m steps). A ``policy`` walk ("random": the persistent random walk, or "waypoint") of
``walk_steps`` steps; every frame (``walk_steps + 1``) is embedded and stored with its ground-truth pose
as a keyframe of a fresh ``EpisodicMemory`` (temporary file, model_id "bench").

Object recognition. Target: among the objects the walk passed (within 0.8 m, facing it within 15
degrees: ``find_object.PASS``, so the memory holds a clear view), the one passed longest ago; a walk
that passed none is skipped (``walks_skipped``) and the next attempt drawn. Enrollment: the close-ups
of ``find_object.enrollment_views`` (up to 8, from 8 directions at max(0.8 m, radius + 0.5 m), facing
the object), rendered fresh rather than taken from the walk, embedded and ``mem.enroll``-ed under the
object's name. Answer: of ``mem.where(name)`` over every keyframe (no threshold), the one with the
highest cosine to any prototype. Success (``rate``): that keyframe's camera is within 1.5 m of the
object's centre (floor plane) and the object lies within 20 degrees of its heading. Also reported:
``rate_1m``, the world's own "near and facing" (1 m, 20 degrees; bench_planner's "right place"), and
``goal_rate``, the runtime's rule (``goal_from_object``: the newest sighting with cosine >= 0.7; none
counts as a failure). ``chance``: the mean fraction of walk keyframes that pass the 1.5 m / 20 degree
test (what a random answer scores).

Place recognition. Per walk, ``queries_per_episode`` walk poses drawn by a seeded generator, each moved
by uniform +-0.3 m in x and z and +-15 degrees of yaw (a pose overlapping a wall or an object is
redrawn, at most 10 draws per query per walk, counted in ``poses_skipped``); the view there is rendered fresh,
embedded and searched (``mem.search``, top 1). Success: the keyframe found was taken within 1 m
(floor plane) of the query's camera. ``chance``: the mean fraction of keyframes within 1 m.

Ground truth (poses, object positions) only places the queries and scores the answers; the answers
come from the embeddings alone. Writes nothing; prints the JSON with --json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from glasses_runtime.engines.pte import ModelFileError
from glasses_runtime.memory import EpisodicMemory, KeyframeIn
from glasses_runtime.planner import UnknownGoalError, goal_from_object
from simulator.find_object import (
    PASS,
    FindConfig,
    FindError,
    RuntimeEmbedder,
    bearing_error,
    enrollment_views,
)
from simulator.world import ApartmentEnv, WorldError, near_and_facing
from simulator.world.collect import run_episode
from simulator.world.exploration import POLICIES
from simulator.world.rollouts import Rollout

Embed = Callable[[list[np.ndarray]], np.ndarray]  # RGB uint8 [H, W, 3] x N -> float32 [N, D]
MODEL_ID = "bench"
SALT = 0x57524543  # mixed into every seed so that collect's rollouts of the same seed are other worlds
OBJECT_HIT = (1.5, 20.0)  # metres to the object's centre, degrees off the heading
PLACE_HIT_M = 1.0
JITTER = (0.3, 15.0)  # place queries: +- metres in x and z, +- degrees of yaw
MAX_TRIES = 10  # pose draws per place query (a budget per walk) before giving up


def walk(env: ApartmentEnv, seed: int, attempt: int, steps: int, policy: str) -> Rollout:
    """The seeded exploration of attempt ``attempt``; frames uint8 [steps + 1, S, S, 3], poses [steps + 1, 4]."""
    world_seed, walk_seed = (int(s) for s in np.random.SeedSequence([seed, attempt, SALT]).generate_state(2))
    return run_episode(env, policy, (world_seed, walk_seed), steps)


def embed_all(embed: Embed, frames) -> np.ndarray:
    z = np.asarray(embed(list(frames)), dtype=np.float32)
    if z.ndim != 2 or len(z) != len(frames):
        raise ValueError(f"embed must map {len(frames)} images to float32 [N, D], got shape {z.shape}")
    return z


@contextlib.contextmanager
def remembered(rollout: Rollout, z: np.ndarray) -> Iterator[EpisodicMemory]:
    """A fresh temporary memory holding every walk frame (embedding ``z`` [N, D]) with its pose."""
    with (
        tempfile.TemporaryDirectory(prefix="world-recognition-") as tmp,
        EpisodicMemory.open(Path(tmp) / "memory.db") as mem,
    ):
        sid = mem.start_session("world-recognition")
        mem.add_keyframes(
            [
                KeyframeIn(int(t), e, MODEL_ID, pose=tuple(float(v) for v in p))
                for t, e, p in zip(rollout.t_ns, z, rollout.poses, strict=True)
            ],
            sid,
        )
        yield mem


def summarise(records: list[dict], t0: float, unit: str, rates: dict[str, str], **extra: object) -> dict:
    """``rates``: output name -> record field to average (``rate`` is the mean of ``success``)."""
    n = len(records)
    out: dict = {unit: n, "successes": sum(r["success"] for r in records)}
    for name, field in {"rate": "success", **rates}.items():
        out[name] = round(float(np.mean([r[field] for r in records])), 4) if n else None
    seconds = time.perf_counter() - t0
    return {**out, **extra, "seconds": round(seconds, 1), "records": records}


def object_recognition(
    embed: Embed,
    *,
    episodes: int,
    seed: int,
    rows: int,
    cols: int,
    size: int,
    walk_steps: int = 200,
    policy: str = "random",
    max_attempts: int | None = None,
) -> dict:
    """Enroll an object the walk passed from close-ups, ask the memory where it is (protocol: module
    docstring) -> {episodes, successes, rate, rate_1m, goal_rate, chance, walks_skipped, records}."""
    t0 = time.perf_counter()
    limit = max_attempts if max_attempts is not None else 20 * episodes
    env = ApartmentEnv(FindConfig(explore_steps=walk_steps, size=size, rows=rows, cols=cols).world())
    records: list[dict] = []
    attempt = skipped = 0
    try:
        while len(records) < episodes:
            if attempt >= limit:
                raise FindError(
                    f"only {len(records)} of {attempt} walks of {walk_steps} steps passed an object; "
                    "raise walk_steps or max_attempts, or use policy='waypoint'"
                )
            rollout = walk(env, seed, attempt, walk_steps, policy)
            attempt += 1
            passed = {
                n: [i for i, p in enumerate(rollout.poses) if near_and_facing(p, xyz[::2], *PASS)]
                for n, xyz in rollout.objects.items()
            }
            passed = {n: idx for n, idx in passed.items() if idx}
            views = []
            if passed:
                name = min(sorted(passed), key=lambda n: passed[n][-1])  # passed longest ago
                views = enrollment_views(env, name)
            if not views:
                skipped += 1
                continue
            records.append(_object_episode(env, embed, rollout, name, views, attempt - 1))
    finally:
        env.close()
    return summarise(
        records,
        t0,
        "episodes",
        {"rate_1m": "success_1m", "goal_rate": "goal_success", "chance": "chance"},
        walks_skipped=skipped,
        attempts=attempt,
    )


def _object_episode(
    env: ApartmentEnv, embed: Embed, rollout: Rollout, name: str, views: list, attempt: int
) -> dict:
    z = embed_all(embed, rollout.frames)
    ox, _, oz = env.object_position(name)

    def hit(pose) -> bool:
        return near_and_facing(pose, (ox, oz), *OBJECT_HIT)

    with remembered(rollout, z) as mem:
        mem.enroll(name, embed_all(embed, views), MODEL_ID)
        seen = mem.where(name, k=len(rollout.poses), threshold=-1.0)
        best = max(seen, key=lambda m: m.score)
        try:
            goal = goal_from_object(mem, name, MODEL_ID, z.shape[1]).pose
        except UnknownGoalError:
            goal = None
    pose = best.pose
    return {
        "attempt": attempt,
        "world_seed": int(rollout.seed),
        "object": name,
        "views": len(views),
        "closest_m": round(float(np.min(np.hypot(rollout.poses[:, 0] - ox, rollout.poses[:, 2] - oz))), 3),
        "answer_t_s": round(best.t_ns / 1e9, 2),
        "cosine": round(float(best.score), 4),
        "distance_m": round(math.hypot(ox - pose[0], oz - pose[2]), 3),
        "angle_deg": round(math.degrees(bearing_error(env, name, pose)), 1),
        "success": hit(pose),
        "success_1m": env.near_and_facing(name, pose),
        "goal_success": goal is not None and hit(goal),
        "chance": round(float(np.mean([hit(p) for p in rollout.poses])), 4),
    }


def place_recognition(
    embed: Embed,
    *,
    episodes: int,
    queries_per_episode: int,
    seed: int,
    rows: int,
    cols: int,
    size: int,
    walk_steps: int = 200,
    policy: str = "random",
) -> dict:
    """Re-visit walked places (jittered, rendered fresh), search the memory top 1 (protocol: module
    docstring) -> {queries, successes, rate, chance, episodes, poses_skipped, records}."""
    t0 = time.perf_counter()
    env = ApartmentEnv(FindConfig(explore_steps=walk_steps, size=size, rows=rows, cols=cols).world())
    records: list[dict] = []
    skipped = 0
    try:
        for ep in range(episodes):
            rollout = walk(env, seed, ep, walk_steps, policy)
            rng = np.random.default_rng([seed, ep, SALT, 1])
            views, queries = [], []
            for _ in range(queries_per_episode * MAX_TRIES):
                if len(queries) == queries_per_episode:
                    break
                i = int(rng.integers(len(rollout.poses)))
                x, _, z, yaw = rollout.poses[i]
                dx, dz = rng.uniform(-JITTER[0], JITTER[0], 2)
                try:
                    env.set_pose(x + dx, z + dz, yaw + math.radians(rng.uniform(-JITTER[1], JITTER[1])))
                except WorldError:
                    skipped += 1
                    continue
                views.append(env.render_frame())
                queries.append((i, env.pose))
            if not queries:
                continue
            z_walk, z_query = embed_all(embed, rollout.frames), embed_all(embed, views)
            with remembered(rollout, z_walk) as mem:
                answers = [mem.search(q, MODEL_ID, k=1)[0] for q in z_query]
            for (i, pose), m in zip(queries, answers, strict=True):
                d = math.hypot(m.pose[0] - pose.x, m.pose[2] - pose.z)
                near = np.hypot(rollout.poses[:, 0] - pose.x, rollout.poses[:, 2] - pose.z) <= PLACE_HIT_M
                records.append(
                    {
                        "episode": ep,
                        "world_seed": int(rollout.seed),
                        "walk_index": i,
                        "query_pose": [round(float(v), 3) for v in pose],
                        "cosine": round(float(m.score), 4),
                        "distance_m": round(d, 3),
                        "success": d <= PLACE_HIT_M,
                        "chance": round(float(near.mean()), 4),
                    }
                )
    finally:
        env.close()
    return summarise(records, t0, "queries", {"chance": "chance"}, episodes=episodes, poses_skipped=skipped)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="encoder .safetensors or .pte (the runtime's load_encoder)")
    p.add_argument("--episodes", type=int, default=5, help="object episodes, and place walks")
    p.add_argument("--queries", type=int, default=4, help="place queries per walk")
    p.add_argument("--seed", type=int, default=7919, help="a seed no training run used")
    p.add_argument("--rows", type=int, default=2)
    p.add_argument("--cols", type=int, default=2)
    p.add_argument("--size", type=int, help="render size in px (default: the encoder's input size)")
    p.add_argument("--walk-steps", type=int, default=200)
    p.add_argument("--policy", default="random", choices=sorted(POLICIES))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", action="store_true", help="print the full JSON (records included)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from glasses_runtime.engines.encoder import load_encoder

    try:
        emb = RuntimeEmbedder(load_encoder(args.model, threads=args.threads))
        kw = {
            "episodes": args.episodes,
            "seed": args.seed,
            "rows": args.rows,
            "cols": args.cols,
            "size": args.size or emb.encoder.size,
            "walk_steps": args.walk_steps,
            "policy": args.policy,
        }

        def embed(frames: list[np.ndarray]) -> np.ndarray:
            return emb.many(np.stack(frames))

        result = {
            "config": {"model": args.model, "queries": args.queries, **kw},
            "object_recognition": object_recognition(embed, **kw),
            "place_recognition": place_recognition(embed, queries_per_episode=args.queries, **kw),
        }
    except (ModelFileError, FindError, WorldError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for k in ("object_recognition", "place_recognition"):
            print(k, json.dumps({kk: v for kk, v in result[k].items() if kk != "records"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
