"""The end-to-end loop behind ``glasses-runtime run``: source -> runtime -> memory, plus the speech thread.

    summary = run(RunConfig(source="tests/assets/bikes.mp4", model="encoder.pte", memory="memory.db"))

``stop`` (a ``threading.Event``) ends the loop cleanly from a signal handler: the frame in flight
finishes, every keyframe/event is committed, the memory session ends, and the summary is returned.
Frames the runtime refuses as corrupt are skipped and counted; a source that fails for good (camera
gone after its retry budget) still gets everything flushed before its error is raised.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from glasses_runtime.audio import (
    AudioUnavailableError,
    MicrophoneSource,
    SpeechListener,
    SpeechSegment,
    WavSource,
)
from glasses_runtime.memory import EventIn
from glasses_runtime.metrics import JsonLinesWriter, metrics_table
from glasses_runtime.runtime import FrameError, FrameResult, RunningMode, Runtime, RuntimeOptions
from glasses_runtime.sources import Frame, FrameSource, SourceError, open_source

MODES = {"video": RunningMode.VIDEO, "live": RunningMode.LIVE_STREAM}


@dataclass
class RunConfig:
    """source: camera index, stream URL, video file or image folder. mode: "video" (every frame, in order) or
    "live" (LIVE_STREAM: newest frame wins; files are then paced in real time like a camera).
    mic: listen to the default microphone (video-only, with one message, if there is none).
    audio_file: a 16 kHz mono WAV to run through the VAD alongside (paced in real time in live mode).
    metrics_jsonl: append a metrics snapshot every ``metrics_every_s`` as JSON lines.
    live_table: refresh a rich metrics table on stderr.
    surprise_model: a token world model (.pte or .safetensors): salience's surprise becomes its
    prediction error (RuntimeOptions.token_world_model).
    """

    source: str
    model: str | Path
    memory: str | Path | None = None
    mode: str = "video"
    max_frames: int | None = None
    mic: bool = False
    audio_file: str | Path | None = None
    threads: int = 2
    folder_fps: float = 5.0
    metrics_jsonl: str | Path | None = None
    metrics_every_s: float = 1.0
    live_table: bool = False
    store_thumbnails: bool = True
    surprise_model: str | Path | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {self.max_frames}")
        if self.metrics_every_s <= 0:
            raise ValueError(f"metrics_every_s must be > 0, got {self.metrics_every_s}")
        for what, path in (("--memory", self.memory), ("--metrics-jsonl", self.metrics_jsonl)):
            _check_output_file(what, path)


def _check_output_file(what: str, path: str | Path | None) -> None:
    """A file the run will write: not a directory, in a folder that exists (ValueError naming the fix)."""
    if path is None:
        return
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{what} {p} is a directory; give a file path inside it (e.g. {p / 'memory.db'})")
    if not p.parent.is_dir():
        raise ValueError(f"{what} {p}: the folder {p.parent} does not exist; create it first")


def _speech_event(seg: SpeechSegment) -> EventIn:
    return EventIn(seg.start_ns, "speech", text=f"speech {seg.duration_s:.2f} s (until t_ns={seg.end_ns})")


def _open_audio(cfg: RunConfig, say: Callable[[str], None]) -> WavSource | MicrophoneSource | None:
    if cfg.audio_file is not None:
        return WavSource(cfg.audio_file, realtime=cfg.mode == "live")
    if cfg.mic:
        try:
            return MicrophoneSource()
        except AudioUnavailableError as e:
            say(str(e))  # once; the run goes on video-only
    return None


def run(
    cfg: RunConfig,
    stop: threading.Event | None = None,
    messages: TextIO | None = None,
    source: FrameSource | None = None,
) -> dict:
    """Run until the source ends, ``max_frames`` frames were taken, or ``stop`` is set. Returns the summary."""
    stop = stop or threading.Event()
    out = messages or sys.stderr
    notes: list[str] = []

    def say(msg: str) -> None:
        notes.append(msg)
        print(msg, file=out, flush=True)

    live = cfg.mode == "live"
    src = source or open_source(str(cfg.source), realtime=live, fps=cfg.folder_fps)
    results: list[FrameResult] = []

    def on_result(result: FrameResult, frame: Frame) -> None:
        results.clear()  # keep only the newest; the callback must stay cheap
        results.append(result)

    rt: Runtime | None = None
    listener: SpeechListener | None = None
    jsonl = JsonLinesWriter(cfg.metrics_jsonl) if cfg.metrics_jsonl else None
    stopped_by, error = "end_of_source", None
    live_view: _LiveTable | None = None
    t_start = time.monotonic()  # reset once the model is loaded: fps and wall_s describe the loop itself
    try:
        rt = Runtime(
            RuntimeOptions(
                model_path=cfg.model,
                running_mode=MODES[cfg.mode],
                result_callback=on_result if live else None,
                threads=cfg.threads,
                memory_path=cfg.memory,
                source_name=src.name,
                store_thumbnails=cfg.store_thumbnails,
                token_world_model=cfg.surprise_model,
            )
        )
        audio = _open_audio(cfg, say)
        if audio is not None:
            runtime = rt
            listener = SpeechListener(audio, lambda seg: runtime.record_event(_speech_event(seg))).start()
        if cfg.live_table:
            live_view = _LiveTable(out)
        t_start = time.monotonic()
        next_report = t_start + cfg.metrics_every_s
        taken = 0
        while True:
            if stop.is_set():
                stopped_by = "signal"
                break
            if cfg.max_frames is not None and taken >= cfg.max_frames:
                stopped_by = "max_frames"
                break
            try:
                frame = src.read()
            except SourceError as e:  # e.g. the camera did not come back within its retry budget
                stopped_by, error = "source_error", str(e)
                say(str(e))
                break
            if frame is None:
                break
            taken += 1
            try:
                if live:
                    rt.process_async(frame, frame.t_ns)
                else:
                    rt.process_for_video(frame, frame.t_ns)
            except FrameError:
                continue  # counted by the runtime as frames_rejected
            if time.monotonic() >= next_report:
                next_report += cfg.metrics_every_s
                snap = rt.metrics.snapshot()
                if jsonl is not None:
                    jsonl.write(snap)
                if live_view is not None:
                    live_view.update(snap)
    finally:
        if live_view is not None:
            live_view.stop()
        if listener is not None:
            if isinstance(listener.source, WavSource) and stopped_by == "end_of_source":
                listener.join()  # a recorded pair (video + wav) ran to its end: finish the audio too
            listener.stop()
            if listener.error is not None:
                say(f"audio stopped: {type(listener.error).__name__}: {listener.error}")
        try:
            if rt is not None:
                rt.close()  # finishes the frame in flight and commits everything decided
        finally:
            src.close()
            if jsonl is not None and rt is not None:
                jsonl.write(rt.metrics.snapshot())
                jsonl.close()
    summary = summarize(rt, src, stopped_by, time.monotonic() - t_start, notes)
    summary["error"] = error
    return summary


def summarize(rt: Runtime, src: FrameSource, stopped_by: str, wall_s: float, notes: list[str]) -> dict:
    snap = rt.summary()
    total = snap["latency_ms"]["total"]
    processed = snap["frames_processed"]
    return {
        "frames_in": snap["frames_in"],
        "frames_processed": processed,
        "frames_dropped": snap["frames_dropped"],
        "frames_rejected": snap["frames_rejected"],
        "keyframes": snap["keyframes"],
        "events": snap["events"],
        "speech_segments": snap["speech_segments"],
        "fps": round(processed / wall_s, 3) if wall_s > 0 else None,
        "fps_in": snap["fps_in"],
        "fps_out": snap["fps_out"],
        "latency_ms": {k: total[k] for k in ("p50", "p95", "p99")},
        "stage_latency_ms": snap["latency_ms"],
        "max_queue_depth": snap["max_queue_depth"],
        "engine": snap["engine"],
        "model_id": snap["model_id"],
        "memory": snap.get("memory"),
        "source": {"name": src.name, **src.stats.to_json()},
        "stopped_by": stopped_by,
        "wall_s": round(wall_s, 3),  # the loop, from the first frame read to the last commit
        "notes": notes + list(src.stats.notes),
    }


class _LiveTable:
    """A rich Live view of the metrics on stderr (only used when asked for, e.g. on a terminal)."""

    def __init__(self, out: TextIO) -> None:
        from rich.console import Console
        from rich.live import Live

        self._live = Live(console=Console(file=out), refresh_per_second=4, transient=False)
        self._live.start()

    def update(self, snap: dict) -> None:
        self._live.update(metrics_table(snap))

    def stop(self) -> None:
        self._live.stop()
