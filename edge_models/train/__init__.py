"""JEPA training: ``python -m edge_models.train --help``."""

from edge_models.train.config import TrainConfig
from edge_models.train.loop import JEPA, TrainResult, train

__all__ = ["JEPA", "TrainConfig", "TrainResult", "train"]
