"""Compact embedding and token storage, and the records the memory takes in and gives back.

An embedding is stored as int8 codes with one float32 scale: ``v ~= scale * codes``, where
``scale = max|v| / 127``. For an L2-normalised 192-d vector that is 196 bytes instead of 768, and the
cosine error is below 1e-3, far under the gaps the queries threshold on.

A keyframe's token grid [h, w, D] (``glasses_runtime.tokens.reduce_tokens`` of the encoder's tokens)
is stored the same way per token vector, with a float16 scale: h*w little-endian float16 scales, then
h*w*D int8 codes, ``h * w * (D + 2)`` bytes (6,208 for [4, 8, 192] instead of 24,576 as float32).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from glasses_runtime.memory.errors import ModelMismatchError

_SCALE = struct.Struct("<f")
_TINY_F16 = np.float16(2.0**-24)  # smallest positive float16: a scale never rounds to zero
TOKEN_MAX = 127.0 * float(np.finfo(np.float16).max)  # larger values would overflow the float16 scale


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


def token_bytes(h: int, w: int, d: int) -> int:
    """Stored size of an [h, w, d] token grid: h*w float16 scales + h*w*d int8 codes."""
    return h * w * (d + 2)


def pack_tokens(tokens: np.ndarray) -> bytes:
    """float [h, w, D] -> h*w*(D + 2) bytes: per token vector a float16 scale max|x|/127, then int8 codes."""
    t = np.asarray(tokens, dtype=np.float32)
    h, w, d = t.shape
    v = t.reshape(h * w, d)
    # The codes are made with the float16 scale that is stored, so rounding it costs no extra error.
    scale = np.maximum((np.abs(v).max(axis=1) / 127.0).astype("<f2"), _TINY_F16)
    codes = np.clip(np.rint(v / scale.astype(np.float32)[:, None]), -127, 127).astype(np.int8)
    return scale.tobytes() + codes.tobytes()


def unpack_tokens_many(blobs: list[bytes], h: int, w: int, d: int) -> np.ndarray:
    """N blobs of one grid shape -> float32 [N, h, w, d]. ValueError when a blob has the wrong size."""
    n, size = h * w, token_bytes(h, w, d)
    if any(len(b) != size for b in blobs):
        raise ValueError(f"a stored token grid is not {size} bytes, as [{h}, {w}, {d}] needs")
    if not blobs:
        return np.zeros((0, h, w, d), dtype=np.float32)
    raw = np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(len(blobs), size)
    scales = raw[:, : 2 * n].copy().view("<f2").astype(np.float32)  # [N, h*w]
    codes = raw[:, 2 * n :].view(np.int8).reshape(len(blobs), n, d)
    return (codes.astype(np.float32) * scales[:, :, None]).reshape(len(blobs), h, w, d)


def unpack_tokens(blob: bytes, h: int, w: int, d: int) -> np.ndarray:
    """h*w*(d + 2) bytes -> float32 [h, w, d]."""
    return unpack_tokens_many([blob], h, w, d)[0]


def check_tokens(tokens: np.ndarray, embedding: np.ndarray) -> None:
    """Raise ModelMismatchError unless tokens is a finite real grid [h, w, D] with D = the embedding's dim."""
    t = np.asarray(tokens)
    if t.ndim != 3 or t.size == 0 or t.dtype.kind not in "fiu":
        raise ModelMismatchError(
            f"keyframe tokens must be a float grid [h, w, D], got {t.dtype} {t.shape}; pass "
            "glasses_runtime.tokens.reduce_tokens(the encoder's tokens output)"
        )
    dim = np.shape(embedding)[-1] if np.ndim(embedding) == 1 else None
    if t.shape[2] != dim:
        raise ModelMismatchError(
            f"keyframe tokens have D = {t.shape[2]} but the embedding has shape {np.shape(embedding)}; store "
            "the token grid of the encoder pass that made the embedding"
        )
    if not np.isfinite(t).all() or np.abs(t).max() > TOKEN_MAX:
        raise ModelMismatchError(
            f"keyframe tokens hold NaN, infinity or values beyond +-{TOKEN_MAX:.3g}; check the encoder output"
        )


def normalise(v: np.ndarray) -> np.ndarray:
    """float32 [..., D] -> unit L2 norm along the last axis (zero vectors stay zero)."""
    v = np.asarray(v, dtype=np.float32)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12)


Pose = tuple[float, float, float, float]  # x, y, z in metres, yaw in radians

T_NS_MAX = 2**63 - 1  # SQLite INTEGER


def check_t_ns(t_ns: object, what: str) -> int:
    """A timestamp as the memory stores it: an integer number of nanoseconds in [0, 2**63). Floats
    (NaN, infinities, fractions), bools, strings and out-of-range values raise ValueError naming the
    record, here on the producer's thread, so they can never fail (or kill) a writer's batch."""
    if isinstance(t_ns, (bool, np.bool_)) or not isinstance(t_ns, (int, np.integer)):
        raise ValueError(
            f"{what} t_ns must be an integer number of nanoseconds, got {type(t_ns).__name__} {t_ns!r:.40}; "
            "use time.monotonic_ns() or int(seconds * 1e9)"
        )
    t = int(t_ns)
    if not 0 <= t <= T_NS_MAX:
        raise ValueError(f"{what} t_ns must be in [0, 2**63), got {t}")
    return t


@dataclass(frozen=True)
class KeyframeIn:
    """One keyframe to record.

    t_ns: monotonic timestamp in nanoseconds. embedding: float32 [D] from the encoder `model_id`.
    image: optional RGB uint8 [H, W, 3]; it becomes a JPEG thumbnail (faces blurred, maybe encrypted).
    pose: optional (x, y, z, yaw). source: where the frame came from ("camera", "sim", ...).
    tokens: optional float [h, w, D] token grid of the same encoder pass (``reduce_tokens`` of the
    encoder's tokens), stored int8 (``pack_tokens``); D must equal the embedding's dim.
    """

    t_ns: int
    embedding: np.ndarray
    model_id: str
    image: np.ndarray | None = None
    pose: Pose | None = None
    source: str = ""
    tokens: np.ndarray | None = None

    def __post_init__(self) -> None:
        # Checked here, on the producer's thread, so a bad record never fails a writer's whole batch.
        object.__setattr__(self, "t_ns", check_t_ns(self.t_ns, "a keyframe's"))
        if self.tokens is not None:
            check_tokens(self.tokens, self.embedding)


@dataclass(frozen=True)
class KeyframeTable:
    """Every keyframe of one model at once (``EpisodicMemory.keyframe_table``), sorted by (session, t_ns, id).

    ids, t_ns, session: int64 [N]. emb: float32 [N, D], unit norm (decoded from the int8 codes).
    poses: float64 [N, 4] (x, y, z, yaw; NaN rows where the pose is unknown).
    tokens: float32 [N, h, w, D] token grids (zeros where has_tokens is False), or None when they were
    not asked for or no keyframe of the selection has one. has_tokens: bool [N], which keyframes have a
    stored grid (filled also when tokens were not asked for).
    """

    ids: np.ndarray
    t_ns: np.ndarray
    session: np.ndarray
    emb: np.ndarray
    poses: np.ndarray
    tokens: np.ndarray | None
    has_tokens: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class EventIn:
    """A timestamped event: kind is e.g. "speech", "surprise", "mark"; data an optional audio clip."""

    t_ns: int
    kind: str
    text: str | None = None
    data: bytes | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "t_ns", check_t_ns(self.t_ns, "an event's"))


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
