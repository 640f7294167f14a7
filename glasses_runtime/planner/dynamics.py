"""World-model callables the planner can use: an eager module or an exported ``.pte``.

The planner needs one operation, a batched rollout::

    wm.rollout(context, actions) -> predicted
    context [S, C, D] float32 (L2-normalised embeddings, oldest first), actions [S, H, A] float32
    (one-hot for discrete actions) -> predicted [S, H, D]; step h is the embedding after action h.

plus its shapes (``embed_dim``, ``action_dim``, ``context``, and ``samples`` / ``horizon`` when the
program has them fixed, as an exported one does). The runtime never imports training code: an
eager model is any module with that ``rollout`` method and a ``config`` (``load_world_model_file``
builds one from a safetensors checkpoint with the model definition only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import torch

from glasses_runtime.engines.pte import PteEngine
from glasses_runtime.planner.errors import WorldModelMismatchError


class WorldModelFn(Protocol):
    embed_dim: int
    encoder_sha256: str | None  # the encoder checkpoint whose embeddings it was trained on, if known
    action_dim: int
    context: int
    samples: int | None  # fixed S of the program, None if any
    horizon: int | None  # fixed H of the program, None if any

    def rollout(self, context: torch.Tensor, actions: torch.Tensor) -> torch.Tensor: ...


class ModuleWorldModel:
    """An eager world model (any ``nn.Module`` with ``rollout`` and ``config.embed_dim/action_dim/context``)."""

    samples: int | None = None
    horizon: int | None = None

    def __init__(self, module: torch.nn.Module, encoder_sha256: str | None = None) -> None:
        cfg = getattr(module, "config", None)
        if cfg is None or not hasattr(module, "rollout"):
            raise WorldModelMismatchError(
                f"{type(module).__name__} is not a world model: it needs a rollout(context, actions) method and a config"
            )
        self.module = module.eval()
        self.embed_dim, self.action_dim, self.context = cfg.embed_dim, cfg.action_dim, cfg.context
        self.encoder_sha256 = encoder_sha256

    def rollout(self, context: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.module.rollout(context, actions)


class PteWorldModel:
    """An exported world model (``glasses-export lower WM.safetensors``) run by ExecuTorch."""

    def __init__(self, engine: PteEngine) -> None:
        m = engine.manifest
        if m.kind != "world_model" or len(m.inputs) != 2:
            raise WorldModelMismatchError(
                f"{engine.path} is a '{m.kind}' model, not a world model; export one with "
                "'glasses-export lower world_model.safetensors'"
            )
        self.engine = engine
        s, c, d = m.inputs[0].shape
        s2, h, a = m.inputs[1].shape
        self.samples, self.context, self.embed_dim = s, c, d
        self.horizon, self.action_dim = h, a
        self.encoder_sha256 = (m.normalization or {}).get("encoder_sha256")

    def rollout(self, context: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.engine.run(context.float(), actions.float())


def load_world_model_file(path: str | Path, threads: int = 2) -> WorldModelFn:
    """``.pte`` (with its manifest) -> PteWorldModel; ``.safetensors`` world-model checkpoint -> eager."""
    path = Path(path)
    if path.suffix == ".pte":
        return PteWorldModel(PteEngine(path, threads=threads))
    from edge_models.world_model.checkpoint import load_world_model  # model definition only

    model, meta = load_world_model(path)
    return ModuleWorldModel(model, encoder_sha256=meta.get("encoder_sha256"))


def check_encoder(world_model: WorldModelFn, encoder) -> None:
    """Raise ``WorldModelMismatchError`` unless ``world_model`` was trained on ``encoder``'s embeddings.

    ``encoder``: anything with ``model_id``, ``dim`` and optionally ``source_id`` (the runtime's encoders:
    an int8 ``.pte`` counts as the checkpoint its manifest names). A world model that does not say which
    encoder it was trained on is only checked for the embedding size."""
    if int(encoder.dim) != int(world_model.embed_dim):
        raise WorldModelMismatchError(
            f"the encoder makes {encoder.dim}-d embeddings but the world model works on {world_model.embed_dim}-d "
            "ones; use the encoder the world model was trained on (or retrain it: python -m edge_models.world_model.train)"
        )
    want = getattr(world_model, "encoder_sha256", None)
    have = {encoder.model_id, getattr(encoder, "source_id", None)} - {None}
    if want and want not in have:
        raise WorldModelMismatchError(
            f"the world model was trained on the embeddings of encoder {want[:12]}, not of this one "
            f"({encoder.model_id[:12]}); pass the matching --model, or retrain the world model on this encoder"
        )
