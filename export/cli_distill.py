"""``glasses-export distill`` and ``glasses-export all``: distil a frozen teacher into a JEPA student, and the
whole pipeline from distillation to a verified ``.pte``. Registered on ``export.cli.app`` (shared error
handling, ``--json`` output)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from export.cli import BundleOpt, JsonOpt, _emit, _run, app

TeacherOpt = Annotated[str, typer.Option(help="efficientnet-lite0, jepa:CHECKPOINT or vjepa2:DIR.")]
StudentOpt = Annotated[str, typer.Option(help="Student preset: vit_pico, vit_tiny, vit_small, vit_base.")]
DataOpt = Annotated[
    str,
    typer.Option(
        help="Folder of images, 'fashion-mnist' (Debian dataset-fashion-mnist), or a mixture such as "
        "'photos:train*2+video:FILE+rollouts:DIR+fashion-mnist'."
    ),
]


def _distill_config(
    teacher, student, data, out, img_size, steps, batch_size, lr, seed, resume, progress, **weights
):
    from edge_models.distill import DistillConfig

    return DistillConfig(
        **weights,
        teacher=teacher,
        data=data,
        student=student,
        out=str(out),
        img_size=img_size,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        resume=resume,
        progress=progress,
    )


@app.command("distill")
def distill_cmd(
    teacher: TeacherOpt,
    data: DataOpt,
    student: StudentOpt = "vit_tiny",
    out: Annotated[
        Path, typer.Option(help="Output folder (checkpoints, metrics, encoder.safetensors).")
    ] = Path("runs/distill"),
    img_size: Annotated[int, typer.Option(help="Training resolution (multiple of 16).")] = 96,
    steps: Annotated[int, typer.Option(help="Optimisation steps.")] = 500,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 64,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 1e-3,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue from the latest checkpoint in --out.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    teacher_size: Annotated[
        int | None, typer.Option(help="The teacher's input resolution (default: --img-size).")
    ] = None,
    dense_weight: Annotated[
        float, typer.Option(help="Weight of the dense loss (every token regresses the teacher's map).")
    ] = 0.0,
    relation_weight: Annotated[
        float, typer.Option(help="Weight of the batch similarity-matrix loss on pooled embeddings.")
    ] = 0.0,
    vicreg_weight: Annotated[
        float, typer.Option(help="Weight of VICReg's variance + covariance terms on pooled embeddings.")
    ] = 0.0,
    as_json: JsonOpt = False,
) -> None:
    """Distil a frozen teacher into a JEPA student (masked token prediction + pooled cosine, optional
    dense, relation and variance-covariance terms; --data may be a mixture, see docs/encoder.md)."""
    from edge_models.distill import distill

    weights = dict(
        teacher_size=teacher_size,
        dense_weight=dense_weight,
        relation_weight=relation_weight,
        vicreg_weight=vicreg_weight,
    )
    res = _run(
        lambda: distill(
            _distill_config(
                teacher,
                student,
                data,
                out,
                img_size,
                steps,
                batch_size,
                lr,
                seed,
                resume,
                progress,
                **weights,
            )
        )
    )
    _emit(
        res.summary,
        as_json,
        lambda d: (
            f"wrote {d['encoder']}: {d['student']} <- {d['teacher']}, {d['steps']} steps, "
            f"loss {d['loss_first']:.3f} -> {d['loss_last']:.3f}"
        ),
    )


@app.command("all")
def all_cmd(
    teacher: TeacherOpt,
    data: DataOpt,
    calib: Annotated[
        Path, typer.Option(help="Folder of real images: calibration, held-out fidelity, verification.")
    ],
    student: StudentOpt = "vit_tiny",
    quantize: Annotated[str, typer.Option(help="none, int8 or int8-dynamic.")] = "int8",
    backend: Annotated[
        str, typer.Option(help="xnnpack, portable, coreml, vulkan, ethos-u or qnn.")
    ] = "xnnpack",
    out: Annotated[Path, typer.Option(help="Output folder for the .pte, manifest, ONNX and the run.")] = Path(
        "models"
    ),
    img_size: Annotated[int, typer.Option(help="Training and export resolution.")] = 96,
    steps: Annotated[int, typer.Option(help="Distillation steps.")] = 500,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 64,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 1e-3,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    onnx: Annotated[bool, typer.Option(help="Also export fp32 ONNX and check it with ONNX Runtime.")] = True,
    threshold: Annotated[
        float | None, typer.Option(help="Verify: min cosine (default 0.999 fp32, 0.99 int8).")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    bundle: BundleOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """The whole pipeline: distil -> quantize -> lower -> manifest -> verify (-> ONNX)."""
    from edge_models.distill import distill
    from export.onnx_export import export_onnx
    from export.pipeline import export_model
    from export.verify import verify_pte

    def pipeline() -> dict:
        run_dir = out / "run"
        res = distill(
            _distill_config(
                teacher, student, data, run_dir, img_size, steps, batch_size, lr, seed, True, progress
            )
        )
        exp = export_model(res.encoder_path, backend, quantize, calib, out, bundle=bundle)
        report = {
            "distill": res.summary,
            "pte": str(exp.pte),
            "manifest": str(exp.manifest),
            "size_bytes": exp.size_bytes,
            "delegation": exp.manifest_data.delegation,
            "quantization": exp.manifest_data.quantization,
        }
        if backend in ("xnnpack", "portable"):
            report["verify"] = verify_pte(exp.pte, calib, res.encoder_path, threshold)
            if exp.bpte is not None:
                report["verify_bundled"] = verify_pte(exp.bpte, None, threshold=threshold)
        if onnx:
            report["onnx"] = export_onnx(res.encoder_path, out, img_size=img_size)[1]
        return report

    report = _run(pipeline)

    def text(d: dict) -> str:
        lines = [
            f"distilled {d['distill']['student']} <- {d['distill']['teacher']}: {d['distill']['encoder']}",
            f"wrote {d['pte']} ({d['size_bytes'] / 1e6:.2f} MB) + {d['manifest']}",
            f"delegation: {d['delegation']['delegated_subgraphs']} subgraph(s), outside: "
            f"{d['delegation']['ops_outside_delegates'] or 'none'}",
        ]
        if "verify" in d:
            lines.append(
                f"verified on {d['verify']['images']} images: cosine min {d['verify']['cosine_min']:.4f}"
            )
        if "verify_bundled" in d:
            b = d["verify_bundled"]
            lines.append(
                f"verified {b['bpte']}: {b['cases']} bundled case(s), cosine min {b['cosine_min']:.4f}"
            )
        if "onnx" in d:
            lines.append(f"onnx: {d['onnx']['onnx']} (ORT cosine {d['onnx']['ort_cosine_vs_eager']:.6f})")
        return "\n".join(lines)

    _emit(report, as_json, text)
