"""Latency of a ``.pte`` beside eager fp32 and ONNX Runtime fp32 of the same model, in one run.

Same input, same thread count, warm-up first; p50/p90 over ``runs`` calls. The ratios are what
to read: on a shared machine the milliseconds move, the ratios much less.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from export.onnx_export import export_onnx, ort_session
from export.spec import spec_from_manifest
from export.verify import open_engine, reference_checkpoint


def _time(fn, runs: int, warmup: int) -> dict:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    return {"p50_ms": float(np.percentile(ts, 50)), "p90_ms": float(np.percentile(ts, 90)), "runs": runs}


def bench_pte(
    pte: str | Path,
    runs: int = 50,
    warmup: int = 10,
    threads: int = 2,
    checkpoint: str | Path | None = None,
    baselines: bool = True,
) -> dict:
    pte = Path(pte)
    engine = open_engine(pte, threads)
    m = engine.manifest
    # one random tensor per input, in manifest order (world models take several: context, actions, goal);
    # the values do not matter for timing
    xs = tuple(torch.rand(*t.shape) for t in m.inputs)
    result: dict = {
        "pte": str(pte),
        "backend": m.backend,
        "quantization": m.quantization.get("mode", "none"),
        "preset": m.preset,
        "input": m.inputs[0].shape if len(m.inputs) == 1 else {t.name: t.shape for t in m.inputs},
        "threads": threads,
        "size_bytes": pte.stat().st_size,
    }
    # Baselines first: ExecuTorch's thread pool keeps its workers spinning for a while after a run,
    # which on 2 cores starves whatever is timed next (eager fp32 measured 20x slower after it).
    if baselines:
        ckpt = reference_checkpoint(pte, m, checkpoint)
        spec = spec_from_manifest(m, ckpt)
        torch.set_num_threads(threads)
        with torch.inference_mode():
            result["eager_fp32"] = _time(lambda: spec.module(*xs), runs, warmup)
        with tempfile.TemporaryDirectory() as tmp:
            onnx_path, _ = export_onnx(spec, tmp)
            sess = ort_session(onnx_path, threads)
            feed = {i.name: x.numpy() for i, x in zip(sess.get_inputs(), xs, strict=True)}
            result["onnxruntime_fp32"] = _time(lambda: sess.run(None, feed), runs, warmup)
            del sess
    result["executorch"] = _time(lambda: engine.run(*xs), runs, warmup)
    if baselines:
        et = result["executorch"]["p50_ms"]
        result["ratio_vs_eager_fp32"] = et / result["eager_fp32"]["p50_ms"]
        result["ratio_vs_onnxruntime_fp32"] = et / result["onnxruntime_fp32"]["p50_ms"]
    return result
