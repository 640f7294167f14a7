"""Fixed sin-cos position embeddings for (time, height, width) token grids.

They are a pure function of the grid size, so one encoder serves any resolution or clip length:
nothing is interpolated and nothing is learned. Computed in NumPy from Python ints (static under
``torch.export``), so an exported graph sees them as constants, not as sin/cos ops.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch


def _sincos_1d(dim: int, positions: np.ndarray) -> np.ndarray:
    """positions: [M] -> [M, dim] (dim even): half sines, half cosines, MAE/I-JEPA frequencies."""
    if dim % 2 != 0:
        raise ValueError(f"sin-cos embedding needs an even dim, got {dim}")
    omega = np.arange(dim // 2, dtype=np.float64) / (dim / 2.0)
    omega = 1.0 / 10000**omega
    out = np.einsum("m,d->md", positions.reshape(-1).astype(np.float64), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def split_dims(dim: int) -> tuple[int, int, int]:
    """How a width ``dim`` is shared between the time, height and width axes (each even).

    Time gets about a quarter; height and width share the rest.
    """
    if dim % 2 != 0 or dim < 8:
        raise ValueError(f"embedding width must be even and >= 8, got {dim}")
    d_t = 2 * (dim // 8)
    rest = dim - d_t
    d_h = 2 * (rest // 4)
    d_w = rest - d_h
    return d_t, d_h, d_w


@lru_cache(maxsize=64)
def _sincos_3d_np(dim: int, grid_t: int, grid_h: int, grid_w: int) -> np.ndarray:
    d_t, d_h, d_w = split_dims(dim)
    t, h, w = np.meshgrid(
        np.arange(grid_t, dtype=np.float64),
        np.arange(grid_h, dtype=np.float64),
        np.arange(grid_w, dtype=np.float64),
        indexing="ij",
    )
    emb = np.concatenate([_sincos_1d(d_t, t), _sincos_1d(d_h, h), _sincos_1d(d_w, w)], axis=1)
    return emb.astype(np.float32)  # [T*H*W, dim], token order t-major then h then w


def sincos_3d(dim: int, grid_t: int, grid_h: int, grid_w: int) -> torch.Tensor:
    """[grid_t * grid_h * grid_w, dim] float32 position embeddings (token order t, h, w)."""
    return torch.from_numpy(_sincos_3d_np(dim, grid_t, grid_h, grid_w).copy())
