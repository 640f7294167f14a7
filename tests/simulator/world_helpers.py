"""Shared constants and helpers for the world tests (a uniquely named module, not conftest, so that it
never collides with tests/conftest.py on import)."""

from __future__ import annotations

import math

from simulator.world import ApartmentEnv, WorldConfig

SMALL = WorldConfig(rows=2, cols=2, size=32, max_steps=400)


def free_spot_facing_wall(env: ApartmentEnv) -> tuple[float, float, float, float]:
    """(x, z, yaw, wall_x) of a free spot 1 m east of the apartment's west outer wall (x = 0, no
    doors), facing it (yaw = pi)."""
    _, _, min_z, max_z = env.layout.bounds
    z = min_z + 0.5
    while z < max_z - 0.5:
        if all(env.nav.is_free(x, z) for x in (0.5, 0.75, 1.0, 1.25)):
            return 1.0, z, math.pi, 0.0
        z += 0.1
    raise AssertionError("no free strip along the west wall")
