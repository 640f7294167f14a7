"""Runtime metrics: frame rates in and out, drops, per-stage latency percentiles, queue depth.

    m = runtime.metrics.snapshot()        # dict: frames_in, frames_processed, frames_dropped, fps_in, fps_out,
                                          #       latency_ms {stage: {p50, p95, p99, max}}, queue_depth, ...
    console.print(metrics_table(m))       # the CLI's live rich table
    JsonLinesWriter(path).write(m)        # one JSON object per line, on request (--metrics-jsonl)

Latencies are kept in a bounded window per stage (the newest ``window`` samples), so a long run costs
constant memory and the percentiles describe recent behaviour. Stages: ``preprocess``, ``encode``,
``salience``, ``total`` (the frame's whole time inside the runtime, including any wait for the worker in
LIVE_STREAM). Thread-safe: the producer and the worker thread both record.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO

import numpy as np
from rich.table import Table

STAGES = ("preprocess", "encode", "salience", "total")


def percentiles(samples: list[float] | np.ndarray) -> dict[str, float | None]:
    if len(samples) == 0:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    a = np.asarray(samples, dtype=np.float64)
    p50, p95, p99 = np.percentile(a, [50, 95, 99])
    return {
        "p50": round(float(p50), 3),
        "p95": round(float(p95), 3),
        "p99": round(float(p99), 3),
        "max": round(float(a.max()), 3),
    }


class Metrics:
    def __init__(self, window: int = 10_000) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self._lock = threading.Lock()
        self._lat = {s: deque(maxlen=window) for s in STAGES}
        self.frames_in = 0
        self.frames_processed = 0
        self.frames_dropped = 0
        self.frames_rejected = 0  # corrupt input refused by the runtime (not an HxWx3 uint8 image)
        self.keyframes = 0
        self.events = 0
        self.speech_segments = 0
        self.queue_depth = 0
        self.max_queue_depth = 0
        self._t_start = time.monotonic()
        self._t_first_in: float | None = None
        self._t_last_in: float | None = None
        self._t_first_out: float | None = None
        self._t_last_out: float | None = None

    def frame_in(self) -> None:
        now = time.monotonic()
        with self._lock:
            self.frames_in += 1
            self._t_first_in = self._t_first_in or now
            self._t_last_in = now

    def frame_done(self, stages_ms: dict[str, float], keyframe: bool, boundary: bool) -> None:
        now = time.monotonic()
        with self._lock:
            self.frames_processed += 1
            self.keyframes += int(keyframe)
            self.events += int(boundary)
            for name, ms in stages_ms.items():
                self._lat[name].append(ms)
            self._t_first_out = self._t_first_out or now
            self._t_last_out = now

    def dropped(self, n: int = 1) -> None:
        with self._lock:
            self.frames_dropped += n

    def rejected(self) -> None:
        with self._lock:
            self.frames_rejected += 1

    def speech(self) -> None:
        with self._lock:
            self.speech_segments += 1
            self.events += 1

    def depth(self, depth: int) -> None:
        with self._lock:
            self.queue_depth = depth
            self.max_queue_depth = max(self.max_queue_depth, depth)

    @staticmethod
    def _rate(n: int, t0: float | None, t1: float | None) -> float | None:
        if n < 2 or t0 is None or t1 is None or t1 <= t0:
            return None
        return round((n - 1) / (t1 - t0), 3)

    def snapshot(self) -> dict:
        with self._lock:
            lat = {s: percentiles(list(d)) for s, d in self._lat.items()}
            return {
                "frames_in": self.frames_in,
                "frames_processed": self.frames_processed,
                "frames_dropped": self.frames_dropped,
                "frames_rejected": self.frames_rejected,
                "keyframes": self.keyframes,
                "events": self.events,
                "speech_segments": self.speech_segments,
                "fps_in": self._rate(self.frames_in, self._t_first_in, self._t_last_in),
                "fps_out": self._rate(self.frames_processed, self._t_first_out, self._t_last_out),
                "queue_depth": self.queue_depth,
                "max_queue_depth": self.max_queue_depth,
                "latency_ms": lat,
                "elapsed_s": round(time.monotonic() - self._t_start, 3),
            }


def metrics_table(snap: dict, title: str = "glasses-runtime") -> Table:
    """A rich table of one snapshot (the CLI refreshes it live on stderr)."""
    t = Table(title=title, show_header=True, header_style="bold")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for key in (
        "frames_in",
        "frames_processed",
        "frames_dropped",
        "frames_rejected",
        "keyframes",
        "events",
        "speech_segments",
        "fps_in",
        "fps_out",
        "queue_depth",
        "max_queue_depth",
    ):
        v = snap.get(key)
        t.add_row(key, "-" if v is None else (f"{v:.1f}" if isinstance(v, float) else str(v)))
    for stage, p in snap["latency_ms"].items():
        if p["p50"] is not None:
            t.add_row(f"{stage} ms p50/p95/p99", f"{p['p50']:.1f} / {p['p95']:.1f} / {p['p99']:.1f}")
    return t


class JsonLinesWriter:
    """Append one JSON object per line (with a wall-clock ``ts``), flushed each time so tail -f works."""

    def __init__(self, path: str | Path | IO[str]) -> None:
        self._own = not hasattr(path, "write")
        self._f: IO[str] = open(path, "a") if self._own else path  # type: ignore[arg-type, assignment]  # noqa: SIM115

    def write(self, snap: dict) -> None:
        self._f.write(json.dumps({"ts": round(time.time(), 3), **snap}) + "\n")
        self._f.flush()

    def close(self) -> None:
        if self._own:
            self._f.close()
