"""The vector index is derived data: recall vs exact, rebuilt when missing/corrupt/stale, deletions propagate."""

from __future__ import annotations

import threading

import numpy as np
from conftest import MODEL, clustered, record

from glasses_runtime.memory import EpisodicMemory, IndexConfig, MemoryConfig
from glasses_runtime.memory.codec import pack_many, unpack_many
from glasses_runtime.memory.indexing import SWAP_GAP
from glasses_runtime.memory.vector_index import ModelIndex


def _exact_top(vecs: np.ndarray, q: np.ndarray, k: int) -> set[int]:
    return {int(i) + 1 for i in np.argsort(-(vecs @ q))[:k]}


def test_ivf_recall_against_exact(db, small_cfg):
    vecs, _ = clustered(3000, 30, noise=0.6, seed=1)
    with EpisodicMemory.open(db, small_cfg) as mem:
        record(mem, vecs, mem.start_session("camera"), batch=500)
        assert mem.stats()["models"][0]["index"] == "ivf"
        queries = vecs[::97] + 0.05 * np.random.default_rng(2).standard_normal((31, vecs.shape[1])).astype(
            np.float32
        )
        recall = np.mean(
            [
                len({m.keyframe_id for m in mem.search(q, MODEL, k=10)} & _exact_top(vecs, q, 10)) / 10
                for q in queries / np.linalg.norm(queries, axis=1, keepdims=True)
            ]
        )
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
    raw[len(raw) // 2 : len(raw) // 2 + 64] = b"\xff" * 64
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


def _recall(mem: EpisodicMemory, stored: np.ndarray, ids: np.ndarray, queries: np.ndarray) -> float:
    """Mean recall@10 of mem.search against exact search over stored float32 [N, D] with keyframe ids [N]."""
    hits = []
    for q in queries:
        exact = {int(ids[i]) for i in np.argsort(-(stored @ q))[:10]}
        hits.append(len({m.keyframe_id for m in mem.search(q, MODEL, k=10)} & exact) / 10)
    return float(np.mean(hits))


def test_recording_and_queries_go_on_while_the_index_retrains(db, monkeypatch):
    """The retrain runs in a background thread. It is held twice here, inside training and after its
    last catch-up, while the writer records, forgets and queries; then it is swapped in, with
    everything that happened meanwhile."""
    # retrain_growth 10: the index checked at the end is the one built while recording went on.
    cfg = MemoryConfig(
        synchronous="NORMAL", blur_faces=False, index=IndexConfig(flat_below=1000, retrain_growth=10)
    )
    in_training, release_training = threading.Event(), threading.Event()
    caught_up, release_swap = threading.Event(), threading.Event()
    train, catch_up = ModelIndex._make_ivf, ModelIndex.catch_up

    def held_training(self, sample, n):
        assert threading.current_thread() is not threading.main_thread()  # never on the write path
        in_training.set()
        assert release_training.wait(60), "the test never released the build"
        return train(self, sample, n)

    def held_catch_up(self, conn, model_ref, upto_id=None):
        added = catch_up(self, conn, model_ref, upto_id)
        if threading.current_thread() is not threading.main_thread() and added < SWAP_GAP:
            caught_up.set()  # the builder's last catch-up: what is recorded now, only the swap adds
            assert release_swap.wait(60), "the test never released the build"
        return added

    monkeypatch.setattr(ModelIndex, "_make_ivf", held_training)
    monkeypatch.setattr(ModelIndex, "catch_up", held_catch_up)
    vecs, _ = clustered(4000, 40, noise=0.6, seed=5)
    stored = unpack_many(pack_many(vecs), vecs.shape[1])
    all_ids = np.arange(1, 4001)
    rng = np.random.default_rng(6)
    q = stored[rng.integers(200, 4000, 40)] + 0.02 * rng.standard_normal((40, vecs.shape[1]))
    q = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
    with EpisodicMemory.open(db, cfg) as mem:
        sid = mem.start_session("camera")
        assert record(mem, vecs[:1000], sid, batch=250) == list(range(1, 1001))  # reaches flat_below
        assert in_training.wait(60)
        model = mem.stats()["models"][0]
        assert model["index"] == "flat" and model["rebuilding"]
        # Recording goes on while the replacement trains: acknowledged, indexed, findable at once.
        assert record(mem, vecs[1000:3000], sid, t0_ns=1000 * 10**8, batch=250) == list(range(1001, 3001))
        assert mem.stats()["models"][0]["indexed"] == 3000 and mem.stats()["models"][0]["rebuilding"]
        assert mem.search(vecs[2999], MODEL, k=1)[0].keyframe_id == 3000
        # Forgetting during the build: rows 1..200 go now, and must not come back with the new index.
        # The build holds no read snapshot, so the WAL can be emptied of the forgotten bytes now.
        report = mem.forget(t0=0, t1=199 * 10**8)
        assert report["keyframes"] == 200 and report["purged"]
        keep = (all_ids > 200) & (all_ids <= 3000)
        assert _recall(mem, stored[keep], all_ids[keep], q) >= 0.95
        release_training.set()
        assert caught_up.wait(60)
        assert record(mem, vecs[3000:3500], sid, t0_ns=3000 * 10**8, batch=250) == list(range(3001, 3501))
        release_swap.set()
        assert mem.wait_for_index(timeout_s=120)
        idx = next(iter(mem.indexes.values()))
        assert idx.kind == "ivf" and idx.n_train == 1000  # trained on the 1000 rows there were at the start
        assert idx.ntotal == 3300  # 1..3500 without the 200 forgotten: the swap topped up 3001..3500
        record(mem, vecs[3500:], sid, t0_ns=3500 * 10**8, batch=250)
        model = mem.stats()["models"][0]
        assert not model["rebuilding"] and model["indexed"] == 3800
        assert model["index_state"] == "retrained in background (ivf, 1000 vectors)"
        forgotten = set(range(1, 201))
        for v in stored[:200:10]:  # the swapped-in index holds none of the forgotten rows
            assert not forgotten & set(idx.search(v, 100).tolist())
        keep = all_ids > 200
        assert _recall(mem, stored[keep], all_ids[keep], q) >= 0.95
    with EpisodicMemory.open(db, cfg, readonly=True) as reader:
        assert reader.index_report[MODEL] == "loaded"
        assert reader.stats()["models"][0]["indexed"] == 3800


def test_a_failed_background_build_keeps_the_index_and_retries(db, monkeypatch):
    cfg = MemoryConfig(
        synchronous="NORMAL", blur_faces=False, index=IndexConfig(flat_below=1000, save_every=1000)
    )
    build = ModelIndex.build

    def failing(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ModelIndex, "build", failing)
    vecs, centers = clustered(3000, 3)
    with EpisodicMemory.open(db, cfg) as mem:
        sid = mem.start_session("camera")
        record(mem, vecs[:1000], sid, batch=250)
        assert mem.wait_for_index(timeout_s=60)
        model = mem.stats()["models"][0]
        assert model["index_state"] == "background rebuild failed (OSError: disk full)"
        assert model["index"] == "flat" and model["indexed"] == 1000 and not model["rebuilding"]
        monkeypatch.setattr(ModelIndex, "build", build)
        record(mem, vecs[1000:1750], sid, t0_ns=1000 * 10**8, batch=250)  # no retry before 2000 vectors
        assert not mem.stats()["models"][0]["rebuilding"]
        record(mem, vecs[1750:], sid, t0_ns=1750 * 10**8, batch=250)
        assert mem.wait_for_index(timeout_s=60)
        model = mem.stats()["models"][0]
        assert model["index"] == "ivf" and model["indexed"] == 3000
        assert all(2000 < m.keyframe_id <= 3000 for m in mem.search(centers[2], MODEL, k=10))
