"""Shared helpers for the memory tests: clustered unit embeddings and a small memory to query."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from glasses_runtime.memory import EpisodicMemory, IndexConfig, KeyframeIn, MemoryConfig

MODEL = "a" * 64
DIM = 32


def clustered(
    n: int, n_clusters: int, dim: int = DIM, noise: float = 0.15, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """-> (vectors float32 [n, dim], centers float32 [n_clusters, dim]); vector i belongs to cluster
    i * n_clusters // n, so consecutive vectors form runs (episodes)."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((n_clusters, dim)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    labels = np.arange(n) * n_clusters // n
    x = centers[labels] + noise / np.sqrt(dim) * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True), centers


def record(
    mem: EpisodicMemory,
    vecs: np.ndarray,
    session: int,
    t0_ns: int = 0,
    step_ns: int = 100_000_000,
    batch: int = 64,
    model: str = MODEL,
    **kw,
) -> list[int]:
    ids: list[int] = []
    for i in range(0, len(vecs), batch):
        ids += mem.add_keyframes(
            [
                KeyframeIn(t0_ns + (i + j) * step_ns, v, model, **kw)
                for j, v in enumerate(vecs[i : i + batch])
            ],
            session,
        )
    return ids


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "memory.db"


@pytest.fixture
def small_cfg() -> MemoryConfig:
    """Switches to the IVF index at 1000 vectors so tests reach the approximate path quickly."""
    return MemoryConfig(
        synchronous="NORMAL", blur_faces=False, index=IndexConfig(flat_below=1000, save_every=500)
    )
