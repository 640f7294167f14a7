"""Checkpoints in safetensors, with the model config inside the file's metadata.

Two kinds share one format:

* ``encoder``: the weights of one encoder plus its ``EncoderConfig``; what export and the runtime
  load (``save_encoder`` / ``load_encoder``).
* ``train``: everything needed to resume training: context encoder, EMA target encoder,
  predictor, optimizer moments, RNG state, step and the training config (``save_train_state``).

Writes go to a temporary file that is fsynced and renamed, so a crash never leaves a half-written
checkpoint under the final name. Shipped encoders are stored in float16 (half the bytes; loading
casts back to float32):

    python -m edge_models.checkpoint --half runs/x/encoder.safetensors edge_models/weights/vit_tiny.safetensors
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from edge_models.errors import CheckpointError, ConfigError
from edge_models.hashing import file_sha256  # noqa: F401  (re-exported: checkpoint users hash files)
from edge_models.models.vit import EncoderConfig, VisionTransformer

FORMAT = "glasses-ckpt/1"


def _atomic_save(tensors: dict[str, torch.Tensor], metadata: dict[str, str], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    os.chmod(tmp, 0o644)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata of a checkpoint; CheckpointError if missing, corrupt or not ours."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}; check the path or train one first")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a safetensors file ({e}); re-create or re-download it"
        ) from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is a safetensors file but not a glasses-runtime checkpoint (format "
            f"{meta.get('format')!r}, expected {FORMAT!r})"
        )
    return meta


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} is corrupt ({e}); re-create it") from None


def save_encoder(
    path: str | Path,
    encoder: VisionTransformer,
    extra: dict[str, str] | None = None,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Save one encoder's weights with its config (``dtype``: float32, or float16 to ship). Returns the path."""
    path = Path(path)
    meta = {"format": FORMAT, "kind": "encoder", "config": json.dumps(encoder.config.to_dict())}
    meta.update(extra or {})
    if dtype != torch.float32:
        meta["dtype"] = str(dtype).removeprefix("torch.")
    _atomic_save({k: v.to(dtype) for k, v in encoder.state_dict().items()}, meta, path)
    return path


def half_copy(src: str | Path, dst: str | Path) -> Path:
    """An encoder checkpoint rewritten in float16 (its metadata kept, the source's sha256 added)."""
    meta = {k: v for k, v in read_metadata(src).items() if k not in ("format", "kind", "config")}
    meta["half_of_sha256"] = file_sha256(src)
    return save_encoder(dst, load_encoder(src), extra=meta, dtype=torch.float16)


def encoder_config(path: str | Path) -> EncoderConfig:
    meta = read_metadata(path)
    try:
        return EncoderConfig.from_dict(json.loads(meta["config"]))
    except (KeyError, json.JSONDecodeError, TypeError) as e:
        raise CheckpointError(f"checkpoint {path} has no valid encoder config ({e})") from None


def load_encoder(path: str | Path, preset: str | None = None, prefix: str = "") -> VisionTransformer:
    """Load an encoder from an ``encoder`` or ``train`` checkpoint.

    preset: if given, the checkpoint must be of that preset (clear error otherwise).
    prefix: for ``train`` checkpoints, which encoder: ``target_encoder.`` (default there, the EMA
    weights JEPA evaluates) or ``encoder.``.
    """
    path = Path(path)
    meta = read_metadata(path)
    config = encoder_config(path)
    if preset is not None and config.preset != preset:
        raise CheckpointError(
            f"checkpoint {path} holds a '{config.preset}' encoder, not '{preset}'; pass --preset "
            f"{config.preset} or use a {preset} checkpoint"
        )
    if meta.get("kind") == "train" and not prefix:
        prefix = "target_encoder."
    return _load_module(VisionTransformer(config), path, prefix, "encoder")


