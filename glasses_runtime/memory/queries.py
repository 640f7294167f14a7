"""Queries over the episodic memory: visual top-k, last sighting, enrolled objects, timeline, places,
and bulk reads of keyframes and their token grids (``keyframe_table``, ``keyframe_tokens``).

All functions take the ``EpisodicMemory`` as first argument and are exposed as its methods
(``mem.search(...)``). Embeddings are float32 [D] of the model ``model_id``; they are L2-normalised
here, and every score is the cosine similarity between the query and the stored int8 embedding.

Index candidates are always re-scored exactly from SQLite, which also drops rows deleted since the
index was written. Time-restricted searches over at most ``EXACT_SCAN_LIMIT`` keyframes skip the index
and scan the window exactly.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from glasses_runtime.memory.codec import (
    Episode,
    KeyframeTable,
    Moment,
    normalise,
    unpack_embedding,
    unpack_many,
    unpack_tokens_many,
)
from glasses_runtime.memory.errors import (
    CorruptMemoryError,
    MemoryStoreError,
    ModelMismatchError,
    NotFoundError,
)
from glasses_runtime.memory.schema import repair_hint

if TYPE_CHECKING:
    from glasses_runtime.memory.store import EpisodicMemory

EXACT_SCAN_LIMIT = 50_000
RECENT_SCAN = 20_000  # last_seen scans this many newest keyframes exactly before asking the index
_COLS = "id, t_ns, session_id, episode_id, emb, pose_x, pose_y, pose_z, pose_yaw, source, thumb IS NOT NULL"
_TOKEN_CHUNK = 1_024  # token rows decoded at a time (6 KB each as stored, 24 KB as float32 [4, 8, 192])


def _query(mem: EpisodicMemory, embedding: np.ndarray, model_id: str) -> tuple[int, np.ndarray]:
    q = np.asarray(embedding, dtype=np.float32)
    if q.ndim != 1:
        raise ModelMismatchError(f"a query embedding is one vector [D], got shape {q.shape}")
    ref, _ = mem.model(model_id, q.shape[0])
    return ref, normalise(q)


def _moments(rows: list, q: np.ndarray) -> list[Moment]:
    if not rows:
        return []
    scores = unpack_many([r[4] for r in rows], len(q)) @ q
    out = []
    for r, s in zip(rows, scores, strict=True):
        pose = None if r[5] is None else (r[5], r[6], r[7], r[8])
        out.append(Moment(r[0], r[1], float(s), r[2], r[3], pose, r[9] or "", bool(r[10])))
    return out


# In _fetch, "+model_ref" keeps SQLite on rowid lookups instead of scanning the (model_ref, t_ns) index.
def _fetch(mem: EpisodicMemory, ids: np.ndarray, ref: int) -> list:
    if not len(ids):
        return []
    marks = ",".join("?" * len(ids))
    return mem.db.execute(
        f"SELECT {_COLS} FROM keyframes WHERE +model_ref = ? AND id IN ({marks})", (ref, *map(int, ids))
    ).fetchall()


def _candidates(mem: EpisodicMemory, ref: int, q: np.ndarray, n: int) -> list[Moment]:
    mem.sync_indexes()
    with mem.lock:
        idx = mem.indexes.get(ref)
        ids = idx.search(q, n) if idx is not None else np.zeros(0, np.int64)
        return _moments(_fetch(mem, ids, ref), q)


def search(
    mem: EpisodicMemory,
    embedding: np.ndarray,
    model_id: str,
    k: int = 10,
    t_min: int | None = None,
    t_max: int | None = None,
) -> list[Moment]:
    """Top-k moments most similar to the embedding, best first; optionally within [t_min, t_max] (ns)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    ref, q = _query(mem, embedding, model_id)
    lo, hi = (t_min if t_min is not None else -(2**63)), (t_max if t_max is not None else 2**63 - 1)
    if t_min is not None or t_max is not None:
        n = mem.db.execute(
            "SELECT count(*) FROM keyframes WHERE model_ref = ? AND t_ns BETWEEN ? AND ?", (ref, lo, hi)
        ).fetchone()[0]
        if n <= EXACT_SCAN_LIMIT:
            rows = mem.db.execute(
                f"SELECT {_COLS} FROM keyframes WHERE model_ref = ? AND t_ns BETWEEN ? AND ?", (ref, lo, hi)
            ).fetchall()
            return sorted(_moments(rows, q), key=lambda m: -m.score)[:k]
    n_cand = max(50, mem.cfg.index.rerank * k)
    if t_min is not None or t_max is not None:
        n_cand *= 8  # a post-filter throws candidates away
    found = [m for m in _candidates(mem, ref, q, n_cand) if lo <= m.t_ns <= hi]
    return sorted(found, key=lambda m: -m.score)[:k]


