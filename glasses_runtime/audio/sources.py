"""Audio inputs at 16 kHz mono float32: a microphone (sounddevice / PortAudio) or a WAV file.

    mic = open_microphone()          # AudioUnavailableError when there is no input device (CI machines)
    wav = WavSource("tests/assets/speech_two_utterances.wav")
    for t0_ns, block in wav.blocks(): ...      # float32 [N] in [-1, 1]; t0_ns of its first sample

Both give timestamps on the monotonic clock the frame sources use, so speech events and keyframes
share one time line.
"""

from __future__ import annotations

import queue
import threading
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glasses_runtime.audio.vad import SAMPLE_RATE


class AudioUnavailableError(Exception):
    """No usable audio input (no microphone, PortAudio missing, device busy)."""


class AudioFileError(Exception):
    """A WAV file cannot be used as audio input."""


class WavSource:
    """A 16 kHz mono 16-bit PCM WAV file, in blocks; ``realtime`` paces them as a microphone would."""

    def __init__(self, path: str | Path, block: int = 1600, realtime: bool = False) -> None:
        self.path = Path(path)
        if block < 1:
            raise ValueError(f"block must be >= 1, got {block}")
        if not self.path.is_file():
            raise AudioFileError(f"audio file not found: {self.path}")
        try:
            with wave.open(str(self.path), "rb") as w:
                rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
                raw = w.readframes(w.getnframes())
        except (wave.Error, EOFError) as e:
            raise AudioFileError(f"{self.path} is not a readable WAV file ({e})") from None
        if (rate, channels, width) != (SAMPLE_RATE, 1, 2):
            raise AudioFileError(
                f"{self.path} is {rate} Hz, {channels} channel(s), {8 * width}-bit; the runtime takes 16 kHz mono "
                "16-bit PCM: re-record or convert it to that format"
            )
        if len(raw) % 2:
            raise AudioFileError(
                f"{self.path} ends in the middle of a sample ({len(raw)} data bytes for 16-bit samples): the file "
                "was cut short; re-export it (or trim it to whole samples)"
            )
        self.samples = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
        self.block, self.realtime = block, realtime
        self._stop = threading.Event()

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SAMPLE_RATE

    def blocks(self, t0_ns: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        t0 = time.monotonic_ns() if t0_ns is None else t0_ns
        for i in range(0, len(self.samples), self.block):
            if self._stop.is_set():
                return
            t = t0 + int(round(i * 1e9 / SAMPLE_RATE))
            if self.realtime and (wait := t - time.monotonic_ns()) > 0 and self._stop.wait(wait / 1e9):
                return
            yield t, self.samples[i : i + self.block]

    def close(self) -> None:
        self._stop.set()


@dataclass(frozen=True)
class MicrophoneConfig:
    device: int | str | None = None  # None: the system's default input
    block: int = 1600  # samples per callback (100 ms)
    max_queued_blocks: int = 50  # 5 s; older blocks are dropped (and counted) if the VAD falls behind

    def __post_init__(self) -> None:
        if self.block < 1 or self.max_queued_blocks < 1:
            raise ValueError("block and max_queued_blocks must be >= 1")


class MicrophoneSource:
    """A sounddevice input stream; its callback only copies blocks into a bounded queue."""

    def __init__(self, config: MicrophoneConfig | None = None) -> None:
        self.cfg = config or MicrophoneConfig()
        self.dropped_blocks = 0
        self._q: queue.Queue[tuple[int, np.ndarray]] = queue.Queue(maxsize=self.cfg.max_queued_blocks)
        self._stop = threading.Event()
        try:
            import sounddevice as sd

            sd.query_devices(self.cfg.device, kind="input")
            self._stream = sd.InputStream(
                samplerate=SAMPLE_RATE,
                channels=1,
                dtype="float32",
                blocksize=self.cfg.block,
                device=self.cfg.device,
                callback=self._on_block,
            )
            self._stream.start()
        # OSError: no PortAudio library; sd.PortAudioError: no input device; ValueError: unknown device.
        except Exception as e:
            raise AudioUnavailableError(
                f"no microphone ({type(e).__name__}: {e}); running video-only. Plug in a microphone or pass --mic "
                "only where one exists"
            ) from None

    def _on_block(self, indata: np.ndarray, frames: int, time_info: object, status: object) -> None:
        # The block's first sample was captured `frames` samples before this callback.
        t0 = time.monotonic_ns() - int(round(frames * 1e9 / SAMPLE_RATE))
        try:
            self._q.put_nowait((t0, indata[:, 0].copy()))
        except queue.Full:
            self.dropped_blocks += 1

    def blocks(self, t0_ns: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        while not self._stop.is_set():
            try:
                yield self._q.get(timeout=0.1)
            except queue.Empty:
                continue

    def close(self) -> None:
        self._stop.set()
        stream = getattr(self, "_stream", None)
        if stream is not None:
            stream.stop()
            stream.close()


def open_microphone(config: MicrophoneConfig | None = None) -> MicrophoneSource:
    return MicrophoneSource(config)
