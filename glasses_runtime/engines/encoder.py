"""Image encoders for the runtime, chosen by the model file: ``.pte`` + manifest, or an eager checkpoint.

    enc = load_encoder("models/encoder_vit_pico_int8_xnnpack.pte", threads=2)
    z = enc.encode(enc.preprocess(rgb))    # RGB uint8 [H, W, 3] -> input [1, 3, S, S] -> float32 [D], unit norm
    z, tok = enc.encode_with_tokens(x)     # and the spatial token grid float32 [h, w, D] (None without one)
    enc.model_id                           # sha256 of the model file: memory keeps vectors per model
    enc.source_id                          # sha256 of the checkpoint it came from (a .pte's manifest says)

``.pte``: ``PteEngine`` checks the manifest (hash, shapes) before loading; preprocessing follows the
manifest's ``normalization`` (size, resize rule, mean/std). ``.safetensors``: the eager PyTorch
fallback (model definition + checkpoint loading only, no training code), preprocessed the way the
exporter writes into manifests. Preprocess and encode are separate calls so the runtime can time
each stage.

Outputs are picked by name: ``embedding`` (pooled, unit norm: memory, queries) and ``tokens``
(``[1, h, w, D]``: world model, planner energy). A single-output ``.pte`` (older exports: the
pooled embedding only) still works; it has no tokens (``token_grid`` is None).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from edge_models.preprocess import to_model_input
from glasses_runtime.engines.pte import ModelFileError, PteEngine

RESIZE_RULES = ("short_side_then_center_crop",)


class Encoder(Protocol):
    model_id: str
    source_id: str | None  # sha256 of the source checkpoint (== model_id for a checkpoint)
    dim: int
    size: int
    kind: str  # "pte" | "eager"
    token_grid: tuple[int, int] | None  # (h, w) of the token output, None when the model has none

    def preprocess(self, rgb: np.ndarray) -> torch.Tensor:
        """RGB uint8 [H, W, 3] -> float32 [1, 3, S, S] normalised."""
        ...

    def encode(self, x: torch.Tensor) -> np.ndarray:
        """float32 [1, 3, S, S] -> float32 [D], L2-normalised."""
        ...

    def encode_with_tokens(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
        """float32 [1, 3, S, S] -> (float32 [D] unit norm, float32 [h, w, D] or None)."""
        ...


def _normalise_image(rgb: np.ndarray, size: int, mean, std) -> torch.Tensor:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ModelFileError(f"expected an RGB uint8 image [H, W, 3], got {rgb.dtype} {rgb.shape}")
    return to_model_input(rgb, size, mean, std)


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32).reshape(-1)
    return v / max(float(np.linalg.norm(v)), 1e-12)


class PteEncoder:
    """An encoder ``.pte`` run by ExecuTorch, preprocessed exactly as its manifest says."""

    kind = "pte"

    def __init__(self, path: str | Path, threads: int = 2) -> None:
        self.engine = PteEngine(path, threads=threads)
        m = self.engine.manifest
        if m.kind != "encoder":
            raise ModelFileError(
                f"{path} is a '{m.kind}' model; the runtime needs an encoder .pte for --model"
            )
        norm = m.normalization or {}
        shape = m.inputs[0].shape
        if len(shape) != 4 or shape[0] != 1 or shape[1] != 3 or shape[2] != shape[3]:
            raise ModelFileError(
                f"{path}: encoder input must be [1, 3, S, S], manifest says {shape}; re-export it"
            )
        if norm.get("resize", RESIZE_RULES[0]) not in RESIZE_RULES:
            raise ModelFileError(
                f"{path}: unknown resize rule {norm.get('resize')!r}; this runtime knows {RESIZE_RULES}"
            )
        self.size = int(shape[2])
        if int(norm.get("size", self.size)) != self.size:
            raise ModelFileError(
                f"{path}: manifest size {norm.get('size')} != input shape {shape}; re-export it"
            )
        self.mean = tuple(norm.get("mean", (0.0, 0.0, 0.0)))
        self.std = tuple(norm.get("std", (1.0, 1.0, 1.0)))
        names = self.engine.output_names
        # by name; a single-output file (older exports) is its pooled embedding, whatever its name
        self._emb = names.index("embedding") if "embedding" in names else 0
        self._tok = names.index("tokens") if "tokens" in names else None
        self.token_grid = None
        if self._tok is not None:
            tshape = m.outputs[self._tok].shape
            if len(tshape) != 4 or tshape[0] != 1:
                raise ModelFileError(f"{path}: output 'tokens' must be [1, h, w, D], manifest says {tshape}")
            self.token_grid = (int(tshape[1]), int(tshape[2]))
        self.dim = int(m.embedding_dim or m.outputs[self._emb].shape[-1])
        self.model_id = m.pte_sha256
        self.source_id = m.source_checkpoint_sha256

    def preprocess(self, rgb: np.ndarray) -> torch.Tensor:
        return _normalise_image(rgb, self.size, self.mean, self.std)

    def encode(self, x: torch.Tensor) -> np.ndarray:
        return _unit(self.engine.run_all(x)[self._emb].numpy())

    def encode_with_tokens(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
        out = self.engine.run_all(x)
        tokens = None if self._tok is None else out[self._tok].numpy()[0].astype(np.float32, copy=True)
        return _unit(out[self._emb].numpy()), tokens


class EagerEncoder:
    """The PyTorch fallback: an encoder safetensors checkpoint run eagerly on the CPU (inference mode)."""

    kind = "eager"

    def __init__(self, path: str | Path, threads: int = 2) -> None:
        from edge_models.checkpoint import file_sha256, load_encoder
        from edge_models.errors import CheckpointError
        from edge_models.preprocess import IMAGENET_MEAN, IMAGENET_STD

        try:
            self.model = load_encoder(path).inference_copy().eval()
        except CheckpointError as e:
            raise ModelFileError(str(e)) from None
        if threads > 0:
            torch.set_num_threads(threads)
        self.size = int(self.model.config.img_size)
        self.dim = int(self.model.config.width)
        _, gh, gw = self.model.grid((1, 3, self.size, self.size))
        self.token_grid = (gh, gw)
        self.mean, self.std = IMAGENET_MEAN, IMAGENET_STD
        self.model_id = file_sha256(path)
        self.source_id = self.model_id

    def preprocess(self, rgb: np.ndarray) -> torch.Tensor:
        return _normalise_image(rgb, self.size, self.mean, self.std)

    def encode(self, x: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return _unit(self.model.embed(x)[1].numpy())

    def encode_with_tokens(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
        with torch.inference_mode():
            tokens, pooled = self.model.embed(x)
        gh, gw = self.token_grid
        return _unit(pooled.numpy()), tokens.numpy()[0].reshape(gh, gw, -1)


class SlowEncoder:
    """Wraps an encoder and adds a fixed delay per encode: a stand-in for a slower device in flow-control tests
    and benchmarks (the embeddings are the wrapped encoder's, unchanged)."""

    def __init__(self, inner: Encoder, delay_s: float) -> None:
        self.inner, self.delay_s = inner, delay_s
        self.model_id, self.dim, self.size, self.kind = inner.model_id, inner.dim, inner.size, inner.kind
        self.source_id = getattr(inner, "source_id", None)
        self.token_grid = inner.token_grid

    def preprocess(self, rgb: np.ndarray) -> torch.Tensor:
        return self.inner.preprocess(rgb)

    def encode(self, x: torch.Tensor) -> np.ndarray:
        time.sleep(self.delay_s)
        return self.inner.encode(x)

    def encode_with_tokens(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
        time.sleep(self.delay_s)
        return self.inner.encode_with_tokens(x)


# Explicit registry: model file suffix -> engine.
ENGINES: dict[str, Callable[..., Encoder]] = {".pte": PteEncoder, ".safetensors": EagerEncoder}


def load_encoder(path: str | Path, threads: int = 2) -> Encoder:
    """Pick the engine by file suffix; ModelFileError for a missing or unsupported file."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    factory = ENGINES.get(path.suffix)
    if factory is None:
        raise ModelFileError(
            f"unsupported model file {path.name}: use an encoder .pte exported by 'glasses-export lower' "
            "(with its .manifest.json) or an encoder .safetensors checkpoint"
        )
    return factory(path, threads=threads)
