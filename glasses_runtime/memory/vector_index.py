"""The vector index: derived from SQLite, persisted beside it, rebuilt when missing, stale or corrupt.

One index per encoder (model hash), so vectors of different models never meet. faiss was chosen by
measurement (docs/memory.md, ``benchmarks/bench_memory.py --compare-indexes``):

* fewer than ``flat_below`` vectors: ``IndexFlatIP`` (exact inner product on unit vectors = cosine);
* more: ``IndexIVFScalarQuantizer`` with 4-bit codes (D/2 bytes per vector + an 8-byte id), trained on
  a sample of the stored vectors; retrained when the count outgrows its training size (the writer does
  that in the background: ``indexing.py``). Its candidates are re-scored exactly from the int8
  embeddings in SQLite by the query code, which also drops ids that were deleted since the index was
  written.

A build reads SQLite in two passes, a random training sample by rowid and then every vector in
chunks, so its memory is the sample plus one chunk, not the whole model's vectors.

On disk: ``<db>.index/<model-hash>.faiss`` plus a JSON sidecar holding the file's sha256, the highest
keyframe id it covers (``synced_id``) and the database's deletion generation when it was written. On
open an index is reused when the checksum matches and no deletion happened since; rows newer than
``synced_id`` are added (a writer killed before saving loses nothing); anything else rebuilds it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import threading
from pathlib import Path

import faiss
import numpy as np

from edge_models.hashing import file_sha256
from glasses_runtime.memory.codec import unpack_many
from glasses_runtime.memory.config import IndexConfig

FORMAT = 1
_CHUNK = 50_000
_IN_LIST = 900  # ids per `id IN (...)` lookup, under SQLite's oldest variable limit (999)
# One query or one recorded batch is a small job: OpenMP threads only add wake-up latency, and on a
# device whose cores are busy with the encoder their spin-waits cost tens of ms. Builds use every core.
ONLINE_THREADS = 1
BUILD_THREADS = os.cpu_count() or 1


@contextlib.contextmanager
def omp_threads(n: int):
    """Run faiss with n OpenMP threads in the calling thread (the setting is per thread), then restore."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


class BuildCancelled(Exception):
    """A build was asked to stop (its result would be discarded)."""