def _load_module(model: torch.nn.Module, path: Path, prefix: str, what: str) -> torch.nn.Module:
    """Load the tensors under ``prefix`` into ``model`` (eval mode); CheckpointError names what is wrong."""
    tensors = _load_tensors(path)
    state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    if prefix and not state:
        found = sorted({k.split(".", 1)[0] + "." for k in tensors})
        raise CheckpointError(
            f"checkpoint {path} has no '{prefix}' weights (it holds {', '.join(found)}); a run trained without "
            "the EMA target has no target_encoder.: use the encoder.safetensors it wrote (or prefix='encoder.')"
        )
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"the {what} in {path} does not match the {model.config.preset} architecture (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}); it was written by another version"
        )
    return model.eval()


def load_predictor(path: str | Path):
    """The JEPA predictor of a ``train`` checkpoint (eval mode); CheckpointError for any other kind."""
    from edge_models.models.predictor import Predictor

    path = Path(path)
    meta = read_metadata(path)
    if meta.get("kind") != "train":
        raise CheckpointError(
            f"this checkpoint has no predictor: {path} is a '{meta.get('kind')}' checkpoint; pass a training "
            "checkpoint (OUT/checkpoints/step_*.safetensors written by python -m edge_models.train)"
        )
    return _load_module(Predictor(encoder_config(path)), path, "predictor.", "predictor")


def save_train_state(
    path: str | Path,
    modules: dict[str, torch.nn.Module],
    optimizer: torch.optim.Optimizer,
    step: int,
    encoder_cfg: EncoderConfig,
    train_cfg: dict,
) -> Path:
    """Everything needed to resume, in one safetensors file."""
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        for k, v in module.state_dict().items():
            tensors[f"{name}.{k}"] = v
    opt = optimizer.state_dict()
    for pid, st in opt["state"].items():
        for k, v in st.items():
            t = v if torch.is_tensor(v) else torch.tensor(v)
            tensors[f"optim.{pid}.{k}"] = t
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {
        "format": FORMAT,
        "kind": "train",
        "config": json.dumps(encoder_cfg.to_dict()),
        "train_config": json.dumps(train_cfg),
        "step": str(step),
        "optim_param_groups": json.dumps(opt["param_groups"]),
    }
    path = Path(path)
    _atomic_save(tensors, meta, path)
    return path


def load_train_state(
    path: str | Path,
    modules: dict[str, torch.nn.Module],
    optimizer: torch.optim.Optimizer,
    encoder_cfg: EncoderConfig,
) -> int:
    """Restore modules, optimizer and RNG from ``save_train_state``; returns the step to resume at."""
    path = Path(path)
    meta = read_metadata(path)
    if meta.get("kind") != "train":
        raise CheckpointError(
            f"{path} is an encoder checkpoint, not a training checkpoint; cannot resume from it"
        )
    saved_cfg = encoder_config(path)
    if saved_cfg != encoder_cfg:
        raise CheckpointError(
            f"cannot resume: {path} was trained as '{saved_cfg.preset}' ({saved_cfg.width}x{saved_cfg.depth}), "
            f"this run is '{encoder_cfg.preset}' ({encoder_cfg.width}x{encoder_cfg.depth}); use the same "
            "preset or a new --out folder"
        )
    tensors = _load_tensors(path)
    for name, module in modules.items():
        prefix = f"{name}."
        state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        module.load_state_dict(state)
    opt_state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, pid, key = k.split(".", 2)
            opt_state.setdefault(int(pid), {})[key] = v
    try:
        groups = json.loads(meta["optim_param_groups"])
    except (KeyError, json.JSONDecodeError) as e:
        raise ConfigError(f"training checkpoint {path} lacks optimizer groups ({e})") from None
    optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
    torch.set_rng_state(tensors["rng.torch"])
    return int(meta["step"])


if __name__ == "__main__":
    import argparse
    import sys

    ap = argparse.ArgumentParser(description="Rewrite an encoder checkpoint in float16 (to ship it).")
    ap.add_argument("--half", nargs=2, metavar=("SRC", "DST"), required=True)
    args = ap.parse_args()
    try:
        print(half_copy(*args.half))
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
