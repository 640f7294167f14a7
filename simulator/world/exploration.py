"""Seeded exploration policies that drive the world for data collection and for the benchmark's
"the wearer explores" phase.

    policy = make_policy("waypoint", env, seed=0)   # or "random"
    action = policy.act()                           # reads env's pose / last collision flag
    frame, _, _, _, info = env.step(action)
    policy.observe(info)

random: a persistent random walk. Discrete: holds an action for a few steps (forward most often),
    and turns away for a random number of steps after bumping into something. Continuous: forward
    speed and turn rate follow a smooth random process (Ornstein-Uhlenbeck on the turn rate).
waypoint: picks a random reachable spot in the apartment, walks there along the oracle's shortest
    path, sometimes looks around on arrival, then picks the next one. It covers rooms far better
    than a random walk. Discrete only.
Both draw only from their own generator, so a (world seed, policy seed) pair fixes the rollout.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from simulator.world.config import Action, ActionMode
from simulator.world.env import ApartmentEnv
from simulator.world.errors import NoPathError, WorldConfigError
from simulator.world.oracle import PoseGoal, ShortestPathOracle


class Policy(Protocol):
    def act(self) -> Any: ...

    def observe(self, info: dict) -> None: ...


class RandomWalk:
    """Persistent random walk; ``act`` returns an ``Action`` (discrete) or float32 [2] (continuous)."""

    def __init__(
        self, env: ApartmentEnv, seed: int, forward_prob: float = 0.65, back_prob: float = 0.05
    ) -> None:
        if not (0 <= forward_prob <= 1 and 0 <= back_prob <= 1 - forward_prob):
            raise WorldConfigError("RandomWalk needs 0 <= forward_prob and back_prob <= 1 - forward_prob")
        self.env = env
        self.rng = np.random.default_rng(seed)
        self.forward_prob, self.back_prob = forward_prob, back_prob
        self._held: list[Any] = []
        self._collided = False
        self._turn_rate = 0.0

    def act(self) -> Any:
        if self.env.config.action_mode is ActionMode.CONTINUOUS:
            return self._act_continuous()
        if self._collided:
            self._collided = False
            turn = Action.TURN_LEFT if self.rng.random() < 0.5 else Action.TURN_RIGHT
            self._held = [turn] * int(self.rng.integers(2, self.env.config.num_headings // 2 + 2))
        if not self._held:
            u = self.rng.random()
            if u < self.forward_prob:
                self._held = [Action.FORWARD] * int(self.rng.integers(2, 9))
            elif u < self.forward_prob + self.back_prob:
                self._held = [Action.BACK] * int(self.rng.integers(1, 3))
            else:
                turn = Action.TURN_LEFT if self.rng.random() < 0.5 else Action.TURN_RIGHT
                self._held = [turn] * int(self.rng.integers(1, 4))
        return self._held.pop()

    def _act_continuous(self) -> np.ndarray:
        cfg = self.env.config
        if self._collided:
            self._collided = False
            self._turn_rate = float(np.sign(self.rng.standard_normal()) * cfg.max_turn_rate_deg_s)
            return np.array([0.0, self._turn_rate], dtype=np.float32)
        # OU process: turn rate drifts back to 0 with a 1 s time constant.
        theta, sigma = cfg.dt_s / 1.0, 0.5 * cfg.max_turn_rate_deg_s * np.sqrt(cfg.dt_s)
        self._turn_rate += -theta * self._turn_rate + sigma * self.rng.standard_normal()
        self._turn_rate = float(np.clip(self._turn_rate, -cfg.max_turn_rate_deg_s, cfg.max_turn_rate_deg_s))
        speed = cfg.max_speed_mps * float(self.rng.uniform(0.3, 1.0))
        return np.array([speed, self._turn_rate], dtype=np.float32)

    def observe(self, info: dict) -> None:
        if info.get("collided"):
            self._collided = True
            self._held = []


class WaypointExplorer:
    """Walks oracle shortest paths between random reachable spots; ``act`` returns an ``Action``."""

    def __init__(
        self, env: ApartmentEnv, seed: int, min_hop_m: float = 2.0, look_around_prob: float = 0.3
    ) -> None:
        if env.config.action_mode is not ActionMode.DISCRETE:
            raise WorldConfigError(
                "the waypoint explorer is discrete only; use --policy random for continuous"
            )
        self.env = env
        self.rng = np.random.default_rng(seed)
        # Coarser state merging: legs come out a few % longer than shortest, found ~3x faster.
        self.oracle = ShortestPathOracle(env, max_expansions=100_000, bin_m=env.config.forward_step_m / 2)
        self.min_hop_m, self.look_around_prob = min_hop_m, look_around_prob
        self._queue: list[Action] = []

    def act(self) -> Action:
        if not self._queue:
            self._queue = self._next_leg()
        return self._queue.pop(0)

    def observe(self, info: dict) -> None:
        if info.get("collided"):  # cannot happen on an oracle path; replan rather than trust it
            self._queue = []

    def _next_leg(self) -> list[Action]:
        env = self.env
        pose = env.pose
        reach = env.nav.flood_fill(pose.x, pose.z)
        cells = np.argwhere(reach)
        if len(cells) == 0:  # wedged off the grid (cannot happen after reset); shake loose
            return [Action.TURN_LEFT]
        for _ in range(20):
            iz, ix = cells[int(self.rng.integers(len(cells)))]
            x, z = env.nav.center_of(int(iz), int(ix))
            if np.hypot(x - pose.x, z - pose.z) < self.min_hop_m:
                continue
            try:
                leg = self.oracle.plan(PoseGoal(x=x, z=z, tolerance_m=0.3))
            except NoPathError:
                continue
            if leg:
                if self.rng.random() < self.look_around_prob:
                    turn = Action.TURN_LEFT if self.rng.random() < 0.5 else Action.TURN_RIGHT
                    leg += [turn] * env.config.num_headings
                return leg
        return [Action.TURN_LEFT if self.rng.random() < 0.5 else Action.TURN_RIGHT]


def balanced_walk(env: ApartmentEnv, seed: int) -> RandomWalk:
    """A random walk that backs up as often as a world model needs to learn it (25 % of the runs of
    moves; the default walk backs up in about 1 % of its steps): data for the token world model."""
    return RandomWalk(env, seed, forward_prob=0.45, back_prob=0.25)


POLICIES = {"random": RandomWalk, "waypoint": WaypointExplorer, "balanced": balanced_walk}


def make_policy(name: str, env: ApartmentEnv, seed: int) -> Policy:
    """An exploration policy by name (``POLICIES``), seeded."""
    try:
        factory = POLICIES[name]
    except KeyError:
        raise WorldConfigError(f"unknown policy {name!r}; choose from {sorted(POLICIES)}") from None
    return factory(env, seed)
