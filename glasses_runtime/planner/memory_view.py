"""Read-only access to the keyframes of an episodic memory, as the planner needs them.

The memory's query API answers "where/when"; the place graph needs every keyframe of one model
(id, time, session, embedding, pose) at once. This module reads them with plain SELECTs over the
documented v1 schema (docs/memory.md: ``keyframes`` table) through the memory's own connection and
codec, and never writes. If the memory grows a bulk keyframe reader, this is the one place to switch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glasses_runtime.memory import EpisodicMemory, ModelMismatchError
from glasses_runtime.memory.codec import normalise, unpack_many
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


def _model_ref(mem: EpisodicMemory, model_id: str, dim: int | None) -> tuple[int, int]:
    try:
        return mem.model(model_id, dim)
    except ModelMismatchError as e:
        raise GoalDimensionError(str(e)) from None


def keyframes_of(mem: EpisodicMemory, model_id: str, dim: int | None = None) -> KeyframeSet:
    """All keyframes recorded with encoder ``model_id`` (dim checked when given)."""
    ref, mdim = _model_ref(mem, model_id, dim)
    rows = mem.db.execute(
        "SELECT id, t_ns, session_id, emb, pose_x, pose_y, pose_z, pose_yaw FROM keyframes "
        "WHERE model_ref = ? ORDER BY session_id, t_ns, id",
        (ref,),
    ).fetchall()
    poses = np.array([[np.nan if v is None else v for v in r[4:8]] for r in rows], dtype=np.float64).reshape(
        len(rows), 4
    )
    return KeyframeSet(
        ids=np.array([r[0] for r in rows], dtype=np.int64),
        t_ns=np.array([r[1] for r in rows], dtype=np.int64),
        session=np.array([r[2] for r in rows], dtype=np.int64),
        emb=normalise(unpack_many([r[3] for r in rows], mdim)),
        poses=poses,
    )


def keyframe(mem: EpisodicMemory, keyframe_id: int, model_id: str) -> tuple[np.ndarray, tuple | None]:
    """(unit embedding float32 [D], pose or None) of one keyframe; UnknownGoalError if absent."""
    ref, mdim = _model_ref(mem, model_id, None)
    row = mem.db.execute(
        "SELECT emb, pose_x, pose_y, pose_z, pose_yaw, model_ref FROM keyframes WHERE id = ?",
        (int(keyframe_id),),
    ).fetchone()
    if row is None:
        raise UnknownGoalError(
            f"no keyframe {keyframe_id} in {mem.path} (forgotten, or from another memory); pick an id from "
            "`glasses-runtime memory query` or `timeline`"
        )
    if row[5] != ref:
        raise GoalDimensionError(
            f"keyframe {keyframe_id} was recorded with another encoder than {model_id[:12]}; plan with that encoder's "
            "world model or choose a keyframe of this one"
        )
    pose = None if row[1] is None else (row[1], row[2], row[3], row[4])
    return normalise(unpack_many([row[0]], mdim)[0]), pose
