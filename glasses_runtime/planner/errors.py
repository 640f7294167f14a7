"""Exception types of the planner. Every message names the problem and the fix."""

from __future__ import annotations


class PlannerError(Exception):
    """Base class: a planning request that a user can get wrong failed."""


class PlannerConfigError(PlannerError, ValueError):
    """A planner setting is out of range or inconsistent with another."""


class WorldModelMismatchError(PlannerError):
    """The world model's shapes (embedding dim, action dim, samples, horizon) do not fit the planner."""


class GoalError(PlannerError):
    """A goal cannot be turned into a target embedding."""


class GoalDimensionError(GoalError):
    """A goal embedding or image embedding has the wrong dimension for the world model."""


class UnknownGoalError(GoalError):
    """A goal names an object, keyframe or place the memory does not hold."""


class EmptyPlaceGraphError(PlannerError):
    """The memory holds no keyframes to build a place graph from."""
