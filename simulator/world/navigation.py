"""A navigation grid derived from the room geometry: where the agent's centre may stand.

    grid = NavGrid.build(bounds, wall_segs, obstacles, agent_radius=0.4, cell=0.05)
    grid.is_free(x, z)                  # the whole cell keeps the agent clear of walls and objects
    reach = grid.flood_fill(x, z)       # bool [nz, nx], cells reachable from (x, z)
    dist = grid.distance_field(mask)    # float [nz, nx], metres to the nearest cell in mask

A cell is free only if every point in it keeps the agent's disc off every wall segment and object
disc, so a position that falls in a free cell is collision-free in miniworld too (the test is
conservative by half a cell diagonal). Rows index z, columns index x. Pure numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# The 8 neighbour offsets (dz, dx) and their step lengths in cells.
_NEIGHBOURS = [(dz, dx, math.hypot(dz, dx)) for dz in (-1, 0, 1) for dx in (-1, 0, 1) if dz or dx]


@dataclass(frozen=True)
class NavGrid:
    """free: bool [nz, nx]; cell (iz, ix) covers x in [min_x + ix*cell, +cell), z likewise."""

    min_x: float
    min_z: float
    cell: float
    free: np.ndarray

    @classmethod
    def build(
        cls,
        bounds: tuple[float, float, float, float],
        wall_segs: np.ndarray,
        obstacles: list[tuple[float, float, float]],
        agent_radius: float,
        cell: float,
    ) -> NavGrid:
        """bounds: (min_x, max_x, min_z, max_z) metres; wall_segs: [N, 2, 3] (x, y, z) endpoints;
        obstacles: (x, z, radius) discs in metres."""
        min_x, max_x, min_z, max_z = bounds
        nx = math.ceil((max_x - min_x) / cell)
        nz = math.ceil((max_z - min_z) / cell)
        xs = min_x + (np.arange(nx) + 0.5) * cell
        zs = min_z + (np.arange(nz) + 0.5) * cell
        px, pz = np.meshgrid(xs, zs)  # [nz, nx]
        margin = cell * math.sqrt(0.5) + 1e-6  # half a cell diagonal
        clearance = _distance_to_segments(px.ravel(), pz.ravel(), wall_segs).reshape(nz, nx)
        free = clearance >= agent_radius + margin
        for ox, oz, r in obstacles:
            free &= np.hypot(px - ox, pz - oz) >= agent_radius + r + margin
        # The apartment interior only (walls alone would leave the outside free too).
        free &= (px > min_x) & (px < max_x) & (pz > min_z) & (pz < max_z)
        return cls(min_x=float(min_x), min_z=float(min_z), cell=float(cell), free=free)

    @property
    def shape(self) -> tuple[int, int]:
        return self.free.shape

    def cell_of(self, x: float, z: float) -> tuple[int, int] | None:
        """(iz, ix) of the cell holding (x, z), or None outside the grid."""
        ix = math.floor((x - self.min_x) / self.cell)
        iz = math.floor((z - self.min_z) / self.cell)
        nz, nx = self.free.shape
        if 0 <= ix < nx and 0 <= iz < nz:
            return iz, ix
        return None

    def center_of(self, iz: int, ix: int) -> tuple[float, float]:
        """(x, z) of a cell centre, metres."""
        return self.min_x + (ix + 0.5) * self.cell, self.min_z + (iz + 0.5) * self.cell

    def is_free(self, x: float, z: float) -> bool:
        c = self.cell_of(x, z)
        return c is not None and bool(self.free[c])

    def disc_mask(self, x: float, z: float, radius: float) -> np.ndarray:
        """bool [nz, nx]: free cells whose centre lies within ``radius`` metres of (x, z)."""
        nz, nx = self.free.shape
        xs = self.min_x + (np.arange(nx) + 0.5) * self.cell
        zs = self.min_z + (np.arange(nz) + 0.5) * self.cell
        d = np.hypot(xs[None, :] - x, zs[:, None] - z)
        return (d <= radius) & self.free

    def flood_fill(self, x: float, z: float) -> np.ndarray:
        """bool [nz, nx]: free cells 8-connected to (x, z). A pose in a blocked cell (closer to a wall
        than the grid's half-cell margin, which miniworld allows) starts from the free cells within
        two cells of it; empty if there are none."""
        c = self.cell_of(x, z)
        if c is None:
            return np.zeros_like(self.free)
        if self.free[c]:
            reached = np.zeros_like(self.free)
            reached[c] = True
        else:
            reached = self.disc_mask(x, z, 2 * self.cell)
        while True:
            grown = _dilate8(reached) & self.free
            if np.array_equal(grown, reached):
                return reached
            reached = grown

    def window_min(self, values: np.ndarray, iz: int, ix: int, radius_cells: int) -> float:
        """Smallest of ``values`` [nz, nx] over free cells within ``radius_cells`` of (iz, ix) (a square
        window); inf if none."""
        z0, x0 = max(0, iz - radius_cells), max(0, ix - radius_cells)
        win = values[z0 : iz + radius_cells + 1, x0 : ix + radius_cells + 1]
        ok = self.free[z0 : iz + radius_cells + 1, x0 : ix + radius_cells + 1]
        return float(win[ok].min()) if ok.any() else math.inf

    def distance_field(self, goal: np.ndarray) -> np.ndarray:
        """float [nz, nx]: shortest 8-connected path length (metres) through free cells to any cell of
        ``goal`` (bool [nz, nx]); inf where unreachable. Computed by repeated neighbour relaxation."""
        inf = np.inf
        d = np.where(goal & self.free, 0.0, inf)
        blocked = ~self.free
        while True:
            nd = d.copy()
            for dz, dx, length in _NEIGHBOURS:
                src, dst = _shifted_slices(dz, dx)
                np.minimum(nd[dst], d[src] + length * self.cell, out=nd[dst])
            nd[blocked] = inf
            if np.array_equal(nd, d):
                return d
            d = nd


def _shifted_slices(dz: int, dx: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """Slices so that ``a[dst]`` are the neighbours at offset (dz, dx) of ``a[src]``."""

    def pair(k: int) -> tuple[slice, slice]:
        if k > 0:
            return slice(None, -k), slice(k, None)
        if k < 0:
            return slice(-k, None), slice(None, k)
        return slice(None), slice(None)

    (sz, tz), (sx, tx) = pair(dz), pair(dx)
    return (sz, sx), (tz, tx)


def _dilate8(m: np.ndarray) -> np.ndarray:
    out = m.copy()
    for dz, dx, _ in _NEIGHBOURS:
        src, dst = _shifted_slices(dz, dx)
        out[dst] |= m[src]
    return out


def _distance_to_segments(px: np.ndarray, pz: np.ndarray, segs: np.ndarray) -> np.ndarray:
    """float [P]: distance (metres) from each point (px, pz) to the nearest of segs [N, 2, 3]."""
    if len(segs) == 0:
        return np.full(px.shape, np.inf)
    ax, az = segs[:, 0, 0], segs[:, 0, 2]
    bx, bz = segs[:, 1, 0], segs[:, 1, 2]
    abx, abz = bx - ax, bz - az
    len2 = np.maximum(abx * abx + abz * abz, 1e-12)
    best = np.full(px.shape, np.inf)
    for k in range(len(segs)):  # one segment at a time keeps memory at O(P)
        t = np.clip(((px - ax[k]) * abx[k] + (pz - az[k]) * abz[k]) / len2[k], 0.0, 1.0)
        d = np.hypot(px - (ax[k] + t * abx[k]), pz - (az[k] + t * abz[k]))
        np.minimum(best, d, out=best)
    return best
