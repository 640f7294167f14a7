"""Compact embedding storage and the records the memory takes in and gives back.

An embedding is stored as int8 codes with one float32 scale: ``v ~= scale * codes``, where
``scale = max|v| / 127``. For an L2-normalised 192-d vector that is 196 bytes instead of 768, and the
cosine error is below 1e-3, far under the gaps the queries threshold on.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

_SCALE = struct.Struct("<f")


def pack_embedding(v: np.ndarray) -> bytes:
    """float32 [D] -> 4 + D bytes (float32 scale, int8 codes)."""
    v = np.asarray(v, dtype=np.float32)
    peak = float(np.abs(v).max()) if v.size else 0.0
    scale = peak / 127.0 if peak > 0 else 1.0
    codes = np.clip(np.rint(v / scale), -127, 127).astype(np.int8)
    return _SCALE.pack(scale) + codes.tobytes()


def pack_many(v: np.ndarray) -> list[bytes]:
    """float32 [N, D] -> N blobs as pack_embedding makes them, vectorised."""
    v = np.asarray(v, dtype=np.float32)
    peak = np.abs(v).max(axis=1, keepdims=True)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype("<f4")
    raw = np.empty((len(v), 4 + v.shape[1]), dtype=np.uint8)
    raw[:, :4] = scale.view(np.uint8)
    raw[:, 4:] = np.clip(np.rint(v / scale), -127, 127).astype(np.int8).view(np.uint8)
    return [r.tobytes() for r in raw]


def unpack_embedding(blob: bytes) -> np.ndarray:
    """4 + D bytes -> float32 [D]."""
    (scale,) = _SCALE.unpack_from(blob)
    return np.frombuffer(blob, dtype=np.int8, offset=4).astype(np.float32) * np.float32(scale)


def unpack_many(blobs: list[bytes], dim: int) -> np.ndarray:
    """N blobs of one model -> float32 [N, D], without a Python loop per element."""
    if not blobs:
        return np.zeros((0, dim), dtype=np.float32)
    raw = np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(len(blobs), 4 + dim)
    scales = raw[:, :4].copy().view("<f4")  # [N, 1]
    return raw[:, 4:].view(np.int8).astype(np.float32) * scales


def normalise(v: np.ndarray) -> np.ndarray:
    """float32 [..., D] -> unit L2 norm along the last axis (zero vectors stay zero)."""
    v = np.asarray(v, dtype=np.float32)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12)


Pose = tuple[float, float, float, float]  # x, y, z in metres, yaw in radians


@dataclass(frozen=True)
class KeyframeIn:
    """One keyframe to record.

    t_ns: monotonic timestamp in nanoseconds. embedding: float32 [D] from the encoder `model_id`.
    image: optional RGB uint8 [H, W, 3]; it becomes a JPEG thumbnail (faces blurred, maybe encrypted).
    pose: optional (x, y, z, yaw). source: where the frame came from ("camera", "sim", ...).
    """

    t_ns: int
    embedding: np.ndarray
    model_id: str
    image: np.ndarray | None = None
    pose: Pose | None = None
    source: str = ""


@dataclass(frozen=True)
class EventIn:
    """A timestamped event: kind is e.g. "speech", "surprise", "mark"; data an optional audio clip."""

    t_ns: int
    kind: str
    text: str | None = None
    data: bytes | None = None


@dataclass(frozen=True)
class Moment:
    """A remembered keyframe returned by a query. score: cosine similarity to the query."""

    keyframe_id: int
    t_ns: int
    score: float
    session_id: int
    episode_id: int | None
    pose: Pose | None
    source: str
    has_thumbnail: bool

    def to_json(self) -> dict:
        return {
            "keyframe_id": self.keyframe_id,
            "t_ns": self.t_ns,
            "score": round(self.score, 6),
            "session_id": self.session_id,
            "episode_id": self.episode_id,
            "pose": list(self.pose) if self.pose else None,
            "source": self.source,
            "has_thumbnail": self.has_thumbnail,
        }


@dataclass(frozen=True)
class Episode:
    """A consolidated run of similar consecutive keyframes, with its representative keyframe."""

    episode_id: int
    session_id: int
    start_ns: int
    end_ns: int
    n_keyframes: int
    representative: Moment | None

    def to_json(self) -> dict:
        return {
            "episode_id": self.episode_id,
            "session_id": self.session_id,
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "n_keyframes": self.n_keyframes,
            "representative": self.representative.to_json() if self.representative else None,
        }
