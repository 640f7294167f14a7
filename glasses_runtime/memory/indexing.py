"""Keeping the derived vector indexes in step with SQLite, and retraining them off the write path.

``sync_indexes`` (on open and before each query) loads each model's index file, adds rows committed
since its sync point, or rebuilds it when missing, stale or corrupt. ``maintain`` (the writer, after
each batch) saves the index every ``IndexConfig.save_every`` changes and retrains it in the background.
Both are exposed as ``EpisodicMemory`` methods, like queries.py and retention.py.

When a model's index outgrows its kind (the flat index reaches ``flat_below``, or the IVF grows
``retrain_growth`` times past its training size), the writer starts a ``BackgroundBuild`` and goes on
recording into the current ("live") index, which queries keep using:

    build = BackgroundBuild(db_path, cfg, model_ref, live).start()
    ...                                   # writer: add to `live`; its removals are logged for the build
    if build.done:                        # writer, under the memory's lock
        new = build.finish(conn)          # apply logged removals, add rows committed since, return it

The thread opens its own read-only SQLite connection, builds from the rows up to the newest id when
it starts (``ModelIndex.build``: training sample, then every vector in chunks, each chunk a short read
so WAL checkpoints and ``forget``'s purge are not held up), then catches up on rows committed
meanwhile until fewer than ``SWAP_GAP`` are missing, so the writer's share at the swap is small. The
index stays derived from SQLite: the build reads only committed rows, and the swap tops up from the
writer's own connection. Deletions made during the build are logged by the live index
(``ModelIndex.removal_log``) and replayed on the new one, and queries re-score every candidate from
SQLite anyway, so a forgotten keyframe never comes back. If the live index is replaced meanwhile
(``forget(everything=True)``, a reload), the store cancels the build and discards its result.

The thread runs faiss with ``BACKGROUND_THREADS`` OpenMP threads (all cores but one, which the
recorder keeps); faiss releases the GIL, so recording goes on while it trains.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from glasses_runtime.memory.config import MemoryConfig
from glasses_runtime.memory.schema import connect
from glasses_runtime.memory.vector_index import (
    BUILD_THREADS,
    BuildCancelled,
    ModelIndex,
    last_keyframe_id,
    omp_threads,
)

if TYPE_CHECKING:
    from glasses_runtime.memory.store import EpisodicMemory

SWAP_GAP = 2_000  # the thread catches up until fewer rows than this are missing
BACKGROUND_THREADS = max(1, (os.cpu_count() or 1) - 1)


class BackgroundBuild:
    """A replacement index for one model, built from SQLite in a daemon thread."""

    def __init__(self, db_path: Path, cfg: MemoryConfig, model_ref: int, live: ModelIndex) -> None:
        self.db_path = db_path
        self.cfg = cfg
        self.model_ref = model_ref
        self.live = live
        self.removed: list[np.ndarray] = []
        live.removal_log = self.removed
        self.result: ModelIndex | None = None
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"memory-index-{live.model_hash[:8]}", daemon=True
        )

    def start(self) -> BackgroundBuild:
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait until the thread finished (built, failed or cancelled). True when it has."""
        return self._done.wait(timeout_s)

    def cancel(self, wait_s: float = 0.0) -> None:
        """Stop at the next step (a training run is not interrupted) and stop logging removals."""
        self._stop.set()
        if self.live.removal_log is self.removed:
            self.live.removal_log = None
        self._done.wait(wait_s)

    def _run(self) -> None:
        try:
            conn = connect(
                self.db_path,
                readonly=True,
                synchronous=self.cfg.synchronous,
                busy_timeout_ms=self.cfg.busy_timeout_ms,
            )
            try:
                with omp_threads(BACKGROUND_THREADS):
                    live = self.live
                    idx = ModelIndex.build(
                        conn, self.model_ref, live.model_hash, live.dim, self.cfg.index, stop=self._stop
                    )
                    while not self._stop.is_set() and idx.catch_up(conn, self.model_ref) >= SWAP_GAP:
                        pass
            finally:
                conn.close()
            if not self._stop.is_set():
                self.result = idx
        except BuildCancelled:
            pass
        except Exception as e:  # handed to the writer, which keeps the live index and reports it
            self.error = e
        finally:
            self._done.set()

    def finish(self, conn: sqlite3.Connection) -> ModelIndex:
        """The built index, made current: removals logged since the start replayed, rows committed
        after its last catch-up added up to the live index's sync point. Call under the writer's lock once
        `done`; raises the build's error if it failed."""
        if self.live.removal_log is self.removed:
            self.live.removal_log = None
        if self.error is not None:
            raise self.error
        if self.result is None:
            raise BuildCancelled
        new = self.result
        if self.removed:
            new.remove(np.concatenate(self.removed))
        new.catch_up(conn, self.model_ref, self.live.synced_id)
        return new


