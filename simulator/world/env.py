"""ApartmentEnv: an egocentric 3D apartment on miniworld, with a gymnasium API and ground truth.

    from simulator.world import ApartmentEnv, WorldConfig, Action
    env = ApartmentEnv(WorldConfig(rows=2, cols=2, size=96))
    frame, info = env.reset(seed=0)            # frame: uint8 [96, 96, 3]; info["pose"]: Pose
    frame, reward, terminated, truncated, info = env.step(Action.FORWARD)
    env.object_position("key")                 # (x, y, z) metres
    env.near_and_facing("key")                 # the benchmark's success test
    env.close()

Determinism: everything random (floor plan, textures, object and agent placement) is drawn from the
generator seeded by ``reset(seed=...)``, so the same seed gives the same frames and poses.
Reward is always 0 and ``terminated`` always False: the world has no task of its own; the benchmark
decides success with ``near_and_facing``. ``truncated`` becomes True at ``config.max_steps``.
"""

from __future__ import annotations

import contextlib
import io
import math
from typing import Any

import numpy as np
from gymnasium import spaces

from simulator.world import gl
from simulator.world.config import AGENT_RADIUS_M, Action, ActionMode, WorldConfig
from simulator.world.errors import RenderError, WorldConfigError, WorldError
from simulator.world.layout import ApartmentLayout, generate_layout
from simulator.world.navigation import NavGrid
from simulator.world.objects import make_entity
from simulator.world.pose import Pose, advance, near_and_facing, turn

# Placement is redrawn (from the same seeded generator) until every object and door is reachable.
MAX_PLACEMENT_TRIES = 100


