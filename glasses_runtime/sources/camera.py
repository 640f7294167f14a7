"""A live camera as a background reader thread that always holds the newest frame.

    cam = OpenCVCamera(CameraConfig(device=0))       # or a URL: "rtsp://..." / "http://.../video"
    cam.connect()
    frame = cam.async_read(timeout_ms=200)            # the next frame newer than the last one returned
    frame = cam.read_latest(max_age_ms=100)           # the newest frame, refusing a stale one
    cam.close()

The thread reads as fast as the device delivers, so the runtime never sees a backlog inside OpenCV's
buffer. When reads keep failing (cable pulled, USB reset) it releases the device and reopens it with
exponential back-off; after ``reconnect_attempts`` failed reopenings every read raises
``CameraDisconnectedError`` naming the device and what to check.

The device layer is a ``capture_factory(device) -> capture`` with OpenCV's ``VideoCapture`` surface
(``isOpened``, ``read``, ``release``, ``set``); tests swap it for recorded real frames.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import cv2

from glasses_runtime.sources.base import CameraDisconnectedError, Frame, SourceError, SourceStats, valid_rgb


class Capture(Protocol):
    """The part of ``cv2.VideoCapture`` the camera uses (BGR uint8 frames)."""

    def isOpened(self) -> bool: ...  # noqa: N802 - OpenCV's name

    def read(self) -> tuple[bool, Any]: ...

    def release(self) -> None: ...

    def set(self, prop: int, value: float) -> bool: ...


class FrameTimeoutError(SourceError):
    """No new frame arrived within the timeout."""


class StaleFrameError(SourceError):
    """The newest frame is older than the caller accepts."""


@dataclass(frozen=True)
class CameraConfig:
    """device: index (0, 1, ...) or a stream URL. width/height/fps: requested from the device (None: its default).
    max_read_failures: consecutive failed reads that count as a disconnect.
    reconnect_attempts: reopenings tried after a disconnect before giving up.
    backoff_s / backoff_max_s: first wait before reopening, doubled each attempt up to the max.
    """

    device: int | str = 0
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    max_read_failures: int = 10
    reconnect_attempts: int = 5
    backoff_s: float = 0.25
    backoff_max_s: float = 4.0

    def __post_init__(self) -> None:
        if isinstance(self.device, int) and self.device < 0:
            raise ValueError(f"camera index must be >= 0, got {self.device}")
        if isinstance(self.device, str) and not self.device:
            raise ValueError("camera URL is empty")
        for name in ("width", "height", "fps"):
            v = getattr(self, name)
            if v is not None and v <= 0:
                raise ValueError(f"{name} must be > 0 or None, got {v}")
        if self.max_read_failures < 1:
            raise ValueError(f"max_read_failures must be >= 1, got {self.max_read_failures}")
        if self.reconnect_attempts < 0:
            raise ValueError(f"reconnect_attempts must be >= 0, got {self.reconnect_attempts}")
        if not 0 <= self.backoff_s <= self.backoff_max_s:
            raise ValueError(
                f"need 0 <= backoff_s <= backoff_max_s, got {self.backoff_s}, {self.backoff_max_s}"
            )


def opencv_capture(device: int | str) -> Capture:
    return cv2.VideoCapture(device)


class OpenCVCamera:
    """A ``FrameSource`` over a camera, read by a background thread (``Lock`` + ``Event``)."""

    def __init__(
        self, config: CameraConfig, capture_factory: Callable[[int | str], Capture] = opencv_capture
    ):
        self.cfg = config
        self.name = f"camera:{config.device}"
        self.stats = SourceStats()
        self._factory = capture_factory
        self._cap: Capture | None = None
        self._lock = threading.Lock()
        self._new_frame = threading.Event()
        self._stop = threading.Event()
        self._latest: Frame | None = None
        self._seq = 0  # increments per frame; async_read returns only frames newer than the last one it gave
        self._given_seq = 0
        self._error: SourceError | None = None
        self._thread: threading.Thread | None = None
        self._last_t_ns = 0

    # ---- lifecycle ----------------------------------------------------------------------------------

    def connect(self) -> OpenCVCamera:
        """Open the device and start the reader thread. SourceError if it cannot be opened."""
        if self._thread is not None:
            return self
        cap = self._open()
        if cap is None:
            raise SourceError(
                f"cannot open camera {self.cfg.device!r}: check that it is plugged in, not used by another "
                "program, and that this user may access it (e.g. the 'video' group)"
            )
        self._cap = cap
        self._thread = threading.Thread(target=self._loop, name=f"camera-{self.cfg.device}", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._new_frame.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self) -> OpenCVCamera:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- reading ------------------------------------------------------------------------------------

    def read_latest(self, max_age_ms: float = 500.0) -> Frame:
        """The newest frame; StaleFrameError if it is older than max_age_ms (or none yet)."""
        with self._lock:
            frame, error = self._latest, self._error
        if error is not None:
            raise error
        if frame is None:
            raise StaleFrameError(f"camera {self.cfg.device!r} has not delivered a frame yet")
        age_ms = (time.monotonic_ns() - frame.t_ns) / 1e6
        if age_ms > max_age_ms:
            raise StaleFrameError(
                f"newest frame of camera {self.cfg.device!r} is {age_ms:.0f} ms old (> {max_age_ms} ms)"
            )
        return frame

    def async_read(self, timeout_ms: float = 1000.0) -> Frame:
        """The first frame newer than the last one this method returned; FrameTimeoutError after timeout_ms."""
        deadline = time.monotonic() + timeout_ms / 1000.0
        while True:
            with self._lock:
                if self._error is not None:
                    raise self._error
                if self._seq > self._given_seq and self._latest is not None:
                    self._given_seq = self._seq
                    self._new_frame.clear()
                    return self._latest
                if self._stop.is_set():
                    raise SourceError(f"camera {self.cfg.device!r} is closed")
            left = deadline - time.monotonic()
            if left <= 0 or not self._new_frame.wait(left):
                raise FrameTimeoutError(
                    f"camera {self.cfg.device!r} delivered no new frame within {timeout_ms} ms"
                )

    def read(self) -> Frame | None:
        """FrameSource: block for the next new frame; None once closed. Raises CameraDisconnectedError."""
        while not self._stop.is_set():
            try:
                return self.async_read(timeout_ms=500.0)
            except FrameTimeoutError:
                continue  # a slow or reconnecting camera: keep waiting until closed or given up
            except CameraDisconnectedError:
                raise
            except SourceError:
                if self._stop.is_set():
                    return None
                raise
        return None

    # ---- the reader thread --------------------------------------------------------------------------

    def _open(self) -> Capture | None:
        try:
            cap = self._factory(self.cfg.device)
        except Exception:  # a backend may raise instead of returning a closed capture
            return None
        if not cap.isOpened():
            cap.release()
            return None
        for prop, v in (
            (cv2.CAP_PROP_FRAME_WIDTH, self.cfg.width),
            (cv2.CAP_PROP_FRAME_HEIGHT, self.cfg.height),
            (cv2.CAP_PROP_FPS, self.cfg.fps),
        ):
            if v is not None:
                cap.set(prop, float(v))
        return cap

    def _loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            assert self._cap is not None
            try:
                ok, bgr = self._cap.read()
            except Exception:
                ok, bgr = False, None
            if ok and bgr is not None and valid_rgb(bgr):
                failures = 0
                self._publish(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                continue
            if ok:
                self.stats.corrupt_skipped += 1  # delivered, but not an HxWx3 uint8 image
            failures += 1
            if failures >= self.cfg.max_read_failures:
                if not self._reconnect():
                    return
                failures = 0

    def _publish(self, rgb: Any) -> None:
        t_ns = max(time.monotonic_ns(), self._last_t_ns + 1)
        self._last_t_ns = t_ns
        with self._lock:
            self.stats.frames_read += 1
            self.stats.last_good_index = self.stats.frames_read - 1
            self._latest = Frame(t_ns, rgb, index=self.stats.last_good_index)
            self._seq += 1
        self._new_frame.set()

    def _reconnect(self) -> bool:
        """Release the device and reopen it with exponential back-off; False (and an error set) if it never returns."""
        if self._cap is not None:
            self._cap.release()
        wait = self.cfg.backoff_s
        for attempt in range(1, self.cfg.reconnect_attempts + 1):
            if self._stop.wait(wait):
                return False
            cap = self._open()
            if cap is not None:
                self._cap = cap
                self.stats.reconnects += 1
                self.stats.notes.append(f"reconnected after {attempt} attempt(s)")
                return True
            wait = min(wait * 2, self.cfg.backoff_max_s) if wait > 0 else 0.0
        with self._lock:
            self._error = CameraDisconnectedError(
                f"camera {self.cfg.device!r} stopped delivering frames and could not be reopened after "
                f"{self.cfg.reconnect_attempts} attempt(s) (after {self.stats.frames_read} frames): check the cable or "
                "stream URL, or raise CameraConfig.reconnect_attempts"
            )
        self._cap = None
        self._new_frame.set()
        return False
