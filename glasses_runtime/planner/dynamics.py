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
    action_dim: int
    context: int
    samples: int | None  # fixed S of the program, None if any
    horizon: int | None  # fixed H of the program, None if any

    def rollout(self, context: torch.Tensor, actions: torch.Tensor) -> torch.Tensor: ...


class ModuleWorldModel:
    """An eager world model (any ``nn.Module`` with ``rollout`` and ``config.embed_dim/action_dim/context``)."""

    samples: int | None = None
    horizon: int | None = None

    def __init__(self, module: torch.nn.Module) -> None:
        cfg = getattr(module, "config", None)
        if cfg is None or not hasattr(module, "rollout"):
            raise WorldModelMismatchError(
                f"{type(module).__name__} is not a world model: it needs a rollout(context, actions) method and a config"
            )
        self.module = module.eval()
        self.embed_dim, self.action_dim, self.context = cfg.embed_dim, cfg.action_dim, cfg.context

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

    def rollout(self, context: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.engine.run(context.float(), actions.float())


def load_world_model_file(path: str | Path, threads: int = 2) -> WorldModelFn:
    """``.pte`` (with its manifest) -> PteWorldModel; ``.safetensors`` world-model checkpoint -> eager."""
    path = Path(path)
    if path.suffix == ".pte":
        return PteWorldModel(PteEngine(path, threads=threads))
    from edge_models.world_model.checkpoint import load_world_model  # model definition only

    model, _ = load_world_model(path)
    return ModuleWorldModel(model)
