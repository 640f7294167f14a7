"""Exploration rollouts on disk: write them while collecting, read them back for training.

Folder layout (one shard per episode)::

    OUT/index.json            format, version, WorldConfig, policy, base seed, episode list, complete
    OUT/episode_00000.npz     compressed arrays of one episode of T steps:
        frames    uint8   [T+1, H, W, 3]   frames[t] is seen before actions[t], frames[t+1] after
        actions   int64   [T]              Action values (discrete) | float32 [T, 2] (continuous:
                                           forward_speed_mps, turn_rate_deg_s)
        poses     float64 [T+1, 4]         (x, y, z, yaw) of frames[t]; metres, radians
        t_ns      int64   [T+1]            simulated time of frames[t]
        collided  bool    [T]              actions[t] was blocked by a wall or object

    rs = RolloutSet("OUT")
    ep = rs[0]                             # Rollout with the arrays above, loaded on demand
    for frame, action, next_frame, pose, next_pose in rs.transitions(): ...
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simulator.world.config import WorldConfig
from simulator.world.errors import RolloutError, WorldError

FORMAT = "glasses-world-rollouts"
VERSION = 1
INDEX = "index.json"
ARRAYS = ("frames", "actions", "poses", "t_ns", "collided")


@dataclass(frozen=True)
class Rollout:
    """One episode; shapes as in the module docstring. objects: name -> (x, y, z) metres."""

    frames: np.ndarray
    actions: np.ndarray
    poses: np.ndarray
    t_ns: np.ndarray
    collided: np.ndarray
    seed: int
    objects: dict[str, tuple[float, float, float]]

    @property
    def steps(self) -> int:
        return len(self.actions)

    def transitions(self) -> Iterator[tuple[np.ndarray, Any, np.ndarray, np.ndarray, np.ndarray]]:
        """(frame [H, W, 3], action, next_frame [H, W, 3], pose [4], next_pose [4]) per step."""
        for t in range(self.steps):
            yield self.frames[t], self.actions[t], self.frames[t + 1], self.poses[t], self.poses[t + 1]


class RolloutWriter:
    """Writes episodes into ``out`` as they finish; the index is rewritten atomically after each one,
    so an interrupted collection leaves a readable folder (``complete`` is False until ``close``)."""

    def __init__(
        self, out: str | Path, config: WorldConfig, policy: str, seed: int, overwrite: bool = False
    ) -> None:
        self.out = Path(out)
        if self.out.exists() and not self.out.is_dir():
            raise RolloutError(f"{self.out} exists and is not a folder; pass a folder path to --out")
        if (self.out / INDEX).exists() and not overwrite:
            raise RolloutError(
                f"{self.out} already holds rollouts ({INDEX}); pass --overwrite or another --out"
            )
        self.out.mkdir(parents=True, exist_ok=True)
        if overwrite:
            for old in self.out.glob("episode_*.npz"):
                old.unlink()
        self.index: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "config": config.to_dict(),
            "policy": policy,
            "seed": seed,
            "episodes": [],
            "complete": False,
        }
        self._write_index()

    def add(self, rollout: Rollout) -> Path:
        _check_shapes(rollout, f"episode {len(self.index['episodes'])}")
        name = f"episode_{len(self.index['episodes']):05d}.npz"
        tmp = self.out / f".{name}.tmp.npz"
        np.savez_compressed(tmp, **{k: getattr(rollout, k) for k in ARRAYS})
        os.replace(tmp, self.out / name)
        self.index["episodes"].append(
            {
                "file": name,
                "seed": rollout.seed,
                "steps": rollout.steps,
                "objects": {k: list(v) for k, v in rollout.objects.items()},
            }
        )
        self._write_index()
        return self.out / name

    def close(self) -> None:
        self.index["complete"] = True
        self._write_index()

    def _write_index(self) -> None:
        tmp = self.out / f".{INDEX}.tmp"
        tmp.write_text(json.dumps(self.index, indent=1))
        os.replace(tmp, self.out / INDEX)


class RolloutSet:
    """Read-only view of a rollout folder; episodes load from disk when indexed."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        index_path = self.path / INDEX
        if not index_path.is_file():
            raise RolloutError(
                f"no {INDEX} in {self.path}; collect with 'python -m simulator.world.collect --out DIR'"
            )
        try:
            self.index = json.loads(index_path.read_text())
        except json.JSONDecodeError as e:
            raise RolloutError(f"{index_path} is not valid JSON ({e}); collect the rollouts again") from e
        if self.index.get("format") != FORMAT or self.index.get("version") != VERSION:
            raise RolloutError(
                f"{index_path} is format {self.index.get('format')!r} v{self.index.get('version')}; "
                f"this reader needs {FORMAT!r} v{VERSION}: collect again with this version"
            )
        try:
            self.config = WorldConfig.from_dict(self.index["config"])
        except (KeyError, TypeError, WorldError) as e:
            raise RolloutError(f"{index_path} has no usable config ({e}); collect the rollouts again") from e
        self.episodes: list[dict[str, Any]] = list(self.index.get("episodes", []))
        for ep in self.episodes:
            if not (self.path / ep["file"]).is_file():
                raise RolloutError(
                    f"{self.path / ep['file']} is listed in {INDEX} but missing; collect again"
                )

    @property
    def complete(self) -> bool:
        """False if the collection that wrote this folder was interrupted."""
        return bool(self.index.get("complete"))

    def __len__(self) -> int:
        return len(self.episodes)

    def __getitem__(self, i: int) -> Rollout:
        if not -len(self) <= i < len(self):
            raise IndexError(f"episode {i} out of range; {self.path} has {len(self)}")
        ep = self.episodes[i]
        try:
            with np.load(self.path / ep["file"]) as z:
                arrays = {k: z[k] for k in ARRAYS}
        except (OSError, ValueError, KeyError) as e:
            raise RolloutError(f"{self.path / ep['file']} is unreadable ({e}); collect again") from e
        r = Rollout(**arrays, seed=int(ep["seed"]), objects={k: tuple(v) for k, v in ep["objects"].items()})
        _check_shapes(r, str(self.path / ep["file"]))
        if r.steps != ep["steps"]:
            raise RolloutError(
                f"{ep['file']} has {r.steps} steps but {INDEX} says {ep['steps']}; collect again"
            )
        return r

    def __iter__(self) -> Iterator[Rollout]:
        for i in range(len(self)):
            yield self[i]

    def transitions(self) -> Iterator[tuple[np.ndarray, Any, np.ndarray, np.ndarray, np.ndarray]]:
        """All (frame, action, next_frame, pose, next_pose) of all episodes, in order."""
        for r in self:
            yield from r.transitions()


def _check_shapes(r: Rollout, where: str) -> None:
    t = len(r.actions)
    ok = (
        r.frames.dtype == np.uint8
        and r.frames.ndim == 4
        and r.frames.shape[0] == t + 1
        and r.frames.shape[3] == 3
        and r.poses.shape == (t + 1, 4)
        and r.t_ns.shape == (t + 1,)
        and r.collided.shape == (t,)
        and (r.actions.ndim == 1 or r.actions.shape[1:] == (2,))
    )
    if not ok:
        raise RolloutError(
            f"{where}: inconsistent arrays frames{r.frames.shape} actions{r.actions.shape} poses{r.poses.shape} "
            f"t_ns{r.t_ns.shape} collided{r.collided.shape}; collect again"
        )
