"""How many keyframes the runtime keeps, why, and what that costs per hour of video.

    .venv/bin/python benchmarks/bench_keyframes.py --model edge_models/weights/encoder_vit_tiny_int8_xnnpack.pte

Three kinds of input through ``Runtime`` (VIDEO mode, default ``SalienceConfig``) into a fresh memory
with thumbnails (face blur + JPEG, as the recorder stores them):

* the real street clip tests/assets/bikes.mp4 (10 s, a moving camera, 6 shots);
* MiniWorld walks: ``--walks`` waypoint walks of 200 steps (0.1 s each) in 2x2 and 3x3 apartments;
  rooms visited vs rooms with a keyframe;
* a still view: one bikes frame held for 30 s.

Per input: keyframes, keyframes per minute, the rules that fired (``Salient.reason``), and the memory
file's bytes per keyframe (database + WAL + vector index after close); storage per hour = keyframes per
hour x bytes per keyframe. Writes keyframes.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_models.embed import read_frames  # noqa: E402
from glasses_runtime.runtime import RunningMode, Runtime, RuntimeOptions  # noqa: E402


def run(model: Path, frames, t_ns, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "memory.db"
        opts = RuntimeOptions(model, running_mode=RunningMode.VIDEO, memory_path=db, threads=threads)
        reasons: Counter = Counter()
        kept = []
        with Runtime(opts) as rt:
            for i, (img, t) in enumerate(zip(frames, t_ns, strict=True)):
                r = rt.process_for_video(np.ascontiguousarray(img), int(t))
                if r.keyframe:
                    kept.append(i)
                    reasons[r.keyframe_reason] += 1
        size = sum(p.stat().st_size for p in Path(tmp).iterdir() if p.is_file())
    minutes = (t_ns[-1] - t_ns[0]) / 60e9
    per_min = len(kept) / minutes
    per_kf = size / max(len(kept), 1)
    return {
        "frames": len(frames),
        "seconds": round(minutes * 60, 2),
        "keyframes": len(kept),
        "keyframes_per_minute": round(per_min, 2),
        "reasons": dict(reasons),
        "memory_bytes": size,
        "bytes_per_keyframe": round(per_kf),
        "storage_per_hour_mb": round(per_min * 60 * per_kf / 1e6, 2),
        "kept": kept,
    }


def world_walks(model: Path, walks: int, rows: int, cols: int, threads: int) -> dict:
    from simulator.world import ApartmentEnv
    from simulator.world.collect import episode_seeds, run_episode
    from simulator.world.config import WorldConfig

    env = ApartmentEnv(WorldConfig(size=128, rows=rows, cols=cols))
    out = []
    try:
        for w in range(walks):
            ro = run_episode(env, "waypoint", episode_seeds(4242 + rows, w), 200)
            rooms = [env.layout.room_at(float(p[0]), float(p[2])) for p in ro.poses]
            r = run(model, ro.frames, ro.t_ns, threads)
            visited = {x for x in rooms if x is not None}
            r["rooms_visited"] = len(visited)
            r["rooms_with_keyframe"] = len(visited & {rooms[i] for i in r["kept"]})
            out.append(r)
    finally:
        env.close()
    return {
        "walks": out,
        "all_rooms_covered": sum(r["rooms_visited"] == r["rooms_with_keyframe"] for r in out),
        "keyframes_per_minute": round(float(np.mean([r["keyframes_per_minute"] for r in out])), 2),
        "storage_per_hour_mb": round(float(np.mean([r["storage_per_hour_mb"] for r in out])), 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--model", type=Path, default=ROOT / "edge_models/weights/encoder_vit_tiny_int8_xnnpack.pte"
    )
    ap.add_argument("--walks", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    args = ap.parse_args()
    bikes = read_frames(ROOT / "tests/assets/bikes.mp4")
    result = {
        "model": str(args.model),
        "bikes": run(args.model, bikes, [int(i * 40e6) for i in range(len(bikes))], args.threads),
        "world_2x2": world_walks(args.model, args.walks, 2, 2, args.threads),
        "world_3x3": world_walks(args.model, args.walks, 3, 3, args.threads),
        "still": run(args.model, [bikes[100]] * 300, [int(i * 100e6) for i in range(300)], args.threads),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "keyframes.json").write_text(json.dumps(result, indent=2))
    print(
        "| input | keyframes | per minute | rules | bytes / keyframe | MB / hour |\n|---|---|---|---|---|---|"
    )
    for name in ("bikes", "still"):
        r = result[name]
        print(
            f"| {name} | {r['keyframes']} | {r['keyframes_per_minute']} | {r['reasons']} | "
            f"{r['bytes_per_keyframe']} | {r['storage_per_hour_mb']} |"
        )
    for name in ("world_2x2", "world_3x3"):
        w = result[name]
        print(
            f"| {name} ({len(w['walks'])} walks, every room covered in {w['all_rooms_covered']}) | "
            f"{sum(r['keyframes'] for r in w['walks'])} | {w['keyframes_per_minute']} | - | - | "
            f"{w['storage_per_hour_mb']} |"
        )


if __name__ == "__main__":
    main()
