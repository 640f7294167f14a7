"""Frame sources: live camera, video file, image folder, all behind the ``FrameSource`` protocol.

src = open_source("0")                          # camera index, stream URL, video file or image folder
while (frame := src.read()) is not None: ...
src.close()
"""

from __future__ import annotations

from pathlib import Path

from glasses_runtime.sources.base import (
    CameraDisconnectedError,
    Frame,
    FrameSource,
    Pose,
    SourceError,
    SourceStats,
    valid_rgb,
)
from glasses_runtime.sources.camera import (
    CameraConfig,
    FrameTimeoutError,
    OpenCVCamera,
    StaleFrameError,
)
from glasses_runtime.sources.files import (
    IMAGE_SUFFIXES,
    ImageFolder,
    ImageFolderConfig,
    VideoFile,
    VideoFileConfig,
)

URL_SCHEMES = ("rtsp://", "rtmp://", "http://", "https://", "udp://", "tcp://")


def open_source(spec: str, *, realtime: bool = False, fps: float = 5.0) -> FrameSource:
    """``0``/``1``/... -> camera; a stream URL -> camera; a directory -> ImageFolder; a file -> VideoFile.

    realtime: pace files at their frame rate (cameras are always live). fps: image-folder frame rate.
    """
    if spec.isdigit():
        return OpenCVCamera(CameraConfig(device=int(spec))).connect()
    if spec.startswith(URL_SCHEMES):
        return OpenCVCamera(CameraConfig(device=spec)).connect()
    path = Path(spec)
    if path.is_dir():
        return ImageFolder(ImageFolderConfig(path, fps=fps, realtime=realtime))
    if path.is_file():
        return VideoFile(VideoFileConfig(path, realtime=realtime))
    raise SourceError(f"source {spec!r} is not a camera index, a stream URL, a video file or an image folder")


__all__ = [
    "IMAGE_SUFFIXES",
    "CameraConfig",
    "CameraDisconnectedError",
    "Frame",
    "FrameSource",
    "FrameTimeoutError",
    "ImageFolder",
    "ImageFolderConfig",
    "OpenCVCamera",
    "Pose",
    "SourceError",
    "SourceStats",
    "StaleFrameError",
    "VideoFile",
    "VideoFileConfig",
    "open_source",
    "valid_rgb",
]
