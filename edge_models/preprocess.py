"""Image preprocessing shared by training, export and the eager runtime path.

Frames are RGB uint8 ``[H, W, 3]``; models take float ``[3, H, W]`` normalised with ImageNet
statistics (the convention of the teachers we distil from). The same numbers go into every
exported model's manifest so the runtime preprocesses exactly as training did.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resize_center_crop(rgb: np.ndarray, size: int) -> np.ndarray:
    """Resize the short side to ``size`` and crop the centre square. [H, W, 3] -> [size, size, 3]"""
    h, w = rgb.shape[:2]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(rgb, (nw, nh), interpolation=interp)
    top, left = (nh - size) // 2, (nw - size) // 2
    return resized[top : top + size, left : left + size]


@lru_cache(maxsize=8)
def _affine(mean: tuple[float, ...], std: tuple[float, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Cached [3, 1, 1] mean and std tensors: built once, not per frame."""
    return torch.tensor(mean).view(3, 1, 1), torch.tensor(std).view(3, 1, 1)


def normalize(rgb: np.ndarray, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """RGB uint8 [..., H, W, 3] -> float32 [..., 3, H, W] normalised.

    One float copy straight into channel-first layout, then in-place arithmetic (the same ops in
    the same order as x / 255, - mean, / std, so the values are bit-identical to the obvious form).
    """
    m, s = _affine(tuple(float(v) for v in mean), tuple(float(v) for v in std))
    x = torch.from_numpy(np.ascontiguousarray(rgb)).movedim(-1, -3)
    x = x.to(torch.float32, memory_format=torch.contiguous_format)
    return x.div_(255.0).sub_(m).div_(s)


def to_model_input(rgb: np.ndarray, size: int, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """One RGB uint8 frame -> [1, 3, size, size] float32, ready for the encoder."""
    return normalize(resize_center_crop(rgb, size), mean, std).unsqueeze(0)
