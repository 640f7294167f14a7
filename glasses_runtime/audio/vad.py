"""Voice activity detection: Silero VAD (ONNX, weights shipped in the ``silero-vad`` wheel) on 16 kHz mono.

    seg = SpeechSegmenter(VadConfig())
    for t0_ns, block in audio_blocks:            # float32 [N] in [-1, 1], any N
        for s in seg.push(block, t0_ns):         # SpeechSegment(start_ns, end_ns, ...) once it has ended
            ...
    tail = seg.finish()                          # a segment still open when the stream ends

The model runs through onnxruntime on 32 ms windows (512 samples + 64 samples of context, as the model
was trained); its recurrent state is carried across windows. Speech starts when the probability reaches
``threshold`` and ends after ``min_silence_ms`` below ``neg_threshold``; segments shorter than
``min_speech_ms`` are discarded. We load the ``.onnx`` file directly (not ``silero_vad.load_silero_vad``),
because importing that package sets torch's global thread count to 1 as a side effect.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000
WINDOW = 512  # samples per model call at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous window the model sees


class VadError(Exception):
    """The VAD model cannot be loaded."""


@dataclass(frozen=True)
class VadConfig:
    threshold: float = 0.5
    neg_threshold: float = 0.35
    min_speech_ms: float = 250.0
    min_silence_ms: float = 300.0
    pad_ms: float = 30.0

    def __post_init__(self) -> None:
        if not 0.0 < self.neg_threshold <= self.threshold < 1.0:
            raise ValueError(
                f"need 0 < neg_threshold <= threshold < 1, got {self.neg_threshold}, {self.threshold}"
            )
        for name in ("min_speech_ms", "min_silence_ms", "pad_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class SpeechSegment:
    """start_ns/end_ns: stream timestamps (monotonic ns). audio: float32 [N] samples of the segment (16 kHz)."""

    start_ns: int
    end_ns: int
    peak_probability: float
    audio: np.ndarray

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9

    def pcm16(self) -> bytes:
        return (np.clip(self.audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def silero_model_path() -> Path:
    spec = importlib.util.find_spec("silero_vad")  # locates the package without importing it
    if spec is None or spec.origin is None:
        raise VadError(
            "the silero-vad package is not installed: pip install -e . (it is a runtime dependency)"
        )
    path = Path(spec.origin).parent / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise VadError(f"{path} is missing from the silero-vad install; reinstall silero-vad")
    return path


class SileroVad:
    """Streaming speech probability per 512-sample window."""

    def __init__(self, path: Path | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.inter_op_num_threads = 1  # a tiny model: one thread leaves the cores to the vision encoder
        opts.intra_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(path or silero_model_path()), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self.reset()

    def reset(self) -> None:
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros((1, CONTEXT), dtype=np.float32)

    def __call__(self, window: np.ndarray) -> float:
        """window: float32 [512] -> speech probability in [0, 1]."""
        x = np.concatenate([self._context, window.reshape(1, WINDOW).astype(np.float32)], axis=1)
        out, self._state = self.session.run(
            None, {"input": x, "state": self._state, "sr": np.array(SAMPLE_RATE, dtype=np.int64)}
        )
        self._context = x[:, -CONTEXT:]
        return float(out[0, 0])


class SpeechSegmenter:
    """Turns a stream of audio blocks into speech segments (hysteresis on the VAD probability)."""

    def __init__(self, config: VadConfig | None = None, vad: SileroVad | None = None) -> None:
        self.cfg = config or VadConfig()
        self.vad = vad or SileroVad()
        self._buf = np.zeros(0, dtype=np.float32)
        self._buf_t0_ns: int | None = None  # timestamp of _buf[0]
        self._speech_start: int | None = None  # ns
        self._silence_since: int | None = None
        self._peak = 0.0
        self._audio: list[np.ndarray] = []
        self._last_end_ns = 0

    @staticmethod
    def _ns(samples: int) -> int:
        return int(round(samples * 1e9 / SAMPLE_RATE))

    def push(self, block: np.ndarray, t0_ns: int) -> list[SpeechSegment]:
        """block: float32 [N] starting at t0_ns. Returns the segments that ended inside it."""
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        if self._buf_t0_ns is None or len(self._buf) == 0:
            self._buf_t0_ns = t0_ns - self._ns(len(self._buf))
        self._buf = np.concatenate([self._buf, block])
        out: list[SpeechSegment] = []
        while len(self._buf) >= WINDOW:
            win, self._buf = self._buf[:WINDOW], self._buf[WINDOW:]
            t_win = self._buf_t0_ns
            self._buf_t0_ns = t_win + self._ns(WINDOW)
            seg = self._step(win, t_win, self._buf_t0_ns)
            if seg is not None:
                out.append(seg)
        return out

    def _step(self, win: np.ndarray, t_start: int, t_end: int) -> SpeechSegment | None:
        p = self.vad(win)
        if self._speech_start is None:
            if p >= self.cfg.threshold:
                self._speech_start = max(t_start - int(self.cfg.pad_ms * 1e6), self._last_end_ns)
                self._silence_since, self._peak, self._audio = None, p, [win]
            return None
        self._audio.append(win)
        self._peak = max(self._peak, p)
        if p >= self.cfg.neg_threshold:
            self._silence_since = None
            return None
        self._silence_since = self._silence_since or t_start
        if t_end - self._silence_since >= self.cfg.min_silence_ms * 1e6:
            return self._close(self._silence_since + int(self.cfg.pad_ms * 1e6))
        return None

    def _close(self, end_ns: int) -> SpeechSegment | None:
        start = self._speech_start
        assert start is not None
        seg = SpeechSegment(start, end_ns, self._peak, np.concatenate(self._audio))
        self._speech_start, self._silence_since, self._audio = None, None, []
        self._last_end_ns = end_ns
        return seg if seg.duration_s * 1000 >= self.cfg.min_speech_ms else None

    def finish(self) -> list[SpeechSegment]:
        """End of stream: close a segment still open."""
        if self._speech_start is None or self._buf_t0_ns is None:
            return []
        seg = self._close(self._silence_since or self._buf_t0_ns)
        return [seg] if seg is not None else []
