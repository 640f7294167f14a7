"""Where HUD frames go: a Tk window (the glasses display on the desktop) and an MP4 recorder.

    with TkWindow("glasses-sim", keys) as win:      # needs an X display (a desktop, or Xvfb)
        win.show(canvas)                            # RGB uint8 [H, W, 3]; also pumps window events
    with VideoRecorder("out.mp4", fps=30) as rec:
        rec.write(canvas)

Why Tk and not ``cv2.imshow``: the project pins ``opencv-python-headless`` (no GUI backend; the GUI
wheel would clash with it in one environment), and Tk ships with CPython (``tkinter``, libtk8.6),
so no extra Python dependency is needed. A frame is handed to Tk as a binary PPM, which Tk 8.6
decodes natively (about 1 ms for 640x480). Key presses go into the session's ``KeyQueue``; closing
the window counts as Esc. The window is pumped from the session loop (``update()``), not by
``mainloop()``, so the loop keeps control of timing and headless runs share the same code.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from simulator.errors import DisplayUnavailableError, RecorderError
from simulator.keys import KeyEvent, KeyQueue, key_name


class Display(Protocol):
    def show(self, canvas: np.ndarray) -> None: ...

    def close(self) -> None: ...


def display_available() -> bool:
    """True when an X display is named (the window needs one; Wayland desktops provide XWayland)."""
    return bool(os.environ.get("DISPLAY"))


class TkWindow:
    """A Tk window that shows HUD canvases and turns key presses into ``KeyEvent``s."""

    def __init__(self, title: str, keys: KeyQueue) -> None:
        if not display_available():
            raise DisplayUnavailableError(
                "no display: DISPLAY is not set; run on a desktop, under Xvfb (xvfb-run glasses-sim ...), or add --headless"
            )
        try:
            import tkinter as tk
        except ImportError as e:  # a Python built without Tk
            raise DisplayUnavailableError(
                f"this Python has no tkinter ({e}); install Tk for it (Debian: python3-tk / libtk8.6) or use --headless"
            ) from None
        try:
            self._root = tk.Tk()
        except tk.TclError as e:
            raise DisplayUnavailableError(
                f"cannot open a window on DISPLAY={os.environ.get('DISPLAY')} ({e}); check the X server or use --headless"
            ) from None
        self._tk = tk
        self._root.title(title)
        self._root.resizable(False, False)
        self._label = tk.Label(self._root, borderwidth=0, highlightthickness=0, background="black")
        self._label.pack()
        self._photo: object | None = None
        self._keys = keys
        self.closed = False
        self._root.bind("<KeyPress>", self._on_key)
        self._root.protocol("WM_DELETE_WINDOW", self._on_close)
        self._root.update()

    @property
    def widget(self) -> object:
        """The Tk label that shows the canvas (tests read its screen position, or send it key events)."""
        return self._label

    def _on_key(self, event: object) -> None:
        name = key_name(getattr(event, "keysym", ""))
        if name is not None:
            self._keys.push(KeyEvent(name))

    def _on_close(self) -> None:
        self._keys.push(KeyEvent("esc"))
        self.closed = True

    def show(self, canvas: np.ndarray) -> None:
        """Display an RGB uint8 [H, W, 3] canvas and process pending window events (keys, close)."""
        if self.closed:
            return
        h, w = canvas.shape[:2]
        ppm = b"P6 %d %d 255\n" % (w, h) + np.ascontiguousarray(canvas, dtype=np.uint8).tobytes()
        try:
            if self._photo is None or (self._photo.width(), self._photo.height()) != (w, h):  # type: ignore[attr-defined]
                self._photo = self._tk.PhotoImage(width=w, height=h, data=ppm, format="PPM")
                self._label.configure(image=self._photo)
            else:
                self._photo.configure(data=ppm, format="PPM")  # type: ignore[attr-defined]
            self._root.update()
        except self._tk.TclError:  # the window was destroyed under us (window manager, X server gone)
            self._on_close()

    def pump(self) -> None:
        """Process window events without a new frame."""
        if not self.closed:
            try:
                self._root.update()
            except self._tk.TclError:
                self._on_close()

    def close(self) -> None:
        with contextlib.suppress(self._tk.TclError):
            self._root.destroy()
        self.closed = True

    def __enter__(self) -> TkWindow:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class VideoRecorder:
    """Writes HUD canvases to an MP4 (OpenCV VideoWriter, 'mp4v'); every canvas must have one size."""

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        if not (fps > 0 and np.isfinite(fps)):
            raise RecorderError(f"recording fps must be > 0, got {fps}")
        if self.path.suffix.lower() != ".mp4":
            raise RecorderError(f"--record writes MP4: give a path ending in .mp4, got {self.path}")
        if not self.path.parent.is_dir():
            raise RecorderError(f"cannot record to {self.path}: folder {self.path.parent} does not exist")
        self.fps = float(fps)
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None

    def write(self, canvas: np.ndarray) -> None:
        h, w = canvas.shape[:2]
        if self._writer is None:
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self._writer.isOpened():
                raise RecorderError(
                    f"OpenCV cannot open an mp4v writer for {self.path}; check the folder is writable"
                )
            self._size = (w, h)
        elif (w, h) != self._size:
            raise RecorderError(f"HUD size changed from {self._size} to {(w, h)} mid-recording")
        self._writer.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self) -> VideoRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def count_video_frames(path: str | Path) -> int:
    """Decode a video back with OpenCV and count its frames (proves the file plays)."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise RecorderError(f"{path} cannot be opened as a video")
    n = 0
    try:
        while True:
            ok, _ = cap.read()
            if not ok:
                return n
            n += 1
    finally:
        cap.release()
