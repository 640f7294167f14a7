"""Embed every frame of a video with an encoder; report speed and where the scene changes.

    python -m edge_models.embed tests/assets/bikes.mp4                       # bundled pico weights
    python -m edge_models.embed clip.mp4 --checkpoint runs/jepa/encoder.safetensors --json

Prints the embedding size, frames per second of the encoder (eager PyTorch, batch 1, as a
device would run it), and the frames where the cosine similarity between consecutive embeddings
drops the most: shot cuts in edited video, big view changes in egocentric video.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import cv2
import numpy as np
import torch
import typer

from edge_models.checkpoint import load_encoder
from edge_models.errors import EdgeModelsError
from edge_models.preprocess import to_model_input

# The shipped default encoder (make models-encoder; MODEL_CARD.md beside it) and the old vit_pico, kept as
# the small model of the tests and the baseline of the encoder quality benchmark.
DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "vit_tiny.safetensors"
PICO_WEIGHTS = Path(__file__).parent / "weights" / "vit_pico.safetensors"


def read_frames(path: Path, max_frames: int | None = None) -> list[np.ndarray]:
    """All decodable RGB frames of a video; EdgeModelsError if none."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise EdgeModelsError(f"cannot open video {path}; check the path and that it is a video file")
    frames = []
    try:
        while max_frames is None or len(frames) < max_frames:
            ok, bgr = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
    if not frames:
        raise EdgeModelsError(f"no decodable frames in {path}")
    return frames


def embed_frames(encoder, frames: list[np.ndarray]) -> tuple[np.ndarray, float]:
    """-> (L2-normalised embeddings [T, D], encoder frames per second at batch 1)."""
    size = encoder.config.img_size
    inputs = [to_model_input(f, size) for f in frames]
    out = []
    with torch.inference_mode():
        encoder.embed(inputs[0])  # warm-up
        t0 = time.perf_counter()
        for x in inputs:
            out.append(encoder.embed(x)[1][0])
        dt = time.perf_counter() - t0
    z = torch.stack(out).numpy()
    z /= np.linalg.norm(z, axis=1, keepdims=True).clip(1e-12)
    return z, len(frames) / dt


def scene_changes(z: np.ndarray, k: int, min_gap: int = 5) -> list[tuple[int, float]]:
    """The ``k`` frames whose similarity to the previous frame is lowest, at least ``min_gap`` apart.

    -> [(frame index, cosine to previous frame)] sorted by frame.
    """
    sims = (z[1:] * z[:-1]).sum(axis=1)
    picked: list[int] = []
    for i in np.argsort(sims):
        frame = int(i) + 1
        if all(abs(frame - p) >= min_gap for p in picked):
            picked.append(frame)
        if len(picked) == k:
            break
    return sorted((f, float(sims[f - 1])) for f in picked)


def main(
    video: Annotated[Path, typer.Argument(help="Video file to embed.")],
    checkpoint: Annotated[Path, typer.Option(help="Encoder checkpoint (.safetensors).")] = DEFAULT_WEIGHTS,
    changes: Annotated[int, typer.Option(help="How many scene changes to report.")] = 5,
    max_frames: Annotated[int | None, typer.Option(help="Stop after this many frames.")] = None,
    threads: Annotated[int, typer.Option(help="CPU threads for PyTorch.")] = 2,
    reference_cuts: Annotated[
        str | None,
        typer.Option(help="Known cut frames, comma-separated, to score the found changes against."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
) -> None:
    """Embed a video frame by frame and report fps and scene changes."""
    torch.set_num_threads(threads)
    try:
        encoder = load_encoder(checkpoint).inference_copy()
        frames = read_frames(video, max_frames)
    except EdgeModelsError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    z, fps = embed_frames(encoder, frames)
    cuts = scene_changes(z, changes)
    result = {
        "video": str(video),
        "checkpoint": str(checkpoint),
        "preset": encoder.config.preset,
        "frames": len(frames),
        "embedding_dim": int(z.shape[1]),
        "input_size": encoder.config.img_size,
        "encoder_fps": round(fps, 1),
        "threads": threads,
        "scene_changes": [{"frame": f, "cosine_to_previous": round(s, 4)} for f, s in cuts],
    }
    if reference_cuts:
        try:
            ref = [int(c) for c in reference_cuts.split(",") if c.strip()]
        except ValueError:
            typer.echo(
                f"error: --reference-cuts must be comma-separated frame numbers, got {reference_cuts!r}",
                err=True,
            )
            raise typer.Exit(2) from None
        found = [r for r in ref if any(abs(r - f) <= 2 for f, _ in cuts)]
        result["reference_cuts"] = ref
        result["reference_cuts_found"] = found
    if as_json:
        typer.echo(json.dumps(result))
        return
    typer.echo(f"{video}: {len(frames)} frames -> {z.shape[1]}-d embeddings with {encoder.config.preset}")
    typer.echo(f"encoder speed: {fps:.1f} frames/s (eager PyTorch, batch 1, {threads} threads)")
    typer.echo(f"first embedding (first 8 of {z.shape[1]}): {np.array2string(z[0, :8], precision=3)}")
    typer.echo("largest scene changes (frame: cosine to previous frame):")
    for f, s in cuts:
        typer.echo(f"  frame {f:5d}: {s:.3f}")
    if "reference_cuts" in result:
        ref, found = result["reference_cuts"], result["reference_cuts_found"]
        typer.echo(f"known cuts found (within 2 frames): {len(found)}/{len(ref)} {found}")


if __name__ == "__main__":
    typer.run(main)
