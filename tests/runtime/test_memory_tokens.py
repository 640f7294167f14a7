"""Token grids in the episodic memory: the int8 codec, a round trip through a real memory file, the bulk
reader, the v1 -> v2 migration, repair, and the runtime storing the default encoder's reduced grids."""

from __future__ import annotations

import shutil
import sqlite3

import numpy as np
import pytest

from edge_models.embed import DEFAULT_WEIGHTS
from glasses_runtime.memory import (
    EpisodicMemory,
    KeyframeIn,
    KeyframeTable,
    MemoryConfig,
    ModelMismatchError,
    NotFoundError,
    SchemaVersionError,
)
from glasses_runtime.memory.codec import pack_embedding, pack_tokens, token_bytes, unpack_tokens
from glasses_runtime.memory.repair import salvage
from glasses_runtime.memory.schema import MIGRATIONS, SCHEMA_VERSION
from glasses_runtime.runtime import RunningMode, Runtime, RuntimeOptions
from glasses_runtime.tokens import reduce_tokens

MODEL = "b" * 64
D = 192
GRID = (4, 8, D)
DEFAULT_PTE = DEFAULT_WEIGHTS.parent / "encoder_vit_tiny_int8_xnnpack.pte"


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per token vector cosine of two grids [..., D]."""
    return (a * b).sum(-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-30)


def _grid(seed: int) -> np.ndarray:
    """Token-like grid: every token vector has its own magnitude (as ViT tokens do), 1e-3 .. 1e2."""
    rng = np.random.default_rng(seed)
    mags = 10.0 ** rng.uniform(-3, 2, (*GRID[:2], 1))
    return (rng.standard_normal(GRID) * mags).astype(np.float32)


def _emb(seed: int) -> np.ndarray:
    return np.random.default_rng(10_000 + seed).standard_normal(D).astype(np.float32)


def test_pack_tokens_round_trip():
    t = _grid(0)
    t[1, 2] = 0.0  # a zero token stays zero
    blob = pack_tokens(t)
    assert len(blob) == token_bytes(*GRID) == 4 * 8 * 192 + 4 * 8 * 2 == 6208
    back = unpack_tokens(blob, *GRID)
    assert back.dtype == np.float32 and back.shape == GRID
    assert not back[1, 2].any()
    mask = np.ones(GRID[:2], bool)
    mask[1, 2] = False
    assert _cosines(t, back)[mask].min() > 0.999
    # per token, the error is at most half a code step of that token's own scale (float16-rounded)
    step = np.abs(t).max(-1, keepdims=True) / 127
    assert (np.abs(back - t) <= 0.51 * step * (1 + 2**-10) + 1e-12).all()
    with pytest.raises(ValueError, match="not 6208 bytes"):
        unpack_tokens(blob[:-1], *GRID)


def test_keyframe_in_checks_its_tokens():
    z = _emb(0)
    with pytest.raises(ModelMismatchError, match=r"grid \[h, w, D\].*reduce_tokens"):
        KeyframeIn(0, z, MODEL, tokens=np.zeros((8, D), np.float32))
    with pytest.raises(ModelMismatchError, match="D = 96 but the embedding has shape"):
        KeyframeIn(0, z, MODEL, tokens=np.zeros((4, 8, 96), np.float32))
    bad = _grid(1)
    bad[0, 0, 0] = np.nan
    with pytest.raises(ModelMismatchError, match="NaN"):
        KeyframeIn(0, z, MODEL, tokens=bad)
    KeyframeIn(0, z, MODEL, tokens=_grid(1))  # a valid grid is taken as is


def _record_two_sessions(db) -> tuple[list[int], list[int]]:
    """Two sessions whose times interleave; odd keyframes have tokens, keyframe 0 of each has a pose."""
    with EpisodicMemory.open(db, MemoryConfig(blur_faces=False)) as mem:
        s1, s2 = mem.start_session("a"), mem.start_session("b")
        ids1 = mem.add_keyframes(
            [
                KeyframeIn(
                    10 * i + 5,
                    _emb(i),
                    MODEL,
                    pose=(1.0, 2.0, 3.0, 0.5) if i == 0 else None,
                    tokens=_grid(i) if i % 2 else None,
                )
                for i in range(4)
            ],
            s1,
        )
        ids2 = mem.add_keyframes(
            [
                KeyframeIn(10 * i, _emb(i + 4), MODEL, tokens=_grid(i + 4) if i % 2 else None)
                for i in range(4)
            ],
            s2,
        )
    return ids1, ids2


def test_tokens_round_trip_through_a_memory_file(tmp_path):
    db = tmp_path / "m.db"
    ids1, ids2 = _record_two_sessions(db)
    with EpisodicMemory.open(db, readonly=True) as mem:
        t = mem.keyframe_table(MODEL, dim=D, with_tokens=True)
        assert isinstance(t, KeyframeTable) and len(t) == 8
        assert t.ids.tolist() == ids1 + ids2  # sorted by (session, t_ns, id)
        assert t.session.tolist() == [1] * 4 + [2] * 4 and t.t_ns.tolist() == [5, 15, 25, 35, 0, 10, 20, 30]
        assert t.emb.dtype == np.float32 and np.allclose(np.linalg.norm(t.emb, axis=1), 1, atol=1e-5)
        assert t.emb.shape == (8, D) and min(_cosines(t.emb, np.stack([_emb(i) for i in range(8)]))) > 0.999
        assert t.poses[0].tolist() == [1.0, 2.0, 3.0, 0.5] and np.isnan(t.poses[1:]).all()
        assert t.has_tokens.tolist() == [False, True] * 4
        assert t.tokens is not None and t.tokens.dtype == np.float32 and t.tokens.shape == (8, *GRID)
        assert not t.tokens[~t.has_tokens].any()
        for row, i in zip((1, 3, 5, 7), (1, 3, 5, 7), strict=True):
            assert _cosines(t.tokens[row], _grid(i)).min() > 0.999
            assert np.array_equal(mem.keyframe_tokens(int(t.ids[row])), t.tokens[row])
        assert mem.keyframe_tokens(ids1[0]) is None
        with pytest.raises(NotFoundError, match="no keyframe 999"):
            mem.keyframe_tokens(999)

        plain = mem.keyframe_table(MODEL)  # without tokens: the same rows, has_tokens still filled
        assert plain.tokens is None and plain.has_tokens.tolist() == t.has_tokens.tolist()
        assert np.array_equal(plain.ids, t.ids) and np.array_equal(plain.emb, t.emb)
        one = mem.keyframe_table(MODEL, with_tokens=True, ids=[ids2[1], ids1[0]])
        assert one.ids.tolist() == [ids1[0], ids2[1]] and one.has_tokens.tolist() == [False, True]
        assert np.array_equal(one.tokens[1], t.tokens[5])
        assert mem.keyframe_table(MODEL, with_tokens=True, ids=[ids1[0]]).tokens is None
        with pytest.raises(NotFoundError, match="no keyframe 999"):
            mem.keyframe_table(MODEL, ids=[ids1[0], 999])
        with pytest.raises(ModelMismatchError, match="records dimension 192"):
            mem.keyframe_table(MODEL, dim=96)
        with pytest.raises(ModelMismatchError, match="nothing in this memory was recorded with model"):
            mem.keyframe_table("c" * 64)

        s = mem.stats()
        assert s["keyframe_tokens"] == 4 and s["bytes"]["tokens"] == 4 * 6208


def test_a_v1_memory_migrates_and_repairs(tmp_path):
    v1 = tmp_path / "v1.db"
    con = sqlite3.connect(v1, isolation_level=None)
    MIGRATIONS[1](con)  # the v1 schema, as glasses-runtime v1 wrote it
    con.execute("PRAGMA user_version=1")
    con.execute("INSERT INTO models (model_hash, dim, created_ns) VALUES (?, ?, 0)", (MODEL, D))
    con.execute("INSERT INTO sessions (source, started_ns) VALUES ('old', 0)")
    con.execute(
        "INSERT INTO keyframes (session_id, model_ref, t_ns, emb) VALUES (1, 1, 7, ?)",
        (pack_embedding(_emb(0)),),
    )
    con.close()
    shutil.copyfile(v1, tmp_path / "v1_copy.db")

    with pytest.raises(SchemaVersionError, match="open it once for writing"):
        EpisodicMemory.open(v1, readonly=True)
    with EpisodicMemory.open(v1, MemoryConfig(blur_faces=False)) as mem:  # migrates
        assert mem.stats()["schema_version"] == SCHEMA_VERSION == 2
        t = mem.keyframe_table(MODEL, with_tokens=True)
        assert t.ids.tolist() == [1] and t.tokens is None and t.has_tokens.tolist() == [False]
        assert mem.keyframe_tokens(1) is None
        (new,) = mem.add_keyframes([KeyframeIn(8, _emb(1), MODEL, tokens=_grid(1))], 1)
    with EpisodicMemory.open(v1, readonly=True) as mem:
        assert mem.keyframe_table(MODEL).has_tokens.tolist() == [False, True]
        assert _cosines(mem.keyframe_tokens(new), _grid(1)).min() > 0.999

    # repair of a v1 file: the table it does not have is skipped, not probed row by row
    rep = salvage(tmp_path / "v1_copy.db", tmp_path / "out.db")
    assert rep["tables"]["keyframes"]["rows"] == 1 and rep["tables"]["keyframe_tokens"]["rows"] == 0
    with EpisodicMemory.open(tmp_path / "out.db", readonly=True) as mem:
        assert mem.keyframe_table(MODEL).ids.tolist() == [1]


def test_repair_copies_tokens_and_drops_orphans(tmp_path):
    db = tmp_path / "m.db"
    ids1, ids2 = _record_two_sessions(db)
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("DELETE FROM keyframes WHERE id = ?", (ids2[3],))  # as if its page had been lost
    con.close()
    rep = salvage(db, tmp_path / "out.db")
    assert rep["tables"]["keyframe_tokens"] == {"rows": 3, "lost_rowids": 0, "orphans_dropped": 1}
    with (
        EpisodicMemory.open(db, readonly=True) as a,
        EpisodicMemory.open(tmp_path / "out.db", readonly=True) as b,
    ):
        ta, tb = a.keyframe_table(MODEL, with_tokens=True), b.keyframe_table(MODEL, with_tokens=True)
        assert np.array_equal(ta.ids, tb.ids) and np.array_equal(ta.tokens, tb.tokens)
        assert tb.has_tokens.sum() == 3


def test_the_runtime_stores_the_reduced_grid_of_its_keyframes(bikes_frames_rgb, tmp_path):
    frames = [bikes_frames_rgb[i] for i in (0, 10, 50, 100, 160, 210)]  # across shot cuts
    stored = {}
    for on in (True, False):
        db = tmp_path / f"m_{on}.db"
        opts = RuntimeOptions(
            DEFAULT_PTE,
            running_mode=RunningMode.VIDEO,
            memory_path=db,
            store_thumbnails=False,
            keyframe_tokens=on,
        )
        with Runtime(opts) as rt:
            results = [rt.process_for_video(f, f.t_ns) for f in frames]
            model_id = rt.encoder.model_id
        keyframes = [r for r in results if r.keyframe]
        assert len(keyframes) >= 2 and all(r.tokens.shape == (8, 8, 192) for r in keyframes)
        with EpisodicMemory.open(db, readonly=True) as mem:
            t = mem.keyframe_table(model_id, dim=192, with_tokens=True)
            stored[on] = mem.stats()
        assert t.t_ns.tolist() == [r.t_ns for r in keyframes]
        if not on:
            assert t.tokens is None and not t.has_tokens.any()
            continue
        assert t.has_tokens.all() and t.tokens.shape == (len(keyframes), 4, 8, 192)
        for grid, r in zip(t.tokens, keyframes, strict=True):
            assert _cosines(grid, reduce_tokens(r.tokens)).min() > 0.999
    assert stored[True]["bytes"]["tokens"] == stored[True]["keyframes"] * 6208
    assert stored[False]["keyframe_tokens"] == 0
