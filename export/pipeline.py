"""The export pipeline as pure steps: spec -> (quantize) -> torch.export -> lower -> save + manifest.

result = export_model("runs/tiny/encoder.safetensors", backend="xnnpack", quantize="int8",
                      calib_dir="frames/", out_dir="models/")
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import torch

from edge_models.checkpoint import file_sha256
from export.backends import BACKENDS, lower, with_partitioners
from export.calibration import load_images
from export.errors import ExportError
from export.quantize import MODES, fidelity, quantize, xnnpack_partitioner
from export.spec import ExportSpec, spec_from_checkpoint
from glasses_runtime import __version__
from glasses_runtime.manifest import Manifest, TensorSpec, write_manifest


@dataclass
class ExportResult:
    pte: Path
    manifest: Path
    manifest_data: Manifest
    size_bytes: int


def _versions() -> dict:
    import importlib.metadata as md

    def v(name: str) -> str | None:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return None

    return {"glasses-runtime": __version__, "executorch": v("executorch"), "torch": torch.__version__}


def model_name(spec: ExportSpec, quant: str, backend: str) -> str:
    q = {"none": "fp32", "int8": "int8", "int8-dynamic": "int8dyn"}[quant]
    return f"{spec.kind}_{spec.preset}_{q}_{backend}"


def export_model(
    checkpoint: str | Path,
    backend: str = "xnnpack",
    quantize_mode: str = "none",
    calib_dir: str | Path | None = None,
    out_dir: str | Path = "models",
    num_calib: int = 32,
    num_holdout: int = 16,
    img_size: int | None = None,
    name: str | None = None,
    scope: str = "matmul",
) -> ExportResult:
    if quantize_mode not in MODES:
        raise ExportError(f"unknown quantization '{quantize_mode}'; choose one of {', '.join(MODES)}")
    if backend not in BACKENDS:
        raise ExportError(f"unknown backend '{backend}'; choose one of: {', '.join(BACKENDS)}")
    if backend == "ethos-u" and quantize_mode == "none":
        raise ExportError("ethos-u runs int8 only: add --quantize int8")
    spec = spec_from_checkpoint(checkpoint, img_size=img_size)
    size = spec.example_inputs[0].shape[-1]
    module = spec.module
    quant_info: dict = {"scheme": "none"}
    if quantize_mode != "none":
        if calib_dir is None and quantize_mode == "int8":
            raise ExportError("static int8 needs --calib DIR (real frames to calibrate activation ranges)")
        calib = load_images(calib_dir, size, limit=num_calib) if calib_dir else []
        holdout = load_images(calib_dir, size, limit=num_holdout, offset=len(calib)) if calib_dir else []
        module = quantize(spec.module, spec.example_inputs, calib, quantize_mode, scope)
        quant_info = {
            "scheme": "int8 static, per-channel symmetric weights (XNNPACKQuantizer, PT2E)"
            if quantize_mode == "int8"
            else "int8 dynamic activations, per-channel weights (XNNPACKQuantizer, PT2E)",
            "mode": quantize_mode,
            "scope": scope,
            "calibration_images": len(calib),
            "calibration_source": str(calib_dir) if calib_dir else None,
        }
        if holdout:
            quant_info["fidelity_vs_fp32"] = fidelity(spec.module, module, holdout)
        else:
            quant_info["fidelity_vs_fp32"] = None
    try:
        ep = torch.export.export(module, spec.example_inputs)
    except Exception as e:
        raise ExportError(
            f"torch.export failed for {spec.kind} {spec.preset}: {type(e).__name__}: {e}"
        ) from e
    if backend == "xnnpack" and quantize_mode != "none" and scope == "attention":
        # int8 bmm: the stock XNNPACK partitioner delegates bmm as fp32 only (see export/quantize.py)
        lowered = with_partitioners(ep, [xnnpack_partitioner(scope)])
    else:
        lowered = lower(ep, backend, quantized=quantize_mode != "none")

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pte = out / f"{name or model_name(spec, quantize_mode, backend)}.pte"
    pte.write_bytes(lowered.buffer)
    with torch.no_grad():
        outputs = module(*spec.example_inputs)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    manifest = Manifest(
        kind=spec.kind,
        preset=spec.preset,
        backend=backend,
        inputs=[
            TensorSpec(n, list(x.shape)) for n, x in zip(spec.input_names, spec.example_inputs, strict=True)
        ],
        outputs=[TensorSpec(n, list(y.shape)) for n, y in zip(spec.output_names, outputs, strict=True)],
        pte_file=pte.name,
        pte_sha256=file_sha256(pte),
        normalization=spec.normalization,
        embedding_dim=spec.embedding_dim,
        action_dim=spec.action_dim,
        quantization=quant_info,
        delegation=lowered.delegation,
        source_checkpoint=spec.source_checkpoint,
        source_checkpoint_sha256=spec.source_checkpoint_sha256,
        versions=_versions(),
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    )
    mpath = write_manifest(manifest, pte)
    return ExportResult(pte=pte, manifest=mpath, manifest_data=manifest, size_bytes=pte.stat().st_size)
