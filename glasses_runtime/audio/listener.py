"""The audio thread: an audio source -> VAD -> one callback per finished speech segment.

listener = SpeechListener(WavSource(path), on_segment=lambda seg: ...)
listener.start(); ...; listener.stop()      # stop() closes a segment still open
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

import numpy as np

from glasses_runtime.audio.vad import SpeechSegment, SpeechSegmenter, VadConfig


class AudioSource(Protocol):
    def blocks(self, t0_ns: int | None = None): ...  # Iterator[tuple[int, np.ndarray]]

    def close(self) -> None: ...


class SpeechListener:
    def __init__(
        self,
        source: AudioSource,
        on_segment: Callable[[SpeechSegment], None],
        config: VadConfig | None = None,
    ) -> None:
        self.source, self.on_segment = source, on_segment
        self.segmenter = SpeechSegmenter(config)
        self.segments = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="speech-listener", daemon=True)

    def start(self) -> SpeechListener:
        self._thread.start()
        return self

    def _emit(self, segs: list[SpeechSegment]) -> None:
        for s in segs:
            self.segments += 1
            self.on_segment(s)

    def _loop(self) -> None:
        try:
            for t0, block in self.source.blocks():
                self._emit(self.segmenter.push(np.asarray(block, dtype=np.float32), t0))
            self._emit(self.segmenter.finish())
        except BaseException as e:  # reported by stop(); audio never takes the video loop down
            self.error = e

    def join(self, timeout_s: float | None = None) -> None:
        self._thread.join(timeout_s)

    def stop(self) -> None:
        self.source.close()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
