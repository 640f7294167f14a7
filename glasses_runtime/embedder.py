"""Image embedders: turn one RGB frame into the vector the memory and planner work with.

A thin view over the runtime's encoders (``glasses_runtime.engines.encoder``), so a ``.pte`` with
its manifest and an eager ``.safetensors`` checkpoint are preprocessed and run exactly as in the
streaming loop.

    >>> emb = load_embedder("edge_models/weights/vit_pico.safetensors")
    >>> v = emb.embed(rgb_uint8_hxwx3)    # float32 [D], L2-normalised
    >>> emb.model_id                      # sha256 of the model file: memory keeps vectors per model
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from glasses_runtime.engines.encoder import Encoder, load_encoder
from glasses_runtime.engines.pte import ModelFileError

# A model file that cannot be used as an image embedder (same error as the runtime's engines).
EmbedderError = ModelFileError


class ImageEmbedder(Protocol):
    model_id: str
    dim: int

    def embed(self, rgb: np.ndarray) -> np.ndarray:
        """RGB uint8 [H, W, 3] -> float32 [D], L2-normalised."""
        ...


class EncoderEmbedder:
    """``embed(rgb)`` = the encoder's ``encode(preprocess(rgb))``."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self.model_id, self.dim = encoder.model_id, encoder.dim

    def embed(self, rgb: np.ndarray) -> np.ndarray:
        return self.encoder.encode(self.encoder.preprocess(rgb))


def load_embedder(path: str | Path, threads: int = 2) -> ImageEmbedder:
    return EncoderEmbedder(load_encoder(path, threads=threads))
