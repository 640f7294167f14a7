"""Read-only access to the keyframes of an episodic memory, as the planner needs them.

The memory's query API answers "where/when"; the place graph needs every keyframe of one model
(id, time, session, embedding, pose) at once. This module reads them through the memory's bulk reader
(``EpisodicMemory.keyframe_table``), never SQL, and turns the memory's errors into the planner's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glasses_runtime.memory import EpisodicMemory, ModelMismatchError, NotFoundError
from glasses_runtime.planner.errors import GoalDimensionError, UnknownGoalError


@dataclass(frozen=True)
class KeyframeSet:
    """ids int64 [N]; t_ns int64 [N]; session int64 [N]; emb float32 [N, D] (unit norm);
    poses float64 [N, 4] (x, y, z, yaw; NaN rows where the pose is unknown). Sorted by (session, t_ns)."""

    ids: np.ndarray
    t_ns: np.ndarray
    session: np.ndarray
    emb: np.ndarray
    poses: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


def _check_model(mem: EpisodicMemory, model_id: str, dim: int | None) -> None:
    try:
        mem.model(model_id, dim)
    except ModelMismatchError as e:
        raise GoalDimensionError(str(e)) from None


def keyframes_of(mem: EpisodicMemory, model_id: str, dim: int | None = None) -> KeyframeSet:
    """All keyframes recorded with encoder ``model_id`` (dim checked when given)."""
    _check_model(mem, model_id, dim)
    t = mem.keyframe_table(model_id, dim)
    return KeyframeSet(ids=t.ids, t_ns=t.t_ns, session=t.session, emb=t.emb, poses=t.poses)


def keyframe(mem: EpisodicMemory, keyframe_id: int, model_id: str) -> tuple[np.ndarray, tuple | None]:
    """(unit embedding float32 [D], pose or None) of one keyframe; UnknownGoalError if absent."""
    _check_model(mem, model_id, None)
    try:
        t = mem.keyframe_table(model_id, ids=[int(keyframe_id)])
    except NotFoundError:
        raise UnknownGoalError(
            f"no keyframe {keyframe_id} in {mem.path} (forgotten, or from another memory); pick an id from "
            "`glasses-runtime memory query` or `timeline`"
        ) from None
    except ModelMismatchError:
        raise GoalDimensionError(
            f"keyframe {keyframe_id} was recorded with another encoder than {model_id[:12]}; plan with that encoder's "
            "world model or choose a keyframe of this one"
        ) from None
    pose = None if np.isnan(t.poses[0, 0]) else tuple(float(v) for v in t.poses[0])
    return t.emb[0], pose
