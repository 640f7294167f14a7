"""Train a JEPA encoder on a folder of images or videos.

    python -m edge_models.train --preset vit_pico --data tests/assets/bikes_frames --steps 50
    torchrun --nproc_per_node 2 -m edge_models.train --preset vit_pico --data DIR --steps 50

Writes OUT/encoder.safetensors (the EMA target encoder, config inside), OUT/checkpoints/ (resume
with --resume), OUT/metrics.jsonl (loss, lr, embedding std and effective rank) and OUT/summary.json.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Annotated

import typer

from edge_models.errors import EdgeModelsError
from edge_models.train.config import TrainConfig

app = typer.Typer(add_completion=False, help=__doc__, rich_markup_mode=None)


@app.command()
def main(
    data: Annotated[str, typer.Option(help="Folder of images or videos (searched recursively).")],
    preset: Annotated[
        str, typer.Option(help="Encoder preset: vit_pico, vit_tiny, vit_small, vit_base.")
    ] = "vit_pico",
    out: Annotated[str, typer.Option(help="Output folder for checkpoints and logs.")] = "runs/jepa",
    steps: Annotated[int, typer.Option(help="Optimisation steps.")] = 50,
    batch_size: Annotated[int, typer.Option(help="Batch size per process.")] = 16,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW).")] = 1e-3,
    img_size: Annotated[int | None, typer.Option(help="Input size; default: the preset's.")] = None,
    modality: Annotated[str, typer.Option(help="auto, image or video.")] = "auto",
    frames: Annotated[int | None, typer.Option(help="Frames per video clip; default: the preset's.")] = None,
    frame_step: Annotated[int, typer.Option(help="Take every n-th video frame.")] = 2,
    loss: Annotated[
        str, typer.Option(help="Regression loss on target tokens: l1, smooth_l1 or none.")
    ] = "l1",
    vicreg: Annotated[bool, typer.Option(help="Add VICReg (25/25/1) on predicted vs target tokens.")] = False,
    ema: Annotated[
        bool, typer.Option(help="EMA target encoder (0.996 -> 1.0); --no-ema needs --vicreg.")
    ] = True,
    seed: Annotated[int, typer.Option(help="Seed for init, masks and augmentation.")] = 0,
    workers: Annotated[int, typer.Option(help="Data loader worker processes.")] = 0,
    log_every: Annotated[int, typer.Option(help="Compute embedding stats every n steps.")] = 5,
    ckpt_every: Annotated[int, typer.Option(help="Save a resumable checkpoint every n steps.")] = 25,
    resume: Annotated[bool, typer.Option(help="Continue from the latest checkpoint in --out.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Train a JEPA encoder (I-JEPA on images, V-JEPA on videos)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from edge_models.train.loop import train  # heavy imports after argument parsing

    try:
        cfg = TrainConfig(
            data=data,
            out=out,
            preset=preset,
            modality=modality,
            img_size=img_size,
            num_frames=frames,
            frame_step=frame_step,
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            regression=loss,
            vicreg=vicreg,
            ema=ema,
            seed=seed,
            num_workers=workers,
            log_every=log_every,
            ckpt_every=ckpt_every,
            resume=resume,
            progress=progress,
        )
        result = train(cfg)
    except EdgeModelsError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    if result.summary:
        typer.echo(json.dumps(result.summary))


if __name__ == "__main__":
    sys.exit(app())
