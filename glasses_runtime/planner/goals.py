"""Goals: what the wearer wants to reach, as a target embedding (and a keyframe/pose when known).

    goal_from_image(rgb, embedder, dim)                  # "take me to what this photo shows"
    goal_from_object(mem, "keys", model_id, dim)         # an enrolled object's last sighting
    goal_from_keyframe(mem, keyframe_id, model_id, dim)  # a remembered moment
    goal_from_embedding(z, dim)

Bad goals raise ``GoalDimensionError`` (wrong size / other encoder) or ``UnknownGoalError``
(unknown object or keyframe, or an object never seen), each naming the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from glasses_runtime.memory import EpisodicMemory, NotFoundError
from glasses_runtime.planner.errors import GoalDimensionError, UnknownGoalError
from glasses_runtime.planner.memory_view import keyframe
from glasses_runtime.planner.mpc import as_unit_vector


class Embedder(Protocol):
    dim: int

    def embed(self, rgb: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Goal:
    """embedding: unit float32 [D]; keyframe_id: the remembered keyframe it is, if any; pose: its pose
    (x, y, z, yaw) if known; label: for the HUD and logs."""

    embedding: np.ndarray
    keyframe_id: int | None = None
    pose: tuple | None = None
    label: str = ""


def goal_from_embedding(z: np.ndarray, dim: int, label: str = "embedding") -> Goal:
    return Goal(as_unit_vector(z, dim, f"goal '{label}'").numpy(), label=label)


def goal_from_image(rgb: np.ndarray, embedder: Embedder, dim: int, label: str = "image") -> Goal:
    """Embed an RGB uint8 [H, W, 3] picture of the place or object with the world model's encoder."""
    if embedder.dim != dim:
        raise GoalDimensionError(
            f"the embedder makes {embedder.dim}-d vectors but the world model works on {dim}-d ones; embed the goal "
            "image with the encoder the world model was trained on"
        )
    return goal_from_embedding(embedder.embed(rgb), dim, label)


def goal_from_keyframe(mem: EpisodicMemory, keyframe_id: int, model_id: str, dim: int) -> Goal:
    emb, pose = keyframe(mem, keyframe_id, model_id)
    g = goal_from_embedding(emb, dim, f"keyframe {keyframe_id}")
    return Goal(g.embedding, int(keyframe_id), pose, g.label)


def goal_from_object(
    mem: EpisodicMemory, name: str, model_id: str, dim: int, threshold: float = 0.7, k: int = 5
) -> Goal:
    """The enrolled object's last sighting: the newest keyframe matching one of its prototypes with
    cosine >= threshold (``mem.where``)."""
    try:
        sightings = mem.where(name, k=k, threshold=threshold)
    except NotFoundError as e:
        raise UnknownGoalError(str(e)) from None
    if not sightings:
        raise UnknownGoalError(
            f"'{name}' is enrolled but no remembered keyframe matches it (cosine >= {threshold}); walk past it with "
            "the glasses on, or lower the threshold"
        )
    last = sightings[0]  # newest first
    g = goal_from_keyframe(mem, last.keyframe_id, model_id, dim)
    return Goal(g.embedding, g.keyframe_id, g.pose, f"{name} (keyframe {last.keyframe_id})")
