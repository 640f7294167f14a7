"""The export pipeline as pure steps: spec -> (quantize) -> torch.export -> lower -> save + manifest.

result = export_model("runs/tiny/encoder.safetensors", backend="xnnpack", quantize="int8",
                      calib_dir="frames/", out_dir="models/")
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from edge_models.checkpoint import file_sha256
from export.backends import BACKENDS, lower, with_partitioners
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
    bpte: Path | None = None  # the ExecuTorch Bundled Program, when bundle > 0


def _versions() -> dict:
    import importlib.metadata as md

    def v(name: str) -> str | None:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return None

    return {"glasses-runtime": __version__, "executorch": v("executorch"), "torch": torch.__version__}


def model_name(spec: ExportSpec, quant: str, backend: str) -> str:
    """kind_preset[_variant]_quant_backend: the variant (a predictor's mask layout) keeps two layouts of one
    checkpoint from overwriting each other."""
    q = {"none": "fp32", "int8": "int8", "int8-dynamic": "int8dyn"}[quant]
    return "_".join(x for x in (spec.kind, spec.preset, spec.variant, q, backend) if x)


def export_model(
    checkpoint: str | Path | ExportSpec,
    backend: str = "xnnpack",
    quantize_mode: str = "none",
    calib_dir: str | Path | None = None,
    out_dir: str | Path = "models",
    num_calib: int = 32,
    num_holdout: int = 16,
    img_size: int | None = None,
    name: str | None = None,
    scope: str = "matmul",
    npu_target: str | None = None,
    model: str | None = None,
    mask: str | None = None,
    bundle: int = 0,
    tokens: bool = True,
    candidates: tuple[int, int] | None = None,
) -> ExportResult:
    """``npu_target``: the Ethos-U configuration for ``backend="ethos-u"`` (default ethos-u55-128).

    ``tokens``: an encoder also outputs its token grid (``tokens`` [1, h, w, D]) beside ``embedding``.
    ``candidates``: (S, H) of a token world model's program (default: the checkpoint's).

    ``bundle``: also write MODEL.bpte, an ExecuTorch Bundled Program with up to ``bundle`` reference
    cases (real inputs from ``calib_dir`` past the calibration frames, else the example inputs) and
    their fp32 eager outputs (export/bundled.py); the manifest records it under ``bundled``.
    """
    if quantize_mode not in MODES:
        raise ExportError(f"unknown quantization '{quantize_mode}'; choose one of {', '.join(MODES)}")
    if backend not in BACKENDS:
        raise ExportError(f"unknown backend '{backend}'; choose one of: {', '.join(BACKENDS)}")
    if backend == "ethos-u" and quantize_mode == "none":
        raise ExportError("ethos-u runs int8 only: add --quantize int8")
    if bundle < 0:
        raise ExportError(f"--bundle {bundle}: the number of bundled cases cannot be negative")
    spec = spec_from_checkpoint(
        checkpoint, img_size=img_size, model=model, mask=mask, tokens=tokens, candidates=candidates
    )
    module = spec.module
    calib: list = []
    quant_info: dict = {"scheme": "none"}
    if quantize_mode != "none":
        if calib_dir is None and quantize_mode == "int8":
            raise ExportError("static int8 needs --calib DIR (real frames to calibrate activation ranges)")
        if calib_dir is not None and spec.load_inputs is None:
            raise ExportError(
                f"a {spec.kind} takes no inputs made from frames: drop --calib (use --quantize int8-dynamic)"
            )
        calib = spec.load_inputs(calib_dir, limit=num_calib) if calib_dir else []
        holdout = spec.load_inputs(calib_dir, limit=num_holdout, offset=len(calib)) if calib_dir else []
        module = quantize(spec.module, spec.example_inputs, calib, quantize_mode, scope, backend, npu_target)
        quant_info = {
            "scheme": "int8 static, per-channel symmetric weights (XNNPACKQuantizer, PT2E)"
            if quantize_mode == "int8"
            else "int8 dynamic activations, per-channel weights (XNNPACKQuantizer, PT2E)",
            "mode": quantize_mode,
            "scope": scope,
            "calibration_images": len(calib),
            "calibration_source": str(calib_dir) if calib_dir else None,
        }
        if backend == "ethos-u":  # Arm's quantizer over the whole graph: the NPU runs int8 only
            quant_info["scheme"] = "int8 static, per-channel symmetric weights (EthosUQuantizer, PT2E)"
            quant_info["scope"] = "all"
        if holdout:
            quant_info["fidelity_vs_fp32"] = fidelity(spec.module, module, holdout)
        else:
            quant_info["fidelity_vs_fp32"] = None
    bundle_cases = None
    if bundle:  # before lowering, so that a folder without frames left fails fast
        from export.bundled import bundle_inputs

        bundle_cases = bundle_inputs(spec, calib_dir, bundle, offset=len(calib))
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
        lowered = lower(ep, backend, quantized=quantize_mode != "none", npu_target=npu_target)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pte = out / f"{name or model_name(spec, quantize_mode, backend)}.pte"
    pte.write_bytes(lowered.buffer)
    with torch.no_grad():
        outputs = module(*spec.example_inputs)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    bundled = None
    if bundle:
        from export.bundled import write_bundled_program

        bundled = write_bundled_program(pte, spec, *bundle_cases, quantize_mode)
    elif pte.with_suffix(
        ".bpte"
    ).exists():  # it bundled the program this one replaces: verify would reject it
        pte.with_suffix(".bpte").unlink()
        print(
            f"removed the stale {pte.with_suffix('.bpte').name} (it bundled the previous program)",
            file=sys.stderr,
        )
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
        bundled=bundled,
    )
    mpath = write_manifest(manifest, pte)
    return ExportResult(
        pte=pte,
        manifest=mpath,
        manifest_data=manifest,
        size_bytes=pte.stat().st_size,
        bpte=pte.with_name(bundled["file"]) if bundled else None,
    )
