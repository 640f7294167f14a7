"""Run a ``.pte`` through ``executorch.runtime`` on real images and compare with eager PyTorch.

The reference is the fp32 eager model rebuilt from the manifest's source checkpoint (whose sha256
must match). Default thresholds: cosine >= 0.999 for fp32 models, >= 0.99 for int8.
"""

from __future__ import annotations

from pathlib import Path

import torch

from edge_models.checkpoint import file_sha256
from export.calibration import load_images
from export.errors import ExportError, VerificationFailed
from export.spec import spec_from_checkpoint
from glasses_runtime.engines.pte import ModelFileError, PteEngine


def reference_checkpoint(pte: Path, manifest, override: str | Path | None) -> Path:
    ckpt = Path(override) if override else None
    if ckpt is None and manifest.source_checkpoint:
        candidates = [Path(manifest.source_checkpoint), pte.parent / Path(manifest.source_checkpoint).name]
        ckpt = next((c for c in candidates if c.is_file()), None)
    if ckpt is None or not ckpt.is_file():
        raise ExportError(
            f"the source checkpoint of {pte.name} ({manifest.source_checkpoint}) is not here; pass --checkpoint PATH"
        )
    if manifest.source_checkpoint_sha256 and file_sha256(ckpt) != manifest.source_checkpoint_sha256:
        raise ExportError(f"{ckpt} is not the checkpoint {pte.name} was exported from (sha256 differs)")
    return ckpt


def open_engine(pte: Path, threads: int) -> PteEngine:
    """The .pte checked against its manifest, with runtime errors turned into ExportError."""
    try:
        return PteEngine(pte, threads=threads)
    except ModelFileError as e:
        raise ExportError(str(e)) from None


def verify_pte(
    pte: str | Path,
    images: str | Path,
    checkpoint: str | Path | None = None,
    threshold: float | None = None,
    limit: int = 32,
    threads: int = 2,
) -> dict:
    pte = Path(pte)
    engine = open_engine(pte, threads)
    m = engine.manifest
    ckpt = reference_checkpoint(pte, m, checkpoint)
    size = m.inputs[0].shape[-1]
    spec = spec_from_checkpoint(ckpt, img_size=size)
    quantized = m.quantization.get("mode", "none") != "none"
    thr = threshold if threshold is not None else (0.99 if quantized else 0.999)
    xs = load_images(images, size, limit=limit)
    cos = []
    with torch.no_grad():
        for x in xs:
            a = spec.module(x).flatten()
            b = engine.run(x).flatten()
            cos.append(float(torch.nn.functional.cosine_similarity(a, b, dim=0)))
    report = {
        "pte": str(pte),
        "images": len(xs),
        "cosine_mean": sum(cos) / len(cos),
        "cosine_min": min(cos),
        "threshold": thr,
        "quantization": m.quantization.get("mode", "none"),
        "passed": min(cos) >= thr,
    }
    if not report["passed"]:
        raise VerificationFailed(
            f"{pte.name} disagrees with eager: min cosine {min(cos):.4f} < {thr} over {len(xs)} images; "
            "recalibrate with more representative frames or export without quantization"
        )
    return report
