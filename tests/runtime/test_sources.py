"""Frame sources under bad conditions, fed with real frames: a camera unplugged mid-stream (the device
layer replaced by recorded frames of bikes.mp4), damaged video files, unreadable images."""

from __future__ import annotations

import shutil
import threading

import cv2
import numpy as np
import pytest

from glasses_runtime.sources import (
    CameraConfig,
    CameraDisconnectedError,
    FrameTimeoutError,
    ImageFolder,
    ImageFolderConfig,
    OpenCVCamera,
    SourceError,
    StaleFrameError,
    VideoFile,
    VideoFileConfig,
    open_source,
)


class RecordedDevice:
    """The camera hardware: serves recorded frames; can be unplugged after N frames and replugged later.

    Each opened capture continues where the previous one stopped, as a real camera would keep filming.
    """

    def __init__(
        self, frames: list[np.ndarray], unplug_after: int | None, replug_after_opens: int | None
    ) -> None:
        self.frames, self.unplug_after, self.replug_after_opens = frames, unplug_after, replug_after_opens
        self.pos = 0
        self.opens = 0
        self.plugged = True
        self.lock = threading.Lock()

    def open(self, device: int | str) -> RecordedCapture:
        with self.lock:
            self.opens += 1
            if (
                not self.plugged
                and self.replug_after_opens is not None
                and self.opens > self.replug_after_opens
            ):
                self.plugged = True
            return RecordedCapture(self, opened=self.plugged)


class RecordedCapture:
    def __init__(self, dev: RecordedDevice, opened: bool) -> None:
        self.dev, self.opened = dev, opened

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return self.opened

    def read(self):
        d = self.dev
        with d.lock:
            if d.unplug_after is not None and d.pos == d.unplug_after and d.plugged and self.opened:
                d.plugged = False
                d.unplug_after = None  # unplugged once
            if not d.plugged or not self.opened:
                return False, None
            frame = d.frames[d.pos % len(d.frames)]
            d.pos += 1
        return True, frame

    def release(self) -> None:
        self.opened = False

    def set(self, prop: int, value: float) -> bool:
        return True


def test_camera_reconnects_after_unplug_and_keeps_delivering(bikes_bgr):
    dev = RecordedDevice(bikes_bgr, unplug_after=40, replug_after_opens=3)
    cfg = CameraConfig(
        device=0, max_read_failures=3, reconnect_attempts=5, backoff_s=0.001, backoff_max_s=0.004
    )
    with OpenCVCamera(cfg, capture_factory=dev.open) as cam:
        frames = []
        while len(frames) < 10 or cam.stats.reconnects == 0:
            frames.append(cam.async_read(timeout_ms=5000))
        frames += [cam.async_read(timeout_ms=5000) for _ in range(5)]
        latest = cam.read_latest(max_age_ms=60_000)
    assert cam.stats.reconnects == 1
    assert dev.opens == 4  # the first open, two refused while unplugged, the one that worked
    assert dev.pos > 40  # frames after the unplug came through the new capture
    ts = [f.t_ns for f in frames]
    assert all(b > a for a, b in zip(ts, ts[1:], strict=False))
    assert latest.t_ns >= frames[-1].t_ns
    f = frames[-1].image
    assert f.dtype == np.uint8 and f.shape == (272, 640, 3)
    # RGB out of a BGR device: the channels are swapped relative to some recorded frame
    assert any(np.array_equal(f, cv2.cvtColor(b, cv2.COLOR_BGR2RGB)) for b in bikes_bgr)


def test_camera_gives_a_clear_error_after_the_retry_budget(bikes_bgr):
    dev = RecordedDevice(bikes_bgr, unplug_after=20, replug_after_opens=None)  # never comes back
    cfg = CameraConfig(
        device=2, max_read_failures=2, reconnect_attempts=3, backoff_s=0.001, backoff_max_s=0.002
    )
    cam = OpenCVCamera(cfg, capture_factory=dev.open).connect()
    got = 0
    with pytest.raises(CameraDisconnectedError, match=r"camera 2 .*after 3 attempt\(s\).*check the cable"):
        while True:
            cam.read()
            got += 1
    cam.close()
    assert 1 <= got <= 20
    assert dev.opens == 1 + 3
    with pytest.raises(CameraDisconnectedError):
        cam.read_latest(max_age_ms=1e9)


