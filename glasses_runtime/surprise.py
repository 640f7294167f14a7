"""Surprise from the token world model: how badly it predicted the frame that just arrived.

    ts = TokenSurprise(load_token_world_model_file("edge_models/weights/token_world_model_...pte"))
    ts.check_encoder(encoder)               # raises WorldModelMismatchError naming the fix
    s = ts.update(tokens, action=2)         # encoder tokens float32 [8, 8, Dt] (or reduced [4, 8, Dt])
    s                                       # None for the first C frames, then 1 - mean cosine in [0, 2]

The world model sees the last C reduced grids (``glasses_runtime.tokens.reduce_tokens``) and predicts
the next state for each of its A one-step actions; the new frame is the goal, so ``distance[s, 0]`` is
the prediction error of action s (0: predicted exactly). Surprise is that error:

* for the action taken, when the frame source knows it (``Frame.action``, an int index:
  0 turn_left, 1 turn_right, 2 forward, 3 back);
* else (glasses without odometry) the smallest error over the A actions: what no action of the
  wearer explains is what the world did by itself.

One program call per frame: the [S, H, A] candidate tensor has its first actions cover all A actions
(an exported ``.pte`` has a fixed S x H, so rows repeat; an eager model gets S = A, H = 1). About 35 ms
on 2 CPU threads for the shipped ``.pte`` (64 x 3 candidates), on top of the encoder.

Scale: the same units as the planner's energy, not the pooled cosine of ``SalienceConfig.min_surprise``;
salience therefore has its own ``min_token_surprise`` (docs/runtime.md, "Surprise from the world model").
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from glasses_runtime.planner.config import DISCRETE_ACTIONS
from glasses_runtime.planner.errors import WorldModelMismatchError
from glasses_runtime.tokens import reduce_tokens

if TYPE_CHECKING:
    from glasses_runtime.planner.token_dynamics import TokenWorldModelFn


def one_step_candidates(action_dim: int, samples: int | None, horizon: int | None) -> torch.Tensor:
    """One-hot actions float32 [S, H, A] whose row s repeats action s % A at every step, so the first
    actions of rows 0..A-1 are the A actions. S, H: the model's fixed sizes (None: A and 1)."""
    s = samples if samples is not None else action_dim
    h = horizon if horizon is not None else 1
    if s < action_dim:
        raise WorldModelMismatchError(
            f"the token world model scores {s} candidates per call, fewer than its {action_dim} actions; "
            f"export it with export_samples >= {action_dim}"
        )
    actions = torch.zeros(s, h, action_dim)
    actions[torch.arange(s), :, torch.arange(s) % action_dim] = 1.0
    return actions


