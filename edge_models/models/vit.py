"""ViT encoder for images and videos, with named size presets.

One model handles both: an image ``[B, 3, H, W]`` is a one-tubelet clip (the frame repeated
``tubelet_size`` times, as V-JEPA does), a video ``[B, 3, T, H, W]`` is cut into tubelets of
``tubelet_size x patch_size x patch_size``. Tokens are ordered time-major, then row, then column.

    >>> enc = vit_pico()
    >>> tokens, pooled = enc.embed(torch.rand(2, 3, 96, 96))   # [2, 36, 96], [2, 96]
    >>> tokens, pooled = enc.embed(torch.rand(2, 3, 4, 64, 64))  # [2, 32, 96], [2, 96]
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from edge_models.errors import ConfigError
from edge_models.models.layers import Block, ExportLayerNorm, gather_tokens, init_weights, mean_tokens
from edge_models.models.pos_embed import sincos_3d


@dataclass(frozen=True)
class EncoderConfig:
    """Architecture of a ViT encoder and of its JEPA predictor.

    ``img_size`` and ``num_frames`` are the defaults for training and export; the encoder itself
    accepts any size divisible by ``patch_size`` (and ``tubelet_size`` in time).
    """

    preset: str
    width: int
    depth: int
    heads: int
    mlp_ratio: float = 4.0
    patch_size: int = 16
    tubelet_size: int = 2
    in_chans: int = 3
    img_size: int = 224
    num_frames: int = 16
    predictor_width: int = 96
    predictor_depth: int = 4
    predictor_heads: int = 3
    # A linear map on the pooled embedding (``embed_head``), fitted after training: e.g. PCA whitening
    # (edge_models/distill/whitening.py). Off for trained-from-scratch encoders.
    embed_head: bool = False

    def __post_init__(self) -> None:
        for name in ("width", "depth", "heads", "patch_size", "tubelet_size", "in_chans", "img_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"encoder config: {name} must be positive, got {getattr(self, name)}")
        if self.width % self.heads != 0:
            raise ConfigError(f"encoder config: width {self.width} not divisible by heads {self.heads}")
        if self.predictor_width % self.predictor_heads != 0:
            raise ConfigError(
                f"encoder config: predictor_width {self.predictor_width} not divisible by "
                f"predictor_heads {self.predictor_heads}"
            )
        if self.img_size % self.patch_size != 0:
            raise ConfigError(
                f"encoder config: img_size {self.img_size} must be a multiple of patch_size {self.patch_size}"
            )
        if self.num_frames % self.tubelet_size != 0:
            raise ConfigError(
                f"encoder config: num_frames {self.num_frames} must be a multiple of "
                f"tubelet_size {self.tubelet_size}"
            )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> EncoderConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(
                f"encoder config has unknown fields {sorted(unknown)}; is it from a newer version?"
            )
        return cls(**data)


# Explicit registry: preset name -> config. Sizes follow ViT-Ti/S/B; `vit_pico` is for tests and demos.
PRESETS: dict[str, EncoderConfig] = {
    "vit_pico": EncoderConfig(
        "vit_pico",
        width=96,
        depth=4,
        heads=3,
        img_size=96,
        num_frames=4,
        predictor_width=48,
        predictor_depth=2,
        predictor_heads=3,
    ),
    "vit_tiny": EncoderConfig(
        "vit_tiny",
        width=192,
        depth=12,
        heads=3,
        predictor_width=96,
        predictor_depth=4,
        predictor_heads=3,
    ),
    "vit_small": EncoderConfig(
        "vit_small",
        width=384,
        depth=12,
        heads=6,
        predictor_width=192,
        predictor_depth=6,
        predictor_heads=6,
    ),
    "vit_base": EncoderConfig(
        "vit_base",
        width=768,
        depth=12,
        heads=12,
        predictor_width=384,
        predictor_depth=6,
        predictor_heads=12,
    ),
}


def get_config(preset: str, **overrides) -> EncoderConfig:
    """The config of a named preset, with optional field overrides (e.g. ``img_size=128``)."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset '{preset}'; choose one of: {', '.join(PRESETS)}")
    return replace(PRESETS[preset], **overrides) if overrides else PRESETS[preset]


