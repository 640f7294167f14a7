"""V-JEPA tube masks for video.

Each mask config draws ``num_blocks`` spatial blocks (fixed area fraction, aspect 0.75-1.5) and
extends them over every time step: the union is the target, the rest is the context. The default
has a short-range config (8 blocks at 0.15) and a long-range one (2 blocks at 0.7); each gives its
own (context, target) pair, as in V-JEPA's multi-mask training.

    >>> masks = TubeMasks(seed=0)
    >>> pairs = masks(batch_size=4, grid=(8, 14, 14), step=0)   # two MaskPairs
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from edge_models.errors import ConfigError
from edge_models.masks.blocks import MaskPair, block_size, check_range, collate, place_block, spatial_indices


@dataclass(frozen=True)
class TubeConfig:
    num_blocks: int
    spatial_scale: float
    aspect: tuple[float, float] = (0.75, 1.5)

    def __post_init__(self) -> None:
        if self.num_blocks < 1:
            raise ConfigError(f"num_blocks must be >= 1, got {self.num_blocks}")
        check_range("spatial_scale", self.spatial_scale, self.spatial_scale, upper=1.0)
        check_range("aspect", *self.aspect)


DEFAULT_TUBES = (TubeConfig(num_blocks=8, spatial_scale=0.15), TubeConfig(num_blocks=2, spatial_scale=0.7))


class TubeMasks:
    """Seeded sampler: the same (seed, step) always gives the same masks."""

    def __init__(
        self,
        configs: tuple[TubeConfig, ...] = DEFAULT_TUBES,
        seed: int = 0,
        min_context: int = 4,
        max_tries: int = 20,
    ) -> None:
        if not configs:
            raise ConfigError("TubeMasks needs at least one TubeConfig")
        self.configs = configs
        self.seed = seed
        self.min_context = min_context
        self.max_tries = max_tries

    def __call__(self, batch_size: int, grid: tuple[int, int, int], step: int) -> list[MaskPair]:
        gt, gh, gw = grid
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        pairs = []
        for cfg in self.configs:
            scale = (cfg.spatial_scale, cfg.spatial_scale)
            hw = block_size(gen, gh, gw, scale, cfg.aspect)
            contexts, targets = [], []
            for _ in range(batch_size):
                for _attempt in range(self.max_tries):
                    union = torch.zeros(gh, gw, dtype=torch.bool)
                    for _b in range(cfg.num_blocks):
                        union |= place_block(gen, gh, gw, *hw)
                    if int((~union).sum()) * gt >= self.min_context:
                        break
                else:
                    raise ConfigError(
                        f"tube masks with {cfg.num_blocks} blocks at scale {cfg.spatial_scale} leave fewer "
                        f"than {self.min_context} context tokens on a {gh}x{gw} grid; lower the scale"
                    )
                contexts.append(spatial_indices(~union))
                targets.append(spatial_indices(union))
            pairs.append(
                MaskPair(
                    context=collate(gen, contexts, gt, gh * gw), targets=[collate(gen, targets, gt, gh * gw)]
                )
            )
        return pairs
