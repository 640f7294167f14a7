"""Recorded sources: a video file (real-time pace or as fast as possible) and a folder of images.

    src = VideoFile(VideoFileConfig("tests/assets/bikes.mp4", realtime=True))
    src = ImageFolder(ImageFolderConfig("tests/assets/bikes_frames", fps=5.0))

Damaged input is skipped, counted and reported, never fatal mid-stream: a frame the decoder cannot
read is skipped (``stats.corrupt_skipped``) when later frames still decode; a file that stops early
(truncated, damaged tail) ends the stream with ``stats.ended_early`` and ``stats.last_good_index``
saying how far it got. A file that cannot be opened at all raises ``SourceError`` at once.

Timestamps: ``t_ns`` = a monotonic clock reading taken at the first read + the frame's media time, so they
increase within a source and do not collide with earlier sessions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from glasses_runtime.sources.base import Frame, SourceError, SourceStats, valid_rgb

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass(frozen=True)
class VideoFileConfig:
    """realtime: deliver frames at the file's frame rate (as a camera would) instead of as fast as decoded.
    max_consecutive_failures: failed decodes in a row after which the rest of the file counts as unreadable.
    fps_fallback: frame rate to assume when the container does not state one.
    """

    path: str | Path
    realtime: bool = False
    max_consecutive_failures: int = 25
    fps_fallback: float = 30.0

    def __post_init__(self) -> None:
        if self.max_consecutive_failures < 1:
            raise ValueError(f"max_consecutive_failures must be >= 1, got {self.max_consecutive_failures}")
        if self.fps_fallback <= 0:
            raise ValueError(f"fps_fallback must be > 0, got {self.fps_fallback}")


class VideoFile:
    """A ``FrameSource`` over a video file decoded by OpenCV (FFmpeg)."""

    def __init__(self, config: VideoFileConfig) -> None:
        self.cfg = config
        path = Path(config.path)
        self.name = f"video:{path.name}"
        self.stats = SourceStats()
        if not path.is_file():
            raise SourceError(f"video file not found: {path}")
        self._cap = cv2.VideoCapture(str(path))
        if not self._cap.isOpened():
            raise SourceError(
                f"cannot open video {path}: the file is damaged, truncated before its index (an MP4 whose 'moov' "
                "atom is at the end), or in a format FFmpeg does not read; re-copy or re-encode it"
            )
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and np.isfinite(fps) and fps > 0 else config.fps_fallback
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.stats.expected_frames = count if count > 0 else None
        self._position = 0  # decode attempts so far = index of the next frame
        # Set at the first read, so a slow start-up (model loading) does not make realtime pacing skip ahead.
        self._t0: int | None = None
        self._done = False

    def read(self) -> Frame | None:
        failures = 0
        while not self._done:
            ok, bgr = self._cap.read()
            index = self._position
            self._position += 1
            if ok and valid_rgb(bgr):
                # A later frame decoded, so the failures before it were skipped frames, not the end.
                self.stats.corrupt_skipped += failures
                return self._emit(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), index)
            failures += 1
            expected = self.stats.expected_frames
            if failures >= self.cfg.max_consecutive_failures or (
                expected is not None and self._position >= expected
            ):
                self._finish()
        return None

    def _emit(self, rgb: np.ndarray, index: int) -> Frame:
        if self._t0 is None:
            self._t0 = time.monotonic_ns() - int(round(index * 1e9 / self.fps))
        t_ns = self._t0 + int(round(index * 1e9 / self.fps))
        if self.cfg.realtime:
            wait = t_ns - time.monotonic_ns()
            if wait > 0:
                time.sleep(wait / 1e9)
        self.stats.frames_read += 1
        self.stats.last_good_index = index
        return Frame(t_ns, rgb, index=index)

    def _finish(self) -> None:
        self._done = True
        expected = self.stats.expected_frames
        got = self.stats.last_good_index + 1
        if expected is not None and got < expected:
            self.stats.ended_early = True
            self.stats.notes.append(
                f"{self.name}: stopped after frame {self.stats.last_good_index} of {expected} (the rest did not decode; "
                "the file is truncated or damaged)"
            )

    def close(self) -> None:
        self._done = True
        self._cap.release()

    def __enter__(self) -> VideoFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class ImageFolderConfig:
    """Images in name order, one frame each, timed as if shot at ``fps``; realtime paces them at that rate."""

    path: str | Path
    fps: float = 5.0
    realtime: bool = False

    def __post_init__(self) -> None:
        if self.fps <= 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")


class ImageFolder:
    """A ``FrameSource`` over the images of a folder (unreadable files are skipped and counted)."""

    def __init__(self, config: ImageFolderConfig) -> None:
        self.cfg = config
        folder = Path(config.path)
        if not folder.is_dir():
            raise SourceError(f"image folder not found: {folder}")
        self.files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise SourceError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
        self.name = f"images:{folder.name}"
        self.stats = SourceStats(expected_frames=len(self.files))
        self._next = 0
        self._t0: int | None = None  # set at the first read

    def read(self) -> Frame | None:
        while self._next < len(self.files):
            index = self._next
            self._next += 1
            bgr = cv2.imread(str(self.files[index]), cv2.IMREAD_COLOR)
            if bgr is None or not valid_rgb(bgr):
                self.stats.corrupt_skipped += 1
                self.stats.notes.append(f"skipped unreadable image {self.files[index].name}")
                continue
            if self._t0 is None:
                self._t0 = time.monotonic_ns() - int(round(index * 1e9 / self.cfg.fps))
            t_ns = self._t0 + int(round(index * 1e9 / self.cfg.fps))
            if self.cfg.realtime and (wait := t_ns - time.monotonic_ns()) > 0:
                time.sleep(wait / 1e9)
            self.stats.frames_read += 1
            self.stats.last_good_index = index
            return Frame(t_ns, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), index=index)
        return None

    def close(self) -> None:
        self._next = len(self.files)

    def __enter__(self) -> ImageFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
