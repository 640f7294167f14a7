"""The token world model as the planner calls it: an exported ``.pte`` or an eager checkpoint.

One operation, one batched call per planner iteration::

    distance, predicted = twm.rollout(context, actions, goal)
    context float32 [C, h, w, Dt]: the last C reduced token grids (``glasses_runtime.tokens.reduce_tokens``),
    oldest first; actions float32 [S, H, A] one-hot; goal float32 [h, w, Dt] -> distance float32 [S, H]
    (1 - mean cosine over grid cells between the predicted state and the goal's, after each step of
    each candidate) and predicted float32 [S, H, h*w, d] (the predicted states, unit cells).

With the goal set to the frame that followed an action, ``distances(...)[s, 0]`` for that action is
the model's prediction error (salience's surprise). ``state(tokens)`` projects grids to the model's
state and ``grid_distance(a, b)`` compares two of them in the same units, for place recognition and
arrival tests. Nothing here imports training code except ``load_token_world_model_file`` on a
``.safetensors`` (the model definition only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from glasses_runtime.engines.pte import PteEngine
from glasses_runtime.planner.errors import WorldModelMismatchError

KIND = "token_world_model"


class _Projection:
    """The model's fixed whitening PCA: reduced tokens [..., Dt] -> states [..., d] (numpy, for place
    recognition outside the program). weight [d, Dt], bias [d]: the checkpoint's ``proj.*``."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray) -> None:
        self.weight_t = np.ascontiguousarray(np.asarray(weight, dtype=np.float32).T)
        self.bias = np.asarray(bias, dtype=np.float32)

    def __call__(self, tokens: np.ndarray) -> np.ndarray:
        return np.asarray(tokens, dtype=np.float32) @ self.weight_t + self.bias


