"""Benchmark "find the object": explore an apartment, then find your way back to an object you passed.

    .venv/bin/python benchmarks/bench_planner.py --out benchmarks/results/planner.json   # 2x2, memory goals
    .venv/bin/python benchmarks/bench_planner.py --rows 3 --cols 3 --out benchmarks/results/planner_3x3.json
    .venv/bin/python benchmarks/bench_planner.py --goal keyframe --out benchmarks/results/planner_keyframe_goal.json

Per seeded episode (MiniWorld apartment, 128 px, discrete actions, six objects), the protocol of
``simulator.find_object`` (shared with ``glasses-sim find``): explore with a random walk recorded into a
fresh memory (every frame a keyframe, with its embedding and reduced token grid), then each policy walks
back from where the walk ended to the object passed longest ago. The goal keyframe comes from memory
(``--goal memory``, the default and the headline: the object is enrolled from 8 close-up views and
``goal_from_object`` picks its sighting; no ground truth) or is the simulator's best view of the object
(``--goal keyframe``: privileged, an upper bound).

Policies: oracle (shortest path on the ground-truth map), random, flat_mpc (pooled world model, CEM
toward the goal embedding), pooled_latent (place graph + pooled world model, no pose: the one-vector
"CLS latent" baseline), latent (the token world model's LatentNavigator: place recognition, route,
MPC on token grids; no pose anywhere), latent_still (the same with "nothing moves" dynamics: the
ablation), latent_pose (latent plus the dead-reckoned pose cost: an upper bound), hierarchical and
hierarchical_pose (the pooled planner localised by the true pose: upper bounds). Replan times are the
planner's own wall time per step (frame embedding excluded) with the exported .pte world models on
``--threads`` CPU threads. Writes ``--out`` (default runs/benchmarks/planner.json, so a trial run never
overwrites the committed results) and prints a markdown table. Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_models.checkpoint import file_sha256, load_encoder  # noqa: E402
from edge_models.preprocess import normalize, resize_center_crop  # noqa: E402
from edge_models.world_model import load_world_model  # noqa: E402
from glasses_runtime.memory import EpisodicMemory  # noqa: E402
from glasses_runtime.planner import (  # noqa: E402
    ModuleWorldModel,
    MPCConfig,
    MPCPlanner,
    PlaceGraph,
    UnknownGoalError,
    WorldModelMismatchError,
    check_encoder,
    goal_from_keyframe,
    goal_from_object,
    load_world_model_file,
)
from glasses_runtime.planner.navigator import TokenKeyframes, goal_from_views  # noqa: E402
from glasses_runtime.planner.token_dynamics import load_token_world_model_file  # noqa: E402
from simulator.find_object import (  # noqa: E402
    LATENT_POLICIES,
    POLICIES,
    TOKEN_POLICIES,
    Episode,
    FindConfig,
    RuntimeEmbedder,
    draw_episode,
    enrollment_views,
    make_step_fn,
    planner_configs,
    remember_walk,
    run_policy,
    view_margin,
)
from simulator.world import ApartmentEnv  # noqa: E402


class Embedder:
    """Frozen encoder: RGB uint8 [N, H, W, 3] -> unit float32 [N, D]."""

    def __init__(self, path: str) -> None:
        self.enc = load_encoder(path).inference_copy()
        self.size = self.enc.config.img_size
        self.model_id = file_sha256(path)
        self.dim = self.enc.config.width
        self.source_id = self.model_id

    @torch.inference_mode()
    def many(self, frames: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(frames), 64):
            x = normalize(np.stack([resize_center_crop(f, self.size) for f in frames[i : i + 64]]))
            out.append(torch.nn.functional.normalize(self.enc.embed(x)[1], dim=-1).numpy())
        return np.concatenate(out)

    def embed(self, rgb: np.ndarray) -> np.ndarray:
        return self.many(rgb[None])[0]


class Persistence:
    """Ablation: a "world model" that predicts nothing moves (every step = the last context embedding),
    with the shapes of the real one. Planning with it shows what the learned dynamics add."""

    def __init__(self, wm) -> None:
        self.embed_dim, self.action_dim, self.context = wm.embed_dim, wm.action_dim, wm.context
        self.samples, self.horizon = wm.samples, wm.horizon
        self.encoder_sha256 = wm.encoder_sha256

    def rollout(self, context: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return context[:, -1:, :].expand(-1, actions.shape[1], -1).contiguous()


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
        default=str(ROOT / "edge_models/weights/world_model_wm_c2_h128x2_s64_t5_fp32_xnnpack.pte"),
        help="world_model.safetensors (python -m edge_models.world_model.train) or its exported .pte",
    )
    p.add_argument(
        "--encoder",
        default=str(ROOT / "edge_models/weights/encoder_vit_tiny_int8_xnnpack.pte"),
        help="encoder .pte (the runtime's engine; token policies need its 'tokens' output) or a checkpoint",
    )
    p.add_argument(
        "--token-world-model",
        default=str(
            ROOT / "edge_models/weights/token_world_model_twm_c2_d32_h32x3_g4x8_s64_t3_fp32_xnnpack.pte"
        ),
        help="token world model (.pte beside its .safetensors, or the .safetensors) for the latent policies",
    )
    p.add_argument(
        "--goal",
        choices=("memory", "keyframe"),
        default="memory",
        help="memory: the object is enrolled from 8 close-ups and goal_from_object picks the keyframe (honest); "
        "keyframe: the simulator picks the keyframe that saw it best (privileged: an upper bound)",
    )
    p.add_argument("--rows", type=int, default=2, help="apartment rows of rooms (2: 2x2, 3: 3x3)")
    p.add_argument("--cols", type=int, default=2, help="apartment columns of rooms")
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
    p.add_argument(
        "--policies",
        default="oracle,random,flat_mpc,pooled_latent,latent,latent_still,latent_pose,hierarchical_pose",
        help=f"comma-separated, from {', '.join(POLICIES + LATENT_POLICIES)}",
    )
    p.add_argument("--pose-weight", type=float, default=2.0, help="pose cost weight of hierarchical_pose")
    p.add_argument(
        "--pte", help="also time replans with this exported world model (.pte); --episodes 0: only that"
    )
    p.add_argument(
        "--persistence",
        action="store_true",
        help="ablation: replace the world model's predictions with 'nothing moves' (same shapes)",
    )
    p.add_argument(
        "--out",
        default=str(ROOT / "runs/benchmarks/planner.json"),
        help="JSON to write (default runs/benchmarks/planner.json; the committed tables live in "
        "benchmarks/results/: pass that path on purpose to update them)",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    policies = args.policies.split(",")
    t_start = time.perf_counter()
    if args.encoder.endswith(".pte"):  # the runtime's engine, one frame per call, as on the glasses
        from glasses_runtime.engines.encoder import load_encoder as load_runtime_encoder

        emb = RuntimeEmbedder(load_runtime_encoder(args.encoder, threads=args.threads))
    else:
        emb = Embedder(args.encoder)
    wm = load_world_model_file(args.world_model, threads=args.threads)
    twm = None
    if any(k in TOKEN_POLICIES for k in policies):
        twm = load_token_world_model_file(args.token_world_model, threads=args.threads)
    if args.persistence:
        wm = Persistence(wm)
    try:
        check_encoder(wm, emb)
    except WorldModelMismatchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    meta = {} if args.world_model.endswith(".pte") else load_world_model(args.world_model)[1]
    if args.pte:
        if not meta:
            print(
                "error: --pte compares with the eager model: pass a .safetensors --world-model",
                file=sys.stderr,
            )
            return 1
        model = load_world_model(args.world_model)[0]
        print(json.dumps({"threads": args.threads, "replan": time_engines(model, args.pte, args.threads)}))
        if args.episodes == 0:
            return 0
    cfg = FindConfig(
        explore_steps=args.explore_steps,
        max_steps=args.max_steps,
        min_oracle_steps=args.min_oracle_steps,
        pose_weight=args.pose_weight,
        rows=args.rows,
        cols=args.cols,
    )
    env = ApartmentEnv(cfg.world())
    rows, attempt = [], 0
    skips = {"no object": 0, "too close": 0, "no path": 0}
    while len(rows) < args.episodes:
        ep = draw_episode(env, args.seed, attempt, cfg)
        attempt += 1
        if not isinstance(ep, Episode):
            skips[ep] += 1
            continue
        name, goal_frame, start = ep.object, ep.goal_frame, ep.start
        row: dict = {
            "world_seed": ep.world_seed,
            "object": name,
            "goal_pose": [round(float(v), 3) for v in ep.poses[goal_frame]],
            "goal_view_margin": round(view_margin(env, name, ep.poses[goal_frame]), 3),
        }
        with tempfile.TemporaryDirectory() as tmp, EpisodicMemory.open(Path(tmp) / "m.db") as mem:
            ids = remember_walk(mem, emb, ep)
            goal = goal_from_keyframe(mem, ids[goal_frame], emb.model_id, emb.dim)
            views = enrollment_views(env, name)
            row["object_goal"] = "no views"
            og = None
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
            token_map = TokenKeyframes.from_memory(mem, emb.model_id, emb.dim) if twm is not None else None
            tg = None
            if views and token_map is not None:  # the same enrollment views, matched on token grids
                _, view_tokens = emb.many_tokens(np.stack(views))
                kid, _ = goal_from_views(token_map, view_tokens, twm)
                tg = goal_from_keyframe(mem, kid, emb.model_id, emb.dim)
                row["grid_goal"] = "right place" if env.near_and_facing(name, tg.pose) else "wrong place"
        if args.goal == "memory":
            # the honest goal: the token-grid match when the token world model is loaded, else goal_from_object;
            # None (memory found no sighting): every planner fails this episode
            goal = tg if tg is not None else og
        for kind in policies:
            if goal is None and kind not in ("oracle", "random"):
                row[kind] = {
                    "success": False,
                    "passed": False,
                    "steps": 0,
                    "stopped": False,
                    "plan_ms": [],
                    "end_pose": list(start),
                    "no_goal": True,
                }
                continue
            step_fn = make_step_fn(kind, wm, graph, goal, args.pose_weight, twm, token_map)
            row[kind] = run_policy(kind, env, emb, name, start, step_fn, args.max_steps, ep.world_seed)
        rows.append(row)
        print(
            f"episode {len(rows)}/{args.episodes} seed {ep.world_seed} {name}: "
            + " ".join(f"{k}={'ok' if row[k]['success'] else '--'}/{row[k]['steps']}" for k in policies),
            file=sys.stderr,
        )
    env.close()
    summary = {k: summarise(rows, k) for k in policies}
    result = {
        "benchmark": "find the object",
        "config": {k: v for k, v in vars(args).items() if k != "out"},
        "world": f"{args.rows}x{args.cols} MiniWorld apartment, 128 px, discrete actions (30 deg turns, 0.25 m steps), "
        f"objects {'/'.join(cfg.world().objects)}",
        "goal": "from memory (enrollment views matched on token grids: goal_from_views; goal_from_object "
        "without a token world model)"
        if args.goal == "memory"
        else "privileged keyframe (the simulator's best view: an upper bound)",
        "episodes": len(rows),
        "walks_without_object_skipped": skips["no object"],
        "walks_ending_near_the_object_skipped": skips["too close"],
        "walks_where_the_oracle_found_no_path_skipped": skips["no path"],
        "goal_from_object": {
            k: sum(r["object_goal"] == k for r in rows)
            for k in ("right place", "wrong place", "not found", "no views")
        },
        "goal_from_views_token_grid": {
            k: sum(r.get("grid_goal") == k for r in rows) for k in ("right place", "wrong place")
        },
        "token_world_model": args.token_world_model if twm is not None else None,
        "world_model": {
            "path": args.world_model,
            "persistence_ablation": args.persistence,
            "train": json.loads(meta.get("train", "{}")),
        },
        "encoder": {"path": args.encoder, "engine": "pte" if args.encoder.endswith(".pte") else "eager"},
        "planner_defaults": {
            "flat": repr(planner_configs(args.pose_weight)["flat_mpc"]),
            "hierarchical": repr(planner_configs(args.pose_weight)["hierarchical"]),
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
