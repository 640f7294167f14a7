"""Image preprocessing shared by training, export and the eager runtime path.

Frames are RGB uint8 ``[H, W, 3]``; models take float ``[3, H, W]`` normalised with ImageNet
statistics (the convention of the teachers we distil from). The same numbers go into every
exported model's manifest so the runtime preprocesses exactly as training did.
"""

from __future__ import annotations

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


def normalize(rgb: np.ndarray, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """RGB uint8 [..., H, W, 3] -> float32 [..., 3, H, W] normalised."""
    x = torch.from_numpy(np.ascontiguousarray(rgb)).float().div_(255.0)
    x = (x - torch.tensor(mean)) / torch.tensor(std)
    return x.movedim(-1, -3).contiguous()


def to_model_input(rgb: np.ndarray, size: int) -> torch.Tensor:
    """One RGB uint8 frame -> [1, 3, size, size] float32, ready for the encoder."""
    return normalize(resize_center_crop(rgb, size)).unsqueeze(0)