def last_seen(
    mem: EpisodicMemory, embedding: np.ndarray, model_id: str, threshold: float = 0.8
) -> Moment | None:
    """The most recent moment whose similarity is >= threshold ("when did I last see this?").

    The newest RECENT_SCAN keyframes are scanned exactly from newest to oldest, so a recent sighting is
    never missed; older sightings come from the index's best candidates.
    """
    ref, q = _query(mem, embedding, model_id)
    cur = mem.db.execute(f"SELECT {_COLS} FROM keyframes WHERE model_ref = ? ORDER BY t_ns DESC", (ref,))
    scanned = 0
    while scanned < RECENT_SCAN and (rows := cur.fetchmany(2_000)):
        scanned += len(rows)
        hits = [m for m in _moments(rows, q) if m.score >= threshold]
        if hits:
            cur.close()
            return max(hits, key=lambda m: m.t_ns)
    cur.close()
    hits = [m for m in _candidates(mem, ref, q, 256) if m.score >= threshold]
    return max(hits, key=lambda m: m.t_ns) if hits else None


def where(mem: EpisodicMemory, name: str, k: int = 5, threshold: float = 0.7) -> list[Moment]:
    """Last sightings of an enrolled object, newest first: moments matching any of its prototypes."""
    objs = mem.db.execute(
        "SELECT o.id, m.model_hash FROM objects o JOIN models m ON m.id = o.model_ref WHERE o.name = ?",
        (name,),
    ).fetchall()
    if not objs:
        known = [r[0] for r in mem.db.execute("SELECT DISTINCT name FROM objects ORDER BY name")]
        raise NotFoundError(
            f"no enrolled object named {name!r} (enrolled: {', '.join(known) or 'none'}); "
            "enroll it first with `glasses-runtime memory enroll`"
        )
    best: dict[int, Moment] = {}
    for oid, model_hash in objs:
        protos = mem.db.execute("SELECT emb FROM object_prototypes WHERE object_id = ?", (oid,)).fetchall()
        dim = mem.model(model_hash)[1]
        for p in unpack_many([r[0] for r in protos], dim):
            for m in search(mem, p, model_hash, k=max(50, 4 * k)):
                if m.score >= threshold and (
                    m.keyframe_id not in best or best[m.keyframe_id].score < m.score
                ):
                    best[m.keyframe_id] = m
    return sorted(best.values(), key=lambda m: -m.t_ns)[:k]


