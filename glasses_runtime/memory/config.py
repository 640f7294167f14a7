"""Typed configuration of the episodic memory, validated on construction.

cfg = MemoryConfig(synchronous="FULL", episode_threshold=0.9)
mem = EpisodicMemory.open("memory.db", cfg)
"""

from __future__ import annotations

from dataclasses import dataclass, field

_SYNC_LEVELS = ("NORMAL", "FULL", "EXTRA")


@dataclass(frozen=True)
class IndexConfig:
    """Vector index parameters (faiss IVF with 4-bit scalar codes, exact re-ranking from SQLite).

    flat_below: below this many vectors per model the index is an exact flat inner-product index.
    lists_per_sqrt: IVF list count = lists_per_sqrt * sqrt(n_train).
    nprobe: IVF lists visited per query.
    rerank: candidates fetched from the index before exact re-scoring, as a multiple of k (min 50).
    retrain_growth: the IVF is retrained when the vector count grows past this factor of its training size
        (by the writer, in a background thread, while recording goes on: see indexing.py).
    save_every: the writer saves the index to disk after this many new vectors (and on close).
    """

    flat_below: int = 20_000
    lists_per_sqrt: float = 4.0
    nprobe: int = 32
    rerank: int = 10
    retrain_growth: float = 2.0
    save_every: int = 50_000

    def __post_init__(self) -> None:
        if self.flat_below < 1_000:
            raise ValueError(f"flat_below must be >= 1000 (IVF training needs data), got {self.flat_below}")
        if self.lists_per_sqrt <= 0 or self.nprobe < 1 or self.rerank < 1:
            raise ValueError("lists_per_sqrt must be > 0, nprobe and rerank >= 1")
        if self.retrain_growth <= 1.0:
            raise ValueError(f"retrain_growth must be > 1, got {self.retrain_growth}")
        if self.save_every < 1:
            raise ValueError(f"save_every must be >= 1, got {self.save_every}")


@dataclass(frozen=True)
class RetentionPolicy:
    """What the memory keeps. None disables a limit.

    max_age_s: keyframes/events/episodes older than this (relative to the newest keyframe) are removed.
    max_keyframes: oldest keyframes beyond this count are removed.
    batch: rows deleted per transaction, so retention never holds the write lock for long.
    """

    max_age_s: float | None = None
    max_keyframes: int | None = None
    batch: int = 500

    def __post_init__(self) -> None:
        if self.max_age_s is not None and self.max_age_s <= 0:
            raise ValueError(f"max_age_s must be > 0, got {self.max_age_s}")
        if self.max_keyframes is not None and self.max_keyframes < 0:
            raise ValueError(f"max_keyframes must be >= 0, got {self.max_keyframes}")
        if self.batch < 1:
            raise ValueError(f"batch must be >= 1, got {self.batch}")


@dataclass(frozen=True)
class MemoryConfig:
    """Episodic memory settings.

    synchronous: SQLite synchronous level in WAL mode. FULL (default) fsyncs the WAL at every commit, so an
        acknowledged keyframe survives power loss as well as a process crash; commits are batched so the
        fsync cost is paid per batch, not per keyframe. NORMAL survives process crashes only.
    episode_threshold: cosine similarity to the previous keyframe above which a keyframe joins its episode.
    episode_max_gap_s: a gap longer than this between consecutive keyframes always starts a new episode.
    thumbnail_max_side: thumbnails are resized so their longer side is at most this many pixels.
    thumbnail_quality: JPEG quality of thumbnails (1..100).
    blur_faces: blur faces found by OpenCV's Haar cascade before a thumbnail is stored.
    busy_timeout_ms: how long a connection waits for a lock held by another process.
    """

    synchronous: str = "FULL"
    episode_threshold: float = 0.9
    episode_max_gap_s: float = 30.0
    thumbnail_max_side: int = 160
    thumbnail_quality: int = 80
    blur_faces: bool = True
    busy_timeout_ms: int = 5_000
    index: IndexConfig = field(default_factory=IndexConfig)
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)

    def __post_init__(self) -> None:
        if self.synchronous not in _SYNC_LEVELS:
            raise ValueError(f"synchronous must be one of {_SYNC_LEVELS}, got {self.synchronous!r}")
        if not -1.0 <= self.episode_threshold <= 1.0:
            raise ValueError(f"episode_threshold is a cosine in [-1, 1], got {self.episode_threshold}")
        if self.episode_max_gap_s <= 0:
            raise ValueError(f"episode_max_gap_s must be > 0, got {self.episode_max_gap_s}")
        if not 16 <= self.thumbnail_max_side <= 1024:
            raise ValueError(f"thumbnail_max_side must be in [16, 1024], got {self.thumbnail_max_side}")
        if not 1 <= self.thumbnail_quality <= 100:
            raise ValueError(f"thumbnail_quality must be in [1, 100], got {self.thumbnail_quality}")
        if self.busy_timeout_ms < 0:
            raise ValueError(f"busy_timeout_ms must be >= 0, got {self.busy_timeout_ms}")
