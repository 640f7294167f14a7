"""Training data: folders of images or videos, decoded with OpenCV.

    ds = ImageFolder("tests/assets/bikes_frames", size=96)         # item: [3, 96, 96]
    ds = VideoFolder("clips/", size=96, num_frames=4, frame_step=2)  # item: [3, 4, 96, 96]

Files that cannot be decoded are skipped and counted (``ds.skipped``) with one warning each;
a folder with no usable file is a ``DataError`` that says what was looked for. Augmentation
(random resized crop + horizontal flip) is a pure function of ``(seed, epoch, index)``, so runs
are reproducible whatever the number of loader workers.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from edge_models.errors import DataError
from edge_models.preprocess import normalize, resize_center_crop

log = logging.getLogger(__name__)

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_EXTS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}


def list_files(root: str | Path, exts: set[str]) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder not found: {root}; pass a folder of images or videos")
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in exts)


def detect_modality(root: str | Path) -> str:
    """'image' or 'video', from what the folder holds; DataError if neither or ambiguous."""
    images, videos = list_files(root, IMAGE_EXTS), list_files(root, VIDEO_EXTS)
    if images and videos:
        raise DataError(
            f"{root} holds both images ({len(images)}) and videos ({len(videos)}); pass --modality image or video"
        )
    if not images and not videos:
        raise DataError(
            f"{root} has no images ({', '.join(sorted(IMAGE_EXTS))}) or videos ({', '.join(sorted(VIDEO_EXTS))})"
        )
    return "image" if images else "video"


def random_resized_crop_box(
    rng: np.random.Generator, h: int, w: int, scale=(0.3, 1.0), ratio=(3 / 4, 4 / 3)
) -> tuple[int, int, int, int]:
    """(top, left, crop_h, crop_w) covering ``scale`` of the area with aspect in ``ratio``."""
    area = h * w
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        cw = round(math.sqrt(target * aspect))
        ch = round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
    side = min(h, w)
    return (h - side) // 2, (w - side) // 2, side, side


class _Augment:
    """Random resized crop + flip, identical for every frame of a clip."""

    def __init__(self, size: int, train: bool, seed: int, scale=(0.3, 1.0), flip: bool = True) -> None:
        self.size, self.train, self.seed, self.scale, self.flip = size, train, seed, scale, flip
        self.epoch = 0

    def __call__(self, frames: list[np.ndarray], index: int) -> np.ndarray:
        """frames: list of RGB uint8 [H, W, 3] -> uint8 [T, size, size, 3]"""
        if not self.train:
            return np.stack([resize_center_crop(f, self.size) for f in frames])
        rng = np.random.default_rng([self.seed, self.epoch, index])
        h, w = frames[0].shape[:2]
        top, left, ch, cw = random_resized_crop_box(rng, h, w, self.scale)
        flip = self.flip and rng.random() < 0.5
        out = []
        for f in frames:
            crop = cv2.resize(
                f[top : top + ch, left : left + cw], (self.size, self.size), interpolation=cv2.INTER_AREA
            )
            out.append(crop[:, ::-1] if flip else crop)
        return np.stack(out)


def read_image(path: Path) -> np.ndarray | None:
    """RGB uint8 [H, W, 3], or None when OpenCV cannot decode it."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        return None
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class _SkippingDataset(Dataset):
    """Replaces an undecodable item by the next good one and remembers what it skipped."""

    def __len__(self) -> int:
        return len(self.items)

    def _load(self, i: int) -> torch.Tensor | None:
        raise NotImplementedError

    def __getitem__(self, index: int) -> torch.Tensor:
        n = len(self.items)
        for k in range(n):
            i = (index + k) % n
            if i in self.bad:
                continue
            x = self._load(i)
            if x is not None:
                return x
            self.bad.add(i)
            log.warning("skipping unreadable file %s (%d skipped so far)", self.describe(i), len(self.bad))
        raise DataError(f"none of the {n} files in {self.root} could be decoded; check the files")

    def describe(self, i: int) -> str:
        return str(self.items[i])

    @property
    def skipped(self) -> int:
        return len(self.bad)

    def set_epoch(self, epoch: int) -> None:
        self.augment.epoch = epoch


class ImageFolder(_SkippingDataset):
    """All images under ``root`` (recursive). Item: float [3, size, size], normalised."""

    def __init__(self, root: str | Path, size: int, train: bool = True, seed: int = 0) -> None:
        self.root = Path(root)
        self.items = list_files(root, IMAGE_EXTS)
        if not self.items:
            raise DataError(f"no images ({', '.join(sorted(IMAGE_EXTS))}) under {root}")
        self.augment = _Augment(size, train, seed)
        self.bad: set[int] = set()

    def _load(self, i: int) -> torch.Tensor | None:
        rgb = read_image(self.items[i])
        if rgb is None:
            return None
        return normalize(self.augment([rgb], i)[0])


class VideoFolder(_SkippingDataset):
    """Clips of ``num_frames`` frames (every ``frame_step``-th) from all videos under ``root``.

    Clips start every ``clip_stride`` frames (default: one clip length). Videos that cannot be
    opened or hold fewer frames than one clip are skipped and counted at indexing time.
    Item: float [3, num_frames, size, size], normalised.
    """

    def __init__(
        self,
        root: str | Path,
        size: int,
        num_frames: int,
        frame_step: int = 2,
        clip_stride: int | None = None,
        train: bool = True,
        seed: int = 0,
    ) -> None:
        self.root = Path(root)
        self.num_frames, self.frame_step = num_frames, frame_step
        span = num_frames * frame_step
        stride = clip_stride or span
        files = list_files(root, VIDEO_EXTS)
        if not files:
            raise DataError(f"no videos ({', '.join(sorted(VIDEO_EXTS))}) under {root}")
        self.items: list[tuple[Path, int]] = []
        self.bad_videos: list[Path] = []
        for path in files:
            n = _frame_count(path)
            if n < span:
                self.bad_videos.append(path)
                log.warning("skipping video %s: %d decodable frames, a clip needs %d", path, n, span)
                continue
            self.items.extend((path, start) for start in range(0, n - span + 1, stride))
        if not self.items:
            raise DataError(
                f"no usable clips under {root}: {len(files)} videos, none with {span} decodable frames "
                f"({num_frames} frames x step {frame_step}); lower --frames or --frame-step"
            )
        self.augment = _Augment(size, train, seed)
        self.bad: set[int] = set()

    @property
    def skipped(self) -> int:
        return len(self.bad) + len(self.bad_videos)

    def describe(self, i: int) -> str:
        path, start = self.items[i]
        return f"{path} (clip at frame {start})"

    def _load(self, i: int) -> torch.Tensor | None:
        path, start = self.items[i]
        cap = cv2.VideoCapture(str(path))
        try:
            cap.set(cv2.CAP_PROP_POS_FRAMES, start)
            frames = []
            for k in range(self.num_frames * self.frame_step):
                ok, bgr = cap.read()
                if not ok or bgr is None:
                    return None
                if k % self.frame_step == 0:
                    frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        finally:
            cap.release()
        clip = self.augment(frames, i)  # [T, S, S, 3]
        return normalize(clip).permute(1, 0, 2, 3).contiguous()  # [3, T, S, S]


def _frame_count(path: Path) -> int:
    """Frames that actually decode (container counts lie for broken files). Reads the whole file."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        return 0
    n = 0
    try:
        while cap.grab():
            n += 1
    finally:
        cap.release()
    return n
