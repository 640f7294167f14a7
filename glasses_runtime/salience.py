"""Salience: which frames to remember (keyframes) and where one event ends and the next begins.

    sal = Salience(SalienceConfig())
    s = sal.update(z)              # z: float32 [D], unit norm -> Salient(novelty, surprise, keyframe, boundary)

* novelty = cosine distance between z_t and the last keyframe's embedding. A frame whose novelty
  reaches ``novelty_threshold`` becomes a keyframe (so a slow pan yields a keyframe every so often).
* view change (when the encoder gives its token grid): the mean over grid positions of the cosine
  distance between this frame's tokens and the last keyframe's, position by position. A pan or a few
  steps move what sits where long before the pooled embedding notices, so a frame whose view change
  reaches ``view_threshold`` becomes a keyframe: memory then has a keyframe per place, not per scene.
* maximum interval: while the view keeps changing (frame-to-frame change, tokens or pooled, at least
  ``motion_threshold``), a keyframe at least every ``max_interval_s``; a still view stores nothing.
* surprise = how far z_t is from what was predicted for it. With the token world model
  (``token_surprise``, ``glasses_runtime.surprise.TokenSurprise``) and the frame's tokens: its one-step
  prediction error on the token grid for the action taken (the smallest over all actions when the
  action is unknown), in 1 - mean cosine over grid cells. Else with a pooled world model
  (``WorldModel.predict(z_prev, action)``) the cosine distance to its prediction; without one the
  prediction is "nothing changed" (z_{t-1}), so surprise is the frame-to-frame change. An event boundary
  is a surprise above the running mean + ``k`` x std (exponential moving statistics over the
  non-boundary frames of the same source, after ``warmup`` frames) that also reaches ``min_surprise``
  (``min_token_surprise`` on the token path). Every boundary is a keyframe.

Thresholds are in the encoder's cosine-distance units; the defaults are measured with the shipped default
encoder (vit_tiny int8 .pte) on tests/assets/bikes.mp4: boundaries at exactly its five shot cuts (30, 76,
137, 187, 242: pooled distances 0.86-1.09 across a cut, frame-to-frame p99 elsewhere 0.91 only within a
whip pan, which ``min_surprise`` 0.3 keeps out) and nowhere else; 11 keyframes in the 10 s clip (first,
5 boundaries, 3 novelty during the pan, 2 view changes). The old vit_pico needs its own (novelty 0.2,
min_surprise 0.05; its pooled embedding barely moves within a shot). Recheck them for another encoder.
The token path fires at the same five cuts with ``min_token_surprise`` 0.35 (docs/runtime.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

# Floor of a token-world-model boundary, measured with the shipped token world model + default encoder on
# bikes.mp4: 0.475-0.926 at the five cuts, at most 0.205 elsewhere (whip pan); midway. docs/runtime.md.
TOKEN_MIN_SURPRISE = 0.35


class WorldModel(Protocol):
    """Predicts the next embedding. z_prev: float32 [D]; action: the frame's action (float32 [A], an int
    index from ``Frame.action``) or None -> float32 [D]."""

    def predict(self, z_prev: np.ndarray, action: np.ndarray | int | None) -> np.ndarray: ...


class TokenSurpriseSource(Protocol):
    """Surprise on the token grid (``glasses_runtime.surprise.TokenSurprise``): tokens float32 [h, w, D],
    action int index or None -> prediction error in [0, 2], or None while it has too little context."""

    def update(self, tokens: np.ndarray, action: np.ndarray | int | None = None) -> float | None: ...


@dataclass(frozen=True)
class SalienceConfig:
    """novelty_threshold: cosine distance to the last keyframe that makes a new keyframe (0..2).
    k: a boundary needs surprise > mean + k * std. alpha: weight of the newest frame in the moving statistics.
    warmup: frames seen before boundaries may fire. min_surprise: a boundary also needs at least this surprise
    (a still camera has a near-zero std, where any flicker would otherwise be k sigmas). min_token_surprise: the
    same floor for surprise from the token world model (its units: 1 - mean cosine over grid cells).
    view_threshold: cosine distance (mean over token positions) to the last keyframe's tokens that makes a new
    keyframe; None turns the view rule off. motion_threshold: the frame-to-frame change (tokens when given, else
    pooled) above which the view counts as changing. max_interval_s: the longest gap between keyframes while the
    view changes; None turns that rule off.
    """

    novelty_threshold: float = 0.4
    k: float = 4.0
    alpha: float = 0.05
    warmup: int = 10
    min_surprise: float = 0.3
    min_token_surprise: float = TOKEN_MIN_SURPRISE
    view_threshold: float | None = 0.5
    motion_threshold: float = 0.02
    max_interval_s: float | None = 2.0

    def __post_init__(self) -> None:
        if not 0.0 < self.novelty_threshold <= 2.0:
            raise ValueError(
                f"novelty_threshold is a cosine distance in (0, 2], got {self.novelty_threshold}"
            )
        if self.k <= 0:
            raise ValueError(f"k must be > 0, got {self.k}")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.warmup < 1:
            raise ValueError(f"warmup must be >= 1, got {self.warmup}")
        if not 0.0 <= self.min_surprise <= 2.0:
            raise ValueError(f"min_surprise is a cosine distance in [0, 2], got {self.min_surprise}")
        if not 0.0 <= self.min_token_surprise <= 2.0:
            raise ValueError(
                f"min_token_surprise is a grid distance in [0, 2], got {self.min_token_surprise}"
            )
        if self.view_threshold is not None and not 0.0 < self.view_threshold <= 2.0:
            raise ValueError(
                f"view_threshold is a cosine distance in (0, 2] or None, got {self.view_threshold}"
            )
        if not 0.0 <= self.motion_threshold <= 2.0:
            raise ValueError(f"motion_threshold is a cosine distance in [0, 2], got {self.motion_threshold}")
        if self.max_interval_s is not None and self.max_interval_s <= 0:
            raise ValueError(f"max_interval_s must be > 0 seconds or None, got {self.max_interval_s}")


@dataclass(frozen=True)
class Salient:
    """novelty, surprise: cosine distances (surprise None until there is a prediction). threshold: the boundary threshold
    in force for this frame (None during warm-up). surprise_source: "token_world_model" | "world_model" |
    "persistence" | None.
    view_change: token-grid distance to the last keyframe (None without tokens). reason: why this frame is a
    keyframe ("first", "boundary", "novelty", "view", "interval") or None."""

    novelty: float
    surprise: float | None
    threshold: float | None
    keyframe: bool
    boundary: bool
    surprise_source: str | None
    view_change: float | None = None
    reason: str | None = None


def cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return 1.0 - float(a @ b) / max(na * nb, 1e-12)


def unit_tokens(tokens: np.ndarray) -> np.ndarray:
    """[h, w, D] -> [h*w, D] float32, each token unit norm."""
    t = np.asarray(tokens, dtype=np.float32).reshape(-1, tokens.shape[-1])
    return t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)


def grid_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over positions of the cosine distance of unit tokens a, b: [N, D] (same grid)."""
    return 1.0 - float(np.einsum("nd,nd->n", a, b).mean())


