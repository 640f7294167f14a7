"""Poses and the exact planar kinematics shared by the world and its oracle.

    pose = Pose(x=1.0, y=1.5, z=2.0, yaw=0.0)
    x, z = advance(pose.x, pose.z, pose.yaw, 0.25)   # 0.25 m along the heading
    near_and_facing(pose, (ox, oz), reach_m=1.0, facing_tolerance_deg=20.0)

Frame: x east, z south, y up (metres), as in miniworld. ``yaw`` is radians in (-pi, pi], 0 facing +x,
positive turning left (counter-clockwise seen from above), so the heading vector is
``(cos yaw, -sin yaw)`` in (x, z). The environment and the oracle both move the agent with
``advance`` and ``turn``, so a plan replays bit for bit.
"""

from __future__ import annotations

import math
from typing import NamedTuple


class Pose(NamedTuple):
    """Camera pose: x, y, z in metres (y is eye height above the floor), yaw in radians."""

    x: float
    y: float
    z: float
    yaw: float


def wrap_angle(a: float) -> float:
    """``a`` (radians) wrapped to (-pi, pi]."""
    a = math.fmod(a + math.pi, 2 * math.pi)
    if a <= 0:
        a += 2 * math.pi
    return a - math.pi


def turn(yaw: float, delta: float) -> float:
    """Heading after turning by ``delta`` radians (positive = left), wrapped to (-pi, pi]."""
    return wrap_angle(yaw + delta)


def advance(x: float, z: float, yaw: float, dist: float) -> tuple[float, float]:
    """(x, z) after moving ``dist`` metres along heading ``yaw`` (negative = backwards)."""
    return x + dist * math.cos(yaw), z - dist * math.sin(yaw)


def bearing(x: float, z: float, tx: float, tz: float) -> float:
    """The yaw (radians) that faces the point (tx, tz) from (x, z)."""
    return math.atan2(-(tz - z), tx - x)


def near_and_facing(
    pose: Pose | tuple[float, float, float, float],
    target_xz: tuple[float, float],
    reach_m: float,
    facing_tolerance_deg: float,
) -> bool:
    """True when the pose is within ``reach_m`` of the target (floor-plane distance between centres)
    and the target lies within ``facing_tolerance_deg`` of the heading."""
    x, _, z, yaw = pose
    tx, tz = target_xz
    if math.hypot(tx - x, tz - z) > reach_m:
        return False
    return abs(wrap_angle(bearing(x, z, tx, tz) - yaw)) <= math.radians(facing_tolerance_deg)
