"""WorldConfig: one typed, validated description of an apartment world.

    cfg = WorldConfig(rows=2, cols=3, size=96, objects=("key", "ball", "box"))
    cfg = WorldConfig(action_mode="continuous", max_speed_mps=1.0, dt_s=0.25)

Units: metres, seconds, degrees in the config (human-friendly); poses carry yaw in radians.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from enum import Enum, IntEnum
from typing import Any

from simulator.world.errors import WorldConfigError
from simulator.world.objects import OBJECT_KINDS

# miniworld's agent is a disc of this radius (metres); it is fixed there, so we mirror it.
AGENT_RADIUS_M = 0.4
# Default camera height above the floor (metres), miniworld's; it is the pose's y.
EYE_HEIGHT_M = 1.5


class ActionMode(str, Enum):
    """How ``ApartmentEnv.step`` reads its action."""

    DISCRETE = "discrete"
    CONTINUOUS = "continuous"


class Action(IntEnum):
    """Discrete actions (``action_mode="discrete"``); the values match miniworld's first four.

    TURN_LEFT / TURN_RIGHT: yaw += / -= ``turn_deg`` (counter-clockwise seen from above is +).
    FORWARD / BACK: move ``forward_step_m`` along / against the heading; blocked moves leave the pose
    unchanged and set ``info["collided"]``.
    """

    TURN_LEFT = 0
    TURN_RIGHT = 1
    FORWARD = 2
    BACK = 3


@dataclass(frozen=True, kw_only=True)
class WorldConfig:
    """An apartment of ``rows x cols`` square rooms with doors, objects, and an egocentric camera.

    Layout:
        rows, cols: rooms along z and x; ``rows * cols`` in [2, 16].
        room_size_m: side of each square room, metres, in [2.5, 10].
        door_width_m: width of each opening, metres; at least 2 x agent radius + 0.2 = 1.0.
        extra_door_prob: each wall between neighbours not on the random spanning tree gets a door
            with this probability, so some layouts have loops.
        objects: object kinds to place, one of each (see ``objects.OBJECT_KINDS``); names are unique.
    Camera (a head-worn camera: wide, tilted down so objects on the floor stay in view up close):
        size: square frame side in pixels; frames are RGB uint8 ``[size, size, 3]``.
        fov_deg: vertical (= horizontal) field of view, degrees, in [30, 120].
        pitch_deg: camera tilt, degrees, negative = down, in [-45, 15].
        eye_height_m: camera height above the floor, metres (the pose's y), in [1.0, 2.0].
    Episode:
        max_steps: ``step`` returns ``truncated=True`` at this many steps.
        dt_s: simulated time per step, seconds; frame ``t_ns`` advance by it.
    Actions:
        action_mode: "discrete" (``Action``) or "continuous" (``[forward_speed_mps, turn_rate_deg_s]``).
        forward_step_m: discrete forward/back distance, metres, in (0, 0.5].
        turn_deg: discrete turn angle, degrees; must divide 360 so headings form a closed set.
        max_speed_mps, max_turn_rate_deg_s: continuous bounds; actions are clipped to them and
            integrated over ``dt_s`` (``max_speed_mps * dt_s`` at most 0.5 m).
    Goals:
        reach_m: "at the object" means the agent centre within this many metres of the object centre.
        facing_tolerance_deg: "facing" means the object direction within this angle of the heading;
            at least ``turn_deg / 2`` so every object can be faced by turning.
        nav_cell_m: cell size of the navigation grid the oracle plans on, metres.
    """

    rows: int = 2
    cols: int = 2
    room_size_m: float = 4.0
    door_width_m: float = 1.4
    extra_door_prob: float = 0.5
    objects: tuple[str, ...] = ("key", "ball", "box")
    size: int = 96
    fov_deg: float = 80.0
    pitch_deg: float = -20.0
    eye_height_m: float = EYE_HEIGHT_M
    max_steps: int = 500
    dt_s: float = 0.25
    action_mode: ActionMode = ActionMode.DISCRETE
    forward_step_m: float = 0.25
    turn_deg: float = 30.0
    max_speed_mps: float = 1.0
    max_turn_rate_deg_s: float = 120.0
    reach_m: float = 1.0
    facing_tolerance_deg: float = 20.0
    nav_cell_m: float = 0.05

    def __post_init__(self) -> None:
        _check_int("rows", self.rows, 1, 4)
        _check_int("cols", self.cols, 1, 4)
        if self.rows * self.cols < 2:
            raise WorldConfigError(
                f"rows * cols = {self.rows * self.cols}; the apartment needs at least 2 rooms (e.g. cols=2)"
            )
        _check_range("room_size_m", self.room_size_m, 2.5, 10.0)
        min_door = 2 * AGENT_RADIUS_M + 0.2
        _check_range("door_width_m", self.door_width_m, min_door, self.room_size_m - 0.6)
        _check_range("extra_door_prob", self.extra_door_prob, 0.0, 1.0)
        self._check_objects()
        _check_int("size", self.size, 16, 512)
        _check_range("fov_deg", self.fov_deg, 30.0, 120.0)
        _check_range("pitch_deg", self.pitch_deg, -45.0, 15.0)
        _check_range("eye_height_m", self.eye_height_m, 1.0, 2.0)
        _check_int("max_steps", self.max_steps, 1, 1_000_000)
        _check_range("dt_s", self.dt_s, 1e-3, 10.0)
        try:
            object.__setattr__(self, "action_mode", ActionMode(self.action_mode))
        except ValueError:
            raise WorldConfigError(
                f"action_mode={self.action_mode!r} is unknown; use 'discrete' or 'continuous'"
            ) from None
        _check_range("forward_step_m", self.forward_step_m, 1e-3, 0.5)
        _check_range("turn_deg", self.turn_deg, 1.0, 180.0)
        headings = 360.0 / self.turn_deg
        if abs(headings - round(headings)) > 1e-9:
            raise WorldConfigError(
                f"turn_deg={self.turn_deg} does not divide 360; use e.g. 15, 30, 45 or 90 so headings repeat"
            )
        _check_range("max_speed_mps", self.max_speed_mps, 1e-3, 10.0)
        _check_range("max_turn_rate_deg_s", self.max_turn_rate_deg_s, 1.0, 3600.0)
        if self.max_speed_mps * self.dt_s > 0.5:
            raise WorldConfigError(
                f"max_speed_mps * dt_s = {self.max_speed_mps * self.dt_s:.3f} m per step; keep it at most 0.5 "
                "so the agent cannot pass through walls (lower max_speed_mps or dt_s)"
            )
        _check_range("reach_m", self.reach_m, 0.8, 5.0)
        _check_range("facing_tolerance_deg", self.facing_tolerance_deg, 1.0, 90.0)
        if self.facing_tolerance_deg < self.turn_deg / 2:
            raise WorldConfigError(
                f"facing_tolerance_deg={self.facing_tolerance_deg} < turn_deg / 2 = {self.turn_deg / 2}; "
                "some objects could never be faced: raise facing_tolerance_deg or lower turn_deg"
            )
        _check_range("nav_cell_m", self.nav_cell_m, 0.02, 0.2)

    def _check_objects(self) -> None:
        if isinstance(self.objects, str) or not isinstance(self.objects, (tuple, list)):
            raise WorldConfigError(f"objects must be a tuple of names, got {self.objects!r}")
        object.__setattr__(self, "objects", tuple(self.objects))
        unknown = [o for o in self.objects if o not in OBJECT_KINDS]
        if unknown:
            raise WorldConfigError(f"unknown objects {unknown}; choose from {sorted(OBJECT_KINDS)}")
        if len(set(self.objects)) != len(self.objects):
            raise WorldConfigError(f"objects {list(self.objects)} repeat a name; each object is named once")
        if not 1 <= len(self.objects) <= 2 * self.rows * self.cols:
            raise WorldConfigError(
                f"{len(self.objects)} objects for {self.rows * self.cols} rooms; use 1 to {2 * self.rows * self.cols}"
            )

    @property
    def turn_rad(self) -> float:
        return math.radians(self.turn_deg)

    @property
    def num_headings(self) -> int:
        return round(360.0 / self.turn_deg)

    @property
    def dt_ns(self) -> int:
        return round(self.dt_s * 1e9)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; ``WorldConfig.from_dict(cfg.to_dict()) == cfg``."""
        d = asdict(self)
        d["objects"] = list(self.objects)
        d["action_mode"] = self.action_mode.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WorldConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise WorldConfigError(f"unknown WorldConfig fields {unknown}; known: {sorted(known)}")
        return cls(**{**d, "objects": tuple(d.get("objects", cls.objects))})


def _check_int(name: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise WorldConfigError(f"{name} must be an int, got {value!r}")
    if not lo <= value <= hi:
        raise WorldConfigError(f"{name}={value} is out of range; use {lo} to {hi}")


def _check_range(name: str, value: Any, lo: float, hi: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise WorldConfigError(f"{name} must be a finite number, got {value!r}")
    if not lo <= value <= hi:
        raise WorldConfigError(f"{name}={value} is out of range; use {lo:g} to {hi:g}")
