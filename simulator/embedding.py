"""What the keys embed and compare: the encoder shared with the runtime, goals, enrolled objects.

enc = LockedEncoder(load_encoder("encoder.pte"))     # runtime worker + key handlers, one call at a time
z = enc.embed(crop_rgb)                               # float32 [D], unit norm
enrolled_objects(mem, enc.model_id)                   # {"mug": prototypes [N, D]}
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from glasses_runtime.engines.encoder import Encoder
from glasses_runtime.memory import EpisodicMemory
from simulator.hud import GuidanceLike


@dataclass(frozen=True)
class Goal:
    """label: what the HUD shows. embedding: float32 [D] unit norm. thumb: JPEG of what was chosen."""

    label: str
    embedding: np.ndarray
    thumb: bytes | None = None


# A planner for the HUD: (current embedding [D], pose or None, goal) -> guidance. The runtime's planner
# (glasses_runtime.planner) fits behind it through simulator.planning.SessionPlanner.
Planner = Callable[[np.ndarray, Any, Goal], GuidanceLike]


class LockedEncoder:
    """One encoder shared by the runtime's worker and the key handlers, one call at a time."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.model_id, self.dim, self.kind = inner.model_id, inner.dim, inner.kind
        self.source_id = getattr(inner, "source_id", None)  # the checkpoint a .pte came from
        self.size = getattr(inner, "size", None)
        self.token_grid = inner.token_grid
        self._lock = threading.Lock()

    def preprocess(self, rgb: np.ndarray) -> Any:
        return self.inner.preprocess(rgb)

    def encode(self, x: Any) -> np.ndarray:
        with self._lock:
            return self.inner.encode(x)

    def encode_with_tokens(self, x: Any) -> tuple[np.ndarray, np.ndarray | None]:
        with self._lock:
            return self.inner.encode_with_tokens(x)

    def embed(self, rgb: np.ndarray) -> np.ndarray:
        """RGB uint8 [H, W, 3] -> float32 [D], unit norm."""
        return np.asarray(self.encode(self.preprocess(rgb)), dtype=np.float32).reshape(-1)


def enrolled_objects(mem: EpisodicMemory, model_id: str) -> dict[str, np.ndarray]:
    """Enrolled objects of this model: name -> prototypes float32 [N, D] (unit norm); the memory's own API."""
    return mem.object_prototypes(model_id)
