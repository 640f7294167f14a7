"""Configuration of the action-conditioned world model and of its training run.

Both are typed dataclasses validated on construction; they round-trip through JSON (``to_dict`` /
``from_dict``) so a checkpoint carries the exact config it was trained with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from edge_models.errors import ConfigError

ACTION_KINDS = ("discrete", "continuous")


@dataclass(frozen=True)
class WorldModelConfig:
    """Shape of the world model.

    embed_dim: D, the encoder's pooled embedding width (96 for vit_pico).
    action_dim: A. Discrete actions are one-hot over A choices; continuous ones are A floats,
        divided by ``action_scale`` before they enter the model.
    action_kind: "discrete" | "continuous".
    context: C, how many past embeddings the model sees (the newest last).
    hidden: width of the residual MLP blocks; depth: how many blocks.
    export_samples / export_horizon: the fixed [S, H] of the exported rollout program (what one
        planner iteration evaluates: S candidate sequences of H actions).
    """

    embed_dim: int = 96
    action_dim: int = 4
    action_kind: str = "discrete"
    context: int = 2
    hidden: int = 128
    depth: int = 2
    action_scale: tuple[float, ...] = ()
    export_samples: int = 64
    export_horizon: int = 5

    def __post_init__(self) -> None:
        for name in (
            "embed_dim",
            "action_dim",
            "context",
            "hidden",
            "depth",
            "export_samples",
            "export_horizon",
        ):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"WorldModelConfig.{name} must be a positive int, got {v!r}")
        if self.action_kind not in ACTION_KINDS:
            raise ConfigError(f"action_kind must be one of {ACTION_KINDS}, got {self.action_kind!r}")
        if self.action_kind == "discrete" and self.action_dim < 2:
            raise ConfigError("a discrete world model needs action_dim >= 2 (one-hot over the actions)")
        scale = tuple(float(s) for s in self.action_scale)
        object.__setattr__(self, "action_scale", scale)
        if scale and (len(scale) != self.action_dim or any(s <= 0 for s in scale)):
            raise ConfigError(
                f"action_scale needs {self.action_dim} positive numbers (one per action component), got {scale}"
            )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["action_scale"] = list(self.action_scale)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WorldModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(
                f"unknown world-model config fields {sorted(unknown)}; written by a newer version?"
            )
        d = dict(d)
        if "action_scale" in d:
            d["action_scale"] = tuple(d["action_scale"])
        return cls(**d)


@dataclass(frozen=True)
class TrainConfig:
    """One training run of the world model on frozen-encoder embeddings of simulator rollouts.

    steps: optimiser steps; batch_size: windows per step; lr: AdamW peak learning rate (cosine decay
    after ``warmup`` steps); weight_decay: AdamW decay.
    rollout_steps: R >= 2: the loss sums the teacher-forced one-step error and the errors of R-1
        further steps where the model's own predictions are fed back as context.
    rollout_weight: weight of the fed-back steps relative to the teacher-forced one.
    val_fraction: share of episodes held out to report a validation loss (at least one when > 0).
    seed: seeds torch and the batch sampler; with threads it makes a CPU run bit-reproducible.
    threads: torch CPU threads (1 keeps results independent of the machine's core count).
    """

    steps: int = 2000
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: int = 100
    rollout_steps: int = 3
    rollout_weight: float = 1.0
    val_fraction: float = 0.1
    seed: int = 0
    threads: int = 1
    log_every: int = 50

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "threads", "log_every"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"TrainConfig.{name} must be a positive int, got {v!r}")
        if self.rollout_steps < 2:
            raise ConfigError(
                f"rollout_steps must be >= 2 (teacher forcing plus at least one fed-back step), got {self.rollout_steps}"
            )
        if not 0 < self.lr < 1:
            raise ConfigError(f"lr must be in (0, 1), got {self.lr}")
        if self.warmup < 0 or self.weight_decay < 0 or self.rollout_weight < 0:
            raise ConfigError("warmup, weight_decay and rollout_weight must be >= 0")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be in [0, 1), got {self.val_fraction}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