class VisionTransformer(nn.Module):
    """JEPA context/target encoder.

    forward(x, keep_idx=None):
        x: [B, 3, H, W] or [B, 3, T, H, W] float (already normalised)
        keep_idx: optional [B, K] int64 token indices to keep (context masking)
        -> tokens [B, N or K, D] after the final norm
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.embed_dim = c.width
        self.patch_embed = nn.Conv2d(
            c.in_chans * c.tubelet_size, c.width, kernel_size=c.patch_size, stride=c.patch_size
        )
        self.blocks = nn.ModuleList([Block(c.width, c.heads, c.mlp_ratio) for _ in range(c.depth)])
        self.norm = ExportLayerNorm(c.width)
        self.embed_head = nn.Linear(c.width, c.width) if c.embed_head else None
        # Set only on inference copies (see `inference_copy`): a static single-frame kernel.
        self.image_patch_embed: nn.Conv2d | None = None
        # Set only for export (see `fix_position_grid`): position embeddings held as a buffer.
        self.fixed_grid: tuple[int, int, int] | None = None
        init_weights(self)

    def grid(self, shape: torch.Size | tuple[int, ...]) -> tuple[int, int, int]:
        """Token grid (t, h, w) for an input of ``shape``; raises ConfigError on bad sizes."""
        c = self.config
        if len(shape) == 4:
            _, ch, h, w = shape
            t = c.tubelet_size
        elif len(shape) == 5:
            _, ch, t, h, w = shape
        else:
            raise ConfigError(
                f"encoder input must be [B, 3, H, W] or [B, 3, T, H, W], got shape {tuple(shape)}"
            )
        if ch != c.in_chans:
            raise ConfigError(
                f"encoder expects {c.in_chans} channels (RGB first), got {ch} in {tuple(shape)}"
            )
        if h % c.patch_size or w % c.patch_size:
            raise ConfigError(
                f"image size {h}x{w} is not a multiple of the patch size {c.patch_size}; resize or crop it"
            )
        if t % c.tubelet_size:
            raise ConfigError(f"clip length {t} is not a multiple of the tubelet size {c.tubelet_size}")
        return t // c.tubelet_size, h // c.patch_size, w // c.patch_size

    def num_tokens(self, shape: torch.Size | tuple[int, ...]) -> int:
        gt, gh, gw = self.grid(shape)
        return gt * gh * gw

    def image_kernel(self) -> torch.Tensor:
        """Patch kernel for a single frame: [D, ts*C, p, p] summed over time -> [D, C, p, p]."""
        c = self.config
        w = self.patch_embed.weight
        return w.reshape(w.shape[0], c.tubelet_size, c.in_chans, c.patch_size, c.patch_size).sum(dim=1)

    def inference_copy(self) -> VisionTransformer:
        """A frozen eval-mode copy with the single-frame kernel folded into a static conv.

        Same outputs; the image path then has no weight arithmetic in its graph, so the patch
        embedding of an exported image encoder is one delegated convolution.
        """
        model = copy.deepcopy(self).eval()
        for p in model.parameters():
            p.requires_grad_(False)
        c = self.config
        conv = nn.Conv2d(c.in_chans, c.width, kernel_size=c.patch_size, stride=c.patch_size)
        with torch.no_grad():
            conv.weight.copy_(self.image_kernel())
            conv.bias.copy_(self.patch_embed.bias)
        conv.requires_grad_(False)
        model.image_patch_embed = conv
        return model

    def fix_position_grid(self, grid: tuple[int, int, int]) -> None:
        """Hold the position embeddings of one token grid as a buffer (call on inference copies only).

        For export: a buffer is program state that every backend handles, while a tensor made
        inside ``forward`` becomes a lifted graph constant that some lowering paths reject.
        """
        self.register_buffer("fixed_pos", sincos_3d(self.embed_dim, *grid))
        self.fixed_grid = tuple(grid)

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, 3, H, W] | [B, 3, T, H, W] -> tokens [B, N, D] with position embeddings added."""
        c = self.config
        gt, gh, gw = self.grid(x.shape)
        b = x.shape[0]
        if x.dim() == 4:
            # An image is a clip of identical frames: the tubelet kernel summed over time applied to
            # the frame once is the same as the full kernel applied to the repeated frame.
            if self.image_patch_embed is not None:
                x = self.image_patch_embed(x)
            else:
                x = F.conv2d(x, self.image_kernel(), self.patch_embed.bias, stride=c.patch_size)
        else:
            h, w = x.shape[3], x.shape[4]
            x = x.reshape(b, c.in_chans, gt, c.tubelet_size, h, w)
            x = x.permute(0, 2, 3, 1, 4, 5).reshape(b * gt, c.tubelet_size * c.in_chans, h, w)
            x = self.patch_embed(x)  # [B*gt, D, gh, gw]
        x = x.flatten(2).transpose(1, 2).reshape(b, gt * gh * gw, self.embed_dim)
        if self.fixed_grid == (gt, gh, gw):
            pos = self.fixed_pos
        else:
            pos = sincos_3d(self.embed_dim, gt, gh, gw).to(dtype=x.dtype, device=x.device)
        return x + pos

    def forward(self, x: torch.Tensor, keep_idx: torch.Tensor | None = None) -> torch.Tensor:
        tokens = self.patchify(x)
        if keep_idx is not None:
            tokens = gather_tokens(tokens, keep_idx)
        for blk in self.blocks:
            tokens = blk(tokens)
        return self.norm(tokens)

    @staticmethod
    def pool(tokens: torch.Tensor) -> torch.Tensor:
        """Mean over tokens: [B, N, D] -> [B, D]."""
        return mean_tokens(tokens)

    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Full (unmasked) encoding: -> (tokens [B, N, D], pooled [B, D]); pooled goes through
        ``embed_head`` when the config has one (the embedding memory compares, not the tokens)."""
        tokens = self.forward(x)
        pooled = self.pool(tokens)
        if self.embed_head is not None:
            # As a 3-D bmm, not a linear: int8 export quantizes linears, and this map (whitening: it
            # scales weak directions up) would amplify its own rounding; bmm stays fp32 in XNNPACK.
            b, d = pooled.shape  # reshape, not (un)squeeze: XNNPACK delegates view_copy only
            w = self.embed_head.weight.t().reshape(1, d, d)
            pooled = torch.bmm(pooled.reshape(1, b, d), w).reshape(b, d) + self.embed_head.bias
        return tokens, pooled


def build_encoder(preset: str | EncoderConfig, **overrides) -> VisionTransformer:
    config = preset if isinstance(preset, EncoderConfig) else get_config(preset, **overrides)
    return VisionTransformer(config)


def vit_pico(**overrides) -> VisionTransformer:
    return build_encoder("vit_pico", **overrides)


def vit_tiny(**overrides) -> VisionTransformer:
    return build_encoder("vit_tiny", **overrides)


def vit_small(**overrides) -> VisionTransformer:
    return build_encoder("vit_small", **overrides)


def vit_base(**overrides) -> VisionTransformer:
    return build_encoder("vit_base", **overrides)
