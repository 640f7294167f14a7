"""Named offline datasets and an in-memory image dataset.

* Fashion-MNIST from the Debian package ``dataset-fashion-mnist`` (``apt-get install
  dataset-fashion-mnist``): 60,000 train / 10,000 test 28x28 grey images in 10 classes, the
  standard split, read from its IDX files.

    images, labels = fashion_mnist("train")      # uint8 [60000, 28, 28], int64 [60000]
    ds = ArrayImages(images, size=96)           # item: float [3, 96, 96], ImageNet-normalised
"""

from __future__ import annotations

import gzip
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from edge_models.data import random_resized_crop_box
from edge_models.errors import DataError
from edge_models.preprocess import normalize

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[:4], "big")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def fashion_mnist(split: str, root: Path = FASHION_MNIST_DIR) -> tuple[np.ndarray, np.ndarray]:
    """-> (uint8 [N, 28, 28], int64 [N]) for split 'train' or 't10k'/'test'."""
    prefix = {"train": "train", "test": "t10k", "t10k": "t10k"}.get(split)
    if prefix is None:
        raise DataError(f"unknown Fashion-MNIST split '{split}'; use 'train' or 'test'")
    img, lab = root / f"{prefix}-images-idx3-ubyte.gz", root / f"{prefix}-labels-idx1-ubyte.gz"
    if not img.is_file() or not lab.is_file():
        raise DataError(
            f"Fashion-MNIST not found in {root}; install it with 'apt-get install dataset-fashion-mnist'"
        )
    return _read_idx(img), _read_idx(lab).astype(np.int64)


def to_rgb_size(img: np.ndarray, size: int) -> np.ndarray:
    """uint8 [H, W] or [H, W, 3] -> RGB uint8 [size, size, 3] (whole image, no crop)."""
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    interp = cv2.INTER_LINEAR if img.shape[0] < size else cv2.INTER_AREA
    return cv2.resize(img, (size, size), interpolation=interp)


class ArrayImages(Dataset):
    """Images held in memory. Item: float [3, size, size], ImageNet-normalised.

    train=True adds a random resized crop (scale 0.5-1) and a horizontal flip, a pure function
    of (seed, epoch, index).
    """

    def __init__(self, images: np.ndarray, size: int, train: bool = True, seed: int = 0) -> None:
        if len(images) == 0:
            raise DataError("no images to train on")
        self.images, self.size, self.train, self.seed = images, size, train, seed
        self.epoch = 0
        self.skipped = 0

    def __len__(self) -> int:
        return len(self.images)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, i: int) -> torch.Tensor:
        img = self.images[i]
        if self.train:
            rng = np.random.default_rng([self.seed, self.epoch, i])
            h, w = img.shape[:2]
            top, left, ch, cw = random_resized_crop_box(rng, h, w, scale=(0.5, 1.0))
            img = img[top : top + ch, left : left + cw]
            if rng.random() < 0.5:
                img = img[:, ::-1]
        return normalize(to_rgb_size(np.ascontiguousarray(img), self.size))
