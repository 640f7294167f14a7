"""The memory writer thread: keyframes and events go to the episodic memory in batched transactions.

    w = MemoryWriter(memory, session_id, WriterConfig(max_batch=64, max_delay_ms=200))
    w.submit_keyframe(KeyframeIn(...)); w.submit_event(EventIn(...))
    w.flush()            # returns once everything submitted so far is committed (acknowledged)
    w.close()            # flush, then stop the thread

The hot loop only enqueues. The thread commits one ``add_keyframes`` and one ``add_events`` transaction
per batch (a batch closes at ``max_batch`` items or ``max_delay_ms`` after its first item), so the fsync
of ``synchronous=FULL`` is paid per batch. Nothing decided is ever dropped: when ``max_pending`` items
wait, ``submit_*`` blocks (backpressure) instead. A commit refused because the database is busy is retried with back-off; if it keeps
failing, the error is raised from the next ``submit``/``flush``/``close`` as ``MemoryWriteError``.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
import time
from dataclasses import dataclass

from glasses_runtime.memory import EpisodicMemory, EventIn, KeyframeIn


class MemoryWriteError(Exception):
    """The memory writer could not commit a batch."""


@dataclass(frozen=True)
class WriterConfig:
    max_batch: int = 64
    max_delay_ms: float = 200.0
    max_pending: int = 4096
    retries: int = 3
    retry_backoff_s: float = 0.1

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {self.max_batch}")
        if self.max_delay_ms < 0:
            raise ValueError(f"max_delay_ms must be >= 0, got {self.max_delay_ms}")
        if self.max_pending < self.max_batch:
            raise ValueError(f"max_pending ({self.max_pending}) must be >= max_batch ({self.max_batch})")
        if self.retries < 0 or self.retry_backoff_s < 0:
            raise ValueError("retries and retry_backoff_s must be >= 0")


_STOP = object()


class MemoryWriter:
    def __init__(self, memory: EpisodicMemory, session_id: int, config: WriterConfig | None = None) -> None:
        self.memory, self.session_id = memory, session_id
        self.cfg = config or WriterConfig()
        self._q: queue.Queue = queue.Queue(maxsize=self.cfg.max_pending)
        self._cond = threading.Condition()
        self._submitted = 0
        self._done = 0  # items whose batch was committed (or refused while the memory is paused)
        self._error: BaseException | None = None
        self.keyframe_ids: list[int] = []  # acknowledged: committed
        self.event_ids: list[int] = []
        self.batches = 0
        self.refused_paused = 0  # items the memory refused because recording is paused
        self._thread = threading.Thread(target=self._loop, name="memory-writer", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        with self._cond:
            return self._submitted - self._done

    def submit_keyframe(self, kf: KeyframeIn) -> None:
        self._put(kf)

    def submit_event(self, ev: EventIn) -> None:
        self._put(ev)

    def _put(self, item: KeyframeIn | EventIn) -> None:
        self._raise_if_failed()
        with self._cond:
            self._submitted += 1
        self._q.put(item)  # blocks when max_pending wait: backpressure, never a drop

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every item submitted before this call is committed."""
        with self._cond:
            target = self._submitted
            ok = self._cond.wait_for(lambda: self._done >= target or self._error is not None, timeout_s)
        self._raise_if_failed()
        if not ok:
            raise MemoryWriteError(
                f"memory writer did not commit {target - self._done} item(s) within {timeout_s} s"
            )

    def close(self) -> None:
        """Commit everything pending, then stop the thread."""
        if self._thread.is_alive():
            self._q.put(_STOP)
            self._thread.join()
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise MemoryWriteError(
                f"writing to the memory failed ({type(self._error).__name__}: {self._error}); "
                "check disk space and that no other process holds the memory for writing"
            )

    # ---- the thread ---------------------------------------------------------------------------------

    def _loop(self) -> None:
        stop = False
        while not stop:
            item = self._q.get()
            if item is _STOP:
                break
            batch = [item]
            deadline = time.monotonic() + self.cfg.max_delay_ms / 1000.0
            while len(batch) < self.cfg.max_batch:
                try:
                    nxt = self._q.get(timeout=max(deadline - time.monotonic(), 0.0))
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                batch.append(nxt)
            try:
                self._commit(batch)
            except BaseException as e:  # recorded; raised to the producer from submit/flush/close
                with self._cond:
                    self._error = e
                    self._cond.notify_all()
                return

    def _commit(self, batch: list) -> None:
        kfs = [x for x in batch if isinstance(x, KeyframeIn)]
        evs = [x for x in batch if isinstance(x, EventIn)]
        kf_ids = self._with_retries(self.memory.add_keyframes, kfs) if kfs else []
        ev_ids = self._with_retries(self.memory.add_events, evs) if evs else []
        with self._cond:
            self.keyframe_ids.extend(kf_ids)
            self.event_ids.extend(ev_ids)
            self.refused_paused += (len(kfs) - len(kf_ids)) + (len(evs) - len(ev_ids))
            self.batches += 1
            self._done += len(batch)
            self._cond.notify_all()

    def _with_retries(self, fn, items: list) -> list[int]:
        wait = self.cfg.retry_backoff_s
        for attempt in range(self.cfg.retries + 1):
            try:
                return fn(items, self.session_id)
            except sqlite3.OperationalError as e:
                # Only "database is locked/busy" is retried: it is raised before COMMIT, so nothing was written
                # and a retry cannot duplicate rows. Anything else fails the writer at once.
                if attempt == self.cfg.retries or not ("locked" in str(e) or "busy" in str(e)):
                    raise
                time.sleep(wait)
                wait *= 2
        raise AssertionError("unreachable")
