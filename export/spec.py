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


def world_model_spec(ckpt: str | Path, img_size: int | None = None) -> ExportSpec:
    """The world model as one planner iteration: S candidate sequences of H actions, unrolled.

    inputs: context [S, C, D] (L2-normalised embeddings, oldest first), actions [S, H, A] (one-hot
    if discrete) -> predicted [S, H, D]. S, H are the checkpoint's export_samples / export_horizon.
    """
    from edge_models.world_model import WorldModelRollout, load_world_model

    if img_size is not None:
        raise ExportError("--img-size does not apply to a world model (it takes embeddings); drop it")
    model, meta = load_world_model(ckpt)
    c = model.config
    s, h = c.export_samples, c.export_horizon
    gen = torch.Generator().manual_seed(0)
    context = torch.nn.functional.normalize(torch.randn(s, c.context, c.embed_dim, generator=gen), dim=-1)
    if c.action_kind == "discrete":
        actions = torch.nn.functional.one_hot(
            torch.randint(0, c.action_dim, (s, h), generator=gen), c.action_dim
        ).float()
    else:
        actions = torch.randn(s, h, c.action_dim, generator=gen) * torch.tensor(c.action_scale or 1.0)
    return ExportSpec(
        kind="world_model",
        preset=f"wm_c{c.context}_h{c.hidden}x{c.depth}_s{s}_t{h}",
        module=WorldModelRollout(model).eval(),
        example_inputs=(context, actions),
        input_names=["context", "actions"],
        output_names=["predicted"],
        normalization={
            "embedding": "l2_unit",
            "encoder_sha256": meta.get("encoder_sha256"),
            "action_kind": c.action_kind,
            "action_encoding": "one_hot" if c.action_kind == "discrete" else "raw",
            "action_scale": list(c.action_scale),
            "context": c.context,
            "horizon": h,
            "samples": s,
        },
        embedding_dim=c.embed_dim,
        action_dim=c.action_dim,
        source_checkpoint=str(ckpt),
        source_checkpoint_sha256=file_sha256(ckpt),
    )


# Explicit registry: checkpoint kind -> builder.
SPEC_BUILDERS: dict[str, Callable[..., ExportSpec]] = {"encoder": encoder_spec, "train": encoder_spec}
SPEC_BUILDERS["world_model"] = world_model_spec


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
