"""Training data for the world model: simulator rollouts turned into frozen-encoder embeddings.

Reads the rollout folder format written by ``python -m simulator.world.collect`` (``index.json`` +
``episode_*.npz``; see docs/world.md) directly from disk, so ``edge_models`` does not import the
simulator. Every frame is embedded once with the frozen encoder (pooled, L2-normalised) and cached
in ``OUT/embeddings.npz`` keyed by the encoder's and the rollouts' hashes.

    episodes = load_embedded(rollout_dir, encoder, encoder_sha256, cache=out / "embeddings.npz")
    batch = WindowSampler(episodes, context=2, steps=3, seed=0).sample(256)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from edge_models.errors import DataError
from edge_models.models.vit import VisionTransformer
from edge_models.preprocess import normalize, resize_center_crop

ROLLOUT_FORMAT = "glasses-world-rollouts"
ROLLOUT_VERSION = 1
NUM_DISCRETE_ACTIONS = 4  # turn left, turn right, forward, back (simulator.world.Action)


@dataclass
class EmbeddedEpisode:
    """emb: float32 [T+1, D] unit vectors; actions: float32 [T, A] (one-hot or raw continuous);
    poses: float64 [T+1, 4] (x, y, z, yaw)."""

    emb: np.ndarray
    actions: np.ndarray
    poses: np.ndarray


def read_index(path: str | Path) -> dict:
    """The rollout folder's index; DataError naming the fix when it is missing or foreign."""
    index_path = Path(path) / "index.json"
    if not index_path.is_file():
        raise DataError(
            f"no index.json in {path}; collect rollouts with 'python -m simulator.world.collect --out {path}'"
        )
    try:
        index = json.loads(index_path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{index_path} is not valid JSON ({e}); collect the rollouts again") from None
    if index.get("format") != ROLLOUT_FORMAT or index.get("version") != ROLLOUT_VERSION:
        raise DataError(
            f"{index_path} is not a v{ROLLOUT_VERSION} {ROLLOUT_FORMAT} folder; collect again with this version"
        )
    if not index.get("episodes"):
        raise DataError(f"{path} holds no episodes; collect some with --episodes N")
    return index


def action_spec(index: dict) -> tuple[str, int, tuple[float, ...]]:
    """(action_kind, action_dim, action_scale) of the rollouts' world config."""
    cfg = index.get("config", {})
    if cfg.get("action_mode", "discrete") == "continuous":
        return "continuous", 2, (float(cfg["max_speed_mps"]), float(cfg["max_turn_rate_deg_s"]))
    return "discrete", NUM_DISCRETE_ACTIONS, ()


def encode_actions(actions: np.ndarray, kind: str, dim: int) -> np.ndarray:
    """Discrete int [T] -> one-hot float32 [T, dim]; continuous [T, dim] -> float32 as is."""
    if kind == "discrete":
        a = np.asarray(actions, dtype=np.int64)
        if a.ndim != 1 or (len(a) and (a.min() < 0 or a.max() >= dim)):
            raise DataError(f"discrete actions must be ints in [0, {dim}), got shape {a.shape}")
        return np.eye(dim, dtype=np.float32)[a]
    a = np.asarray(actions, dtype=np.float32)
    if a.ndim != 2 or a.shape[1] != dim:
        raise DataError(f"continuous actions must be [T, {dim}], got {a.shape}")
    return a


@torch.inference_mode()
def embed_frames(encoder: VisionTransformer, frames: np.ndarray, batch: int = 64) -> np.ndarray:
    """RGB uint8 [N, H, W, 3] -> L2-normalised pooled embeddings float32 [N, D]."""
    size = encoder.config.img_size
    out = []
    for i in range(0, len(frames), batch):
        crops = np.stack([resize_center_crop(f, size) for f in frames[i : i + batch]])
        pooled = encoder.embed(normalize(crops))[1]
        out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    return np.concatenate(out).astype(np.float32)


def _fingerprint(path: Path, index: dict, encoder_sha256: str) -> str:
    h = hashlib.sha256(encoder_sha256.encode())
    h.update(json.dumps(index, sort_keys=True).encode())
    for ep in index["episodes"]:
        h.update(str((path / ep["file"]).stat().st_size).encode())
    return h.hexdigest()


def load_embedded(
    path: str | Path,
    encoder: VisionTransformer,
    encoder_sha256: str,
    cache: str | Path | None = None,
    on_episode: Callable[[int, int], None] | None = None,
) -> tuple[list[EmbeddedEpisode], dict]:
    """Embed every frame of every episode (or read them from ``cache``). Returns (episodes, index)."""
    path = Path(path)
    index = read_index(path)
    kind, dim, _ = action_spec(index)
    key = _fingerprint(path, index, encoder_sha256)
    if cache is not None and Path(cache).is_file():
        with np.load(cache) as z:
            if str(z["key"]) == key:
                n = int(z["n"])
                return [EmbeddedEpisode(z[f"emb{i}"], z[f"act{i}"], z[f"pose{i}"]) for i in range(n)], index
    episodes = []
    for i, ep in enumerate(index["episodes"]):
        try:
            with np.load(path / ep["file"]) as z:
                frames, actions, poses = z["frames"], z["actions"], z["poses"]
        except (OSError, ValueError, KeyError) as e:
            raise DataError(f"{path / ep['file']} is unreadable ({e}); collect again") from None
        if len(frames) != len(actions) + 1:
            raise DataError(f"{ep['file']}: {len(frames)} frames for {len(actions)} actions; collect again")
        episodes.append(
            EmbeddedEpisode(embed_frames(encoder, frames), encode_actions(actions, kind, dim), poses)
        )
        if on_episode is not None:
            on_episode(i + 1, len(index["episodes"]))
    if cache is not None:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {"key": np.array(key), "n": np.array(len(episodes))}
        for i, e in enumerate(episodes):
            arrays.update({f"emb{i}": e.emb, f"act{i}": e.actions, f"pose{i}": e.poses})
        np.savez(cache, **arrays)
    return episodes, index


class WindowSampler:
    """Random training windows: C context embeddings, then R actions and the R embeddings they lead to.

    Context before an episode's first frame repeats the first frame (the planner pads the same way
    when it has seen fewer than C frames).

    sample(B) -> context [B, C, D], actions [B, R, A], targets [B, R, D] (float32 tensors)
    """

    def __init__(self, episodes: list[EmbeddedEpisode], context: int, steps: int, seed: int) -> None:
        usable = [e for e in episodes if len(e.actions) >= steps]
        if not usable:
            raise DataError(
                f"no episode has the {steps} steps a training window needs; collect longer episodes (--steps)"
            )
        self.context, self.steps = context, steps
        self.emb = np.concatenate([e.emb for e in usable])
        self.actions = np.concatenate([np.concatenate([e.actions, e.actions[:1] * 0]) for e in usable])
        starts, firsts, offset = [], [], 0
        for e in usable:
            n = len(e.actions)
            starts.append(offset + np.arange(n - steps + 1))
            firsts.append(np.full(n - steps + 1, offset))
            offset += n + 1
        self.starts = np.concatenate(starts)  # global index of frame t (the newest context frame)
        self.firsts = np.concatenate(firsts)  # global index of that episode's first frame
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.starts)

    def windows(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        t = self.starts[idx][:, None]
        ctx_idx = np.maximum(t + np.arange(-self.context + 1, 1)[None], self.firsts[idx][:, None])
        step_idx = t + np.arange(self.steps)[None]
        return (
            torch.from_numpy(self.emb[ctx_idx]),
            torch.from_numpy(self.actions[step_idx]),
            torch.from_numpy(self.emb[step_idx + 1]),
        )

    def sample(self, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.windows(self.rng.integers(0, len(self.starts), size=batch))
