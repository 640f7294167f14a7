"""JEPA masks: I-JEPA multi-block (images) and V-JEPA tubes (video)."""

from edge_models.masks.blocks import MaskPair
from edge_models.masks.multiblock import MultiBlockConfig, MultiBlockMasks
from edge_models.masks.tube import DEFAULT_TUBES, TubeConfig, TubeMasks

__all__ = ["DEFAULT_TUBES", "MaskPair", "MultiBlockConfig", "MultiBlockMasks", "TubeConfig", "TubeMasks"]
