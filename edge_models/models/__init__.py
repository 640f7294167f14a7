"""Model definitions: ViT encoder presets and the JEPA predictor."""

from edge_models.models.predictor import Predictor, build_predictor
from edge_models.models.vit import (
    PRESETS,
    EncoderConfig,
    VisionTransformer,
    build_encoder,
    get_config,
    vit_base,
    vit_pico,
    vit_small,
    vit_tiny,
)

__all__ = [
    "PRESETS",
    "EncoderConfig",
    "Predictor",
    "VisionTransformer",
    "build_encoder",
    "build_predictor",
    "get_config",
    "vit_base",
    "vit_pico",
    "vit_small",
    "vit_tiny",
]
