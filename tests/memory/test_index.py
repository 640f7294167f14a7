"""The vector index is derived data: recall vs exact, rebuilt when missing/corrupt/stale, deletions propagate."""

from __future__ import annotations

import numpy as np
from conftest import MODEL, clustered, record

from glasses_runtime.memory import EpisodicMemory
from glasses_runtime.memory.vector_index import ModelIndex


def _exact_top(vecs: np.ndarray, q: np.ndarray, k: int) -> set[int]:
    return {int(i) + 1 for i in np.argsort(-(vecs @ q))[:k]}


def test_ivf_recall_against_exact(db, small_cfg):
    vecs, _ = clustered(3000, 30, noise=0.6, seed=1)
    with EpisodicMemory.open(db, small_cfg) as mem:
        record(mem, vecs, mem.start_session("camera"), batch=500)
        assert mem.stats()["models"][0]["index"] == "ivf"
        queries = vecs[::97] + 0.05 * np.random.default_rng(2).standard_normal((31, vecs.shape[1])).astype(np.float32)
        recall = np.mean([len({m.keyframe_id for m in mem.search(q, MODEL, k=10)} & _exact_top(vecs, q, 10)) / 10
                          for q in queries / np.linalg.norm(queries, axis=1, keepdims=True)])
    assert recall >= 0.9


def test_index_rebuilt_when_missing_or_corrupt(db, small_cfg):
    vecs, centers = clustered(1500, 3)
    with EpisodicMemory.open(db, small_cfg) as mem:
        record(mem, vecs, mem.start_session("camera"))
    data, meta = ModelIndex.paths(db.with_name(db.name + ".index"), MODEL)
    assert data.exists() and meta.exists()
    with EpisodicMemory.open(db, small_cfg) as mem:
        assert mem.index_report[MODEL] == "loaded"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2: len(raw) // 2 + 64] = b"\xff" * 64
    data.write_bytes(bytes(raw))
    with EpisodicMemory.open(db, small_cfg) as mem:
        assert mem.index_report[MODEL].startswith("rebuilt (corrupt")
        assert mem.stats()["models"][0]["indexed"] == 1500
        assert all(1000 < m.keyframe_id <= 1500 for m in mem.search(centers[2], MODEL, k=10))
    data.unlink()
    with EpisodicMemory.open(db, small_cfg, readonly=True) as mem:
        assert mem.index_report[MODEL] == "rebuilt (missing)"
        assert len(mem.search(centers[0], MODEL, k=10)) == 10


def test_deletions_propagate_to_index_and_readers(db, small_cfg):
    vecs, centers = clustered(1200, 2)
    with EpisodicMemory.open(db, small_cfg) as mem:
        sid = mem.start_session("camera")
        record(mem, vecs, sid)
        reader = EpisodicMemory.open(db, small_cfg, readonly=True)
        assert len(reader.search(centers[0], MODEL, k=10)) == 10
        mem.forget(t0=0, t1=599 * 100_000_000)  # the first cluster
        assert mem.stats()["models"][0]["indexed"] == 600
        assert all(m.keyframe_id > 600 for m in mem.search(centers[0], MODEL, k=50))
        # The reader opened before the deletion never returns a forgotten row.
        assert all(m.keyframe_id > 600 for m in reader.search(centers[0], MODEL, k=50))
        reader.close()
    with EpisodicMemory.open(db, small_cfg) as mem:
        assert mem.index_report[MODEL] == "loaded"
        assert mem.stats()["models"][0]["indexed"] == 600