class TokenWorldModelFn:
    """Shared checks and helpers; subclasses implement ``_run(context [1,C,h,w,Dt], actions, goal [1,h,w,Dt])``."""

    grid: tuple[int, int]
    token_dim: int
    action_dim: int
    context: int
    samples: int | None
    horizon: int | None
    encoder_sha256: str | None
    project: _Projection

    def _check(self, context: np.ndarray, goal: np.ndarray) -> None:
        want = (*self.grid, self.token_dim)
        if context.ndim != 4 or tuple(context.shape[1:]) != want or context.shape[0] != self.context:
            raise WorldModelMismatchError(
                f"context must be [{self.context}, {want[0]}, {want[1]}, {want[2]}] reduced token grids, got "
                f"{tuple(context.shape)}; reduce the encoder's tokens with glasses_runtime.tokens.reduce_tokens"
            )
        if tuple(goal.shape) != want:
            raise WorldModelMismatchError(
                f"goal must be one reduced token grid {list(want)}, got {tuple(goal.shape)}; goals need the tokens "
                "of their keyframe (record with an encoder that outputs 'tokens')"
            )

    def rollout(
        self, context: np.ndarray, actions: torch.Tensor, goal: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (distance [S, H] to the goal, predicted states [S, H, h*w, d] with unit cells)."""
        context = np.asarray(context, dtype=np.float32)
        goal = np.asarray(goal, dtype=np.float32)
        self._check(context, goal)
        out = self._run(
            torch.from_numpy(context[None].copy()), actions.float(), torch.from_numpy(goal[None].copy())
        )
        return out[0], out[1]

    def distances(self, context: np.ndarray, actions: torch.Tensor, goal: np.ndarray) -> torch.Tensor:
        """distance [S, H] only (see ``rollout``)."""
        return self.rollout(context, actions, goal)[0]

    def _run(
        self, context: torch.Tensor, actions: torch.Tensor, goal: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def state(self, tokens: np.ndarray) -> np.ndarray:
        """Reduced grids [..., h, w, Dt] -> states float32 [..., h*w, d], each cell scaled to unit length
        (so ``state_distance`` is a mean of dot products)."""
        s = self.project(tokens)
        s = s.reshape(*s.shape[:-3], s.shape[-3] * s.shape[-2], s.shape[-1])
        return s / np.maximum(np.linalg.norm(s, axis=-1, keepdims=True), 1e-6)

    @staticmethod
    def state_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """1 - mean cosine over grid cells (the unit of ``distances``): a [..., h*w, d], b [..., h*w, d] -> [...]."""
        return 1.0 - (np.asarray(a, dtype=np.float32) * np.asarray(b, dtype=np.float32)).sum(-1).mean(-1)


class ModuleTokenWorldModel(TokenWorldModelFn):
    """An eager token world model (``edge_models.world_model.token_model.TokenWorldModel``)."""

    samples: int | None = None
    horizon: int | None = None

    def __init__(self, model: torch.nn.Module, encoder_sha256: str | None = None) -> None:
        from edge_models.world_model.token_model import TokenPlannerStep

        c = model.config
        self.step_module = TokenPlannerStep(model.eval())
        self.grid, self.token_dim, self.action_dim, self.context = (
            tuple(c.grid),
            c.token_dim,
            c.action_dim,
            c.context,
        )
        self.encoder_sha256 = encoder_sha256
        self.project = _Projection(model.proj.weight.detach().numpy(), model.proj.bias.detach().numpy())

    def _run(
        self, context: torch.Tensor, actions: torch.Tensor, goal: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        with torch.inference_mode():
            return tuple(self.step_module(context, actions, goal))


class PteTokenWorldModel(TokenWorldModelFn):
    """An exported token world model (``glasses-export lower token_world_model.safetensors``)."""

    def __init__(self, engine: PteEngine, projection: _Projection) -> None:
        m = engine.manifest
        if m.kind != KIND or len(m.inputs) != 3:
            raise WorldModelMismatchError(
                f"{engine.path} is a '{m.kind}' model, not a token world model; export one with "
                "'glasses-export lower token_world_model.safetensors'"
            )
        self.engine = engine
        _, c, gh, gw, dt = m.inputs[0].shape
        s, h, a = m.inputs[1].shape
        self.grid, self.token_dim, self.context = (gh, gw), dt, c
        self.samples, self.horizon, self.action_dim = s, h, a
        self.encoder_sha256 = (m.normalization or {}).get("encoder_sha256")
        self.project = projection

    def _run(
        self, context: torch.Tensor, actions: torch.Tensor, goal: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        return tuple(self.engine.run_named(context, actions, goal)[k] for k in ("distance", "predicted"))


class StillTokenWorldModel(TokenWorldModelFn):
    """Ablation: a token world model that predicts nothing moves (every step = the newest context grid),
    with the real one's shapes and projection. Planning with it shows what the learned dynamics add."""

    def __init__(self, wm: TokenWorldModelFn) -> None:
        self.grid, self.token_dim, self.action_dim, self.context = (
            wm.grid,
            wm.token_dim,
            wm.action_dim,
            wm.context,
        )
        self.samples, self.horizon, self.encoder_sha256 = wm.samples, wm.horizon, wm.encoder_sha256
        self.project = wm.project

    def _run(
        self, context: torch.Tensor, actions: torch.Tensor, goal: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        now = torch.from_numpy(self.state(context[0, -1].numpy()))  # [h*w, d]
        d = float(self.state_distance(now.numpy(), self.state(goal[0].numpy())))
        s, h = actions.shape[0], actions.shape[1]
        return torch.full((s, h), d), now.expand(s, h, *now.shape)


def load_token_world_model_file(path: str | Path, threads: int = 2) -> TokenWorldModelFn:
    """``.pte`` (with its manifest, and its source checkpoint's projection) -> PteTokenWorldModel;
    ``.safetensors`` token world-model checkpoint -> eager.

    The ``.pte`` computes everything inside; the projection (a [Dt, d] matrix) is read from the
    ``.safetensors`` beside it (``token_world_model.safetensors`` in the same folder, or the manifest's
    source checkpoint) for place recognition outside the program."""
    from edge_models.checkpoint import _load_tensors  # safetensors reader, no training code

    path = Path(path)
    if path.suffix == ".pte":
        engine = PteEngine(path, threads=threads)
        src = engine.manifest.source_checkpoint
        candidates = [path.parent / "token_world_model.safetensors"] + ([Path(src)] if src else [])
        for ckpt in candidates:
            if ckpt.is_file():
                t = _load_tensors(ckpt)
                if "proj.weight" in t and "proj.bias" in t:
                    return PteTokenWorldModel(
                        engine, _Projection(t["proj.weight"].numpy(), t["proj.bias"].numpy())
                    )
        raise WorldModelMismatchError(
            f"{path}: the token world model's projection lives in its checkpoint, and none was found "
            f"(looked for {', '.join(str(c) for c in candidates)}); keep token_world_model.safetensors beside the .pte"
        )
    from edge_models.world_model.token_model import load_token_world_model

    model, meta = load_token_world_model(path)
    return ModuleTokenWorldModel(model, encoder_sha256=meta.get("encoder_sha256"))
