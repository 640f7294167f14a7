"""The streaming runtime: frames in, embeddings + salience out, keyframes and events into memory.

    opts = RuntimeOptions("encoder.pte", running_mode=RunningMode.LIVE_STREAM,
                          result_callback=on_result, memory_path="memory.db")
    with Runtime(opts) as rt:
        for frame in source:
            rt.process_async(frame, frame.t_ns)   # returns at once; on_result(result, frame) from the worker
    # close(): finishes the frame in flight, commits every keyframe/event, ends the memory session

Running modes (as MediaPipe tasks have them):

* IMAGE: ``process(image)`` encodes independent images; no salience, nothing stored.
* VIDEO: ``process_for_video(frame, t_ns)`` runs every frame synchronously, in order.
* LIVE_STREAM: ``process_async(frame, t_ns)`` hands the frame to one worker thread. One frame is in
  flight and at most one waits; a newer frame replaces the waiting one, which is counted as dropped.
  So the runtime never builds a backlog: a frame's latency is bounded by about two encoder times.

Timestamps must strictly increase in VIDEO and LIVE_STREAM. Per frame: preprocess (per manifest) ->
encode -> salience (``glasses_runtime.salience``) -> keyframes/events to the memory writer thread.
"""

from __future__ import annotations

import dataclasses
import enum
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from glasses_runtime.engines.encoder import Encoder, load_encoder
from glasses_runtime.memory import EpisodicMemory, EventIn, KeyframeIn, MemoryConfig
from glasses_runtime.metrics import Metrics
from glasses_runtime.salience import Salience, SalienceConfig, WorldModel
from glasses_runtime.sources.base import Frame, valid_rgb
from glasses_runtime.tokens import reduce_tokens
from glasses_runtime.writer import MemoryWriter, WriterConfig


class RuntimeError_(Exception):
    """Base of the runtime's usage errors (named so it does not shadow the builtin)."""


class RunningModeError(RuntimeError_):
    """A method was called that the runtime's running mode does not allow."""


class TimestampError(RuntimeError_):
    """A timestamp did not increase."""


class FrameError(RuntimeError_):
    """An input frame is not an RGB uint8 [H, W, 3] image."""


class ClosedError(RuntimeError_):
    """The runtime was used after close()."""


class CallbackError(RuntimeError_):
    """The LIVE_STREAM worker failed (the result callback or the encoder raised)."""


class RunningMode(enum.Enum):
    IMAGE = "image"
    VIDEO = "video"
    LIVE_STREAM = "live"


@dataclass(frozen=True)
class FrameResult:
    """t_ns: the frame's timestamp. embedding: float32 [D], unit norm. novelty/surprise: cosine distances.
    latency_ms: per stage (preprocess, encode, salience, total). tokens: float32 [h, w, D], the encoder's
    spatial token grid, or None when the model has no token output (older single-output .pte files).
    keyframe_reason: why this frame is a keyframe (first, boundary, novelty, view, interval) or None."""

    t_ns: int
    embedding: np.ndarray
    novelty: float | None
    surprise: float | None
    keyframe: bool
    boundary: bool
    latency_ms: dict[str, float]
    tokens: np.ndarray | None = None
    keyframe_reason: str | None = None


ResultCallback = Callable[[FrameResult, Frame], None]


@dataclass
class RuntimeOptions:
    """model_path: encoder ``.pte`` (with manifest) or ``.safetensors`` (eager fallback).
    encoder: an already built encoder instead of model_path (benchmarks, tests).
    result_callback: required in LIVE_STREAM, not allowed otherwise.
    threads: CPU threads for inference. memory_path: episodic memory to record into (None: record nothing).
    source_name: stored with the session and keyframes. store_thumbnails: keyframes keep a JPEG thumbnail.
    keyframe_tokens: keyframes keep the reduced token grid (``tokens.reduce_tokens``, [4, 8, 192] and
    6,208 bytes for the default encoder) when the encoder has a tokens output.
    world_model: predicts the next embedding for surprise (None: persistence, see salience.py).
    token_world_model: surprise from the token world model instead (docs/runtime.md, "Surprise from the world
    model"): a ``.pte`` / ``.safetensors`` path (``load_token_world_model_file``), a loaded model, or a
    ``surprise.TokenSurprise``; the encoder must output tokens. ``Frame.action`` is its action when known.
    """

    model_path: str | Path | None = None
    running_mode: RunningMode = RunningMode.VIDEO
    result_callback: ResultCallback | None = None
    threads: int = 2
    encoder: Encoder | None = None
    salience: SalienceConfig = field(default_factory=SalienceConfig)
    world_model: WorldModel | None = None
    token_world_model: str | Path | object | None = None
    memory_path: str | Path | None = None
    memory_config: MemoryConfig | None = None
    writer: WriterConfig = field(default_factory=WriterConfig)
    source_name: str = "camera"
    store_thumbnails: bool = True
    keyframe_tokens: bool = True
    metrics_window: int = 10_000

    def __post_init__(self) -> None:
        if not isinstance(self.running_mode, RunningMode):
            raise RunningModeError(f"running_mode must be a RunningMode, got {self.running_mode!r}")
        if (self.model_path is None) == (self.encoder is None):
            raise ValueError("give exactly one of model_path (a .pte or .safetensors file) and encoder")
        live = self.running_mode is RunningMode.LIVE_STREAM
        if live and self.result_callback is None:
            raise RunningModeError("LIVE_STREAM needs result_callback: results arrive on the worker thread")
        if not live and self.result_callback is not None:
            raise RunningModeError(
                f"result_callback is only for LIVE_STREAM; {self.running_mode.name} returns results"
            )
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")