def timeline(mem: EpisodicMemory, t0: int, t1: int) -> tuple[list[Episode], list[dict]]:
    """Episodes overlapping [t0, t1] (ns) in time order, each with its representative keyframe, and the
    events in the range as dicts (id, t_ns, kind, text, has_data)."""
    eps = mem.db.execute(
        "SELECT id, session_id, model_ref, start_ns, end_ns, n_keyframes, rep_keyframe_id FROM episodes "
        "WHERE start_ns <= ? AND end_ns >= ? ORDER BY start_ns",
        (t1, t0),
    ).fetchall()
    out = []
    for eid, sid, ref, s, e, n, rep in eps:
        if rep is None:  # still open: take its middle keyframe
            row = mem.db.execute(
                "SELECT id FROM keyframes WHERE model_ref = ? AND t_ns BETWEEN ? AND ? AND "
                "episode_id = ? ORDER BY t_ns LIMIT 1 OFFSET ?",
                (ref, s, e, eid, n // 2),
            ).fetchone()
            rep = row[0] if row else None
        moment = None
        if rep is not None:
            rows = mem.db.execute(f"SELECT {_COLS} FROM keyframes WHERE id = ?", (rep,)).fetchall()
            if rows:
                v = normalise(unpack_many([rows[0][4]], len(rows[0][4]) - 4)[0])
                moment = _moments(rows, v)[0]  # score = similarity to itself, ~1
        out.append(Episode(eid, sid, s, e, n, moment))
    events = [
        {"id": i, "t_ns": t, "kind": k, "text": x, "has_data": bool(d)}
        for i, t, k, x, d in mem.db.execute(
            "SELECT id, t_ns, kind, text, data IS NOT NULL FROM events WHERE t_ns BETWEEN ? AND ? ORDER BY t_ns",
            (t0, t1),
        )
    ]
    return out, events


def place(
    mem: EpisodicMemory,
    embedding: np.ndarray,
    model_id: str,
    threshold: float = 0.85,
    before_ns: int | None = None,
    pose: tuple | None = None,
    radius_m: float | None = None,
    k: int = 10,
) -> list[dict]:
    """Place recognition: earlier visits to the place seen in `embedding`, newest first.

    A visit is an episode holding a matching keyframe (cosine >= threshold, t_ns < before_ns to leave the
    current visit out; within radius_m metres of pose (x, y, z, yaw) when both are known). Returns dicts
    with episode_id, start_ns, end_ns, score (best match) and keyframe_id (that match).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    ref, q = _query(mem, embedding, model_id)
    visits: dict[int, dict] = {}
    for m in _candidates(mem, ref, q, 256):
        if m.score < threshold or (before_ns is not None and m.t_ns >= before_ns):
            continue
        if (
            pose is not None
            and radius_m is not None
            and m.pose is not None
            and float(np.linalg.norm(np.subtract(m.pose[:3], pose[:3]))) > radius_m
        ):
            continue
        key = m.episode_id if m.episode_id is not None else -m.keyframe_id
        if key not in visits or visits[key]["score"] < m.score:
            visits[key] = {
                "episode_id": m.episode_id,
                "score": round(m.score, 6),
                "keyframe_id": m.keyframe_id,
                "t_ns": m.t_ns,
            }
    for v in visits.values():
        row = mem.db.execute(
            "SELECT start_ns, end_ns FROM episodes WHERE id = ?", (v["episode_id"],)
        ).fetchone()
        v["start_ns"], v["end_ns"] = row if row else (v["t_ns"], v["t_ns"])
    return sorted(visits.values(), key=lambda v: -v["start_ns"])[:k]


@contextlib.contextmanager
def _snapshot(mem: EpisodicMemory) -> Iterator[None]:
    """One read transaction around several SELECTs, so another process's commit cannot land between them."""
    if mem.db.in_transaction:
        yield
        return
    mem.db.execute("BEGIN")
    try:
        yield
    finally:
        mem.db.execute("COMMIT")


def _id_filter(mem: EpisodicMemory, ref: int, model_id: str, ids: Sequence[int]) -> tuple[str, tuple]:
    """SQL condition on keyframes k for exactly these ids; NotFoundError / ModelMismatchError otherwise."""
    want = json.dumps(sorted({int(i) for i in ids}))
    cond = "k.id IN (SELECT value FROM json_each(?))"
    found = dict(
        mem.db.execute(f"SELECT k.id, k.model_ref FROM keyframes k WHERE {cond}", (want,)).fetchall()
    )
    missing = sorted(set(json.loads(want)) - set(found))
    if missing:
        raise NotFoundError(
            f"no keyframe {', '.join(map(str, missing[:5]))} in {mem.path} (forgotten, or from another "
            "memory); pick ids from `glasses-runtime memory query` or `timeline`"
        )
    other = sorted(i for i, r in found.items() if r != ref)
    if other:
        raise ModelMismatchError(
            f"keyframe {', '.join(map(str, other[:5]))} was recorded with another model than {model_id[:12]}; "
            "read it with that model's id"
        )
    return cond, (want,)


def keyframe_table(
    mem: EpisodicMemory,
    model_id: str,
    dim: int | None = None,
    with_tokens: bool = False,
    ids: Sequence[int] | None = None,
) -> KeyframeTable:
    """Every keyframe recorded with ``model_id`` (dim checked when given), sorted by (session, t_ns, id).

    with_tokens: also decode the token grids, float32 [N, h, w, D] (N * h*w*D * 4 bytes in RAM).
    ids: only these keyframes; an id not in the memory raises NotFoundError, one of another model
    ModelMismatchError. An unknown model or wrong dim raises ModelMismatchError (as ``mem.model``).
    """
    ref, mdim = mem.model(model_id, dim)
    with _snapshot(mem):
        cond, args = _id_filter(mem, ref, model_id, ids) if ids is not None else ("1", ())
        rows = mem.db.execute(
            "SELECT k.id, k.t_ns, k.session_id, k.emb, k.pose_x, k.pose_y, k.pose_z, k.pose_yaw "
            f"FROM keyframes k WHERE k.model_ref = ? AND {cond} ORDER BY k.session_id, k.t_ns, k.id",
            (ref, *args),
        ).fetchall()
        pos = {r[0]: i for i, r in enumerate(rows)}
        from_tokens = (
            "FROM keyframe_tokens t JOIN keyframes k ON k.id = t.keyframe_id "
            f"WHERE k.model_ref = ? AND {cond}"
        )
        has = np.zeros(len(rows), dtype=bool)
        for (kid,) in mem.db.execute(f"SELECT t.keyframe_id {from_tokens}", (ref, *args)):
            if kid in pos:
                has[pos[kid]] = True
        tokens = (
            _read_tokens(mem, from_tokens, (ref, *args), pos, mdim) if with_tokens and has.any() else None
        )
    poses = np.array([[np.nan if v is None else v for v in r[4:8]] for r in rows], dtype=np.float64).reshape(
        len(rows), 4
    )
    return KeyframeTable(
        ids=np.array([r[0] for r in rows], dtype=np.int64),
        t_ns=np.array([r[1] for r in rows], dtype=np.int64),
        session=np.array([r[2] for r in rows], dtype=np.int64),
        emb=normalise(unpack_many([r[3] for r in rows], mdim)),
        poses=poses,
        tokens=tokens,
        has_tokens=has,
    )


def _read_tokens(
    mem: EpisodicMemory, from_sql: str, args: tuple, pos: dict[int, int], dim: int
) -> np.ndarray:
    """Decode the token rows selected by from_sql into float32 [len(pos), h, w, dim], chunk by chunk."""
    out: np.ndarray | None = None
    cur = mem.db.execute(f"SELECT t.keyframe_id, t.h, t.w, t.d, t.data {from_sql}", args)
    while rows := cur.fetchmany(_TOKEN_CHUNK):
        shapes = {(h, w, d) for _, h, w, d, _ in rows}
        if out is None:
            h, w, d = next(iter(shapes))
            out = np.zeros((len(pos), h, w, d), dtype=np.float32)
        if shapes != {out.shape[1:]}:
            raise MemoryStoreError(
                f"keyframes of one model hold token grids of several shapes ({sorted(shapes | {out.shape[1:]})}); "
                "read them one at a time with keyframe_tokens(keyframe_id)"
            )
        if out.shape[3] != dim:
            raise CorruptMemoryError(
                f"{mem.path}: stored token grids have D = {out.shape[3]} for a model of dim {dim}; "
                f"{repair_hint(mem.path)}"
            )
        keep = [r for r in rows if r[0] in pos]
        try:
            grids = unpack_tokens_many([bytes(r[4]) for r in keep], *out.shape[1:])
        except ValueError as e:
            raise CorruptMemoryError(f"{mem.path}: {e}; {repair_hint(mem.path)}") from None
        out[[pos[r[0]] for r in keep]] = grids
    cur.close()
    assert out is not None  # called only when some keyframe has tokens
    return out


def object_prototypes(mem: EpisodicMemory, model_id: str) -> dict[str, np.ndarray]:
    """Enrolled objects of encoder ``model_id``: name -> prototypes float32 [N, D] (unit norm), in enrollment
    order; {} when none (or the model is unknown to this memory)."""
    rows = mem.db.execute(
        "SELECT o.name, p.emb FROM objects o JOIN object_prototypes p ON p.object_id = o.id "
        "JOIN models m ON m.id = o.model_ref WHERE m.model_hash = ? ORDER BY p.id",
        (model_id,),
    ).fetchall()
    out: dict[str, list[np.ndarray]] = {}
    for name, blob in rows:
        out.setdefault(name, []).append(unpack_embedding(blob))
    return {k: normalise(np.stack(v).astype(np.float32)) for k, v in out.items()}


def keyframe_tokens(mem: EpisodicMemory, keyframe_id: int) -> np.ndarray | None:
    """float32 [h, w, D] token grid of one keyframe, or None when it was stored without one.

    Raises NotFoundError when the memory has no keyframe with that id."""
    with _snapshot(mem):
        row = mem.db.execute(
            "SELECT h, w, d, data FROM keyframe_tokens WHERE keyframe_id = ?", (int(keyframe_id),)
        ).fetchone()
        if row is None:
            if mem.db.execute("SELECT 1 FROM keyframes WHERE id = ?", (int(keyframe_id),)).fetchone() is None:
                raise NotFoundError(
                    f"no keyframe {keyframe_id} in {mem.path} (forgotten, or from another memory); pick an id "
                    "from `glasses-runtime memory query` or `timeline`"
                )
            return None
    h, w, d, data = row
    try:
        return unpack_tokens_many([bytes(data)], h, w, d)[0]
    except ValueError as e:
        raise CorruptMemoryError(f"{mem.path}: {e}; {repair_hint(mem.path)}") from None


def _size(path: str) -> int:
    return os.path.getsize(path) if os.path.exists(path) else 0


def stats(mem: EpisodicMemory, check: bool = False) -> dict:
    """Counts, sizes on disk (bytes) and index state; check=True also runs SQLite's integrity_check."""
    db = mem.db
    count = {
        t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608 - fixed table names
        for t in ("sessions", "keyframes", "episodes", "events", "objects")
    }
    models = [
        {
            "model_id": h,
            "dim": d,
            "keyframes": db.execute("SELECT count(*) FROM keyframes WHERE model_ref = ?", (r,)).fetchone()[0],
            "index": mem.indexes[r].kind if r in mem.indexes else None,
            "indexed": mem.indexes[r].ntotal if r in mem.indexes else 0,
            "index_state": mem.index_report.get(h),
            "rebuilding": r in mem.builds,
        }
        for h, (r, d) in sorted(mem.models.items())
    ]
    span = db.execute("SELECT min(t_ns), max(t_ns) FROM keyframes").fetchone()
    # length() of a BLOB comes from the record header: the token data itself is not read.
    n_tok, tok_bytes = db.execute(
        "SELECT count(*), coalesce(sum(length(data)), 0) FROM keyframe_tokens"
    ).fetchone()
    index_bytes = (
        sum(p.stat().st_size for p in mem.index_dir.glob("*.faiss")) if mem.index_dir.exists() else 0
    )
    out = {
        "db": str(mem.path),
        **count,
        "keyframe_tokens": n_tok,
        "models": models,
        "first_t_ns": span[0],
        "last_t_ns": span[1],
        "paused": mem.paused,
        "encrypted": mem.meta("enc_salt") is not None,
        "schema_version": db.execute("PRAGMA user_version").fetchone()[0],
        "bytes": {
            "db": _size(str(mem.path)),
            "wal": _size(f"{mem.path}-wal"),
            "index": index_bytes,
            "tokens": tok_bytes,  # the token BLOBs inside db (no page overhead)
        },
    }
    if check:
        out["integrity"] = db.execute("PRAGMA integrity_check").fetchone()[0]
    return out
