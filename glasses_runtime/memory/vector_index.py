"""The vector index: derived from SQLite, persisted beside it, rebuilt when missing, stale or corrupt.

One index per encoder (model hash), so vectors of different models never meet. faiss was chosen by
measurement (docs/memory.md, ``benchmarks/bench_memory.py --compare-indexes``):

* fewer than ``flat_below`` vectors: ``IndexFlatIP`` (exact inner product on unit vectors = cosine);
* more: ``IndexIVFScalarQuantizer`` with 4-bit codes (D/2 bytes per vector + an 8-byte id), trained on
  a sample of the stored vectors; retrained when the count outgrows its training size. Its candidates
  are re-scored exactly from the int8 embeddings in SQLite by the query code, which also drops ids
  that were deleted since the index was written.

On disk: ``<db>.index/<model-hash>.faiss`` plus a JSON sidecar holding the file's sha256, the highest
keyframe id it covers (``synced_id``) and the database's deletion generation when it was written. On
open an index is reused when the checksum matches and no deletion happened since; rows newer than
``synced_id`` are added (a writer killed before saving loses nothing); anything else rebuilds it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import sqlite3
from pathlib import Path

import faiss
import numpy as np

from glasses_runtime.memory.codec import unpack_many
from glasses_runtime.memory.config import IndexConfig

FORMAT = 1
_CHUNK = 50_000
# One query is one small scan: OpenMP threads only add wake-up latency, and on a device whose cores are
# busy with the encoder their spin-waits cost tens of ms. Training and bulk adds use every core.
_SEARCH_THREADS = 1
_BUILD_THREADS = os.cpu_count() or 1


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_vectors(conn: sqlite3.Connection, model_ref: int, dim: int, after_id: int = 0):
    """Yield (ids int64 [N], vectors float32 [N, D]) chunks of one model's keyframes with id > after_id."""
    cur = conn.execute(
        "SELECT id, emb FROM keyframes WHERE id > ? AND model_ref = ? ORDER BY id", (after_id, model_ref)
    )
    while rows := cur.fetchmany(_CHUNK):
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        yield ids, unpack_many([r[1] for r in rows], dim)


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
        self.index: faiss.Index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    # ---- building -------------------------------------------------------------------------------------

    def _make_ivf(self, sample: np.ndarray) -> None:
        n = len(sample)
        # faiss wants >= 39 training points per list.
        nlist = max(16, min(int(self.cfg.lists_per_sqrt * math.sqrt(n)), n // 40))
        quantizer = faiss.IndexFlatIP(self.dim)
        ivf = faiss.IndexIVFScalarQuantizer(
            quantizer, self.dim, nlist, faiss.ScalarQuantizer.QT_4bit, faiss.METRIC_INNER_PRODUCT
        )
        ivf.cp.niter = 10
        faiss.omp_set_num_threads(_BUILD_THREADS)
        rng = np.random.default_rng(0)
        take = min(n, nlist * 40)
        ivf.train(sample[rng.choice(n, take, replace=False)] if take < n else sample)
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
        upto_id: int,
    ) -> ModelIndex:
        """Build from every stored keyframe of the model with id <= upto_id."""
        self = cls(model_hash, dim, cfg)
        chunks = [(ids[ids <= upto_id], v[ids <= upto_id]) for ids, v in read_vectors(conn, model_ref, dim)]
        ids = np.concatenate([c[0] for c in chunks]) if chunks else np.zeros(0, np.int64)
        vecs = np.concatenate([c[1] for c in chunks]) if chunks else np.zeros((0, dim), np.float32)
        if len(ids) >= cfg.flat_below:
            self._make_ivf(vecs)
        if len(ids):
            self.index.add_with_ids(vecs, ids)
        self.synced_id = upto_id
        self.unsaved = len(ids)
        return self

    def needs_rebuild(self) -> bool:
        """True when the index kind no longer suits its size (flat grew big, or IVF outgrew its lists)."""
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
        if not len(ids):
            return 0
        n = int(self.index.remove_ids(np.asarray(ids, dtype=np.int64)))
        self.unsaved += n
        return n

    def search(self, query: np.ndarray, k: int) -> np.ndarray:
        """query float32 [D] -> candidate keyframe ids int64 [<=k], best first (approximate for IVF)."""
        if self.ntotal == 0:
            return np.zeros(0, dtype=np.int64)
        faiss.omp_set_num_threads(_SEARCH_THREADS)
        _, ids = self.index.search(np.ascontiguousarray(query[None], dtype=np.float32), min(k, self.ntotal))
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
            "sha256": _sha256(tmp_data),
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
            if _sha256(data) != info["sha256"]:
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
