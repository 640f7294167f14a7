"""Errors a user of edge_models can hit; each message names the problem and the fix."""


class EdgeModelsError(Exception):
    """Base class for user-facing errors in edge_models."""


class ConfigError(EdgeModelsError, ValueError):
    """A preset, config field or input shape is invalid."""


class DataError(EdgeModelsError):
    """A data folder has no usable images or videos."""


class CheckpointError(EdgeModelsError):
    """A checkpoint is missing, corrupt, or from another preset."""
