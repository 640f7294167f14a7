"""The glasses window under Xvfb: a real X server, a real Tk window, a screenshot taken with xwd.

The screenshot must show exactly the HUD canvas the session drew (camera image + HUD elements) at the
window's place on screen, and a key pressed in the window must reach the session."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess

import cv2
import numpy as np
import pytest

from glasses_runtime.sources import VideoFile, VideoFileConfig
from simulator.hud import BOX, RED, Hud, HudConfig

pytestmark = pytest.mark.skipif(
    shutil.which("Xvfb") is None or shutil.which("xwd") is None,
    reason="needs Xvfb and xwd (Debian xvfb, x11-apps: `make setup` installs them)",
)


@pytest.fixture(scope="module")
def xvfb():
    """A private X server on a free display number (Xvfb picks it and reports it through -displayfd)."""
    r, w = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(w), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
        pass_fds=(w,),
        stderr=subprocess.DEVNULL,
    )
    os.close(w)
    num = b""
    with os.fdopen(r, "rb") as f:
        while not num.endswith(b"\n"):
            chunk = f.read(1)
            if not chunk:
                proc.kill()
                pytest.fail("Xvfb exited before reporting its display number")
            num += chunk
    yield f":{num.decode().strip()}"
    proc.terminate()
    proc.wait(timeout=10)


def screenshot(display: str) -> np.ndarray:
    """The whole X screen as RGB uint8 [H, W, 3], from xwd's ZPixmap dump (32 bits per pixel, TrueColor)."""
    raw = subprocess.run(
        ["xwd", "-root", "-silent", "-display", display], capture_output=True, check=True
    ).stdout
    f = struct.unpack(">25I", raw[:100])
    header_size, fmt, width, height = f[0], f[2], f[4], f[5]
    byte_order, bpp, bytes_per_line, ncolors = f[7], f[11], f[12], f[19]
    masks = f[13 + 1 : 13 + 4]  # red, green, blue masks
    assert fmt == 2 and bpp == 32, f"unexpected xwd format {fmt} / {bpp} bpp"
    start = header_size + 12 * ncolors
    rows = np.frombuffer(raw[start : start + bytes_per_line * height], np.uint8).reshape(
        height, bytes_per_line
    )
    px = rows[:, : width * 4].copy().view("<u4" if byte_order == 0 else ">u4").reshape(height, width)
    out = np.zeros((height, width, 3), np.uint8)
    for c, mask in enumerate(masks):
        shift = (mask & -mask).bit_length() - 1
        out[..., c] = (px & mask) >> shift
    return out


def test_window_shows_the_camera_image_and_hud_and_takes_keys(xvfb, monkeypatch, bikes_mp4, sim_run):
    from simulator.app import Session, SessionConfig
    from simulator.display import TkWindow
    from simulator.keys import KeyQueue, KeyScript

    monkeypatch.setenv("DISPLAY", xvfb)
    keys = KeyQueue()
    window = TkWindow("glasses-sim test", keys)
    shots: dict[int, tuple[np.ndarray, np.ndarray, tuple[int, int]]] = {}
    raw: dict[int, np.ndarray] = {}
    src = VideoFile(VideoFileConfig(bikes_mp4))
    read = src.read

    def read_and_keep():
        f = read()
        if f is not None:
            raw[len(raw)] = f.image
        return f

    src.read = read_and_keep  # keep the camera frames to compare the screen with

    def on_frame(i: int, canvas: np.ndarray) -> None:
        if i == 8:
            w = window.widget
            shots[i] = (screenshot(xvfb), canvas.copy(), (w.winfo_rootx(), w.winfo_rooty()))
        if i == 4:  # a real key event through Tk's bindings, as a keyboard press would arrive
            window.widget.event_generate("<KeyPress>", keysym="m", when="tail")

    cfg = SessionConfig(model=sim_run["cfg"].model, max_frames=12, keys=KeyScript.parse("q@2"))
    session = Session(cfg, src, keys=keys, display=window, on_frame=on_frame)
    summary = session.run()
    assert summary["frames_shown"] == 12

    screen, canvas, (x, y) = shots[8]
    h, w = canvas.shape[:2]
    on_screen = screen[y : y + h, x : x + w].astype(np.int16)
    assert on_screen.shape == canvas.shape
    assert np.abs(on_screen - canvas).mean() < 1.0, "the window does not show the HUD canvas"

    # The camera image: inside the image area, away from the HUD panels, the screen shows the frame itself.
    lay = Hud(HudConfig()).layout(raw[8].shape[:2])
    ix0, iy0, ix1, iy1 = lay.image
    expected = cv2.resize(raw[8], (ix1 - ix0, iy1 - iy0), interpolation=cv2.INTER_AREA)
    mid = slice((iy1 - iy0) // 2 - 20, (iy1 - iy0) // 2 + 20), slice(20, 120)  # left middle: no HUD there
    assert np.abs(on_screen[iy0:iy1, ix0:ix1][mid] - expected[mid].astype(np.int16)).mean() < 2.0

    # HUD elements: the magenta centre-box corner, the red REC dot, the query's memory-hit frame.
    bx0, by0, _, _ = lay.box
    assert (np.abs(on_screen[by0 + 1, bx0 + 5] - np.array(BOX)) < 40).all()
    rx0, ry0, _, ry1 = lay.rec
    dot = on_screen[(ry0 + ry1) // 2, rx0 + 16]
    assert (np.abs(dot - np.array(RED)) < 40).all()
    hx0, hy0, hx1, _ = lay.hits[0]
    assert (np.abs(on_screen[hy0, (hx0 + hx1) // 2] - np.array((0, 220, 255))) < 40).all()

    # The key pressed in the window (frame 4) reached the session as a mark.
    marks = session.log.of_kind("mark")
    assert len(marks) == 1 and 5 <= marks[0].frame_index <= 6
