"""simulator.world: the egocentric 3D apartment (miniworld) the runtime and planner are tested in.

    from simulator.world import ApartmentEnv, WorldConfig, Action, ShortestPathOracle
    env = ApartmentEnv(WorldConfig(rows=2, cols=2, size=96))
    frame, info = env.reset(seed=0)                      # uint8 [96, 96, 3], info["pose"]
    for a in ShortestPathOracle(env).plan("key"):
        frame, _, _, _, info = env.step(a)
    assert env.near_and_facing("key")

Modules: config (WorldConfig, Action), layout (floor plans), objects (registry), gl (headless
miniworld import), env (ApartmentEnv), navigation (NavGrid), oracle (shortest paths), exploration
(policies), source (WorldFrameSource), rollouts (on-disk format), collect (CLI). The names that need
OpenGL load on first use, so config validation and rollout reading never open a GL context.
"""

from __future__ import annotations

import importlib
from typing import Any

from simulator.world.config import Action, ActionMode, WorldConfig
from simulator.world.errors import NoPathError, RenderError, RolloutError, WorldConfigError, WorldError
from simulator.world.pose import Pose, near_and_facing
from simulator.world.rollouts import Rollout, RolloutSet, RolloutWriter

_LAZY = {
    "ApartmentEnv": "simulator.world.env",
    "ShortestPathOracle": "simulator.world.oracle",
    "ObjectGoal": "simulator.world.oracle",
    "PoseGoal": "simulator.world.oracle",
    "RandomWalk": "simulator.world.exploration",
    "WaypointExplorer": "simulator.world.exploration",
    "make_policy": "simulator.world.exploration",
    "WorldFrame": "simulator.world.source",
    "WorldFrameSource": "simulator.world.source",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'simulator.world' has no attribute {name!r}")


__all__ = [
    "Action",
    "ActionMode",
    "ApartmentEnv",
    "NoPathError",
    "ObjectGoal",
    "Pose",
    "PoseGoal",
    "RandomWalk",
    "RenderError",
    "Rollout",
    "RolloutError",
    "RolloutSet",
    "RolloutWriter",
    "ShortestPathOracle",
    "WaypointExplorer",
    "WorldConfig",
    "WorldConfigError",
    "WorldError",
    "WorldFrame",
    "WorldFrameSource",
    "make_policy",
    "near_and_facing",
]
