"""The oracle: shortest action sequences over the discrete actions, from ground truth.

    oracle = ShortestPathOracle(env)                 # env: a reset ApartmentEnv in discrete mode
    actions = oracle.plan(ObjectGoal("key"))         # list[Action] from the current pose
    actions = oracle.plan(PoseGoal(x=2.0, z=5.0))    # to a place (any heading unless yaw is given)
    a = oracle.act("key")                            # first action of a fresh plan (closed loop)

Search: A* over the agent's exact continuous state (x, z, yaw), moved by the same ``advance`` and
``turn`` the world uses, so a plan replays bit for bit. States are merged when they fall in the same
position bin (``bin_m``, default ``config.nav_cell_m`` = 5 cm) with the same heading; every action
costs 1, so plans are shortest in number of actions up to that merging. A coarser ``bin_m`` (e.g. half
a step) searches about 3x faster for plans about 1% longer (measured on 3x3 apartments). Positions are checked against the conservative navigation grid
(walls and objects respected). The heuristic is the grid's shortest-path distance to the goal region
in metres (scaled down to stay a lower bound) divided by the step length.
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass

import numpy as np

from simulator.world.config import Action, ActionMode
from simulator.world.env import ApartmentEnv
from simulator.world.errors import NoPathError, WorldConfigError, WorldError
from simulator.world.pose import Pose, advance, near_and_facing, turn, wrap_angle

# 8-connected grid paths are at most 1.0824x longer than straight lines (octile vs Euclidean), so
# this keeps the heuristic a lower bound.
_OCTILE_SLACK = 1.0 / 1.0824
_ACTIONS = tuple(Action)
# Goal tests are tightened by this much so that a plan never ends on a threshold's last bit.
_EPS = 1e-6


@dataclass(frozen=True)
class ObjectGoal:
    """Reach the object ``name``: within ``config.reach_m`` of it and facing it."""

    name: str


@dataclass(frozen=True)
class PoseGoal:
    """Reach (x, z) within ``tolerance_m`` metres; if ``yaw`` (radians) is given, also face it within
    ``yaw_tolerance_deg`` (which must be at least half the configured turn angle)."""

    x: float
    z: float
    yaw: float | None = None
    tolerance_m: float = 0.2
    yaw_tolerance_deg: float = 20.0


Goal = ObjectGoal | PoseGoal


class ShortestPathOracle:
    """Plans on ``env``'s current world; caches the heuristic per goal until the world is reset."""

    def __init__(self, env: ApartmentEnv, max_expansions: int = 400_000, bin_m: float | None = None) -> None:
        if env.config.action_mode is not ActionMode.DISCRETE:
            raise WorldConfigError(
                "the oracle plans over discrete actions; use WorldConfig(action_mode='discrete')"
            )
        self.env = env
        if bin_m is not None and not 0 < bin_m <= env.config.forward_step_m:
            raise WorldConfigError(
                f"bin_m={bin_m} must be in (0, forward_step_m={env.config.forward_step_m}]"
            )
        self.max_expansions = max_expansions
        self.bin_m = bin_m
        self.last_expansions = 0
        self._fields: dict[Goal, np.ndarray] = {}
        self._world_id = -1

    def plan(self, goal: Goal | str, start: Pose | None = None) -> list[Action]:
        """Shortest action list from ``start`` (default: the current pose) to ``goal``; [] if already
        there. Raises NoPathError if the goal cannot be reached, WorldError for an unknown object."""
        goal = self._resolve(goal)
        env, cfg = self.env, self.env.config
        if self._world_id != env.world_id:
            self._fields.clear()
            self._world_id = env.world_id
        start = start if start is not None else env.pose
        satisfied = self._goal_test(goal)
        if satisfied(start.x, start.z, start.yaw):
            return []
        field = self._fields.get(goal)
        if field is None:
            field = self._fields[goal] = env.nav.distance_field(self._goal_region(goal))
        nav, step, dtheta, n_head = env.nav, cfg.forward_step_m, cfg.turn_rad, cfg.num_headings
        free, cell, min_x, min_z = nav.free, nav.cell, nav.min_x, nav.min_z
        n_z, n_x = free.shape
        h_scale = _OCTILE_SLACK / step
        slack_m = cell * math.sqrt(2.0)
        bin_m = self.bin_m if self.bin_m is not None else cell

        def lookup(x: float, z: float) -> tuple[int, int] | None:
            ix, iz = math.floor((x - min_x) / cell), math.floor((z - min_z) / cell)
            return (iz, ix) if 0 <= ix < n_x and 0 <= iz < n_z else None

        step_cells = math.ceil(step / cell) + 1

        def heuristic(c: tuple[int, int]) -> float:
            if free[c]:
                return max(0.0, field[c] - slack_m) * h_scale
            # Only start-position states can sit in a blocked cell (miniworld allows standing closer
            # to a wall than the grid's margin); one move reaches a free cell within a step of it.
            d = nav.window_min(field, c[0], c[1], step_cells)
            return max(0.0, d - step - slack_m) * h_scale

        c0 = lookup(start.x, start.z)
        h0 = heuristic(c0) if c0 is not None else math.inf
        if math.isinf(h0):
            raise NoPathError(f"{_describe(goal)} is not reachable from ({start.x:.2f}, {start.z:.2f})")
        tie = itertools.count()
        # A state is (x, z, yaw, heading index); states merge on (x bin, z bin, heading index).
        start_key = (math.floor(start.x / bin_m), math.floor(start.z / bin_m), 0)
        g_best = {start_key: 0}
        parents: dict[tuple, tuple] = {start_key: (None, None, (start.x, start.z, start.yaw, 0))}
        frontier = [(h0, h0, next(tie), 0, start_key)]
        expansions = 0
        while frontier:
            _, _, _, g, k = heapq.heappop(frontier)
            if g > g_best[k]:
                continue
            x, z, yaw, hd = parents[k][2]
            if satisfied(x, z, yaw):
                self.last_expansions = expansions
                return _unwind(parents, k)
            expansions += 1
            if expansions > self.max_expansions:
                break
            g1 = g + 1
            for action in _ACTIONS:
                if action is Action.TURN_LEFT or action is Action.TURN_RIGHT:
                    left = action is Action.TURN_LEFT
                    nxt = (x, z, turn(yaw, dtheta if left else -dtheta), (hd + (1 if left else -1)) % n_head)
                    c = lookup(x, z)
                else:
                    nx, nz = advance(x, z, yaw, step if action is Action.FORWARD else -step)
                    c = lookup(nx, nz)
                    if c is None or not free[c]:
                        continue
                    nxt = (nx, nz, yaw, hd)
                nk = (math.floor(nxt[0] / bin_m), math.floor(nxt[1] / bin_m), nxt[3])
                if g1 < g_best.get(nk, math.inf):
                    g_best[nk] = g1
                    parents[nk] = (k, action, nxt)
                    h = heuristic(c) if c is not None else math.inf
                    heapq.heappush(frontier, (g1 + h, h, next(tie), g1, nk))
        self.last_expansions = expansions
        raise NoPathError(
            f"no path to {_describe(goal)} from ({start.x:.2f}, {start.z:.2f}) within {self.max_expansions} "
            "expansions; the goal may be boxed in by walls or objects"
        )

    def act(self, goal: Goal | str) -> Action | None:
        """The first action of a fresh shortest plan, or None when the goal is already reached."""
        actions = self.plan(goal)
        return actions[0] if actions else None

    def reached(self, goal: Goal | str, pose: Pose | None = None) -> bool:
        """Whether ``pose`` (default: the current pose) satisfies ``goal`` with the configured tolerances."""
        goal = self._resolve(goal)
        p = pose if pose is not None else self.env.pose
        if isinstance(goal, ObjectGoal):
            return self.env.near_and_facing(goal.name, p)
        return _pose_goal_met(goal, p.x, p.z, p.yaw, 0.0)

    # ------------------------------------------------------------------------------------------

    def _resolve(self, goal: Goal | str) -> Goal:
        if isinstance(goal, str):
            goal = ObjectGoal(goal)
        if isinstance(goal, ObjectGoal):
            self.env.object_position(goal.name)  # raises WorldError naming the objects there are
            return goal
        if isinstance(goal, PoseGoal):
            cfg = self.env.config
            if not all(math.isfinite(v) for v in (goal.x, goal.z, goal.tolerance_m)) or goal.tolerance_m <= 0:
                raise WorldConfigError(f"{goal} needs finite x, z and a positive tolerance_m")
            if goal.yaw is not None and goal.yaw_tolerance_deg < cfg.turn_deg / 2:
                raise WorldConfigError(
                    f"yaw_tolerance_deg={goal.yaw_tolerance_deg} < turn_deg / 2 = {cfg.turn_deg / 2}; "
                    "the heading could never match: raise the tolerance"
                )
            if self.env.layout.room_at(goal.x, goal.z) is None:
                raise WorldError(f"{_describe(goal)} is outside the apartment {self.env.layout.bounds}")
            return goal
        raise WorldConfigError(f"goal must be an object name, ObjectGoal or PoseGoal, got {goal!r}")

    def _goal_test(self, goal: Goal):
        cfg = self.env.config
        if isinstance(goal, ObjectGoal):
            ox, _, oz = self.env.object_position(goal.name)
            reach, tol = cfg.reach_m - _EPS, cfg.facing_tolerance_deg - _EPS
            return lambda x, z, yaw: near_and_facing((x, 0.0, z, yaw), (ox, oz), reach, tol)
        return lambda x, z, yaw: _pose_goal_met(goal, x, z, yaw, _EPS)

    def _goal_region(self, goal: Goal) -> np.ndarray:
        nav = self.env.nav
        if isinstance(goal, ObjectGoal):
            ox, _, oz = self.env.object_position(goal.name)
            return nav.disc_mask(ox, oz, self.env.config.reach_m)
        return nav.disc_mask(goal.x, goal.z, goal.tolerance_m)


def _pose_goal_met(goal: PoseGoal, x: float, z: float, yaw: float, eps: float) -> bool:
    if math.hypot(x - goal.x, z - goal.z) > goal.tolerance_m - eps:
        return False
    if goal.yaw is None:
        return True
    return abs(wrap_angle(yaw - goal.yaw)) <= math.radians(goal.yaw_tolerance_deg) - eps


def _unwind(parents: dict, k: tuple) -> list[Action]:
    actions = []
    while parents[k][0] is not None:
        k, action, _ = parents[k]
        actions.append(action)
    return actions[::-1]


def _describe(goal: Goal) -> str:
    if isinstance(goal, ObjectGoal):
        return f"object {goal.name!r}"
    return f"place ({goal.x:.2f}, {goal.z:.2f})"
