"""ONNX export (``torch.onnx.export(..., dynamo=True)``) checked against ONNX Runtime.

path, report = export_onnx("runs/tiny/encoder.safetensors", "models/")
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from export.errors import ExportError
from export.spec import spec_from_checkpoint


def export_onnx(
    checkpoint: str | Path,
    out_dir: str | Path,
    img_size: int | None = None,
    model: str | None = None,
    mask: str | None = None,
) -> tuple[Path, dict]:
    """checkpoint: a checkpoint path or a built ``ExportSpec``; model/mask as for ``spec_from_checkpoint``."""
    spec = spec_from_checkpoint(checkpoint, img_size=img_size, model=model, mask=mask)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    variant = f"_{spec.variant}" if spec.variant else ""
    path = out / f"{spec.kind}_{spec.preset}{variant}_fp32.onnx"
    try:
        program = torch.onnx.export(
            spec.module,
            spec.example_inputs,
            dynamo=True,
            input_names=spec.input_names,
            output_names=spec.output_names,
            verbose=False,
        )
        program.save(str(path))
    except Exception as e:
        raise ExportError(f"ONNX export failed: {type(e).__name__}: {e}") from e
    session = ort_session(path, threads=2)
    feed = {n: x.numpy() for n, x in zip(spec.input_names, spec.example_inputs, strict=True)}
    gots = session.run(None, feed)
    wants = [y.numpy() for y in spec.outputs(*spec.example_inputs).values()]
    coss = [
        float(np.dot(g.ravel(), w.ravel()) / (np.linalg.norm(g) * np.linalg.norm(w) + 1e-12))
        for g, w in zip(gots, wants, strict=True)
    ]
    cos = min(coss)
    diff = max(float(np.abs(g - w).max()) for g, w in zip(gots, wants, strict=True))
    report = {"onnx": str(path), "ort_cosine_vs_eager": cos, "max_abs_diff": diff}
    if cos < 0.999:
        raise ExportError(
            f"ONNX Runtime output differs from eager (cosine {cos:.5f} < 0.999); do not ship {path}"
        )
    return path, report


def ort_session(path: str | Path, threads: int = 2):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
