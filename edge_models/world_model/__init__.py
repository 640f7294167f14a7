"""The action-conditioned world model on frozen encoder embeddings (see docs/planner.md).

    from edge_models.world_model import WorldModel, WorldModelConfig, load_world_model
    model, meta = load_world_model("runs/wm/world_model.safetensors")
    preds = model.rollout(context, actions)     # [S, C, D], [S, H, A] -> [S, H, D]

Train with ``python -m edge_models.world_model.train``; export with ``glasses-export lower``.
"""

from edge_models.world_model.checkpoint import load_world_model, save_world_model, world_model_config
from edge_models.world_model.config import TrainConfig, WorldModelConfig
from edge_models.world_model.model import WorldModel, WorldModelRollout

__all__ = [
    "TrainConfig",
    "WorldModel",
    "WorldModelConfig",
    "WorldModelRollout",
    "load_world_model",
    "save_world_model",
    "world_model_config",
]