def _arrays(rows: list, dim: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    return ids, unpack_many([r[1] for r in rows], dim)


def read_vectors(
    conn: sqlite3.Connection, model_ref: int, dim: int, after_id: int = 0, upto_id: int = 2**63 - 1
):
    """Yield (ids int64 [N], vectors float32 [N, D]) chunks of one model's keyframes with
    after_id < id <= upto_id, in id order.

    Each chunk is its own short statement: no read snapshot stays open while the caller works on a
    chunk (a long-held snapshot would stall WAL checkpoints, and with them `forget`'s purge). "+model_ref"
    keeps SQLite on a rowid range scan instead of sorting the whole model through its (model_ref, t_ns)
    index.
    """
    while True:
        rows = conn.execute(
            "SELECT id, emb FROM keyframes WHERE id > ? AND id <= ? AND +model_ref = ? ORDER BY id LIMIT ?",
            (after_id, upto_id, model_ref, _CHUNK),
        ).fetchall()
        if not rows:
            return
        ids, vecs = _arrays(rows, dim)
        yield ids, vecs
        if len(rows) < _CHUNK:
            return
        after_id = int(ids[-1])


def last_keyframe_id(conn: sqlite3.Connection) -> int:
    """The highest keyframe id ever assigned (AUTOINCREMENT: ids are never reused), 0 when none."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'keyframes'").fetchone()
    return int(row[0]) if row else 0


def _sample_vectors(
    conn: sqlite3.Connection, model_ref: int, dim: int, upto_id: int, n: int, take: int, seed: int = 0
) -> np.ndarray:
    """About `take` random vectors float32 [~take, D] of the model's n keyframes with id <= upto_id,
    looked up by random rowid (ids of deleted rows or other models come back empty)."""
    want = min(upto_id, int(take * upto_id / max(n, 1) * 1.1) + 1)
    ids = np.sort(np.random.default_rng(seed).choice(upto_id, size=want, replace=False) + 1)
    out = []
    for i in range(0, len(ids), _IN_LIST):
        part = ids[i : i + _IN_LIST].tolist()
        rows = conn.execute(
            f"SELECT id, emb FROM keyframes WHERE +model_ref = ? AND id IN ({','.join('?' * len(part))})",
            (model_ref, *part),
        ).fetchall()
        if rows:
            out.append(_arrays(rows, dim)[1])
    return np.concatenate(out)[:take] if out else np.zeros((0, dim), np.float32)


class ModelIndex:
    """ANN index over the keyframes of one model. Vectors: float32 [N, D], unit norm; ids: keyframe ids."""

    def __init__(self, model_hash: str, dim: int, cfg: IndexConfig) -> None:
        self.model_hash = model_hash
        self.dim = dim
        self.cfg = cfg
        self.kind = "flat"
        self.n_train = 0
        self.synced_id = 0
        self.unsaved = 0
        self.retry_at = 0  # after a failed background build: do not retry before this many vectors
        # While a replacement is built in the background, ids removed here are logged for it.
        self.removal_log: list[np.ndarray] | None = None
        self.index: faiss.Index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    # ---- building -------------------------------------------------------------------------------------

    def _nlist(self, n: int) -> int:
        # faiss wants >= 39 training points per list.
        return max(16, min(int(self.cfg.lists_per_sqrt * math.sqrt(n)), n // 40))

    def _make_ivf(self, sample: np.ndarray, n: int) -> None:
        """Train an empty IVF-SQ4 for n vectors on sample float32 [M, D] (M ~ 40 per list)."""
        nlist = max(1, min(self._nlist(n), len(sample) // 39))
        quantizer = faiss.IndexFlatIP(self.dim)
        ivf = faiss.IndexIVFScalarQuantizer(
            quantizer, self.dim, nlist, faiss.ScalarQuantizer.QT_4bit, faiss.METRIC_INNER_PRODUCT
        )
        ivf.cp.niter = 10
        ivf.train(np.ascontiguousarray(sample, dtype=np.float32))
        ivf.nprobe = self.cfg.nprobe
        self._quantizer = quantizer  # faiss holds a raw pointer to it
        self.index, self.kind, self.n_train = ivf, "ivf", n

    @classmethod
    def build(
        cls,
        conn: sqlite3.Connection,
        model_ref: int,
        model_hash: str,
        dim: int,
        cfg: IndexConfig,
        upto_id: int | None = None,
        stop: threading.Event | None = None,
    ) -> ModelIndex:
        """Build from the model's stored keyframes with id <= upto_id (default: every committed one).

        No read snapshot is held across the build (which takes a minute at 1M vectors): rows deleted
        while it reads are simply not read, or were read and are in the live index's removal log, and
        no new row gets an id <= upto_id. stop: raise BuildCancelled between steps once it is set.
        Uses the calling thread's OpenMP thread count.
        """
        self = cls(model_hash, dim, cfg)
        upto = last_keyframe_id(conn) if upto_id is None else upto_id
        n = conn.execute(
            "SELECT count(*) FROM keyframes WHERE model_ref = ? AND id <= ?", (model_ref, upto)
        ).fetchone()[0]
        if n >= cfg.flat_below:
            self._make_ivf(_sample_vectors(conn, model_ref, dim, upto, n, self._nlist(n) * 40), n)
        for ids, vecs in read_vectors(conn, model_ref, dim, 0, upto):
            if stop is not None and stop.is_set():
                raise BuildCancelled
            self.index.add_with_ids(vecs, ids)
        self.synced_id, self.unsaved = upto, self.ntotal
        return self

    def catch_up(self, conn: sqlite3.Connection, model_ref: int, upto_id: int | None = None) -> int:
        """Add the model's keyframes with synced_id < id <= upto_id (default: every committed one).
        Returns how many were added."""
        upto = last_keyframe_id(conn) if upto_id is None else upto_id
        added = 0
        for ids, vecs in read_vectors(conn, model_ref, self.dim, self.synced_id, upto):
            self.add(ids, vecs)
            added += len(ids)
        self.synced_id = max(self.synced_id, upto)
        return added

    def needs_rebuild(self) -> bool:
        """True when the index kind no longer suits its size (flat grew big, or IVF outgrew its lists)."""
        if self.ntotal < self.retry_at:
            return False
        if self.kind == "flat":
            return self.ntotal >= self.cfg.flat_below
        return self.ntotal > self.cfg.retrain_growth * self.n_train

    # ---- updates and search ---------------------------------------------------------------------------

    def add(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        """ids int64 [N], vecs float32 [N, D] (unit norm)."""
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vecs, dtype=np.float32), ids.astype(np.int64))
            self.synced_id = max(self.synced_id, int(ids.max()))
            self.unsaved += len(ids)

    def remove(self, ids: np.ndarray) -> int:
        """Remove keyframe ids int64 [N] (absent ids are ignored). Returns how many were present."""
        if not len(ids):
            return 0
        ids = np.asarray(ids, dtype=np.int64)
        if self.removal_log is not None:
            self.removal_log.append(ids)
        n = int(self.index.remove_ids(ids))
        self.unsaved += n
        return n

    def search(self, query: np.ndarray, k: int) -> np.ndarray:
        """query float32 [D] -> candidate keyframe ids int64 [<=k], best first (approximate for IVF)."""
        if self.ntotal == 0:
            return np.zeros(0, dtype=np.int64)
        with omp_threads(ONLINE_THREADS):
            _, ids = self.index.search(
                np.ascontiguousarray(query[None], dtype=np.float32), min(k, self.ntotal)
            )
        return ids[0][ids[0] >= 0]

    # ---- persistence ----------------------------------------------------------------------------------

    @staticmethod
    def paths(index_dir: Path, model_hash: str) -> tuple[Path, Path]:
        stem = index_dir / model_hash[:32]
        return stem.with_suffix(".faiss"), stem.with_suffix(".json")

    def save(self, index_dir: Path, deletion_gen: int) -> None:
        """Write atomically: a crash leaves the previous files or the new ones, never a torn file."""
        index_dir.mkdir(parents=True, exist_ok=True)
        data, meta = self.paths(index_dir, self.model_hash)
        tmp_data, tmp_meta = data.with_suffix(".faiss.tmp"), meta.with_suffix(".json.tmp")
        faiss.write_index(self.index, str(tmp_data))
        info = {
            "format": FORMAT,
            "model_hash": self.model_hash,
            "dim": self.dim,
            "kind": self.kind,
            "n_train": self.n_train,
            "synced_id": self.synced_id,
            "deletion_gen": deletion_gen,
            "ntotal": self.ntotal,
            "sha256": file_sha256(tmp_data),
        }
        tmp_meta.write_text(json.dumps(info))
        os.replace(tmp_data, data)
        os.replace(tmp_meta, meta)
        self.unsaved = 0

    @classmethod
    def load(
        cls, index_dir: Path, model_hash: str, dim: int, cfg: IndexConfig, deletion_gen: int
    ) -> tuple[ModelIndex | None, str]:
        """Return (index, "ok") or (None, why it cannot be used)."""
        data, meta = cls.paths(index_dir, model_hash)
        if not data.exists() or not meta.exists():
            return None, "missing"
        try:
            info = json.loads(meta.read_text())
            if info.get("format") != FORMAT or info["model_hash"] != model_hash or info["dim"] != dim:
                return None, "written for another model or format"
            if info["deletion_gen"] != deletion_gen:
                return None, "stale (rows were deleted since it was written)"
            # Verify before faiss parses it: a damaged file must not reach the C++ reader.
            if file_sha256(data) != info["sha256"]:
                return None, "corrupt (checksum mismatch)"
            index = faiss.read_index(str(data))
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            return None, f"unreadable ({type(e).__name__})"
        if index.d != dim or index.ntotal != info["ntotal"]:
            return None, "corrupt (shape mismatch)"
        self = cls(model_hash, dim, cfg)
        self.index, self.kind = index, info["kind"]
        self.n_train, self.synced_id = int(info["n_train"]), int(info["synced_id"])
        if self.kind == "ivf":
            faiss.extract_index_ivf(index).nprobe = cfg.nprobe
        return self, "ok"

    @classmethod
    def delete_files(cls, index_dir: Path, model_hash: str) -> None:
        for p in cls.paths(index_dir, model_hash):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