class TokenSurprise:
    """Per-stream state: the last C reduced grids. Not thread-safe (the runtime calls it from one thread).

    model: a loaded token world model (``load_token_world_model_file``: ``.pte`` or eager).
    After each ``update``, ``errors`` holds the prediction error of every one-step action, float32 [A]
    (None before C frames), and ``explained_by`` the index of the smallest."""

    def __init__(self, model: TokenWorldModelFn) -> None:
        self.model = model
        self.context = int(model.context)
        self.action_dim = int(model.action_dim)
        self._actions = one_step_candidates(self.action_dim, model.samples, model.horizon)
        self._grids: deque[np.ndarray] = deque(maxlen=self.context)
        self.errors: np.ndarray | None = None
        self.explained_by: int | None = None

    def check_encoder(self, encoder: object) -> None:
        """Raise ``WorldModelMismatchError`` unless ``encoder`` (the runtime's: ``token_grid``, ``model_id``,
        ``source_id``) gives the token grids this model was trained on."""
        grid = getattr(encoder, "token_grid", None)
        if grid is None:
            raise WorldModelMismatchError(
                "the token world model needs the encoder's 'tokens' output and this encoder has none; "
                "use an encoder .pte exported with tokens (e.g. edge_models/weights/encoder_vit_tiny_int8_xnnpack.pte)"
            )
        reduced = ((grid[0] + 1) // 2, grid[1])
        if reduced != tuple(self.model.grid):
            raise WorldModelMismatchError(
                f"the encoder's {grid[0]}x{grid[1]} token grid reduces to {reduced[0]}x{reduced[1]}, but the token "
                f"world model works on {self.model.grid[0]}x{self.model.grid[1]}; use the encoder it was trained on"
            )
        want = getattr(self.model, "encoder_sha256", None)
        have = {getattr(encoder, "model_id", None), getattr(encoder, "source_id", None)} - {None}
        if want and want not in have:
            raise WorldModelMismatchError(
                f"the token world model was trained on the tokens of encoder {want[:12]}, not of this one "
                f"({str(getattr(encoder, 'model_id', '?'))[:12]}); pass the encoder it was trained on"
            )

    def reset(self) -> None:
        """Forget the context (a new stream, or a jump the world model cannot bridge)."""
        self._grids.clear()
        self.errors, self.explained_by = None, None

    def update(self, tokens: np.ndarray, action: int | np.ndarray | None = None) -> float | None:
        """tokens: the encoder's grid float [h, w, Dt] or an already reduced one (the model's grid);
        action: the action that led to this frame (int index or one-hot [A]) or None when unknown.
        -> surprise (1 - mean cosine over grid cells, 0 = predicted exactly) or None while the
        context is not full yet."""
        grid = self._reduce(tokens)
        a = self._action_index(action)
        surprise = None
        if len(self._grids) == self.context:
            distance, _ = self.model.rollout(np.stack(self._grids), self._actions, grid)
            errors = distance[: self.action_dim, 0].detach().cpu().numpy().astype(np.float32)
            self.errors, self.explained_by = errors, int(errors.argmin())
            surprise = float(errors[a]) if a is not None else float(errors.min())
        self._grids.append(grid)
        return surprise

    def _reduce(self, tokens: np.ndarray) -> np.ndarray:
        t = np.asarray(tokens, dtype=np.float32)
        if t.ndim == 3 and tuple(t.shape[:2]) == tuple(self.model.grid):
            return t
        if t.ndim != 3:
            raise WorldModelMismatchError(
                f"tokens must be one grid [h, w, D] (the encoder's 'tokens' output), got shape {t.shape}"
            )
        return reduce_tokens(t)

    def _action_index(self, action: int | np.ndarray | None) -> int | None:
        if action is None:
            return None
        if isinstance(action, np.ndarray) and action.shape == (self.action_dim,):
            if np.count_nonzero(action) != 1:
                raise ValueError(
                    f"an action vector must be one-hot [{self.action_dim}], got {action.tolist()}"
                )
            return int(np.argmax(action))
        if (
            isinstance(action, (int, np.integer))
            and not isinstance(action, bool)
            and 0 <= action < self.action_dim
        ):
            return int(action)
        raise ValueError(
            f"action must be an index in [0, {self.action_dim}) ({', '.join(DISCRETE_ACTIONS[: self.action_dim])}), "
            f"a one-hot [{self.action_dim}] vector or None, got {action!r}"
        )


def token_surprise_from(spec: object, threads: int = 2) -> TokenSurprise:
    """``RuntimeOptions.token_world_model`` -> a TokenSurprise: a path to a ``.pte`` (manifest and
    ``token_world_model.safetensors`` beside it) or ``.safetensors``, a loaded token world model, or a
    TokenSurprise (used as is)."""
    if isinstance(spec, TokenSurprise):
        return spec
    if isinstance(spec, (str, Path)):
        from glasses_runtime.planner.token_dynamics import load_token_world_model_file

        path = Path(spec)
        if not path.is_file():
            raise WorldModelMismatchError(
                f"token world model {path} does not exist; the shipped one is "
                "edge_models/weights/token_world_model_twm_c2_d32_h32x3_g4x8_s64_t3_fp32_xnnpack.pte"
            )
        return TokenSurprise(load_token_world_model_file(path, threads=threads))
    if all(hasattr(spec, a) for a in ("rollout", "context", "grid", "action_dim")):
        return TokenSurprise(spec)  # type: ignore[arg-type]
    raise WorldModelMismatchError(
        f"token_world_model must be a path, a loaded token world model or a TokenSurprise, got {type(spec).__name__}"
    )
