"""Run a ``.pte`` through ``executorch.runtime`` on real inputs and compare with eager PyTorch.

The reference is the fp32 eager model rebuilt from the manifest and its source checkpoint (whose
sha256 must match). Inputs: encoders take real images (required); a predictor takes context tokens
encoded from real images when given (``spec.load_inputs``), else seeded generated tokens; a world
model its seeded example inputs. Default thresholds: cosine >= 0.999 for fp32 models, >= 0.99 for int8.
A ``.bpte`` (ExecuTorch Bundled Program) is checked against its own bundled cases: export/bundled.py.
"""

from __future__ import annotations

from pathlib import Path

import torch

from edge_models.checkpoint import file_sha256
from export.errors import ExportError, VerificationFailed
from export.spec import ExportSpec, spec_from_manifest
from glasses_runtime.engines.pte import ModelFileError, PteEngine
from glasses_runtime.manifest import ManifestError, load_manifest


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


# Backends whose .pte the executorch runtime here cannot run, and where they do run.
RUNS_ELSEWHERE = {
    "ethos-u": "on an Arm Ethos-U NPU: a Cortex-M board with an Ethos-U, or Arm's Corstone FVP simulator "
    "(the executorch runtime here has no EthosUBackend); `glasses-export inspect` still reads it, and its "
    "manifest holds vela's performance estimate (delegation.npu_estimate)",
}


def open_engine(pte: Path, threads: int) -> PteEngine:
    """The .pte checked against its manifest, with runtime errors turned into ExportError."""
    try:
        backend = load_manifest(pte).backend
    except ManifestError:
        backend = None  # PteEngine reports the missing or bad manifest
    if backend in RUNS_ELSEWHERE:
        raise ExportError(f"{pte.name} was lowered for {backend}: it runs only {RUNS_ELSEWHERE[backend]}")
    try:
        return PteEngine(pte, threads=threads)
    except ModelFileError as e:
        raise ExportError(str(e)) from None


def verification_inputs(
    spec: ExportSpec, images: str | Path | None, limit: int
) -> tuple[list[tuple[torch.Tensor, ...]], str]:
    """-> (input tuples, what they are). Real frames when given; generated ones only for non-encoders."""
    if images is not None and spec.load_inputs is not None:
        return [(x,) for x in spec.load_inputs(images, limit=limit)], "real frames"
    if spec.kind == "encoder":
        raise ExportError("verifying an encoder needs real frames: pass --images DIR")
    if len(spec.example_inputs) > 1:
        return [spec.example_inputs], "generated inputs"
    gen = torch.Generator().manual_seed(1)
    shape = spec.example_inputs[0].shape
    return [(torch.randn(shape, generator=gen),) for _ in range(limit)], "generated inputs"


def verify_pte(
    pte: str | Path,
    images: str | Path | None,
    checkpoint: str | Path | None = None,
    threshold: float | None = None,
    limit: int | None = None,
    threads: int = 2,
) -> dict:
    """``limit``: inputs to compare (default 32); a ``.bpte`` runs all of its bundled cases."""
    pte = Path(pte)
    if pte.suffix == ".bpte":  # an ExecuTorch Bundled Program carries its own inputs and references
        from export.bundled import verify_bundled

        if images is not None or checkpoint is not None or limit is not None:
            raise ExportError(
                f"{pte.name} is a bundled program: it carries its inputs and references and runs all of its cases; "
                "drop --images/--checkpoint/--limit"
            )
        return verify_bundled(pte, threshold, threads)
    limit = 32 if limit is None else limit
    engine = open_engine(pte, threads)
    m = engine.manifest
    ckpt = reference_checkpoint(pte, m, checkpoint)
    spec = spec_from_manifest(m, ckpt)
    quantized = m.quantization.get("mode", "none") != "none"
    thr = threshold if threshold is not None else (0.99 if quantized else 0.999)
    cases, source = verification_inputs(spec, images, limit)
    per_output: dict[str, list[float]] = {}
    for xs in cases:
        want = spec.outputs(*xs)
        for name, got in zip(want, engine.run_all(*xs), strict=True):
            c = torch.nn.functional.cosine_similarity(want[name].flatten(), got.flatten(), dim=0)
            per_output.setdefault(name, []).append(float(c))
    cos = [min(vals) for vals in zip(*per_output.values(), strict=True)]  # per case, its worst output
    report = {
        "pte": str(pte),
        "kind": m.kind,
        "inputs": source,
        "cases": len(cases),
        "images": len(cases) if source == "real frames" else 0,
        "cosine_mean": sum(cos) / len(cos),
        "cosine_min": min(cos),
        "threshold": thr,
        "quantization": m.quantization.get("mode", "none"),
        "passed": min(cos) >= thr,
        "outputs": {n: {"cosine_mean": sum(v) / len(v), "cosine_min": min(v)} for n, v in per_output.items()},
    }
    if not report["passed"]:
        raise VerificationFailed(
            f"{pte.name} disagrees with eager: min cosine {min(cos):.4f} < {thr} over {len(cases)} {source}; "
            "recalibrate with more representative frames or export without quantization"
        )
    return report
