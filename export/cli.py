"""`glasses-export`: turn JEPA checkpoints into verified on-device models.

    glasses-export lower runs/tiny/encoder.safetensors --quantize int8 --calib frames/ --backend xnnpack --out models/
    glasses-export verify models/encoder_vit_tiny_int8_xnnpack.pte --images frames/
    glasses-export lower runs/tiny/encoder.safetensors --quantize int8 --calib frames/ --bundle 8
    glasses-export verify models/encoder_vit_tiny_int8_xnnpack.bpte
    glasses-export inspect models/encoder_vit_tiny_int8_xnnpack.pte --json
    glasses-export bench models/encoder_vit_tiny_int8_xnnpack.pte --json
    glasses-export onnx runs/tiny/encoder.safetensors --out models/
    glasses-export lower runs/tiny/checkpoints/step_000500.safetensors --model predictor --mask center-block

Each command is a thin wrapper over a plain function in this package. Failures print one line
on stderr starting with ``error:`` and exit 2 (bad input) or 1 (verification below threshold).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from glasses_runtime import __version__

app = typer.Typer(
    name="glasses-export",
    help="Quantize and lower JEPA encoders to ExecuTorch .pte files with a manifest; export ONNX; verify, "
    "inspect and benchmark the results.",
    no_args_is_help=True,
    add_completion=False,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
ThreadsOpt = Annotated[int, typer.Option(help="CPU threads for every engine.")]
CheckpointOpt = Annotated[
    Path | None, typer.Option(help="Source checkpoint (default: the one named in the manifest).")
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        help="What to export from a training checkpoint: encoder (its EMA target encoder, the default) or "
        "predictor (the JEPA predictor; needs --mask)."
    ),
]
MaskOpt = Annotated[
    str | None,
    typer.Option(
        help="Predictor mask layout baked into the model: right-half, center-block or multiblock[:SEED] "
        "(the I-JEPA sampler's draw for that seed)."
    ),
]


def _run(fn: Callable[[], Any]) -> Any:
    """Call fn; turn our errors into one stderr line and an exit code."""
    from edge_models.errors import EdgeModelsError
    from export.errors import ExportError, VerificationFailed
    from glasses_runtime.manifest import ManifestError

    try:
        return fn()
    except VerificationFailed as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    except (ExportError, EdgeModelsError, ManifestError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


def _emit(data: dict, as_json: bool, text: Callable[[dict], str]) -> None:
    typer.echo(json.dumps(data) if as_json else text(data))


@app.callback()
def _root() -> None:
    """Keep a command group, so --help lists every command."""


@app.command()
def version() -> None:
    """Print the package version."""
    typer.echo(__version__)


BundleOpt = Annotated[
    int,
    typer.Option(
        help="Also write MODEL.bpte, an ExecuTorch Bundled Program with N reference cases: real frames "
        "from --calib (past the calibration ones), else the example inputs (one case), with their eager "
        "fp32 outputs. 0: none.",
        metavar="N",
    ),
]


@app.command("lower")
def lower_cmd(
    checkpoint: Annotated[
        Path, typer.Argument(help="Encoder, training or world-model checkpoint (.safetensors) to export.")
    ],
    backend: Annotated[
        str, typer.Option(help="xnnpack, portable, coreml, vulkan, ethos-u or qnn.")
    ] = "xnnpack",
    quantize: Annotated[str, typer.Option(help="none, int8 (static, calibrated) or int8-dynamic.")] = "none",
    calib: Annotated[
        Path | None, typer.Option(help="Folder of real images for calibration and fidelity.")
    ] = None,
    num_calib: Annotated[
        int, typer.Option(help="Calibration images to use (the next 16 are held out).")
    ] = 32,
    scope: Annotated[
        str,
        typer.Option(
            help="int8 scope: matmul (linear+conv), attention (also the attention bmm; residual adds and "
            "layer norm stay fp32) or all (also add/mul)."
        ),
    ] = "matmul",
    img_size: Annotated[int | None, typer.Option(help="Input size; default: the checkpoint's.")] = None,
    npu_target: Annotated[
        str | None,
        typer.Option(
            help="--backend ethos-u: the Ethos-U configuration vela compiles for (default ethos-u55-128; "
            "ethos-u55-32/64/256, ethos-u65-256/512, ethos-u85-128/256/512/1024/2048)."
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Output folder for the .pte and its manifest.")] = Path("models"),
    bundle: BundleOpt = 0,
    model: ModelOpt = None,
    mask: MaskOpt = None,
    tokens: Annotated[
        bool,
        typer.Option(
            help="Encoders: also output the spatial token grid 'tokens' [1, h, w, D] beside 'embedding' "
            "(--no-tokens writes the older single-output form)."
        ),
    ] = True,
    samples: Annotated[
        int | None,
        typer.Option(help="Token world model: candidate sequences per call (default: the checkpoint's, 64)."),
    ] = None,
    horizon: Annotated[
        int | None,
        typer.Option(help="Token world model: steps per sequence (default: the checkpoint's, 3)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Quantize (optional) and lower a checkpoint to an ExecuTorch .pte plus MODEL.manifest.json
    (and MODEL.bpte with --bundle N)."""
    from export.pipeline import export_model

    candidates = None
    if samples is not None or horizon is not None:
        from edge_models.world_model.token_model import TokenWorldModelConfig

        d = TokenWorldModelConfig()
        candidates = (samples or d.export_samples, horizon or d.export_horizon)

    def run():
        return export_model(
            checkpoint,
            backend,
            quantize,
            calib,
            out,
            num_calib,
            img_size=img_size,
            scope=scope,
            npu_target=npu_target,
            bundle=bundle,
            model=model,
            mask=mask,
            tokens=tokens,
            candidates=candidates,
        )

    res = _run(run)
    m = res.manifest_data
    data = {
        "pte": str(res.pte),
        "manifest": str(res.manifest),
        "size_bytes": res.size_bytes,
        "backend": m.backend,
        "quantization": m.quantization,
        "delegation": m.delegation,
    }
    if m.bundled:
        data["bpte"] = str(res.bpte)
        data["bundled"] = m.bundled

    def text(d: dict) -> str:
        dl = d["delegation"]
        lines = [
            f"wrote {d['pte']} ({d['size_bytes'] / 1e6:.2f} MB) and {d['manifest']}",
            f"delegation: {dl['delegated_subgraphs']} {backend} subgraph(s), {dl['delegated_nodes']} nodes inside, "
            f"ops outside: {dl['ops_outside_delegates'] or 'none'}",
        ]
        if dl.get("npu_estimate"):
            from export.backends import describe_npu_estimate

            lines.append(describe_npu_estimate(dl["npu_estimate"]))
        fid = d["quantization"].get("fidelity_vs_fp32")
        if fid:
            lines.append(
                f"int8 fidelity on {fid['images']} held-out images: cosine mean {fid['cosine_mean']:.4f}, "
                f"min {fid['cosine_min']:.4f}"
            )
        if "bpte" in d:
            b = d["bundled"]
            lines.append(
                f"wrote {d['bpte']} ({b['size_bytes'] / 1e6:.2f} MB): {b['cases']} case(s), {b['inputs']}, "
                f"references: eager fp32"
            )
        return "\n".join(lines)

    _emit(data, as_json, text)


