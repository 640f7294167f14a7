"""Simulator inputs beyond the runtime's own sources: the steerable 3D world and a metered microphone.

    src = SteerableWorld(WorldConfig(size=96), seed=0, policy=None)   # WASD via steer(); a FrameSource
    src.steer(Action.FORWARD); frame = src.read()                      # frame.pose = (x, y, z, yaw)

    audio = MeteredAudio(WavSource("speech.wav"))                      # level in dBFS for the HUD
    listener = SpeechListener(audio, on_segment); probe = attach_speech_probe(listener)
    audio.level_db, probe.speaking

The world only moves when it is steered (keys) or, with ``policy`` ("random" | "waypoint"), on its
own when no key is pending; otherwise it keeps showing the current view, as a camera on a wearer who
stands still. Frame times are the monotonic clock (the world is a live camera here), strictly increasing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from glasses_runtime.audio.listener import AudioSource, SpeechListener
from glasses_runtime.audio.vad import SileroVad, SpeechSegmenter
from glasses_runtime.sources import Frame, SourceStats
from simulator.world import Action, WorldConfig

WASD = {"w": Action.FORWARD, "s": Action.BACK, "a": Action.TURN_LEFT, "d": Action.TURN_RIGHT}


class SteerableWorld:
    """A ``FrameSource`` over ``ApartmentEnv``: keys steer the wearer, an optional policy walks when idle."""

    def __init__(
        self, config: WorldConfig | None = None, *, seed: int = 0, policy: str | None = None
    ) -> None:
        from simulator.world import ApartmentEnv, make_policy  # opens GL: only when a world is asked for

        self.env = ApartmentEnv(config)
        self.name = "world"
        self.stats = SourceStats()
        self._image, info = self.env.reset(seed=seed)
        self._pose = info["pose"]
        self._policy = make_policy(policy, self.env, seed=seed) if policy else None
        self._pending: Action | None = None
        self._first = True
        self._action: int | None = None  # the action that led to the current frame
        self._last_t = 0
        self.steps = 0
        self.collisions = 0
        self._done = False
        self._closed = False

    def steer(self, action: Action) -> None:
        """The next ``read`` takes this action (the last key wins)."""
        self._pending = Action(int(action))

    def hold(self) -> None:
        """Stop the autopilot: from now on the wearer moves only when steered."""
        self._policy = None

    def read(self) -> Frame | None:
        if self._done:
            return None
        if self._first:
            self._first = False
        else:
            action: Any = self._pending
            self._pending = None
            self._action = None
            if action is None and self._policy is not None:
                action = self._policy.act()
            if action is not None:
                self._image, _, terminated, truncated, info = self.env.step(action)
                self._pose = info["pose"]
                # the action that led to this frame (discrete: its index), for the world model's surprise
                self._action = int(action) if isinstance(action, (int, np.integer)) else None
                self.steps += 1
                self.collisions += int(bool(info["collided"]))
                if self._policy is not None:
                    self._policy.observe(info)
                if terminated or truncated:
                    self._done = True
        t = max(time.monotonic_ns(), self._last_t + 1)
        self._last_t = t
        self.stats.frames_read += 1
        self.stats.last_good_index += 1
        return Frame(
            t,
            self._image,
            tuple(float(v) for v in self._pose),
            self.stats.last_good_index,
            action=self._action,
        )

    def close(self) -> None:
        if not self._closed:  # idempotent: the session and the CLI's error path may both close
            self._closed = True
            self.env.close()


class MeteredAudio:
    """Wraps an audio source; remembers the level of the newest block (dBFS, RMS) for the HUD."""

    def __init__(self, inner: AudioSource) -> None:
        self.inner = inner
        self.level_db: float | None = None

    def blocks(self, t0_ns: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        for t, block in self.inner.blocks(t0_ns):
            rms = float(np.sqrt(np.mean(np.square(block, dtype=np.float64)))) if len(block) else 0.0
            self.level_db = 20.0 * np.log10(max(rms, 1e-6))
            yield t, block

    def close(self) -> None:
        self.inner.close()


class SpeechProbe:
    """A VAD that remembers its newest speech probability, so the HUD can light the speech dot."""

    def __init__(self, vad: SileroVad, threshold: float) -> None:
        self.vad, self.threshold = vad, threshold
        self.probability = 0.0
        self._lock = threading.Lock()

    def reset(self) -> None:
        self.vad.reset()

    def __call__(self, window: np.ndarray) -> float:
        p = self.vad(window)
        with self._lock:
            self.probability = p
        return p

    @property
    def speaking(self) -> bool:
        with self._lock:
            return self.probability >= self.threshold


def attach_speech_probe(listener: SpeechListener) -> SpeechProbe:
    """Give a (not yet started) listener a segmenter whose VAD reports its probability to the HUD."""
    cfg = listener.segmenter.cfg
    probe = SpeechProbe(SileroVad(), cfg.threshold)
    listener.segmenter = SpeechSegmenter(cfg, vad=probe)  # type: ignore[arg-type]
    return probe