class Salience:
    """Per-stream salience state (one per runtime; not thread-safe, the runtime calls it from one thread)."""

    def __init__(
        self,
        config: SalienceConfig | None = None,
        world_model: WorldModel | None = None,
        token_surprise: TokenSurpriseSource | None = None,
    ) -> None:
        self.cfg = config or SalienceConfig()
        self.world_model = world_model
        self.token_surprise = token_surprise
        self.last_keyframe: np.ndarray | None = None
        self.last_keyframe_tokens: np.ndarray | None = None
        self.last_keyframe_t_ns: int | None = None
        self.prev: np.ndarray | None = None
        self.prev_tokens: np.ndarray | None = None
        self.moved = False  # the view changed since the last keyframe
        self.mean = 0.0
        self.var = 0.0
        self.seen = 0  # surprise values folded into the statistics
        self.stats_source: str | None = None  # whose surprise the statistics hold (scales differ)

    def update(
        self,
        z: np.ndarray,
        action: np.ndarray | int | None = None,
        tokens: np.ndarray | None = None,
        t_ns: int | None = None,
    ) -> Salient:
        """z: float32 [D] unit norm; action: what led to this frame (int index, ``Frame.action``, or float32
        [A]) or None; tokens: optional [h, w, D] grid; t_ns: the frame time (the interval rule needs it)."""
        z = np.asarray(z, dtype=np.float32)
        tok = unit_tokens(tokens) if tokens is not None else None
        novelty = 2.0 if self.last_keyframe is None else cosine_distance(z, self.last_keyframe)
        surprise, source = None, None
        if self.token_surprise is not None and tokens is not None:
            surprise, source = self.token_surprise.update(tokens, action), "token_world_model"
        elif self.prev is not None:
            if self.world_model is not None:
                surprise, source = (
                    cosine_distance(z, self.world_model.predict(self.prev, action)),
                    "world_model",
                )
            else:
                surprise, source = cosine_distance(z, self.prev), "persistence"
        if surprise is not None and source != self.stats_source:
            self.mean, self.var, self.seen, self.stats_source = 0.0, 0.0, 0, source
        floor = self.cfg.min_token_surprise if source == "token_world_model" else self.cfg.min_surprise
        threshold = self.mean + self.cfg.k * math.sqrt(self.var) if self.seen >= self.cfg.warmup else None
        boundary = (
            surprise is not None and threshold is not None and surprise > threshold and surprise >= floor
        )
        if surprise is not None and not boundary:
            self._fold(surprise)
        view = None
        if (
            tok is not None
            and self.last_keyframe_tokens is not None
            and tok.shape == self.last_keyframe_tokens.shape
        ):
            view = grid_distance(tok, self.last_keyframe_tokens)
        if self.prev is not None:
            if tok is not None and self.prev_tokens is not None and tok.shape == self.prev_tokens.shape:
                step = grid_distance(tok, self.prev_tokens)
            else:
                step = cosine_distance(z, self.prev)
            self.moved = self.moved or step >= self.cfg.motion_threshold
        reason = self._reason(boundary, novelty, view, t_ns)
        if reason is not None:
            self.last_keyframe, self.last_keyframe_tokens, self.last_keyframe_t_ns = z, tok, t_ns
            self.moved = False
        self.prev, self.prev_tokens = z, tok
        return Salient(novelty, surprise, threshold, reason is not None, boundary, source, view, reason)

    def _reason(self, boundary: bool, novelty: float, view: float | None, t_ns: int | None) -> str | None:
        cfg = self.cfg
        if self.last_keyframe is None:
            return "first"
        if boundary:
            return "boundary"
        if novelty >= cfg.novelty_threshold:
            return "novelty"
        if view is not None and cfg.view_threshold is not None and view >= cfg.view_threshold:
            return "view"
        if (
            cfg.max_interval_s is not None
            and self.moved
            and t_ns is not None
            and self.last_keyframe_t_ns is not None
            and (t_ns - self.last_keyframe_t_ns) / 1e9 >= cfg.max_interval_s
        ):
            return "interval"
        return None

    def _fold(self, s: float) -> None:
        """Exponential moving mean/variance; boundaries are left out so one cut does not mask the next."""
        if self.seen == 0:
            self.mean, self.var = s, 0.0
        else:
            d = s - self.mean
            self.mean += self.cfg.alpha * d
            self.var = (1.0 - self.cfg.alpha) * (self.var + self.cfg.alpha * d * d)
        self.seen += 1
