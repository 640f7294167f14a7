"""Shared pieces of the JEPA mask samplers: block sizes, block placement, batch collation.

Token index convention (same as the encoder): ``t * (H * W) + row * W + col``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from edge_models.errors import ConfigError


@dataclass(frozen=True)
class MaskPair:
    """One context set and the target sets predicted from it, for a whole batch.

    context: [B, Nc] int64 token indices (sorted per row)
    targets: list of [B, Nt_i] int64 token indices (sorted per row)
    """

    context: torch.Tensor
    targets: list[torch.Tensor]


def check_range(name: str, lo: float, hi: float, upper: float | None = None) -> None:
    if not (0 < lo <= hi) or (upper is not None and hi > upper):
        bound = f" and <= {upper}" if upper is not None else ""
        raise ConfigError(f"{name} range ({lo}, {hi}) must satisfy 0 < lo <= hi{bound}")


def block_size(
    gen: torch.Generator,
    grid_h: int,
    grid_w: int,
    scale: tuple[float, float],
    aspect: tuple[float, float],
) -> tuple[int, int]:
    """Sample an integer block (height, width) on a ``grid_h x grid_w`` grid.

    Chosen uniformly among the integer sizes whose area fraction lies in ``scale`` and whose
    aspect ratio height/width lies in ``aspect``. Small grids may have no such size; then the
    sizes with a valid aspect whose area is nearest the scale range are the candidates (and if
    no aspect fits at all, the nearest in both).
    """
    n = grid_h * grid_w
    exact, by_area = [], []
    for bh in range(1, grid_h + 1):
        for bw in range(1, grid_w + 1):
            s = bh * bw / n
            a = bh / bw
            scale_err = max(scale[0] - s, 0.0, s - scale[1])
            aspect_err = max(aspect[0] - a, 0.0, a - aspect[1])
            if scale_err == 0.0 and aspect_err == 0.0:
                exact.append((bh, bw))
            by_area.append((aspect_err > 0, round(scale_err + aspect_err, 9), bh, bw))
    if exact:
        candidates = exact
    else:
        best = min((bad, err) for bad, err, _, _ in by_area)
        candidates = [(bh, bw) for bad, err, bh, bw in by_area if (bad, err) == best]
    i = int(torch.randint(len(candidates), (1,), generator=gen))
    return candidates[i]


def place_block(gen: torch.Generator, grid_h: int, grid_w: int, bh: int, bw: int) -> torch.Tensor:
    """A [grid_h, grid_w] bool map with one ``bh x bw`` block at a uniformly random position."""
    top = int(torch.randint(grid_h - bh + 1, (1,), generator=gen))
    left = int(torch.randint(grid_w - bw + 1, (1,), generator=gen))
    m = torch.zeros(grid_h, grid_w, dtype=torch.bool)
    m[top : top + bh, left : left + bw] = True
    return m


def spatial_indices(mask_hw: torch.Tensor) -> torch.Tensor:
    """[H, W] bool map -> sorted flat spatial indices ``row * W + col``."""
    return torch.nonzero(mask_hw.flatten(), as_tuple=False).flatten()


def collate(gen: torch.Generator, rows: list[torch.Tensor], grid_t: int, hw: int) -> torch.Tensor:
    """Stack per-sample spatial index sets into token indices spanning all ``grid_t`` steps.

    Every sample in a batch must keep the same number of tokens, so rows are cut to the shortest
    by keeping a random subset of *spatial positions* (not the first k, so no region is favoured;
    whole positions, so a tube keeps every time step).
    rows: B x [K_i] spatial indices -> [B, grid_t * min K_i] token indices, sorted per row.
    """
    keep = min(len(r) for r in rows)
    out = []
    for r in rows:
        if len(r) > keep:
            r = r[torch.randperm(len(r), generator=gen)[:keep]].sort().values
        tokens = (torch.arange(grid_t).unsqueeze(1) * hw + r.unsqueeze(0)).flatten()
        out.append(tokens)
    return torch.stack(out).long()
