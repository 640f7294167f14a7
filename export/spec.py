"""What to export: every model kind becomes an ``ExportSpec`` and then follows the same path.

An ``ExportSpec`` holds an eval-mode module whose ``forward`` takes fixed-shape tensors, example
inputs of those shapes, and what the manifest needs (names, normalisation, dims). Encoders today;
the world model registers a builder here when it lands.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from edge_models.checkpoint import encoder_config, file_sha256, load_encoder, read_metadata
from edge_models.errors import CheckpointError
from edge_models.models import VisionTransformer
from edge_models.preprocess import IMAGENET_MEAN, IMAGENET_STD
from export.errors import ExportError


@dataclass
class ExportSpec:
    kind: str
    preset: str
    module: nn.Module
    example_inputs: tuple[torch.Tensor, ...]
    input_names: list[str]
    output_names: list[str]
    normalization: dict = field(default_factory=dict)
    embedding_dim: int | None = None
    action_dim: int | None = None
    source_checkpoint: str | None = None
    source_checkpoint_sha256: str | None = None


class PooledEncoder(nn.Module):
    """Image encoder for deployment: x [1, 3, S, S] normalised -> pooled embedding [1, D]."""

    def __init__(self, encoder: VisionTransformer, size: int) -> None:
        super().__init__()
        self.encoder = encoder.inference_copy()
        self.encoder.fix_position_grid(self.encoder.grid((1, 3, size, size)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder.embed(x)[1]


def encoder_spec(ckpt: str | Path, img_size: int | None = None) -> ExportSpec:
    encoder = load_encoder(ckpt)
    size = img_size or encoder.config.img_size
    if size % encoder.config.patch_size:
        raise ExportError(
            f"--img-size {size} is not a multiple of the patch size {encoder.config.patch_size}"
        )
    return ExportSpec(
        kind="encoder",
        preset=encoder.config.preset,
        module=PooledEncoder(encoder, size).eval(),
        example_inputs=(torch.rand(1, 3, size, size),),
        input_names=["image"],
        output_names=["embedding"],
        normalization={
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
            "size": size,
            "resize": "short_side_then_center_crop",
            "layout": "NCHW",
            "color": "RGB",
            "scale": "uint8/255",
        },
        embedding_dim=encoder.config.width,
        source_checkpoint=str(ckpt),
        source_checkpoint_sha256=file_sha256(ckpt),
    )


# Explicit registry: checkpoint kind -> builder.
SPEC_BUILDERS: dict[str, Callable[..., ExportSpec]] = {"encoder": encoder_spec, "train": encoder_spec}


def spec_from_checkpoint(ckpt: str | Path, img_size: int | None = None) -> ExportSpec:
    """Build the export spec for whatever model the checkpoint holds (clear error otherwise)."""
    try:
        kind = read_metadata(ckpt).get("kind", "")
        encoder_config(ckpt)
    except CheckpointError as e:
        raise ExportError(str(e)) from None
    if kind not in SPEC_BUILDERS:
        raise ExportError(f"checkpoint {ckpt} holds a '{kind}' model, which has no export path yet")
    try:
        return SPEC_BUILDERS[kind](ckpt, img_size=img_size)
    except CheckpointError as e:
        raise ExportError(str(e)) from None