def sync_indexes(mem: EpisodicMemory) -> None:
    """Bring every model's index up to date with SQLite: load, catch up, or rebuild (see vector_index)."""
    with mem.lock:
        gen = int(mem.meta("deletion_gen", "0") or 0)
        if gen != mem.deletion_gen:
            # Rows were deleted by another connection: reload from disk or rebuild.
            mem.indexes.clear()
            mem.deletion_gen = gen
        seq = last_keyframe_id(mem.db)
        mem.refresh_models()
        for model_hash, (ref, dim) in mem.models.items():
            idx = mem.indexes.get(ref)
            if idx is None:
                idx, why = ModelIndex.load(mem.index_dir, model_hash, dim, mem.cfg.index, gen)
                if idx is None:
                    with omp_threads(BUILD_THREADS):
                        idx = ModelIndex.build(mem.db, ref, model_hash, dim, mem.cfg.index, seq)
                    mem.index_report[model_hash] = f"rebuilt ({why})"
                else:
                    mem.index_report[model_hash] = "loaded"
                mem.indexes[ref] = idx
            if idx.synced_id < seq:
                added = idx.catch_up(mem.db, ref, seq)
                if added and mem.index_report.get(model_hash) == "loaded":
                    mem.index_report[model_hash] = f"loaded, caught up {added}"
            if not mem.readonly:
                maintain(mem, ref)


def maintain(mem: EpisodicMemory, ref: int) -> None:
    """Writer only, under its lock: swap in a finished background build, start one when the index
    outgrew its kind, save the index every save_every changes."""
    idx = mem.indexes[ref]
    build = mem.builds.get(ref)
    if build is not None and build.live is not idx:  # the index was replaced: the build is moot
        build.cancel()
        del mem.builds[ref]
    elif build is not None and build.done:
        del mem.builds[ref]
        try:
            new = build.finish(mem.db)
        except sqlite3.DatabaseError:
            raise
        except Exception as e:  # derived data: keep recording into the current index, retry later
            idx.retry_at = idx.ntotal + mem.cfg.index.save_every
            mem.index_report[idx.model_hash] = f"background rebuild failed ({type(e).__name__}: {e})"
        else:
            mem.indexes[ref] = idx = new
            idx.save(mem.index_dir, mem.deletion_gen)
            mem.index_report[idx.model_hash] = f"retrained in background ({idx.kind}, {idx.n_train} vectors)"
    if ref not in mem.builds and idx.needs_rebuild():
        mem.builds[ref] = BackgroundBuild(mem.path, mem.cfg, ref, idx).start()
    if idx.unsaved >= mem.cfg.index.save_every or (
        idx.unsaved and not ModelIndex.paths(mem.index_dir, idx.model_hash)[0].exists()
    ):
        idx.save(mem.index_dir, mem.deletion_gen)


def wait_for_index(mem: EpisodicMemory, timeout_s: float | None = None) -> bool:
    """Wait until no background index build is in flight, swapping finished ones in (and starting any
    the new sizes call for). True when none is left; False at the timeout. Recording may go on."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        with mem.lock:  # taken per round, not while waiting: the recorder keeps its turn
            if not mem.readonly:
                for ref in list(mem.indexes):
                    maintain(mem, ref)
            pending = list(mem.builds.values())
        if not pending:
            return True
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return False
        pending[0].wait(left)


def save_indexes(mem: EpisodicMemory) -> None:
    """Write every index with unsaved changes (or no file yet) to disk."""
    with mem.lock:
        for idx in mem.indexes.values():
            if idx.unsaved or not ModelIndex.paths(mem.index_dir, idx.model_hash)[0].exists():
                idx.save(mem.index_dir, mem.deletion_gen)