def test_camera_timeouts_and_stale_frames(bikes_bgr):
    dev = RecordedDevice(bikes_bgr[:1], unplug_after=1, replug_after_opens=None)  # one frame, then silence
    cfg = CameraConfig(device=0, max_read_failures=10**9, reconnect_attempts=0)
    with OpenCVCamera(cfg, capture_factory=dev.open) as cam:
        first = cam.async_read(timeout_ms=5000)
        with pytest.raises(FrameTimeoutError, match="no new frame"):
            cam.async_read(timeout_ms=20)
        with pytest.raises(StaleFrameError, match="ms old"):
            cam.read_latest(max_age_ms=-1)  # any real frame is older than "in the future"
        assert cam.read_latest(max_age_ms=60_000) is first


def test_camera_that_cannot_be_opened():
    with pytest.raises(SourceError, match="cannot open camera 7.*plugged in"):
        OpenCVCamera(CameraConfig(device=7), capture_factory=lambda d: RecordedCapture(None, False)).connect()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad", [{"max_read_failures": 0}, {"backoff_s": 5.0, "backoff_max_s": 1.0}, {"device": -1}]
)
def test_camera_config_is_validated(bad):
    with pytest.raises(ValueError):
        CameraConfig(**bad)


def test_video_with_a_damaged_middle_skips_and_counts(bikes_mp4, tmp_path):
    data = bytearray(bikes_mp4.read_bytes())
    rng = np.random.default_rng(0)
    data[200_000:230_000] = rng.integers(
        0, 256, 30_000, dtype=np.uint8
    ).tobytes()  # inside the 'mdat' payload
    bad = tmp_path / "damaged.mp4"
    bad.write_bytes(bytes(data))
    with VideoFile(VideoFileConfig(bad)) as src:
        frames = list(iter(src.read, None))
    st = src.stats
    assert st.corrupt_skipped > 0
    assert st.frames_read == len(frames) == 250 - st.corrupt_skipped
    assert st.last_good_index == 249 and not st.ended_early
    assert all(b.t_ns > a.t_ns for a, b in zip(frames, frames[1:], strict=False))


def test_truncated_video_reports_how_far_it_got(bikes_bgr, tmp_path):
    avi = tmp_path / "bikes.avi"  # MJPG AVI of the real frames: playable up to where it is cut
    w = cv2.VideoWriter(str(avi), cv2.VideoWriter_fourcc(*"MJPG"), 25, (640, 272))
    for f in bikes_bgr:
        w.write(f)
    w.release()
    data = avi.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    with VideoFile(VideoFileConfig(cut, max_consecutive_failures=5)) as src:
        n = sum(1 for _ in iter(src.read, None))
    st = src.stats
    assert st.ended_early and st.expected_frames == 250
    assert 60 < n == st.last_good_index + 1 < 200
    assert any(f"stopped after frame {st.last_good_index} of 250" in note for note in st.notes)


def test_video_without_its_index_is_refused_clearly(bikes_mp4, tmp_path):
    cut = tmp_path / "cut.mp4"  # bikes.mp4 keeps its 'moov' index at the end: cut it and nothing is playable
    cut.write_bytes(bikes_mp4.read_bytes()[:300_000])
    with pytest.raises(SourceError, match="cannot open video .*truncated"):
        VideoFile(VideoFileConfig(cut))


def test_image_folder_skips_unreadable_images(bikes_frames, tmp_path):
    names = sorted(p.name for p in bikes_frames.iterdir())[:10]
    for n in names:
        shutil.copy(bikes_frames / n, tmp_path / n)
    (tmp_path / names[3]).write_bytes(b"\xff\xd8 not really a jpeg")
    data = (tmp_path / names[6]).read_bytes()
    (tmp_path / names[6]).write_bytes(data[:20])  # truncated to its header
    src = open_source(str(tmp_path))
    assert isinstance(src, ImageFolder)
    frames = list(iter(src.read, None))
    assert [f.index for f in frames] == [i for i in range(10) if i not in (3, 6)]
    assert src.stats.corrupt_skipped == 2 and src.stats.frames_read == 8
    assert all(b.t_ns - a.t_ns >= int(1e9 / 5.0) for a, b in zip(frames, frames[1:], strict=False))


def test_open_source_errors(tmp_path):
    with pytest.raises(SourceError, match="not a camera index"):
        open_source(str(tmp_path / "nope.mp4"))
    with pytest.raises(SourceError, match="no images"):
        ImageFolder(ImageFolderConfig(tmp_path))
