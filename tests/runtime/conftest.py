"""Fixtures for the runtime tests: a real fp32 .pte of the bundled pico encoder, built once per session,
and helpers over the real clip tests/assets/bikes.mp4."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_models.embed import PICO_WEIGHTS


@pytest.fixture(scope="session")
def pico_ckpt(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("ckpt")
    return Path(shutil.copy(PICO_WEIGHTS, d / "vit_pico.safetensors"))


@pytest.fixture(scope="session")
def pico_pte(pico_ckpt, tmp_path_factory) -> Path:
    """fp32 XNNPACK .pte + manifest, exported by the project's own pipeline (about 20-40 s once)."""
    from export.pipeline import export_model

    out = tmp_path_factory.mktemp("pte")
    return export_model(pico_ckpt, backend="xnnpack", quantize_mode="none", out_dir=out).pte


@pytest.fixture(scope="session")
def bikes_frames_rgb(bikes_mp4):
    """All 250 frames of bikes.mp4 as the runtime's Frames (RGB, timestamps from the video)."""
    from glasses_runtime.sources import VideoFile, VideoFileConfig

    with VideoFile(VideoFileConfig(bikes_mp4)) as src:
        return list(iter(src.read, None))


@pytest.fixture(scope="session")
def bikes_bgr(bikes_mp4) -> list[np.ndarray]:
    """All 250 decoded frames of bikes.mp4 (BGR, as OpenCV's capture device layer hands them out)."""
    cap = cv2.VideoCapture(str(bikes_mp4))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    assert len(frames) == 250
    return frames
