"""The one place that imports miniworld, after making pyglet render headless through EGL.

pyglet reads ``pyglet.options["headless"]`` when ``pyglet.window`` is first imported, and miniworld
imports it at import time, so the option must be set before ``import miniworld``. Every module in
``simulator.world`` takes miniworld's names from here, never from miniworld directly.

Headless (EGL, no display) is the default. Set ``GLASSES_WORLD_HEADLESS=0`` to use the X display in
``$DISPLAY`` instead (e.g. under ``xvfb-run`` where no EGL driver is installed). If another part of the
process already imported ``pyglet.window`` (a HUD window), its choice is kept.
"""

from __future__ import annotations

import os
import sys

import cv2
import numpy as np

from simulator.world.errors import RenderError

try:
    import pyglet
except ImportError as e:  # pragma: no cover - install problem
    raise RenderError(f"pyglet is not installed ({e}); run 'make setup' or 'pip install -e .'") from e

HEADLESS = os.environ.get("GLASSES_WORLD_HEADLESS", "1") != "0"
if HEADLESS and "pyglet.window" not in sys.modules:
    pyglet.options["headless"] = True

EGL_FIX = (
    "install the EGL/Mesa libraries ('sudo apt-get install -y libegl1 libegl-mesa0 libgl1-mesa-dri libgl1 "
    "libglu1-mesa' or 'sudo make setup'), or set GLASSES_WORLD_HEADLESS=0 and run under xvfb-run"
)

try:
    from miniworld import opengl as _mw_opengl
    from miniworld.entity import COLOR_NAMES, Box, Entity, MeshEnt
    from miniworld.math import intersect_circle_segs
    from miniworld.miniworld import MiniWorldEnv
    from miniworld.params import DEFAULT_PARAMS
except ModuleNotFoundError as e:
    raise RenderError(
        f"miniworld could not be imported ({e}); run 'make setup' (it installs miniworld)"
    ) from e
except Exception as e:  # pyglet loads libGL/libGLU and opens a GL context on import: no EGL / no display
    raise RenderError(f"OpenGL could not start ({type(e).__name__}: {e}); {EGL_FIX}") from e


def _load_texture(cls, tex_path: str):
    """miniworld's ``Texture.load`` with the PNG decoded by OpenCV instead of pyglet.

    pyglet 1.5 turns RGB rows into RGBA with a per-pixel regex in pure Python: about 2 s for each
    512 x 512 texture, so a fresh apartment took 10-20 s to appear. Same GL calls and the same pixels
    as miniworld's version (rows bottom-up, as GL expects), about 1000x faster.
    """
    bgr = cv2.imread(tex_path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise RenderError(f"texture {tex_path} could not be read; reinstall miniworld ('make setup')")
    h, w = bgr.shape[:2]
    rgba = np.empty((h, w, 4), dtype=np.uint8)
    rgba[..., :3] = bgr[::-1, :, ::-1]
    rgba[..., 3] = 255
    data = rgba.tobytes()
    tex = pyglet.image.ImageData(w, h, "RGBA", data, pitch=w * 4).get_texture()
    gl = pyglet.gl
    gl.glEnable(tex.target)
    gl.glBindTexture(tex.target, tex.id)
    gl.glTexImage2D(gl.GL_TEXTURE_2D, 0, gl.GL_RGB, w, h, 0, gl.GL_RGBA, gl.GL_UNSIGNED_BYTE, data)
    gl.glHint(gl.GL_GENERATE_MIPMAP_HINT, gl.GL_NICEST)
    gl.glGenerateMipmap(gl.GL_TEXTURE_2D)
    gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_MAG_FILTER, gl.GL_LINEAR)
    gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_MIN_FILTER, gl.GL_LINEAR_MIPMAP_LINEAR)
    gl.glBindTexture(gl.GL_TEXTURE_2D, 0)
    return tex


if os.environ.get("GLASSES_WORLD_PYGLET_TEXTURES") != "1":  # "1" keeps miniworld's loader (to compare)
    _mw_opengl.Texture.load = classmethod(_load_texture)


__all__ = [
    "COLOR_NAMES",
    "DEFAULT_PARAMS",
    "EGL_FIX",
    "HEADLESS",
    "Box",
    "Entity",
    "MeshEnt",
    "MiniWorldEnv",
    "intersect_circle_segs",
]