class ApartmentEnv(gl.MiniWorldEnv):
    """Observations: RGB uint8 ``[size, size, 3]``. Actions: see ``step``.

    ``info`` from ``reset`` and ``step``: ``pose`` (Pose: x, y, z metres, yaw radians), ``t_ns``
    (simulated time, starts at 0, +``config.dt_s`` per step), ``step`` (int), ``collided`` (bool:
    the last move was blocked by a wall or an object and the agent did not move).
    """

    def __init__(self, config: WorldConfig | None = None, *, render_mode: str | None = None) -> None:
        self.config = config if config is not None else WorldConfig()
        if not isinstance(self.config, WorldConfig):
            raise WorldConfigError(f"config must be a WorldConfig, got {type(self.config).__name__}")
        self.layout: ApartmentLayout | None = None
        self.nav: NavGrid | None = None
        self.world_id = 0  # increments on every reset, so caches keyed on it know the world changed
        self._objects: dict[str, Any] = {}
        self._collided = False
        self._t_ns = 0
        self._gl_ready = False
        size = self.config.size
        try:
            # miniworld prints its multisampling fallback on stdout; keep stdout for our own output.
            with contextlib.redirect_stdout(io.StringIO()):
                super().__init__(
                    max_episode_steps=self.config.max_steps,
                    obs_width=size,
                    obs_height=size,
                    window_width=256,
                    window_height=256,
                    params=_camera_params(self.config),
                    render_mode=render_mode,
                )
        except WorldError:
            raise
        except Exception as e:
            if self._gl_ready:
                raise
            raise RenderError(
                f"OpenGL context could not be created ({type(e).__name__}: {e}); {gl.EGL_FIX}"
            ) from e
        if self.config.action_mode is ActionMode.DISCRETE:
            self.action_space = spaces.Discrete(len(Action))
        else:
            hi = np.array([self.config.max_speed_mps, self.config.max_turn_rate_deg_s], dtype=np.float32)
            self.action_space = spaces.Box(low=-hi, high=hi, dtype=np.float32)

    # --- gymnasium API -------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """A new apartment drawn from ``seed`` (gymnasium semantics: None continues the generator)."""
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0
        ):
            raise WorldConfigError(f"seed must be a non-negative int or None, got {seed!r}")
        with contextlib.redirect_stdout(io.StringIO()):
            obs, _ = super().reset(seed=None if seed is None else int(seed), options=options)
        self.world_id += 1
        self._collided = False
        self._t_ns = 0
        return obs, self._info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Apply one action and render the new frame.

        discrete mode: ``action`` is an ``Action`` (or its int): TURN_LEFT / TURN_RIGHT turn by
            ``turn_deg`` degrees; FORWARD / BACK move ``forward_step_m`` metres along / against yaw.
        continuous mode: ``action`` is ``[forward_speed_mps, turn_rate_deg_s]`` (metres per second,
            degrees per second, positive = left), clipped to ``max_speed_mps`` / ``max_turn_rate_deg_s``
            and applied for ``dt_s`` seconds: first the turn, then the move.
        A move that would hit a wall or an object is not made (``info["collided"]`` is True).
        """
        cfg = self.config
        if cfg.action_mode is ActionMode.DISCRETE:
            a = _as_discrete(action)
            if a is Action.TURN_LEFT:
                self.agent.dir = turn(self.agent.dir, cfg.turn_rad)
                self._collided = False
            elif a is Action.TURN_RIGHT:
                self.agent.dir = turn(self.agent.dir, -cfg.turn_rad)
                self._collided = False
            else:
                dist = cfg.forward_step_m if a is Action.FORWARD else -cfg.forward_step_m
                self._collided = not self._try_move(dist)
        else:
            speed, rate = _as_continuous(action, cfg)
            self.agent.dir = turn(self.agent.dir, math.radians(rate) * cfg.dt_s)
            self._collided = speed != 0.0 and not self._try_move(speed * cfg.dt_s)
        self.step_count += 1
        self._t_ns += cfg.dt_ns
        obs = self.render_obs()
        truncated = self.step_count >= cfg.max_steps
        return obs, 0.0, False, truncated, self._info()

    def close(self) -> None:
        super().close()
        if getattr(self, "shadow_window", None) is not None:
            self.shadow_window.close()
            self.shadow_window = None

    # --- ground truth --------------------------------------------------------------------------

    @property
    def pose(self) -> Pose:
        """Current camera pose: x, z on the floor plane and eye height y, metres; yaw radians."""
        return Pose(
            float(self.agent.pos[0]),
            float(self.agent.cam_height),
            float(self.agent.pos[2]),
            float(self.agent.dir),
        )

    @property
    def t_ns(self) -> int:
        """Simulated time of the current frame, nanoseconds since reset."""
        return self._t_ns

    @property
    def object_names(self) -> tuple[str, ...]:
        return tuple(self._objects)

    def object_position(self, name: str) -> tuple[float, float, float]:
        """(x, y, z) of the object's base centre, metres (y = 0, the floor)."""
        ent = self._object(name)
        return (float(ent.pos[0]), float(ent.pos[1]), float(ent.pos[2]))

    def object_positions(self) -> dict[str, tuple[float, float, float]]:
        return {name: self.object_position(name) for name in self._objects}

    def object_radius(self, name: str) -> float:
        """Footprint radius of the object, metres."""
        return float(self._object(name).radius)

    def near_and_facing(self, name: str, pose: Pose | None = None) -> bool:
        """Within ``config.reach_m`` of the object (centre to centre) and facing it within
        ``config.facing_tolerance_deg``; for the current pose unless one is given."""
        x, _, z = self.object_position(name)
        return near_and_facing(
            pose if pose is not None else self.pose,
            (x, z),
            self.config.reach_m,
            self.config.facing_tolerance_deg,
        )

    def room_of(self, pose: Pose | None = None) -> int | None:
        """Index into ``layout.rooms`` of the room the pose stands in."""
        p = pose if pose is not None else self.pose
        return self.layout.room_at(p.x, p.z)

    def set_pose(self, x: float, z: float, yaw: float) -> None:
        """Teleport the agent (metres, radians), e.g. to start a benchmark episode at a known pose.
        Raises WorldError if the agent would overlap a wall or an object there."""
        pos = np.array([float(x), 0.0, float(z)])
        if self.intersect(self.agent, pos, self.agent.radius):
            raise WorldError(f"pose ({x:.2f}, {z:.2f}) overlaps a wall or an object; pick a free spot")
        self.agent.pos = pos
        self.agent.dir = turn(float(yaw), 0.0)
        self._collided = False

    def render_frame(self) -> np.ndarray:
        """Render the current view again: uint8 [size, size, 3]."""
        return self.render_obs()

    # --- world generation (called by miniworld's reset) ---------------------------------------

    def _gen_world(self) -> None:
        self._gl_ready = True
        cfg, rng = self.config, self.np_random
        self.layout = generate_layout(cfg, rng)
        rooms = [
            self.add_rect_room(
                min_x=r.min_x,
                max_x=r.max_x,
                min_z=r.min_z,
                max_z=r.max_z,
                floor_tex=r.floor_tex,
                wall_tex=r.wall_tex,
                ceil_tex=r.ceil_tex,
            )
            for r in self.layout.rooms
        ]
        for d in self.layout.doors:
            lo, hi = d.span
            if d.axis == "x":
                self.connect_rooms(rooms[d.a], rooms[d.b], min_z=lo, max_z=hi)
            else:
                self.connect_rooms(rooms[d.a], rooms[d.b], min_x=lo, max_x=hi)
        if len(self.rooms) != len(rooms):  # shared walls must connect directly, without corridors
            raise WorldError("internal: miniworld added corridor rooms between neighbouring rooms")
        self._gen_static_data()
        for _ in range(MAX_PLACEMENT_TRIES):
            self._place_entities(rooms)
            if self._placement_reachable():
                return
        raise WorldError(
            f"could not place {len(cfg.objects)} objects reachably in {MAX_PLACEMENT_TRIES} tries; "
            "use fewer objects or larger rooms (room_size_m)"
        )

    def _place_entities(self, rooms: list) -> None:
        rng = self.np_random
        self.entities = []
        self._objects = {}
        order = rng.permutation(len(rooms))
        for k, name in enumerate(self.config.objects):
            ent = make_entity(name)
            self.place_entity(ent, room=rooms[order[k % len(rooms)]])
            self._objects[name] = ent
        self.place_agent(room=rooms[int(rng.integers(len(rooms)))])

    def _placement_reachable(self) -> bool:
        """Build the nav grid; True if every object can be reached and every door passed from the agent."""
        cfg = self.config
        obstacles = [(float(e.pos[0]), float(e.pos[2]), float(e.radius)) for e in self._objects.values()]
        self.nav = NavGrid.build(
            self.layout.bounds, self.wall_segs, obstacles, AGENT_RADIUS_M, cfg.nav_cell_m
        )
        reach = self.nav.flood_fill(float(self.agent.pos[0]), float(self.agent.pos[2]))
        if not reach.any():
            return False
        for ox, oz, _ in obstacles:
            if not (self.nav.disc_mask(ox, oz, cfg.reach_m - 0.05) & reach).any():
                return False
        for d in self.layout.doors:
            if not (self.nav.disc_mask(*d.center, 2 * cfg.nav_cell_m) & reach).any():
                return False
        return True

    def _try_move(self, dist: float) -> bool:
        x, z = advance(float(self.agent.pos[0]), float(self.agent.pos[2]), float(self.agent.dir), dist)
        pos = np.array([x, 0.0, z])
        if self.intersect(self.agent, pos, self.agent.radius):
            return False
        self.agent.pos = pos
        return True

    def _object(self, name: str):
        try:
            return self._objects[name]
        except KeyError:
            raise WorldError(f"unknown object {name!r}; this world has {sorted(self._objects)}") from None

    def _info(self) -> dict[str, Any]:
        return {"pose": self.pose, "t_ns": self._t_ns, "step": self.step_count, "collided": self._collided}


