"""Forget really removes the bytes (database, WAL, index; thumbnails and token grids included); retention
runs alongside a recorder."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import MODEL, clustered, record

from glasses_runtime.memory import (
    EpisodicMemory,
    EventIn,
    KeyframeIn,
    MemoryConfig,
    RetentionPolicy,
    RetentionWorker,
)
from glasses_runtime.memory.codec import pack_tokens


def _all_bytes(db: Path) -> bytes:
    """Every file the memory owns: the database, its WAL and the index files."""
    files = [db, Path(f"{db}-wal"), *sorted(Path(f"{db}.index").glob("*"))]
    return b"".join(p.read_bytes() for p in files if p.is_file())


def _image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (48, 64, 3), dtype=np.uint8)


def _tokens(seed: int) -> np.ndarray:
    return np.random.default_rng(1000 + seed).standard_normal((2, 4, 32)).astype(np.float32)


def _token_codes(seed: int) -> bytes:
    """The stored int8 codes of the grid's first token vector: 32 random bytes, unique per keyframe."""
    return pack_tokens(_tokens(seed))[2 * 8 : 2 * 8 + 32]


@pytest.mark.parametrize("how", ["range", "episode", "everything"])
def test_forget_removes_bytes(db, how):
    vecs, _ = clustered(60, 2)
    cfg = MemoryConfig(blur_faces=False)
    with EpisodicMemory.open(db, cfg) as mem:
        sid = mem.start_session("camera")
        ids = mem.add_keyframes(
            [
                KeyframeIn(
                    i * 10**9,
                    v,
                    MODEL,
                    image=_image(i),
                    source="SRC-SECRET" if i < 30 else "camera",
                    tokens=_tokens(i),
                )
                for i, v in enumerate(vecs)
            ],
            sid,
        )
        mem.add_events([EventIn(5 * 10**9, "speech", "my pin is 4711-SECRET")], sid)
        # Take bytes from the entropy-coded data, unique per image (JPEG headers are shared).
        secret_thumbs = [mem.thumbnail(k)[-200:-160] for k in ids[:30]]
        kept_thumb = mem.thumbnail(ids[45])[-200:-160]
        mem.save_indexes()
        raw = _all_bytes(db)
        assert b"4711-SECRET" in raw and b"SRC-SECRET" in raw and secret_thumbs[0] in raw
        assert all(_token_codes(i) in raw for i in range(60))
        if how == "range":
            rep = mem.forget(t0=0, t1=29 * 10**9)
        elif how == "episode":
            rep = mem.forget(episode_id=mem.timeline(0, 0)[0][0].episode_id)
        else:
            rep = mem.forget(everything=True)
        assert (
            rep["keyframes"] == (60 if how == "everything" else 30) and rep["events"] == 1 and rep["purged"]
        )
        raw = _all_bytes(db)
    raw += _all_bytes(db)  # and after close
    assert b"4711-SECRET" not in raw and b"SRC-SECRET" not in raw
    assert not any(t in raw for t in secret_thumbs)
    assert (kept_thumb in raw) == (how != "everything")
    assert not any(_token_codes(i) in raw for i in range(30))
    assert all((_token_codes(i) in raw) == (how != "everything") for i in range(30, 60))
    with EpisodicMemory.open(db, readonly=True) as mem:
        assert mem.stats(check=True)["integrity"] == "ok"
        n = mem.stats()
        assert n["keyframes"] == n["keyframe_tokens"] == (0 if how == "everything" else 30)


def test_retention_by_age_and_count_while_recording(db):
    vecs, _ = clustered(400, 4)
    with EpisodicMemory.open(db, MemoryConfig(synchronous="NORMAL")) as mem:
        sid = mem.start_session("camera")
        record(mem, vecs[:200], sid, step_ns=10**9, tokens=_tokens(0))  # t = 0..199 s
        worker = RetentionWorker(mem, RetentionPolicy(max_age_s=100.0, batch=20), interval_s=0.01).start()
        writer_ids: list[int] = []
        t = threading.Thread(
            target=lambda: writer_ids.extend(
                record(mem, vecs[200:], sid, t0_ns=200 * 10**9, step_ns=10**9, batch=10, tokens=_tokens(1))
            )
        )
        t.start()
        t.join(60)
        worker.stop()
        assert worker.error is None and not t.is_alive()
        assert len(writer_ids) == 200  # every write went through while retention ran
        mem.apply_retention(RetentionPolicy(max_age_s=100.0))
        oldest = mem.db.execute("SELECT min(t_ns) FROM keyframes").fetchone()[0]
        assert oldest >= 299 * 10**9 - 100 * 10**9
        assert mem.stats()["models"][0]["indexed"] == mem.stats()["keyframes"]
        removed = mem.apply_retention(RetentionPolicy(max_keyframes=50, batch=7))
        assert mem.stats()["keyframes"] == 50 and removed["keyframes"] > 0
        assert mem.stats()["keyframe_tokens"] == 50  # retention takes the token grids with the keyframes
        assert mem.db.execute("SELECT min(t_ns) FROM keyframes").fetchone()[0] == 350 * 10**9
        eps, _ = mem.timeline(0, 10**15)
        assert sum(e.n_keyframes for e in eps) == 50