class Runtime:
    def __init__(self, options: RuntimeOptions) -> None:
        self.options = options
        self.mode = options.running_mode
        self.encoder: Encoder = options.encoder or load_encoder(options.model_path, threads=options.threads)
        token_surprise = None
        if options.token_world_model is not None:
            from glasses_runtime.surprise import token_surprise_from

            token_surprise = token_surprise_from(options.token_world_model, threads=options.threads)
            token_surprise.check_encoder(self.encoder)
        self.salience = Salience(options.salience, options.world_model, token_surprise)
        self.metrics = Metrics(options.metrics_window)
        self.memory: EpisodicMemory | None = None
        self.writer: MemoryWriter | None = None
        self.session_id: int | None = None
        self._last_t_ns: int | None = None
        self._closed = False
        self._worker_error: BaseException | None = None
        self._cond = threading.Condition()
        self._waiting: tuple[Frame, int, int] | None = None  # (frame, t_ns, enqueued monotonic_ns)
        self._in_flight = False
        self._worker: threading.Thread | None = None
        if options.memory_path is not None:
            self.memory = EpisodicMemory.open(options.memory_path, options.memory_config)
            try:
                self.session_id = self.memory.start_session(options.source_name)
                self.writer = MemoryWriter(self.memory, self.session_id, options.writer)
            except BaseException:
                self.memory.close()
                raise
        if self.mode is RunningMode.LIVE_STREAM:
            self._worker = threading.Thread(target=self._live_loop, name="runtime-live", daemon=True)
            self._worker.start()

    # ---- public API ---------------------------------------------------------------------------------

    def process(self, image: Frame | np.ndarray) -> FrameResult:
        """IMAGE mode: embed one independent image (no salience, nothing stored)."""
        self._check(RunningMode.IMAGE, "process")
        frame = self._as_frame(image, 0)
        t0 = time.monotonic_ns()
        return self._run(frame, t0, salience=False)

    def process_for_video(self, frame: Frame | np.ndarray, t_ns: int) -> FrameResult:
        """VIDEO mode: process one frame synchronously; t_ns must increase."""
        self._check(RunningMode.VIDEO, "process_for_video")
        f = self._admit(frame, t_ns)
        return self._run(f, time.monotonic_ns(), salience=True)

    def process_async(self, frame: Frame | np.ndarray, t_ns: int) -> None:
        """LIVE_STREAM: hand a frame to the worker and return. A frame still waiting is replaced (dropped)."""
        self._check(RunningMode.LIVE_STREAM, "process_async")
        if self._worker_error is not None:
            raise CallbackError(
                f"the LIVE_STREAM worker stopped on {self._worker_error!r} (in the encoder or the result callback)"
            ) from self._worker_error
        f = self._admit(frame, t_ns)
        with self._cond:
            if self._waiting is not None:
                self.metrics.dropped()
            self._waiting = (f, t_ns, time.monotonic_ns())
            self.metrics.depth(1)
            self._cond.notify_all()

    def record_event(self, event: EventIn) -> None:
        """Store an event from another producer (speech segments from the audio thread, user marks)."""
        if self._closed:
            raise ClosedError("the runtime is closed")
        if event.kind == "speech":
            self.metrics.speech()
        if self.writer is not None:
            self.writer.submit_event(event)

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until everything handed to the memory so far is committed (no-op without memory)."""
        if self.writer is not None:
            self.writer.flush(timeout_s)

    def idle(self) -> bool:
        """LIVE_STREAM: no frame waiting or in flight."""
        with self._cond:
            return self._waiting is None and not self._in_flight

    def summary(self) -> dict:
        snap = self.metrics.snapshot()
        snap["engine"] = self.encoder.kind
        snap["model_id"] = self.encoder.model_id
        if self.writer is not None:
            snap["memory"] = {
                "session_id": self.session_id,
                "keyframes_acknowledged": len(self.writer.keyframe_ids),
                "events_acknowledged": len(self.writer.event_ids),
                "pending": self.writer.pending,
                "batches": self.writer.batches,
                "refused_paused": self.writer.refused_paused,
            }
        return snap

    def close(self) -> None:
        """Finish the frame in flight (and the one waiting), commit everything, end the session. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._worker is not None:
                with self._cond:
                    self._cond.notify_all()
                self._worker.join()
            if self.writer is not None:
                self.writer.close()
        finally:
            if self.memory is not None:
                try:
                    if self.session_id is not None:
                        self.memory.end_session(self.session_id)
                finally:
                    self.memory.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- internals ----------------------------------------------------------------------------------

    def _check(self, mode: RunningMode, method: str) -> None:
        if self._closed:
            raise ClosedError(f"{method}() after close(); create a new Runtime")
        if self.mode is not mode:
            raise RunningModeError(
                f"{method}() is for {mode.name} mode; this runtime runs in {self.mode.name}"
            )

    def _as_frame(self, image: Frame | np.ndarray, t_ns: int) -> Frame:
        frame = image if isinstance(image, Frame) else Frame(t_ns, image)
        if not valid_rgb(frame.image):
            self.metrics.rejected()
            img = frame.image
            desc = f"{img.dtype} {img.shape}" if isinstance(img, np.ndarray) else type(img).__name__
            raise FrameError(
                f"frame at t_ns={t_ns} is not an RGB uint8 [H, W, 3] image (got {desc}); skipped"
            )
        return frame

    def _admit(self, frame: Frame | np.ndarray, t_ns: int) -> Frame:
        if self._last_t_ns is not None and t_ns <= self._last_t_ns:
            raise TimestampError(
                f"timestamp {t_ns} ns is not after the previous one ({self._last_t_ns} ns); timestamps must increase"
            )
        f = self._as_frame(frame, t_ns)
        self._last_t_ns = t_ns
        self.metrics.frame_in()
        return f if f.t_ns == t_ns else dataclasses.replace(f, t_ns=t_ns)

    def _run(self, frame: Frame, t_enter_ns: int, salience: bool) -> FrameResult:
        t0 = time.perf_counter_ns()
        x = self.encoder.preprocess(frame.image)
        t1 = time.perf_counter_ns()
        if self.encoder.token_grid is not None:
            z, tokens = self.encoder.encode_with_tokens(x)
        else:
            z, tokens = self.encoder.encode(x), None
        t2 = time.perf_counter_ns()
        s = self.salience.update(z, frame.action, tokens=tokens, t_ns=frame.t_ns) if salience else None
        t_ns = frame.t_ns
        if s is not None and self.writer is not None:
            if s.keyframe:
                image = frame.image if self.options.store_thumbnails else None
                grid = reduce_tokens(tokens) if tokens is not None and self.options.keyframe_tokens else None
                self.writer.submit_keyframe(
                    KeyframeIn(
                        t_ns,
                        z,
                        self.encoder.model_id,
                        image=image,
                        pose=frame.pose,
                        source=self.options.source_name,
                        tokens=grid,
                    )
                )
            if s.boundary:
                self.writer.submit_event(
                    EventIn(
                        t_ns,
                        "surprise",
                        text=f"surprise={s.surprise:.4f} threshold={s.threshold:.4f} ({s.surprise_source})",
                    )
                )
        t3 = time.perf_counter_ns()
        lat = {
            "preprocess": (t1 - t0) / 1e6,
            "encode": (t2 - t1) / 1e6,
            "salience": (t3 - t2) / 1e6,
            "total": (time.monotonic_ns() - t_enter_ns) / 1e6,
        }
        keyframe, boundary = (s.keyframe, s.boundary) if s is not None else (False, False)
        self.metrics.frame_done(lat, keyframe, boundary)
        return FrameResult(
            t_ns,
            z,
            s.novelty if s else None,
            s.surprise if s else None,
            keyframe,
            boundary,
            lat,
            tokens,
            s.reason if s else None,
        )

    def _live_loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._waiting is not None or self._closed)
                if self._waiting is None:
                    return  # closed and nothing left
                frame, _, t_enq = self._waiting
                self._waiting = None
                self._in_flight = True
                self.metrics.depth(0)
            try:
                result = self._run(frame, t_enq, salience=True)
                self.options.result_callback(result, frame)  # type: ignore[misc]
            except BaseException as e:  # surfaced to the producer on its next call
                self._worker_error = self._worker_error or e
            finally:
                with self._cond:
                    self._in_flight = False
                    self._cond.notify_all()
