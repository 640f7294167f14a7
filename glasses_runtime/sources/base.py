"""What every frame source gives the runtime: ``Frame`` records through the ``FrameSource`` protocol.

    with open_source("tests/assets/bikes.mp4") as src:
        while (frame := src.read()) is not None:       # None: the stream has ended
            ...frame.t_ns, frame.image [H, W, 3] RGB uint8, frame.pose

The simulator implements the same protocol (``read``, ``close``, ``stats``) for its worlds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

Pose = tuple[float, float, float, float]  # x, y, z in metres, yaw in radians


class SourceError(Exception):
    """A frame source cannot be opened or read."""


class CameraDisconnectedError(SourceError):
    """The camera stopped delivering frames and did not come back within the retry budget."""


@dataclass(frozen=True)
class Frame:
    """One camera frame.

    t_ns: monotonic capture time in nanoseconds, strictly increasing per source.
    image: RGB uint8 [H, W, 3].
    pose: (x, y, z, yaw) when the source knows it (simulator, VIO), else None.
    index: position in the source (frame number in a file), -1 when the source has none.
    action: the wearer's action that led to this frame when the source knows it (simulator, odometry),
    an index into the world models' discrete actions (0 turn_left, 1 turn_right, 2 forward, 3 back), else None.
    """

    t_ns: int
    image: np.ndarray
    pose: Pose | None = None
    index: int = -1
    action: int | None = None


@dataclass
class SourceStats:
    """What a source has seen so far (read from other threads; ints only, so no lock is needed).

    frames_read: good frames returned. corrupt_skipped: frames that could not be decoded or had the
    wrong shape/dtype and were skipped. last_good_index: index of the last good frame (-1: none).
    expected_frames: how many the container/folder announced (None if unknown). ended_early: the
    stream stopped before ``expected_frames`` (a truncated or damaged file). reconnects: camera
    reconnects that succeeded.
    """

    frames_read: int = 0
    corrupt_skipped: int = 0
    last_good_index: int = -1
    expected_frames: int | None = None
    ended_early: bool = False
    reconnects: int = 0
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "frames_read": self.frames_read,
            "corrupt_skipped": self.corrupt_skipped,
            "last_good_index": self.last_good_index,
            "expected_frames": self.expected_frames,
            "ended_early": self.ended_early,
            "reconnects": self.reconnects,
            "notes": list(self.notes),
        }


@runtime_checkable
class FrameSource(Protocol):
    """A stream of frames. ``read`` blocks until the next frame; None means the stream has ended."""

    name: str
    stats: SourceStats

    def read(self) -> Frame | None: ...

    def close(self) -> None: ...


def valid_rgb(image: object) -> bool:
    """True for a non-empty RGB uint8 [H, W, 3] array (what every source must hand out)."""
    return (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and image.ndim == 3
        and image.shape[2] == 3
        and image.shape[0] > 0
        and image.shape[1] > 0
    )
