"""The store: recording, acknowledged ids, episodes, the query family, models, pause, migrations."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import numpy as np
import pytest
from conftest import DIM, MODEL, clustered, record

from glasses_runtime.memory import (
    EpisodicMemory,
    EventIn,
    KeyframeIn,
    MemoryConfig,
    ModelMismatchError,
    NotFoundError,
    ReadOnlyError,
    SchemaVersionError,
    WriterBusyError,
)
from glasses_runtime.memory.codec import pack_embedding, unpack_embedding
from glasses_runtime.memory.schema import SCHEMA_VERSION


def test_int8_codec_keeps_cosine():
    v = np.random.default_rng(1).standard_normal(192).astype(np.float32)
    v /= np.linalg.norm(v)
    blob = pack_embedding(v)
    assert len(blob) == 4 + 192
    w = unpack_embedding(blob)
    assert float(v @ w / np.linalg.norm(w)) > 0.999


def test_ids_episodes_and_search(db):
    vecs, centers = clustered(400, 4)
    with EpisodicMemory.open(db, MemoryConfig(blur_faces=False)) as mem:
        sid = mem.start_session("camera")
        ids = record(mem, vecs, sid, pose=(1.0, 2.0, 0.0, 0.5), source="camera")
        assert ids == list(range(1, 401))
        mem.end_session(sid)
        eps, _ = mem.timeline(0, 10**15)
        # Four runs of near-duplicates -> four episodes, each with a representative from its own run.
        assert [e.n_keyframes for e in eps] == [100, 100, 100, 100]
        for i, e in enumerate(eps):
            assert e.representative is not None and (e.representative.keyframe_id - 1) // 100 == i
        hits = mem.search(centers[2], MODEL, k=5)
        assert len(hits) == 5 and all(200 < m.keyframe_id <= 300 for m in hits)
        assert hits[0].score >= hits[-1].score and hits[0].pose == (1.0, 2.0, 0.0, 0.5)
        assert hits[0].source == "camera"
        # Restricting time to the first run returns only that run.
        early = mem.search(centers[2], MODEL, k=5, t_max=99 * 100_000_000)
        assert all(m.keyframe_id <= 100 for m in early)


def test_last_seen_is_most_recent_match(db):
    vecs, centers = clustered(300, 3)
    order = np.concatenate([vecs[:100], vecs[100:200], vecs[:100]])  # cluster 0 seen again at the end
    with EpisodicMemory.open(db, MemoryConfig(blur_faces=False)) as mem:
        sid = mem.start_session("camera")
        record(mem, order, sid)
        m = mem.last_seen(centers[0], MODEL, threshold=0.9)
        assert m is not None and m.keyframe_id > 200
        assert mem.last_seen(centers[2], MODEL, threshold=0.9) is None


def test_enroll_where_and_place(db):
    vecs, centers = clustered(300, 3)
    with EpisodicMemory.open(db, MemoryConfig(blur_faces=False)) as mem:
        sid = mem.start_session("sim")
        record(mem, vecs, sid, pose=(0.0, 0.0, 0.0, 0.0))
        mem.enroll("keys", centers[1:2] + 0.01, MODEL)
        seen = mem.where("keys", k=3, threshold=0.9)
        assert len(seen) == 3 and all(100 < m.keyframe_id <= 200 for m in seen)
        assert seen[0].t_ns >= seen[1].t_ns >= seen[2].t_ns
        with pytest.raises(NotFoundError, match="enroll it first"):
            mem.where("wallet")
        protos = mem.object_prototypes(MODEL)  # the memory's own reader (no SQL outside the package)
        assert list(protos) == ["keys"] and protos["keys"].shape == (1, centers.shape[1])
        assert np.allclose(np.linalg.norm(protos["keys"], axis=1), 1, atol=1e-3)
        assert float(protos["keys"][0] @ (centers[1] / np.linalg.norm(centers[1]))) > 0.99
        assert mem.object_prototypes("f" * 64) == {}
        visits = mem.place(centers[0], MODEL, threshold=0.9, pose=(0.5, 0, 0, 0), radius_m=1.0)
        assert len(visits) == 1 and visits[0]["start_ns"] == 0
        assert mem.place(centers[0], MODEL, threshold=0.9, pose=(5.0, 0, 0, 0), radius_m=1.0) == []
        assert mem.place(centers[0], MODEL, threshold=0.9, before_ns=0) == []


def test_models_never_mix(db):
    vecs, _ = clustered(50, 1)
    with EpisodicMemory.open(db) as mem:
        sid = mem.start_session("camera")
        record(mem, vecs, sid)
        with pytest.raises(ModelMismatchError, match="dimension 16"):
            mem.search(np.ones(16, np.float32), MODEL)
        with pytest.raises(ModelMismatchError, match="Query with the encoder"):
            mem.search(vecs[0], "b" * 64)
        with pytest.raises(ModelMismatchError, match="dimension"):
            mem.add_keyframes([KeyframeIn(1, np.ones(DIM + 1, np.float32), MODEL)], sid)
        other = np.random.default_rng(3).standard_normal((20, 8)).astype(np.float32)
        record(mem, other, sid, model="c" * 64)
        assert all(m.keyframe_id <= 50 for m in mem.search(vecs[0], MODEL, k=50))
        assert len(mem.search(other[0], "c" * 64, k=50)) == 20


def test_pause_resume_and_events(db):
    vecs, _ = clustered(20, 1)
    with EpisodicMemory.open(db) as mem:
        sid = mem.start_session("camera")
        EpisodicMemory.set_paused(db, True)  # as the CLI does, from outside the writer
        assert mem.paused
        assert record(mem, vecs, sid) == []
        assert mem.add_events([EventIn(5, "speech", "hello")], sid) == []
        mem.resume()
        assert len(record(mem, vecs, sid)) == 20
        assert mem.add_events([EventIn(5, "speech", "hello"), EventIn(7, "mark")], sid) == [1, 2]
        _, events = mem.timeline(0, 10)
        assert [e["kind"] for e in events] == ["speech", "mark"]
        assert mem.stats()["keyframes"] == 20


def test_one_writer_many_readers_across_processes(db):
    vecs, centers = clustered(100, 2)
    mem = EpisodicMemory.open(db)
    try:
        with pytest.raises(WriterBusyError, match="read-only"):
            EpisodicMemory.open(db)
        sid = mem.start_session("camera")
        record(mem, vecs[:50], sid)
        reader = EpisodicMemory.open(db, readonly=True)
        with pytest.raises(ReadOnlyError):
            reader.start_session("x")
        record(mem, vecs[50:], sid)  # written after the reader opened: it must see them
        assert {m.keyframe_id for m in reader.search(centers[1], MODEL, k=10)} <= set(range(51, 101))
        reader.close()
        code = (
            f"from glasses_runtime.memory import EpisodicMemory;import numpy as np;"
            f"m=EpisodicMemory.open({str(db)!r}, readonly=True);print(m.stats()['keyframes'])"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "100"
    finally:
        mem.close()


def test_schema_versions(db):
    EpisodicMemory.open(db).close()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    conn.execute("PRAGMA user_version=99")
    conn.close()
    with pytest.raises(SchemaVersionError, match="upgrade glasses-runtime"):
        EpisodicMemory.open(db, readonly=True)


def test_config_validation():
    with pytest.raises(ValueError, match="synchronous"):
        MemoryConfig(synchronous="OFF")
    with pytest.raises(ValueError, match="episode_threshold"):
        MemoryConfig(episode_threshold=2.0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 1.5, "12", True, 2**64, -1])
def test_bad_timestamps_are_refused_before_the_writer_sees_them(bad):
    from glasses_runtime.memory import EventIn

    with pytest.raises(ValueError, match="t_ns"):
        KeyframeIn(bad, np.ones(DIM, np.float32), MODEL)
    with pytest.raises(ValueError, match="t_ns"):
        EventIn(bad, "mark")


def test_numpy_integer_timestamps_are_stored_as_ints(db):
    with EpisodicMemory.open(db) as mem:
        sid = mem.start_session("sim")
        [kid] = mem.add_keyframes([KeyframeIn(np.int64(5), np.ones(DIM, np.float32), MODEL)], sid)
        assert mem.keyframe_table(MODEL).t_ns.tolist() == [5] and kid > 0
