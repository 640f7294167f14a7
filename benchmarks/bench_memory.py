"""Episodic memory at scale: insert rate, query p50 and recall@10, reopen time, bytes per keyframe.

    .venv/bin/python benchmarks/bench_memory.py --sizes 10000 100000
    .venv/bin/python benchmarks/bench_memory.py --sizes 1000000          # about 10 minutes on 2 cores
    .venv/bin/python benchmarks/bench_memory.py --compare-indexes 100000  # faiss IVF-SQ4 vs usearch HNSW

Data: random but clustered unit vectors of dimension 192 (N/100 cluster centres; keyframes come in runs
of 50 from one centre, like a wearer looking at one scene; centres are revisited at random). Each
vector is centre + isotropic noise of norm ~0.6, so neighbours within a cluster are near ties, which
is hard for an ANN index. Queries are 200 stored keyframes plus noise of norm ~0.3. Recall@10 is
measured against exact search over the same stored (int8) vectors. Inserts go through the public API
in batches of 1000 with the default synchronous=FULL.

insert_per_s counts only the time inside add_keyframes; index retrains run in a background thread at
the same time and compete for the same cores, so their cost shows in it. batch_max_ms is the slowest
batch (a retrain on the write path used to show here). After the last batch the benchmark waits for
a retrain still in flight (index_settle_s), so queries run on the index a settled memory has.
Writes benchmarks/results/memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from glasses_runtime.memory import EpisodicMemory, KeyframeIn, MemoryConfig
from glasses_runtime.memory.codec import pack_embedding, unpack_many

DIM = 192
MODEL = "bench-" + "0" * 58
RESULTS = Path(__file__).resolve().parent / "results" / "memory.json"


def make_batch(rng: np.random.Generator, centres: np.ndarray, start: int, n: int) -> np.ndarray:
    """float32 [n, DIM] unit vectors; keyframe i uses centre hash(i // 50)."""
    run = (np.arange(start, start + n) // 50) * 2654435761 % len(centres)
    x = centres[run] + (0.6 / np.sqrt(DIM)) * rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def bench_size(n: int, workdir: Path, batch: int = 1000, n_queries: int = 200) -> dict:
    rng = np.random.default_rng(n)
    centres = rng.standard_normal((max(n // 100, 10), DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    db = workdir / f"bench_{n}.db"
    stored = np.zeros((n, DIM), dtype=np.float32)  # what the memory holds (int8 round trip), for exact search
    t_insert, t_batch_max = 0.0, 0.0
    mem = EpisodicMemory.open(db, MemoryConfig(blur_faces=False))
    sid = mem.start_session("bench")
    for start in range(0, n, batch):
        m = min(batch, n - start)
        vecs = make_batch(rng, centres, start, m)
        kfs = [KeyframeIn(start + i, v, MODEL, pose=(0.0, 0.0, 0.0, 0.0)) for i, v in enumerate(vecs)]
        t = time.perf_counter()
        mem.add_keyframes(kfs, sid)
        dt = time.perf_counter() - t
        t_insert, t_batch_max = t_insert + dt, max(t_batch_max, dt)
        stored[start : start + m] = unpack_many([pack_embedding(v) for v in vecs], DIM)
    t = time.perf_counter()
    mem.wait_for_index()
    t_settle = time.perf_counter() - t
    t = time.perf_counter()
    mem.close()
    t_close = time.perf_counter() - t
    sizes = {
        "db": db.stat().st_size,
        "wal": Path(f"{db}-wal").stat().st_size if Path(f"{db}-wal").exists() else 0,
        "index": sum(p.stat().st_size for p in Path(f"{db}.index").glob("*.faiss")),
    }
    t = time.perf_counter()
    mem = EpisodicMemory.open(db, MemoryConfig(blur_faces=False))
    t_reopen = time.perf_counter() - t
    assert mem.index_report[MODEL] == "loaded", mem.index_report
    picks = rng.integers(0, n, n_queries)
    q = stored[picks] + (0.3 / np.sqrt(DIM)) * rng.standard_normal((n_queries, DIM)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    lat, recalls = [], []
    for qi in q:
        t = time.perf_counter()
        hits = mem.search(qi, MODEL, k=10)
        lat.append(time.perf_counter() - t)
        exact = {int(i) + 1 for i in np.argpartition(-(stored @ qi), 10)[:10]}
        recalls.append(len({h.keyframe_id for h in hits} & exact) / 10)
    kind = mem.stats()["models"][0]["index"]
    trained_on = next(iter(mem.indexes.values())).n_train
    mem.close()
    return {
        "keyframes": n,
        "insert_per_s": round(n / t_insert),
        "batch_max_ms": round(t_batch_max * 1e3, 1),
        "index_settle_s": round(t_settle, 3),
        "close_s": round(t_close, 3),
        "query_p50_ms": round(float(np.median(lat)) * 1e3, 3),
        "query_p95_ms": round(float(np.percentile(lat, 95)) * 1e3, 3),
        "recall_at_10": round(float(np.mean(recalls)), 4),
        "reopen_s": round(t_reopen, 3),
        "index": kind,
        "index_trained_on": trained_on,
        "bytes_per_keyframe_db": round((sizes["db"] + sizes["wal"]) / n, 1),
        "bytes_per_keyframe_total": round(sum(sizes.values()) / n, 1),
    }


def compare_indexes(n: int) -> list[dict]:
    """The measurement behind the index choice: faiss IVF+SQ4 (+exact re-rank) vs usearch HNSW (i8)."""
    import faiss
    from usearch.index import Index

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((max(n // 100, 10), DIM)).astype(np.float32)
    x = make_batch(rng, centres / np.linalg.norm(centres, axis=1, keepdims=True), 0, n)
    q = x[rng.integers(0, n, 200)] + (0.3 / np.sqrt(DIM)) * rng.standard_normal((200, DIM)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    gt = [set(np.argpartition(-(x @ qi), 10)[:10].tolist()) for qi in q]
    out = []

    def measure(name: str, add, search, size: int, t_add: float) -> None:
        lat, rec = [], []
        for qi, g in zip(q, gt, strict=True):
            t = time.perf_counter()
            ids = search(qi)
            lat.append(time.perf_counter() - t)
            rec.append(len(set(map(int, ids)) & g) / 10)
        out.append(
            {
                "index": name,
                "add_per_s": round(n / t_add),
                "query_p50_ms": round(float(np.median(lat)) * 1e3, 3),
                "recall_at_10": round(float(np.mean(rec)), 3),
                "bytes_per_vector": round(size / n, 1),
            }
        )

    tmp = Path(tempfile.mkdtemp())
    for m in (16, 32):
        ix = Index(
            ndim=DIM, metric="cos", dtype="i8", connectivity=m, expansion_add=128, expansion_search=128
        )
        t = time.perf_counter()
        ix.add(np.arange(n), x)
        t_add = time.perf_counter() - t
        ix.save(str(tmp / "u.bin"))
        measure(
            f"usearch HNSW i8 M={m} ef=128",
            None,
            lambda qi, ix=ix: ix.search(qi, 10).keys,
            (tmp / "u.bin").stat().st_size,
            t_add,
        )
    nlist = int(4 * np.sqrt(n))
    ivf = faiss.IndexIVFScalarQuantizer(
        faiss.IndexFlatIP(DIM), DIM, nlist, faiss.ScalarQuantizer.QT_4bit, faiss.METRIC_INNER_PRODUCT
    )
    t = time.perf_counter()
    ivf.train(x[rng.choice(n, min(n, 40 * nlist), replace=False)])
    ivf.add_with_ids(x, np.arange(n))
    t_add = time.perf_counter() - t
    faiss.write_index(ivf, str(tmp / "f.bin"))
    for nprobe in (16, 32):
        ivf.nprobe = nprobe

        def search(qi, ivf=ivf):
            _, ids = ivf.search(qi[None], 50)
            ids = ids[0][ids[0] >= 0]
            return ids[np.argsort(-(x[ids] @ qi))[:10]]

        measure(
            f"faiss IVF{nlist} SQ4 nprobe={nprobe} + re-rank 50",
            None,
            search,
            (tmp / "f.bin").stat().st_size,
            t_add,
        )
    shutil.rmtree(tmp)
    return out


def table(rows: list[dict]) -> str:
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], help="keyframe counts")
    ap.add_argument(
        "--compare-indexes", type=int, metavar="N", help="compare ANN libraries at N vectors instead"
    )
    ap.add_argument("--workdir", type=Path, default=None, help="where the databases go (default: a temp dir)")
    args = ap.parse_args()
    if args.compare_indexes:
        rows = compare_indexes(args.compare_indexes)
        print(table(rows))
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_memory_"))
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in args.sizes:
        rows.append(bench_size(n, workdir))
        print(table(rows[-1:]), flush=True)
    if args.workdir is None:
        shutil.rmtree(workdir)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "dim": DIM,
        "data": "clustered unit vectors (see module docstring)",
        "results": rows,
    }
    RESULTS.write_text(json.dumps(doc, indent=2))
    print(table(rows))


if __name__ == "__main__":
    main()
