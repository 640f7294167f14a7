"""The simulator session: source -> Runtime -> memory -> HUD -> window and/or MP4, with the glasses' keys.

    cfg = SessionConfig(model="edge_models/weights/vit_pico.safetensors", memory="mem.db",
                        record="out.mp4", report="out/", keys=KeyScript.parse("e@10:mug,q@40"))
    summary = Session(cfg, VideoFile(VideoFileConfig("tests/assets/bikes.mp4"))).run()

Keys (window, ``--keys`` script, or ``KeyQueue.push`` from code): ``e`` embeds the centre-box crop
and enrolls it (``mem.enroll``), ``q`` asks the memory when that crop was last seen, ``g`` sets a
goal (an enrolled object by name, else the crop) and shows the planner's guidance when a planner
is given, ``p`` pauses/resumes recording, ``m`` marks the moment (an event), WASD steer the world,
Esc quits. Key effects act on the frame they arrive with, after it went through the runtime.

VIDEO mode processes every frame synchronously; LIVE_STREAM (``live=True``, cameras) hands frames
to the runtime's worker and the HUD shows the newest result (frames that arrive faster are dropped
by the runtime, counted). One encoder serves the runtime and the keys; a lock serialises the two
(an ExecuTorch method must not run twice at once).
"""

from __future__ import annotations

import queue
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from glasses_runtime.audio.listener import AudioSource, SpeechListener
from glasses_runtime.engines.encoder import load_encoder
from glasses_runtime.memory import EventIn
from glasses_runtime.memory.codec import normalise
from glasses_runtime.planner.errors import PlannerError
from glasses_runtime.runtime import FrameError, FrameResult, RunningMode, Runtime, RuntimeOptions
from glasses_runtime.sources import Frame, FrameSource, SourceError
from simulator.display import Display, VideoRecorder
from simulator.embedding import Goal, LockedEncoder, Planner, enrolled_objects
from simulator.hud import (
    GuidanceLike,
    Hud,
    HudConfig,
    HudState,
    MemoryHit,
    Recording,
    crop_centre,
    guidance_text,
    push_hit,
)
from simulator.inputs import WASD, MeteredAudio, attach_speech_probe
from simulator.keys import KeyEvent, KeyQueue, KeyScript
from simulator.report import Entry, SessionLog, decode_jpeg, jpeg, write_report

MAX_THUMBS = 2_000  # keyframe thumbnails kept for the report (~5 kB each)


@dataclass(frozen=True)
class SessionConfig:
    """model: encoder .pte (with manifest) or .safetensors. memory: the episodic memory file (None: a
    temporary one, deleted at the end). live: LIVE_STREAM instead of VIDEO. record: MP4 of the HUD.
    report: folder for report.json + report.html. max_frames: stop after this many frames read.
    keys: scripted key presses. record_fps: frame rate written into the MP4. pace_fps: hold the loop at
    this rate (None: as fast as frames come). query_threshold: cosine for "last seen". object_threshold:
    cosine for naming an enrolled object in a query answer. follow_guidance: a steerable source (the 3D
    world) takes the planner's action every frame until the goal is reached (the planner drives)."""

    model: str | Path
    memory: str | Path | None = None
    live: bool = False
    record: str | Path | None = None
    report: str | Path | None = None
    max_frames: int | None = None
    keys: KeyScript = field(default_factory=KeyScript)
    threads: int = 2
    hud: HudConfig = field(default_factory=HudConfig)
    record_fps: float = 30.0
    pace_fps: float | None = None
    # In the default encoder's cosine units (docs/encoder.md): a 40 % centre crop against the full
    # keyframes of its shot scores 0.35-0.7 (the old vit_pico scored ~0.99 against everything).
    query_threshold: float = 0.35
    object_threshold: float = 0.35
    follow_guidance: bool = False

    def __post_init__(self) -> None:
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {self.max_frames}")
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        if not self.record_fps > 0:
            raise ValueError(f"record_fps must be > 0, got {self.record_fps}")
        if self.pace_fps is not None and not self.pace_fps > 0:
            raise ValueError(f"pace_fps must be > 0, got {self.pace_fps}")
        for name in ("query_threshold", "object_threshold"):
            if not -1.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} is a cosine similarity in [-1, 1], got {getattr(self, name)}")