@app.command("onnx")
def onnx_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="Encoder or training checkpoint (.safetensors).")],
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("models"),
    img_size: Annotated[int | None, typer.Option(help="Input size; default: the checkpoint's.")] = None,
    model: ModelOpt = None,
    mask: MaskOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Export fp32 ONNX (torch.onnx dynamo exporter) and check it with ONNX Runtime."""
    from export.onnx_export import export_onnx

    path, report = _run(lambda: export_onnx(checkpoint, out, img_size=img_size, model=model, mask=mask))
    _emit(
        report,
        as_json,
        lambda d: f"wrote {d['onnx']}; ONNX Runtime vs eager cosine {d['ort_cosine_vs_eager']:.6f}",
    )


@app.command("verify")
def verify_cmd(
    model: Annotated[
        Path,
        typer.Argument(
            help="The .pte to verify (its manifest must sit beside it), or a .bpte (bundled program: its own "
            "inputs and references, no --images)."
        ),
    ],
    images: Annotated[
        Path | None,
        typer.Option(
            help="Folder of real images (required for encoders; a predictor gets context tokens encoded from "
            "them, else generated inputs)."
        ),
    ] = None,
    checkpoint: CheckpointOpt = None,
    threshold: Annotated[
        float | None, typer.Option(help="Min cosine (default 0.999 fp32, 0.99 int8).")
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(help="Images to compare (default 32; not for a .bpte, which runs all its cases)."),
    ] = None,
    threads: ThreadsOpt = 2,
    as_json: JsonOpt = False,
) -> None:
    """Run the .pte with executorch.runtime on real inputs and compare with eager (a .bpte: its bundled
    cases with their bundled references); non-zero below threshold."""
    from export.verify import verify_pte

    report = _run(lambda: verify_pte(model, images, checkpoint, threshold, limit, threads))

    def text(d: dict) -> str:
        head = (
            f"ok: {d['cases']} {d['inputs']}, cosine mean {d['cosine_mean']:.5f}, min {d['cosine_min']:.5f} "
            f">= {d['threshold']}"
        )
        if "per_case" not in d:
            return head
        tol = d["allclose"]
        lines = [f"{head}; max abs err {d['max_abs_err']:.3g} (references: {d['references']})"]
        for c in d["per_case"]:
            close = (
                ""
                if c["allclose"] is None
                else f", executorch allclose(atol={tol['atol']:.3g}) {c['allclose']}"
            )
            lines.append(
                f"  case {c['case']}: cosine {c['cosine']:.6f}, max abs err {c['max_abs_err']:.3g}{close}"
            )
        return "\n".join(lines)

    _emit(report, as_json, text)


@app.command("inspect")
def inspect_cmd(
    model: Annotated[Path, typer.Argument(help="The .pte to inspect.")],
    as_json: JsonOpt = False,
) -> None:
    """Methods, input/output shapes and dtypes, delegates, ops outside delegates, size."""
    from export.inspection import inspect_pte

    report = _run(lambda: inspect_pte(model))

    def text(d: dict) -> str:
        lines = [f"{d['file']}: {d['size_bytes'] / 1e6:.2f} MB, sha256 {d['sha256'][:16]}"]
        for meth in d["methods"]:
            lines.append(f"method {meth['name']}:")
            for io in ("inputs", "outputs"):
                for t in meth.get(io, []):
                    lines.append(f"  {io[:-1]:6s} {t['shape']} {t['dtype']}")
            lines.append(f"  delegates: {meth['delegates'] or 'none'}")
            lines.append(f"  ops outside delegates: {meth['ops_outside_delegates'] or 'none'}")
        lines.append(f"manifest: {d['manifest']}")
        return "\n".join(lines)

    _emit(report, as_json, text)


@app.command("bench")
def bench_cmd(
    model: Annotated[Path, typer.Argument(help="The .pte to benchmark.")],
    runs: Annotated[int, typer.Option(help="Timed runs per engine.")] = 50,
    warmup: Annotated[int, typer.Option(help="Untimed warm-up runs.")] = 10,
    threads: ThreadsOpt = 2,
    checkpoint: CheckpointOpt = None,
    baselines: Annotated[bool, typer.Option(help="Also time eager fp32 and ONNX Runtime fp32.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Latency p50/p90 of the .pte beside eager fp32 and ONNX Runtime fp32 of the same model."""
    from export.bench import bench_pte

    def run() -> dict:
        return bench_pte(model, runs, warmup, threads, checkpoint, baselines)

    report = _run(run)

    def text(d: dict) -> str:
        lines = [f"{d['pte']} ({d['backend']}, {d['quantization']}, {d['threads']} threads):"]
        for k in ("executorch", "eager_fp32", "onnxruntime_fp32"):
            if k in d:
                lines.append(f"  {k:18s} p50 {d[k]['p50_ms']:8.2f} ms   p90 {d[k]['p90_ms']:8.2f} ms")
        if "ratio_vs_eager_fp32" in d:
            lines.append(
                f"  executorch / eager = {d['ratio_vs_eager_fp32']:.2f}x, / onnxruntime = "
                f"{d['ratio_vs_onnxruntime_fp32']:.2f}x"
            )
        return "\n".join(lines)

    _emit(report, as_json, text)


# The distillation commands (distill, all) live in export/cli_distill.py and register on this app.
from export import cli_distill  # noqa: E402, F401


def main() -> None:  # pragma: no cover
    sys.exit(app())
