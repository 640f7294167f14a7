"""I-JEPA multi-block masks for images.

Per batch one target block size (scale 0.15-0.2 of the grid, aspect 0.75-1.5) and one context
size (scale 0.85-1.0) are drawn; per sample, 4 target blocks and one context block are placed and
the targets are removed from the context, so the predictor never sees what it must predict.

    >>> masks = MultiBlockMasks(MultiBlockConfig(), seed=0)
    >>> pair = masks(batch_size=8, grid=(1, 14, 14), step=0)
    >>> pair.context.shape, [t.shape for t in pair.targets]   # [8, Nc], 4 x [8, Nt]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from edge_models.errors import ConfigError
from edge_models.masks.blocks import MaskPair, block_size, check_range, collate, place_block, spatial_indices


@dataclass(frozen=True)
class MultiBlockConfig:
    num_targets: int = 4
    target_scale: tuple[float, float] = (0.15, 0.2)
    target_aspect: tuple[float, float] = (0.75, 1.5)
    context_scale: tuple[float, float] = (0.85, 1.0)
    context_aspect: tuple[float, float] = (1.0, 1.0)
    min_context: int = 4
    max_tries: int = 20

    def __post_init__(self) -> None:
        if self.num_targets < 1:
            raise ConfigError(f"num_targets must be >= 1, got {self.num_targets}")
        check_range("target_scale", *self.target_scale, upper=1.0)
        check_range("context_scale", *self.context_scale, upper=1.0)
        check_range("target_aspect", *self.target_aspect)
        check_range("context_aspect", *self.context_aspect)
        if self.min_context < 1:
            raise ConfigError(f"min_context must be >= 1, got {self.min_context}")


class MultiBlockMasks:
    """Seeded sampler: the same (seed, step) always gives the same masks."""

    def __init__(self, config: MultiBlockConfig | None = None, seed: int = 0) -> None:
        self.config = config or MultiBlockConfig()
        self.seed = seed

    def __call__(self, batch_size: int, grid: tuple[int, int, int], step: int) -> list[MaskPair]:
        """grid: (t, h, w) token grid; images have t == 1. -> one MaskPair with num_targets targets."""
        cfg = self.config
        gt, gh, gw = grid
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        tgt_hw = block_size(gen, gh, gw, cfg.target_scale, cfg.target_aspect)
        ctx_hw = block_size(gen, gh, gw, cfg.context_scale, cfg.context_aspect)
        contexts, targets = [], [[] for _ in range(cfg.num_targets)]
        for _ in range(batch_size):
            for _attempt in range(cfg.max_tries):
                blocks = [place_block(gen, gh, gw, *tgt_hw) for _ in range(cfg.num_targets)]
                ctx = place_block(gen, gh, gw, *ctx_hw)
                for b in blocks:
                    ctx &= ~b
                if int(ctx.sum()) * gt >= cfg.min_context:
                    break
            else:
                raise ConfigError(
                    f"could not leave {cfg.min_context} context tokens on a {gh}x{gw} grid after "
                    f"{cfg.max_tries} tries; use a larger image or smaller target_scale"
                )
            contexts.append(spatial_indices(ctx))
            for i, b in enumerate(blocks):
                targets[i].append(spatial_indices(b))
        return [
            MaskPair(
                context=collate(gen, contexts, gt, gh * gw),
                targets=[collate(gen, t, gt, gh * gw) for t in targets],
            )
        ]
