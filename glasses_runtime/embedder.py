"""Image embedders: turn an RGB frame into the vector the memory and planner work with.

``load_embedder(path)`` picks the engine from the file: an eager safetensors encoder checkpoint
today; ExecuTorch ``.pte`` files with their manifest join when the runtime engine lands.

    >>> emb = load_embedder("edge_models/weights/vit_pico.safetensors")
    >>> v = emb.embed(rgb_uint8_hxwx3)    # float32 [D], L2-normalised
    >>> emb.model_id                      # sha256 of the model file: memory keeps vectors per model
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from edge_models.checkpoint import file_sha256, load_encoder
from edge_models.errors import CheckpointError
from edge_models.preprocess import to_model_input


class EmbedderError(Exception):
    """A model file cannot be used as an image embedder."""


class ImageEmbedder(Protocol):
    model_id: str
    dim: int

    def embed(self, rgb: np.ndarray) -> np.ndarray:
        """RGB uint8 [H, W, 3] -> float32 [D], L2-normalised."""
        ...


class EagerEmbedder:
    """A PyTorch encoder from a safetensors checkpoint, run eagerly on the CPU."""

    def __init__(self, path: str | Path) -> None:
        try:
            self.encoder = load_encoder(path).inference_copy()
        except CheckpointError as e:
            raise EmbedderError(str(e)) from None
        self.model_id = file_sha256(path)
        self.dim = self.encoder.config.width
        self.size = self.encoder.config.img_size

    def embed(self, rgb: np.ndarray) -> np.ndarray:
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise EmbedderError(f"expected an RGB uint8 image [H, W, 3], got {rgb.dtype} {rgb.shape}")
        with torch.inference_mode():
            _, pooled = self.encoder.embed(to_model_input(rgb, self.size))
        v = pooled[0].numpy().astype(np.float32)
        return v / max(float(np.linalg.norm(v)), 1e-12)


def load_embedder(path: str | Path) -> ImageEmbedder:
    path = Path(path)
    if not path.is_file():
        raise EmbedderError(f"model file not found: {path}")
    if path.suffix == ".safetensors":
        return EagerEmbedder(path)
    raise EmbedderError(
        f"unsupported model file '{path.suffix}' ({path}); use an encoder .safetensors checkpoint"
    )
