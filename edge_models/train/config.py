"""Training configuration for JEPA pre-training (one typed object, validated on construction)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from edge_models.errors import ConfigError
from edge_models.models.vit import PRESETS

MODALITIES = ("auto", "image", "video")
REGRESSIONS = ("l1", "smooth_l1", "none")


@dataclass
class TrainConfig:
    """Everything a run needs. ``out`` holds checkpoints, ``metrics.jsonl`` and ``summary.json``.

    Objective: ``regression`` (L1 / smooth-L1 on layer-normed target tokens) and/or VICReg
    (variance 25, invariance 25, covariance 1 on predicted vs target tokens). The target encoder is
    an EMA of the context encoder (momentum ramped ``ema_start`` -> ``ema_end``) or, with
    ``ema=False``, the context encoder itself, which then needs VICReg to stay away from collapse.
    """

    data: str
    out: str = "runs/jepa"
    preset: str = "vit_pico"
    modality: str = "auto"
    img_size: int | None = None  # default: the preset's
    num_frames: int | None = None  # video clips; default: the preset's
    frame_step: int = 2
    steps: int = 50
    batch_size: int = 16
    lr: float = 1e-3
    min_lr: float = 1e-5
    warmup_steps: int = 5
    weight_decay: float = 0.04
    regression: str = "l1"
    vicreg: bool = False
    vicreg_weights: tuple[float, float, float] = (25.0, 25.0, 1.0)  # invariance, variance, covariance
    ema: bool = True
    ema_start: float = 0.996
    ema_end: float = 1.0
    seed: int = 0
    num_workers: int = 0
    log_every: int = 5
    ckpt_every: int = 25
    resume: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ConfigError(f"unknown preset '{self.preset}'; choose one of: {', '.join(PRESETS)}")
        if self.modality not in MODALITIES:
            raise ConfigError(f"unknown modality '{self.modality}'; choose one of: {', '.join(MODALITIES)}")
        if self.regression not in REGRESSIONS:
            raise ConfigError(
                f"unknown regression loss '{self.regression}'; choose one of: {', '.join(REGRESSIONS)}"
            )
        if self.regression == "none" and not self.vicreg:
            raise ConfigError("no objective: set a regression loss (l1, smooth_l1) or enable --vicreg")
        if not self.ema and not self.vicreg:
            raise ConfigError(
                "without an EMA target the encoder collapses unless VICReg regularises it; pass --vicreg or --ema"
            )
        for name in ("steps", "batch_size", "log_every", "ckpt_every", "frame_step"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.ema_start <= self.ema_end <= 1.0:
            raise ConfigError(
                f"EMA momentum must ramp within [0, 1] upwards, got {self.ema_start} -> {self.ema_end}"
            )
        if self.lr <= 0 or self.min_lr < 0:
            raise ConfigError(f"learning rates must be positive, got lr={self.lr}, min_lr={self.min_lr}")

    @property
    def out_dir(self) -> Path:
        return Path(self.out)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["vicreg_weights"] = list(self.vicreg_weights)
        return d
