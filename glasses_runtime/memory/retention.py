"""Forgetting and retention: the memory's deletions, all of which reach the bytes.

``PRAGMA secure_delete=ON`` (set on every connection) makes SQLite overwrite deleted cells and freed
pages with zeros. Older copies of those pages can still sit in the WAL, so after deleting, ``forget``
checkpoints with TRUNCATE, which copies the WAL into the database and empties the WAL file; with
``vacuum=True`` the database is also rebuilt compactly. The index entries are removed and the index
file rewritten. If another process holds a read transaction open, the checkpoint cannot finish; the
report says so (``purged: false``) and running forget again once readers are gone completes it.

Retention deletes in transactions of ``RetentionPolicy.batch`` rows and releases the memory's lock
between them, so a recorder writing at the same time waits at most one small batch.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

from glasses_runtime.memory.config import RetentionPolicy
from glasses_runtime.memory.episodes import refresh_after_delete
from glasses_runtime.memory.errors import NotFoundError
from glasses_runtime.memory.vector_index import ModelIndex

if TYPE_CHECKING:
    from glasses_runtime.memory.store import EpisodicMemory


def _delete_keyframes(mem: EpisodicMemory, where: str, args: tuple, limit: int | None = None) -> int:
    """Delete keyframes matching `where` (at most `limit`) and their token grids in one transaction; fix
    episodes; update index."""
    with mem.transaction() as db:
        sql = f"SELECT id, model_ref, episode_id FROM keyframes WHERE {where} ORDER BY t_ns"
        rows = db.execute(sql + (f" LIMIT {int(limit)}" if limit else ""), args).fetchall()
        if not rows:
            return 0
        ids = [r[0] for r in rows]
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            marks = ",".join("?" * len(part))
            db.execute(f"DELETE FROM keyframes WHERE id IN ({marks})", part)
            db.execute(f"DELETE FROM keyframe_tokens WHERE keyframe_id IN ({marks})", part)
        for ep in {r[2] for r in rows if r[2] is not None}:
            refresh_after_delete(mem, ep)
        mem.deletion_gen += 1
        db.execute("UPDATE meta SET value = ? WHERE key = 'deletion_gen'", (str(mem.deletion_gen),))
    by_ref: dict[int, list[int]] = {}
    for kid, ref, _ in rows:
        by_ref.setdefault(ref, []).append(kid)
    for ref, kids in by_ref.items():
        if ref in mem.indexes:
            mem.indexes[ref].remove(np.asarray(kids, dtype=np.int64))
    return len(ids)


def _purge(mem: EpisodicMemory, vacuum: bool) -> bool:
    """Push deletions out of the WAL (and optionally rebuild the file). True when the WAL is empty."""
    mem.save_indexes()
    if vacuum:
        mem.db.execute("VACUUM")
    busy, _, _ = mem.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return busy == 0


def forget(
    mem: EpisodicMemory,
    *,
    t0: int | None = None,
    t1: int | None = None,
    episode_id: int | None = None,
    everything: bool = False,
    vacuum: bool = False,
) -> dict:
    """Remove memories for good: a time range [t0, t1] (ns, inclusive), one episode, or everything.
    A forgotten keyframe takes its thumbnail and token grid with it.

    Returns {"keyframes": n, "events": n, "episodes": n, "purged": WAL emptied?}.
    """
    if sum([everything, episode_id is not None, t0 is not None or t1 is not None]) != 1:
        raise ValueError("forget needs exactly one of: a time range (t0/t1), an episode id, or everything")
    report = {"keyframes": 0, "events": 0, "episodes": 0}
    n_eps = mem.db.execute("SELECT count(*) FROM episodes").fetchone()[0]
    if everything:
        report["keyframes"] = _delete_keyframes(mem, "1", ())
        with mem.transaction() as db:
            report["events"] = db.execute("DELETE FROM events").rowcount
            for table in ("keyframe_tokens", "episodes", "sessions", "object_prototypes", "objects"):
                db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
        mem.episodes.open.clear()
        for ref, idx in list(mem.indexes.items()):
            ModelIndex.delete_files(mem.index_dir, idx.model_hash)
            mem.indexes[ref] = ModelIndex(idx.model_hash, idx.dim, mem.cfg.index)
    elif episode_id is not None:
        ep = mem.db.execute(
            "SELECT session_id, model_ref, start_ns, end_ns FROM episodes WHERE id = ?", (episode_id,)
        ).fetchone()
        if ep is None:
            raise NotFoundError(
                f"no episode {episode_id}; list episodes with `glasses-runtime memory timeline`"
            )
        sid, ref, s, e = ep
        report["keyframes"] = _delete_keyframes(
            mem, "model_ref = ? AND t_ns BETWEEN ? AND ? AND episode_id = ?", (ref, s, e, episode_id)
        )
        with mem.transaction() as db:
            report["events"] = db.execute(
                "DELETE FROM events WHERE session_id = ? AND t_ns BETWEEN ? AND ?", (sid, s, e)
            ).rowcount
            db.execute("DELETE FROM episodes WHERE id = ?", (episode_id,))
    else:
        lo = t0 if t0 is not None else -(2**63)
        hi = t1 if t1 is not None else 2**63 - 1
        if lo > hi:
            raise ValueError(f"forget: start {lo} is after end {hi}")
        report["keyframes"] = _delete_keyframes(mem, "t_ns BETWEEN ? AND ?", (lo, hi))
        with mem.transaction() as db:
            report["events"] = db.execute("DELETE FROM events WHERE t_ns BETWEEN ? AND ?", (lo, hi)).rowcount
    report["episodes"] = n_eps - mem.db.execute("SELECT count(*) FROM episodes").fetchone()[0]
    report["purged"] = _purge(mem, vacuum)
    return report


def apply_retention(
    mem: EpisodicMemory, policy: RetentionPolicy | None = None, stop: threading.Event | None = None
) -> dict:
    """Delete what the policy no longer keeps, oldest first, in small transactions. Returns counts."""
    policy = policy or mem.cfg.retention
    removed = {"keyframes": 0, "events": 0}

    def batches(where: str, args: tuple, budget: int | None = None) -> None:
        while not (stop is not None and stop.is_set()):
            n = policy.batch if budget is None else min(policy.batch, budget - removed["keyframes"])
            if n <= 0:
                return
            with mem.lock:  # released between batches: the recorder gets its turn
                got = _delete_keyframes(mem, where, args, limit=n)
            removed["keyframes"] += got
            if got < n:
                return

    newest = mem.db.execute("SELECT max(t_ns) FROM keyframes").fetchone()[0]
    if policy.max_age_s is not None and newest is not None:
        cutoff = newest - int(policy.max_age_s * 1e9)
        batches("t_ns < ?", (cutoff,))
        with mem.transaction() as db:
            removed["events"] = db.execute("DELETE FROM events WHERE t_ns < ?", (cutoff,)).rowcount
    if policy.max_keyframes is not None:
        excess = mem.db.execute("SELECT count(*) FROM keyframes").fetchone()[0] - policy.max_keyframes
        if excess > 0:
            batches("1", (), budget=removed["keyframes"] + excess)
    if removed["keyframes"]:
        with mem.lock:
            mem.save_indexes()
    return removed


class RetentionWorker:
    """Applies the retention policy every interval_s seconds in a background thread.

    worker = RetentionWorker(mem, RetentionPolicy(max_age_s=30 * 86400), interval_s=600).start()
    ...
    worker.stop()
    """

    def __init__(self, mem: EpisodicMemory, policy: RetentionPolicy, interval_s: float) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        self.mem, self.policy, self.interval_s = mem, policy, interval_s
        self.removed = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-retention", daemon=True)

    def start(self) -> RetentionWorker:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.removed += apply_retention(self.mem, self.policy, self._stop)["keyframes"]
            except BaseException as e:  # kept for the owner to inspect; the thread must not die silently
                self.error = e
                return
            self._stop.wait(self.interval_s)

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)