class Session:
    """Runs one simulator session; ``run()`` returns the summary (also written into the report)."""

    def __init__(
        self,
        config: SessionConfig,
        source: FrameSource,
        *,
        keys: KeyQueue | None = None,
        display: Display | None = None,
        planner: Planner | None = None,
        audio: AudioSource | None = None,
        on_frame: Callable[[int, np.ndarray], None] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.cfg, self.source = config, source
        self.keys = keys or KeyQueue()
        self.display, self.planner, self.on_frame = display, planner, on_frame
        self.stop = stop or threading.Event()  # set from a signal handler: the loop ends cleanly
        self.audio = MeteredAudio(audio) if audio is not None else None
        self.hud = Hud(config.hud)
        self.state = HudState()
        self.log = SessionLog()
        self.goal: Goal | None = None
        self.guidance: GuidanceLike | None = None
        self._results: queue.SimpleQueue[tuple[FrameResult, Frame]] = queue.SimpleQueue()
        self._done_times: deque[float] = deque(maxlen=120)
        self._latest_z: np.ndarray | None = None
        self._frame_index: dict[int, int] = {}  # t_ns -> frame index (LIVE results come back later)
        self._t0_ns: int | None = None
        self._enrolled = 0
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._planner_steps = 0
        self._planner_error: str | None = None
        self._thumbs = 0

    # ---- the loop -------------------------------------------------------------------------------------

    def run(self) -> dict:
        cfg = self.cfg
        memory_path = cfg.memory
        if memory_path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="glasses-sim-")
            memory_path = Path(self._tmp.name) / "memory.db"
        self.encoder = LockedEncoder(load_encoder(cfg.model, threads=cfg.threads))
        mode = RunningMode.LIVE_STREAM if cfg.live else RunningMode.VIDEO
        rt = Runtime(
            RuntimeOptions(
                encoder=self.encoder,  # type: ignore[arg-type]
                running_mode=mode,
                result_callback=(lambda r, f: self._results.put((r, f))) if cfg.live else None,
                threads=cfg.threads,
                memory_path=memory_path,
                source_name=getattr(self.source, "name", "sim"),
            )
        )
        self.rt = rt
        assert rt.memory is not None
        self.mem = rt.memory
        bind = getattr(self.planner, "bind", None)
        if bind is not None:
            bind(self.mem, self.encoder)  # the planner reads this session's memory (place graph, objects)
        self.state.recording = Recording.PAUSED if self.mem.paused else Recording.ON
        if self.mem.paused:
            self.state.message = "memory is paused (press p to resume)"
        recorder = VideoRecorder(cfg.record, cfg.record_fps) if cfg.record else None
        listener, probe = None, None
        if self.audio is not None:
            listener = SpeechListener(self.audio, self._on_speech)
            probe = attach_speech_probe(listener)
            listener.start()
        stopped_by, error, i = "end_of_source", None, 0
        t_start = time.monotonic()
        try:
            while True:
                if self.stop.is_set():
                    stopped_by = "signal"
                    break
                if cfg.max_frames is not None and i >= cfg.max_frames:
                    stopped_by = "max_frames"
                    break
                t_tick = time.monotonic()
                try:
                    frame = self.source.read()
                except SourceError as e:
                    stopped_by, error = "source_error", str(e)
                    break
                if frame is None:
                    break
                if self._t0_ns is None:
                    self._t0_ns = frame.t_ns
                self._frame_index[frame.t_ns] = i
                try:
                    if cfg.live:
                        rt.process_async(frame, frame.t_ns)
                    else:
                        self._take(rt.process_for_video(frame, frame.t_ns), frame)
                except FrameError:
                    i += 1
                    continue  # counted by the runtime (frames_rejected)
                self._drain_results()
                for ev in cfg.keys.due(i):
                    self.keys.push(ev)
                quit_now = self._handle_keys(self.keys.drain(), frame, i)
                self._update_guidance(frame)
                if self.audio is not None:
                    self.state.audio_level_db = self.audio.level_db
                    self.state.speaking = bool(probe and probe.speaking)
                canvas = self.hud.draw(frame.image, self.state)
                if self.display is not None:
                    self.display.show(canvas)
                if recorder is not None:
                    recorder.write(canvas)
                if self.on_frame is not None:
                    self.on_frame(i, canvas)
                i += 1
                if quit_now:
                    stopped_by = "key"
                    break
                if cfg.pace_fps is not None:
                    time.sleep(max(0.0, 1.0 / cfg.pace_fps - (time.monotonic() - t_tick)))
        finally:
            if listener is not None:
                listener.stop()
            try:
                rt.close()
            finally:
                self._drain_results()
                if recorder is not None:
                    recorder.close()
                if self.display is not None:
                    self.display.close()
                self.source.close()
        summary = self._summary(rt, i, stopped_by, error, time.monotonic() - t_start, memory_path, recorder)
        if cfg.report is not None:
            paths = write_report(cfg.report, self.log, summary)
            summary["report"] = {k: str(v) for k, v in paths.items()}
        if self._tmp is not None:
            self._tmp.cleanup()
        return summary

    # ---- results --------------------------------------------------------------------------------------

    def _drain_results(self) -> None:
        while True:
            try:
                result, frame = self._results.get_nowait()
            except queue.Empty:
                return
            self._take(result, frame)

    def _take(self, result: FrameResult, frame: Frame) -> None:
        """Record one runtime result: HUD numbers, latency series, keyframes and boundaries for the report."""
        now = time.monotonic()
        self._done_times.append(now)
        recent = [t for t in self._done_times if now - t <= 1.0]
        if len(recent) >= 2:
            self.state.fps = (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6)
        self.state.latency_ms = result.latency_ms["total"]
        self._latest_z = result.embedding
        idx = self._frame_index.pop(result.t_ns, -1)
        while self._frame_index and next(iter(self._frame_index)) < result.t_ns:
            self._frame_index.pop(next(iter(self._frame_index)))  # frames the runtime dropped (LIVE_STREAM)
        self.log.latency_ms.append((idx, result.latency_ms["total"]))
        paused = self.state.recording is Recording.PAUSED
        if result.keyframe:
            self._thumbs += 1
            self.log.add(
                Entry(
                    "keyframe",
                    idx,
                    result.t_ns,
                    f"novelty {result.novelty:.3f}" + (" (not stored: paused)" if paused else ""),
                    # a long webcam session keeps its first MAX_THUMBS keyframe thumbnails, then only times
                    thumb=jpeg(frame.image) if self._thumbs <= MAX_THUMBS else None,
                    data={"t_s": self._t_s(result.t_ns), "novelty": result.novelty, "stored": not paused},
                )
            )
        if result.boundary:
            self.log.add(
                Entry(
                    "surprise",
                    idx,
                    result.t_ns,
                    f"surprise {result.surprise:.3f}",
                    data={"t_s": self._t_s(result.t_ns)},
                )
            )

    def _on_speech(self, seg: Any) -> None:  # audio thread
        self.rt.record_event(EventIn(seg.start_ns, "speech", text=f"speech {seg.duration_s:.2f} s"))
        self.log.add(
            Entry(
                "speech",
                -1,
                seg.start_ns,
                f"speech {seg.duration_s:.2f} s",
                data={"t_s": self._t_s(seg.start_ns)},
            )
        )

    def _t_s(self, t_ns: int) -> float | None:
        return None if self._t0_ns is None else round((t_ns - self._t0_ns) / 1e9, 3)

    # ---- keys -----------------------------------------------------------------------------------------

    def _handle_keys(self, events: list[KeyEvent], frame: Frame, i: int) -> bool:
        quit_now = False
        for ev in events:
            if ev.key == "esc":
                quit_now = True
            elif ev.key in WASD:
                steer = getattr(self.source, "steer", None)
                if steer is None:
                    self.state.message = "WASD moves the wearer only in the world (glasses-sim world)"
                else:
                    steer(WASD[ev.key])
            else:
                getattr(self, f"_key_{ev.key}")(ev, frame, i)
        return quit_now

    def _key_e(self, ev: KeyEvent, frame: Frame, i: int) -> None:
        crop = crop_centre(frame.image, self.cfg.hud.box_frac)
        z = self.encoder.embed(crop)
        self._enrolled += 1
        name = ev.arg or f"object-{self._enrolled}"
        oid = self.mem.enroll(name, z[None, :], self.encoder.model_id)
        self.state.message = f"enrolled '{name}'"
        self.log.add(
            Entry(
                "enroll",
                i,
                frame.t_ns,
                f"enrolled '{name}'",
                thumb=jpeg(crop),
                data={"t_s": self._t_s(frame.t_ns), "name": name, "object_id": oid},
            )
        )

    def _key_q(self, ev: KeyEvent, frame: Frame, i: int) -> None:
        crop = crop_centre(frame.image, self.cfg.hud.box_frac)
        z = self.encoder.embed(crop)
        self.rt.flush(timeout_s=10.0)  # keyframes decided so far are committed before we ask
        model_id = self.encoder.model_id
        obj_name, obj_score = None, None
        for name, protos in enrolled_objects(self.mem, model_id).items():
            s = float(np.max(protos @ z))
            if s >= self.cfg.object_threshold and (obj_score is None or s > obj_score):
                obj_name, obj_score = name, s
        seen = self.mem.last_seen(z, model_id, threshold=self.cfg.query_threshold)
        top = self.mem.search(z, model_id, k=3)
        answer_rgb, age = None, None
        if seen is not None:
            blob = self.mem.thumbnail(seen.keyframe_id)
            answer_rgb = decode_jpeg(blob) if blob else None
            age = max(0.0, (frame.t_ns - seen.t_ns) / 1e9)
        label = obj_name or (f"keyframe #{seen.keyframe_id}" if seen else "not seen")
        text = (
            f"{label}: last seen {age:.1f} s ago (keyframe #{seen.keyframe_id}, cos {seen.score:.2f})"
            if seen is not None
            else f"not seen (no keyframe with cos >= {self.cfg.query_threshold})"
        )
        if obj_name is not None:
            text += f"; object '{obj_name}' cos {obj_score:.2f}"
        self.state.hits = push_hit(
            self.state.hits,
            MemoryHit(label, answer_rgb, age, seen.score if seen else None),
            self.cfg.hud.max_hits,
        )
        self.state.message = text
        self.log.add(
            Entry(
                "query",
                i,
                frame.t_ns,
                text,
                thumb=jpeg(crop),
                answer_thumb=jpeg(answer_rgb) if answer_rgb is not None else None,
                data={
                    "t_s": self._t_s(frame.t_ns),
                    "object": obj_name,
                    "object_score": obj_score,
                    "last_seen": seen.to_json() if seen else None,
                    "age_s": age,
                    "top": [m.to_json() for m in top],
                },
            )
        )

    def _key_g(self, ev: KeyEvent, frame: Frame, i: int) -> None:
        self.rt.flush(timeout_s=10.0)  # the planner's place graph sees every keyframe decided so far
        crop = crop_centre(frame.image, self.cfg.hud.box_frac)
        objects = enrolled_objects(self.mem, self.encoder.model_id)
        if ev.arg is not None and ev.arg in objects:
            protos = objects[ev.arg]
            self.goal = Goal(ev.arg, normalise(protos.mean(axis=0)), None)
        else:
            self.goal = Goal(ev.arg or f"view at frame {i}", self.encoder.embed(crop), jpeg(crop))
        self.guidance, self._planner_steps, self._planner_error = None, 0, None
        self.state.goal_label = self.goal.label
        self.state.message = f"goal set: {self.goal.label}" + (
            "" if self.planner else " (no planner: stored only)"
        )
        self.log.add(
            Entry(
                "goal",
                i,
                frame.t_ns,
                self.state.message,
                thumb=self.goal.thumb,
                data={"t_s": self._t_s(frame.t_ns)},
            )
        )
        self.log.planner = {
            "goal": self.goal.label,
            "planner": "given" if self.planner else "none",
            "steps": 0,
        }

    def _key_p(self, ev: KeyEvent, frame: Frame, i: int) -> None:
        self.rt.flush(timeout_s=10.0)  # what was decided before the key is kept; what follows is not
        if self.state.recording is Recording.PAUSED:
            self.mem.resume()
            self.state.recording, kind = Recording.ON, "resume"
        else:
            self.mem.pause()
            self.state.recording, kind = Recording.PAUSED, "pause"
        self.state.message = "recording resumed" if kind == "resume" else "recording paused"
        self.log.add(Entry(kind, i, frame.t_ns, self.state.message, data={"t_s": self._t_s(frame.t_ns)}))

    def _key_m(self, ev: KeyEvent, frame: Frame, i: int) -> None:
        paused = self.state.recording is Recording.PAUSED
        text = ev.arg or f"marked at frame {i}"
        self.rt.record_event(EventIn(frame.t_ns, "mark", text=text))
        self.state.message = "moment marked" + (" (not stored: paused)" if paused else "")
        self.log.add(
            Entry(
                "mark",
                i,
                frame.t_ns,
                text,
                thumb=jpeg(frame.image),
                data={"t_s": self._t_s(frame.t_ns), "stored": not paused},
            )
        )

    # ---- planner --------------------------------------------------------------------------------------

    def _update_guidance(self, frame: Frame) -> None:
        if self.goal is None or self.planner is None or self._latest_z is None or self._planner_error:
            self.state.guidance = None
            return
        if self.guidance is not None and getattr(self.guidance, "reached", False):
            return  # arrived: keep showing it until a new goal
        try:
            g = self.planner(self._latest_z, frame.pose, self.goal)
        except PlannerError as e:  # e.g. nothing remembered yet: say so on the HUD, keep running
            self._planner_error = str(e)
            self.state.guidance, self.state.message = None, f"planner: {e}"
            self.log.planner = {"goal": self.goal.label, "planner": "given", "error": str(e)}
            return
        self.state.guidance = self.guidance = g
        self._planner_steps += 1
        reached = bool(getattr(g, "reached", False))
        steer = getattr(self.source, "steer", None)
        if self.cfg.follow_guidance and steer is not None and not reached:
            steer(g.action)
        if reached:
            self.state.message = f"reached: {self.goal.label}"
            hold = getattr(self.source, "hold", None)
            if self.cfg.follow_guidance and hold is not None:
                hold()  # the wearer stops where the goal is
        self.log.planner = {
            "goal": self.goal.label,
            "planner": "given",
            "steps": self._planner_steps,
            "last_guidance": guidance_text(g),
            "energy": float(g.energy),
            "confidence": float(g.confidence),
            "reached": reached,
            "replan_ms": round(float(getattr(g, "plan_ms", 0.0)), 2),
        }

    # ---- summary --------------------------------------------------------------------------------------

    def _summary(
        self,
        rt: Runtime,
        frames: int,
        stopped_by: str,
        error: str | None,
        wall_s: float,
        memory_path: Path | str,
        recorder: VideoRecorder | None,
    ) -> dict:
        snap = rt.summary()
        total = snap["latency_ms"]["total"]
        return {
            "source": getattr(self.source, "name", "sim"),
            "mode": "live" if self.cfg.live else "video",
            "frames_in": snap["frames_in"],
            "frames_processed": snap["frames_processed"],
            "frames_dropped": snap["frames_dropped"],
            "frames_rejected": snap["frames_rejected"],
            "frames_shown": frames,
            "keyframes": snap["keyframes"],
            "events": snap["events"],
            "fps": round(snap["frames_processed"] / wall_s, 3) if wall_s > 0 else None,
            "latency_ms": {k: total[k] for k in ("p50", "p95", "p99")},
            "engine": snap["engine"],
            "model_id": snap["model_id"],
            "memory": snap.get("memory"),
            "memory_path": str(memory_path) if self._tmp is None else "temporary (deleted at the end)",
            "enrolled": [e.data["name"] for e in self.log.of_kind("enroll")],
            "queries": len(self.log.of_kind("query")),
            "marks": len(self.log.of_kind("mark")),
            "recorded_frames": recorder.frames if recorder else 0,
            "record": str(recorder.path) if recorder else None,
            "planner": self.log.planner,
            "stopped_by": stopped_by,
            "error": error,
            "wall_s": round(wall_s, 3),
        }
