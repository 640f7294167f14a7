"""Apartment floor plans: a grid of square rooms joined by doors, drawn from a seeded generator.

    layout = generate_layout(cfg, np.random.default_rng(0))
    layout.rooms[0].bounds        # (min_x, max_x, min_z, max_z), metres
    layout.doors[0].span          # (lo, hi) along the shared wall, metres

Coordinates follow miniworld: x to the east, z to the south, y up; room (row, col) covers
x in [col * s, (col + 1) * s], z in [row * s, (row + 1) * s] with s = ``room_size_m``. Neighbouring
rooms share a wall; a door is an opening in it. A random spanning tree makes every room reachable,
and each remaining shared wall gets a door with probability ``extra_door_prob`` (loops).
Pure numpy: no OpenGL, so it is cheap to test.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.world.config import WorldConfig

# Textures that exist in miniworld's package data (as NAME_1.png ...); each room gets its own look so
# that places are visually distinct, as rooms in a real home are.
FLOOR_TEXTURES = ("wood_planks", "floor_tiles_bw", "marble", "wood", "concrete_tiles", "asphalt", "cardboard")
WALL_TEXTURES = ("drywall", "stucco", "brick_wall", "concrete", "cinder_blocks", "wood_planks", "marble")
CEIL_TEXTURES = ("ceiling_tiles", "concrete_tiles", "ceiling_tile_noborder")
# Doors keep this much wall (metres) between them and a room corner.
DOOR_CORNER_MARGIN_M = 0.3


@dataclass(frozen=True)
class RoomSpec:
    index: int
    row: int
    col: int
    min_x: float
    max_x: float
    min_z: float
    max_z: float
    floor_tex: str
    wall_tex: str
    ceil_tex: str

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return (self.min_x, self.max_x, self.min_z, self.max_z)

    @property
    def center(self) -> tuple[float, float]:
        """(x, z) of the room centre, metres."""
        return ((self.min_x + self.max_x) / 2, (self.min_z + self.max_z) / 2)


@dataclass(frozen=True)
class DoorSpec:
    """An opening between rooms ``a`` and ``b`` (indices, a < b).

    axis "x": the rooms are east-west neighbours; the wall is the line x = ``wall``, the opening
    spans z in ``span``. axis "z": north-south neighbours; wall z = ``wall``, opening spans x in ``span``.
    """

    a: int
    b: int
    axis: str
    wall: float
    span: tuple[float, float]

    @property
    def center(self) -> tuple[float, float]:
        """(x, z) of the middle of the opening, metres."""
        mid = (self.span[0] + self.span[1]) / 2
        return (self.wall, mid) if self.axis == "x" else (mid, self.wall)


@dataclass(frozen=True)
class ApartmentLayout:
    rooms: tuple[RoomSpec, ...]
    doors: tuple[DoorSpec, ...]

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(min_x, max_x, min_z, max_z) of the whole apartment, metres."""
        return (
            min(r.min_x for r in self.rooms),
            max(r.max_x for r in self.rooms),
            min(r.min_z for r in self.rooms),
            max(r.max_z for r in self.rooms),
        )

    def room_at(self, x: float, z: float) -> int | None:
        """Index of the room containing (x, z), or None outside the apartment."""
        for r in self.rooms:
            if r.min_x <= x <= r.max_x and r.min_z <= z <= r.max_z:
                return r.index
        return None


def generate_layout(cfg: WorldConfig, rng: np.random.Generator) -> ApartmentLayout:
    """A seeded floor plan for ``cfg``; the same ``rng`` state gives the same layout."""
    s = cfg.room_size_m
    n = cfg.rows * cfg.cols
    floors = _pick(rng, FLOOR_TEXTURES, n)
    walls = _pick(rng, WALL_TEXTURES, n)
    ceils = _pick(rng, CEIL_TEXTURES, n)
    rooms = tuple(
        RoomSpec(
            index=r * cfg.cols + c,
            row=r,
            col=c,
            min_x=c * s,
            max_x=(c + 1) * s,
            min_z=r * s,
            max_z=(r + 1) * s,
            floor_tex=floors[r * cfg.cols + c],
            wall_tex=walls[r * cfg.cols + c],
            ceil_tex=ceils[r * cfg.cols + c],
        )
        for r in range(cfg.rows)
        for c in range(cfg.cols)
    )
    edges = _neighbour_pairs(cfg.rows, cfg.cols)
    tree = _random_spanning_tree(n, edges, rng)
    doors = []
    for a, b in edges:
        if (a, b) in tree or rng.random() < cfg.extra_door_prob:
            doors.append(_make_door(rooms[a], rooms[b], cfg.door_width_m, rng))
    return ApartmentLayout(rooms=rooms, doors=tuple(doors))


def _pick(rng: np.random.Generator, names: tuple[str, ...], n: int) -> list[str]:
    """n names, all different while there are enough, in a seeded order."""
    out: list[str] = []
    while len(out) < n:
        out.extend(names[i] for i in rng.permutation(len(names)))
    return out[:n]


def _neighbour_pairs(rows: int, cols: int) -> list[tuple[int, int]]:
    pairs = []
    for r in range(rows):
        for c in range(cols):
            i = r * cols + c
            if c + 1 < cols:
                pairs.append((i, i + 1))
            if r + 1 < rows:
                pairs.append((i, i + cols))
    return pairs


def _random_spanning_tree(
    n: int, edges: list[tuple[int, int]], rng: np.random.Generator
) -> set[tuple[int, int]]:
    """Kruskal on a seeded edge order: a uniform-ish random tree that connects all n rooms."""
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    tree = set()
    for k in rng.permutation(len(edges)):
        a, b = edges[k]
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb
            tree.add((a, b))
    return tree


def _make_door(ra: RoomSpec, rb: RoomSpec, width: float, rng: np.random.Generator) -> DoorSpec:
    if ra.row == rb.row:  # east-west neighbours: wall at x = ra.max_x, opening along z
        axis, wall, lo, hi = "x", ra.max_x, ra.min_z, ra.max_z
    else:  # north-south neighbours: wall at z = ra.max_z, opening along x
        axis, wall, lo, hi = "z", ra.max_z, ra.min_x, ra.max_x
    start = rng.uniform(lo + DOOR_CORNER_MARGIN_M, hi - DOOR_CORNER_MARGIN_M - width)
    return DoorSpec(
        a=ra.index, b=rb.index, axis=axis, wall=float(wall), span=(float(start), float(start + width))
    )
