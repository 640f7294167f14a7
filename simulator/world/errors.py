"""Errors a user of the world can hit; each message names the problem and the fix."""


class WorldError(Exception):
    """Base class for user-facing errors in simulator.world."""


class WorldConfigError(WorldError, ValueError):
    """A WorldConfig field, an action or an argument is invalid."""


class RenderError(WorldError, RuntimeError):
    """OpenGL rendering could not start (missing EGL/Mesa libraries, no display)."""


class NoPathError(WorldError):
    """The oracle found no action sequence from the current pose to the goal."""


class RolloutError(WorldError):
    """A rollout folder is missing, incomplete or not in the expected format."""
