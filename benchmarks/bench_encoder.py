"""Eager fp32 encoder latency per preset on this machine (batch 1), as ratios within one run.

    .venv/bin/python benchmarks/bench_encoder.py --out benchmarks/results

Writes ``encoder.json`` and prints a markdown table. The ExecuTorch/ONNX comparisons live in
``glasses-export bench``; this one tracks what the model family costs before export.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from edge_models.models import build_encoder, get_config

CASES = [("vit_pico", 96), ("vit_tiny", 224), ("vit_small", 224), ("vit_base", 224)]


def measure(preset: str, size: int, runs: int, warmup: int) -> dict:
    enc = build_encoder(preset).inference_copy()
    x = torch.rand(1, 3, size, size)
    with torch.inference_mode():
        for _ in range(warmup):
            enc.embed(x)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            enc.embed(x)
            times.append((time.perf_counter() - t0) * 1e3)
    cfg = get_config(preset)
    return {
        "preset": preset,
        "input": size,
        "params_m": round(sum(p.numel() for p in enc.parameters()) / 1e6, 2),
        "tokens": (size // cfg.patch_size) ** 2,
        "p50_ms": round(float(np.percentile(times, 50)), 2),
        "p90_ms": round(float(np.percentile(times, 90)), 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--presets", default=",".join(p for p, _ in CASES))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    wanted = set(args.presets.split(","))
    rows = [measure(p, s, args.runs, args.warmup) for p, s in CASES if p in wanted]
    base = rows[0]["p50_ms"]
    for r in rows:
        r["x_first"] = round(r["p50_ms"] / base, 2)
    result = {
        "benchmark": "encoder_eager_fp32",
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": args.threads},
        "torch": torch.__version__,
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "encoder.json").write_text(json.dumps(result, indent=2))
    print(f"| preset | input | params (M) | tokens | p50 ms | p90 ms | x {rows[0]['preset']} |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['preset']} | {r['input']} | {r['params_m']} | {r['tokens']} | {r['p50_ms']} | {r['p90_ms']} "
            f"| {r['x_first']} |"
        )


if __name__ == "__main__":
    main()
