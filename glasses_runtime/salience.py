"""Salience: which frames to remember (keyframes) and where one event ends and the next begins.

    sal = Salience(SalienceConfig())
    s = sal.update(z)              # z: float32 [D], unit norm -> Salient(novelty, surprise, keyframe, boundary)

* novelty = cosine distance between z_t and the last keyframe's embedding. A frame whose novelty
  reaches ``novelty_threshold`` becomes a keyframe (so a slow pan yields a keyframe every so often).
* surprise = cosine distance between z_t and what was predicted for it. With a world model loaded
  (``WorldModel.predict(z_prev, action)``) that is its prediction error; without one the prediction is
  "nothing changed" (z_{t-1}), so surprise is the frame-to-frame change. An event boundary is a
  surprise above the running mean + ``k`` x std (exponential moving statistics over the non-boundary
  frames, after ``warmup`` frames) that also reaches ``min_surprise``. Every boundary is a keyframe.

Measured on tests/assets/bikes.mp4 with the bundled vit_pico encoder (fp32 .pte), the defaults give
boundaries at exactly four of its five shot cuts (30, 137, 187, 242) and nowhere else; the cut at 76
changes the embedding no more than camera motion does elsewhere (0.031 vs up to 0.034), so no threshold
separates it with this encoder. ``min_surprise`` is in the encoder's cosine-distance units: recheck it for
another encoder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np


class WorldModel(Protocol):
    """Predicts the next embedding. z_prev: float32 [D]; action: float32 [A] or None -> float32 [D]."""

    def predict(self, z_prev: np.ndarray, action: np.ndarray | None) -> np.ndarray: ...


@dataclass(frozen=True)
class SalienceConfig:
    """novelty_threshold: cosine distance to the last keyframe that makes a new keyframe (0..2).
    k: a boundary needs surprise > mean + k * std. alpha: weight of the newest frame in the moving statistics.
    warmup: frames seen before boundaries may fire. min_surprise: a boundary also needs at least this surprise
    (a still camera has a near-zero std, where any flicker would otherwise be k sigmas).
    """

    novelty_threshold: float = 0.2
    k: float = 4.0
    alpha: float = 0.05
    warmup: int = 10
    min_surprise: float = 0.05

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


@dataclass(frozen=True)
class Salient:
    """novelty, surprise: cosine distances (surprise None on the first frame). threshold: the boundary threshold
    in force for this frame (None during warm-up). surprise_source: "world_model" | "persistence" | None."""

    novelty: float
    surprise: float | None
    threshold: float | None
    keyframe: bool
    boundary: bool
    surprise_source: str | None


def cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return 1.0 - float(a @ b) / max(na * nb, 1e-12)


class Salience:
    """Per-stream salience state (one per runtime; not thread-safe, the runtime calls it from one thread)."""

    def __init__(self, config: SalienceConfig | None = None, world_model: WorldModel | None = None) -> None:
        self.cfg = config or SalienceConfig()
        self.world_model = world_model
        self.last_keyframe: np.ndarray | None = None
        self.prev: np.ndarray | None = None
        self.mean = 0.0
        self.var = 0.0
        self.seen = 0  # surprise values folded into the statistics

    def update(self, z: np.ndarray, action: np.ndarray | None = None) -> Salient:
        z = np.asarray(z, dtype=np.float32)
        novelty = 2.0 if self.last_keyframe is None else cosine_distance(z, self.last_keyframe)
        surprise, source = None, None
        if self.prev is not None:
            if self.world_model is not None:
                surprise, source = (
                    cosine_distance(z, self.world_model.predict(self.prev, action)),
                    "world_model",
                )
            else:
                surprise, source = cosine_distance(z, self.prev), "persistence"
        threshold = self.mean + self.cfg.k * math.sqrt(self.var) if self.seen >= self.cfg.warmup else None
        boundary = (
            surprise is not None
            and threshold is not None
            and surprise > threshold
            and surprise >= self.cfg.min_surprise
        )
        if surprise is not None and not boundary:
            self._fold(surprise)
        keyframe = self.last_keyframe is None or boundary or novelty >= self.cfg.novelty_threshold
        if keyframe:
            self.last_keyframe = z
        self.prev = z
        return Salient(novelty, surprise, threshold, keyframe, boundary, source)

    def _fold(self, s: float) -> None:
        """Exponential moving mean/variance; boundaries are left out so one cut does not mask the next."""
        if self.seen == 0:
            self.mean, self.var = s, 0.0
        else:
            d = s - self.mean
            self.mean += self.cfg.alpha * d
            self.var = (1.0 - self.cfg.alpha) * (self.var + self.cfg.alpha * d * d)
        self.seen += 1
