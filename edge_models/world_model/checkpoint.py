"""World-model checkpoints: safetensors with the config inside, in the project's checkpoint format.

Metadata keys (all strings): ``format`` (glasses-ckpt/1), ``kind`` = "world_model",
``world_model_config`` (WorldModelConfig JSON), ``config`` (the EncoderConfig JSON of the frozen
encoder whose embedding space the model predicts in, so every glasses checkpoint names its encoder
the same way), ``encoder_sha256`` (that encoder file's hash: embeddings of another encoder are
meaningless to this model) and ``train`` (JSON summary of the run: steps, losses, data).
"""

from __future__ import annotations

import json
from pathlib import Path

from edge_models.checkpoint import FORMAT, _atomic_save, _load_tensors, read_metadata
from edge_models.errors import CheckpointError, ConfigError
from edge_models.models.vit import EncoderConfig
from edge_models.world_model.config import WorldModelConfig
from edge_models.world_model.model import WorldModel

KIND = "world_model"


def save_world_model(
    path: str | Path,
    model: WorldModel,
    encoder_config: EncoderConfig,
    encoder_sha256: str,
    train_summary: dict | None = None,
) -> Path:
    """Write the model's weights and configs atomically. Returns the path."""
    if encoder_config.width != model.config.embed_dim:
        raise ConfigError(
            f"the world model predicts {model.config.embed_dim}-d embeddings but the encoder is "
            f"{encoder_config.width}-d; build the model with embed_dim={encoder_config.width}"
        )
    meta = {
        "format": FORMAT,
        "kind": KIND,
        "world_model_config": json.dumps(model.config.to_dict()),
        "config": json.dumps(encoder_config.to_dict()),
        "encoder_sha256": encoder_sha256,
        "train": json.dumps(train_summary or {}),
    }
    path = Path(path)
    _atomic_save(dict(model.state_dict()), meta, path)
    return path


def world_model_config(path: str | Path) -> WorldModelConfig:
    meta = read_metadata(path)
    if meta.get("kind") != KIND:
        raise CheckpointError(
            f"{path} holds a '{meta.get('kind')}' checkpoint, not a world model; train one with "
            "'python -m edge_models.world_model.train'"
        )
    try:
        return WorldModelConfig.from_dict(json.loads(meta["world_model_config"]))
    except (KeyError, json.JSONDecodeError, TypeError, ConfigError) as e:
        raise CheckpointError(
            f"world-model checkpoint {path} has no valid config ({e}); retrain it"
        ) from None


def load_world_model(path: str | Path) -> tuple[WorldModel, dict[str, str]]:
    """Load an eval-mode world model and its checkpoint metadata (encoder_sha256, train, ...)."""
    path = Path(path)
    config = world_model_config(path)
    model = WorldModel(config)
    missing, unexpected = model.load_state_dict(_load_tensors(path), strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not match the world-model architecture (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}); it was written by another version: retrain it"
        )
    return model.eval(), read_metadata(path)