def _camera_params(cfg: WorldConfig):
    """miniworld's parameters with our camera and step sizes as the (non-random) defaults."""
    params = gl.DEFAULT_PARAMS.no_random()
    params.set("cam_fov_y", cfg.fov_deg)
    params.set("cam_pitch", cfg.pitch_deg)
    params.set("cam_height", cfg.eye_height_m)
    params.set("cam_fwd_disp", 0.0)
    params.set(
        "forward_step",
        cfg.forward_step_m if cfg.action_mode is ActionMode.DISCRETE else cfg.max_speed_mps * cfg.dt_s,
    )
    params.set("forward_drift", 0.0)
    params.set("turn_step", cfg.turn_deg)
    return params


def _as_discrete(action: Any) -> Action:
    if isinstance(action, np.ndarray) and action.shape == ():
        action = action.item()
    if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)):
        raise WorldConfigError(
            f"discrete action must be an Action or int 0-3, got {action!r}; "
            "for [speed, turn rate] use WorldConfig(action_mode='continuous')"
        )
    try:
        return Action(int(action))
    except ValueError:
        raise WorldConfigError(
            f"discrete action {action} is out of range; use 0-3 ({list(Action)})"
        ) from None


def _as_continuous(action: Any, cfg: WorldConfig) -> tuple[float, float]:
    try:
        a = np.asarray(action, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        a = np.empty(0)
    if a.shape != (2,) or not np.all(np.isfinite(a)):
        raise WorldConfigError(
            f"continuous action must be 2 finite numbers [forward_speed_mps, turn_rate_deg_s], got {action!r}"
        )
    speed = float(np.clip(a[0], -cfg.max_speed_mps, cfg.max_speed_mps))
    rate = float(np.clip(a[1], -cfg.max_turn_rate_deg_s, cfg.max_turn_rate_deg_s))
    return speed, rate
