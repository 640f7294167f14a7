"""Energies of candidate action sequences: distance of predicted embeddings to the goal, plus costs.

e = sequence_energy(pred, goal, actions, EnergyConfig())   # pred [S, H, D], goal [D],
                                                           # actions [S, H, A] -> e [S]
"""

from __future__ import annotations

import torch

from glasses_runtime.planner.config import EnergyConfig


def distance(z: torch.Tensor, goal: torch.Tensor, metric: str) -> torch.Tensor:
    """z [..., D], goal [D] -> distance [...] (L2: Euclidean; L1: sum of absolute differences)."""
    diff = z - goal
    if metric == "l1":
        return diff.abs().sum(-1)
    return torch.sqrt((diff * diff).sum(-1))


def aggregate(d: torch.Tensor, how: str) -> torch.Tensor:
    """Per-step distances [S, H] -> [S]."""
    if how == "mean":
        return d.mean(1)
    if how == "min":
        return d.min(1).values
    return d[:, -1]


def sequence_energy(
    pred: torch.Tensor,
    goal: torch.Tensor,
    actions: torch.Tensor,
    cfg: EnergyConfig,
    pose_dist: torch.Tensor | None = None,
) -> torch.Tensor:
    """pred [S, H, D], goal [D], actions [S, H, A] -> energy [S] (lower is better).

    pose_dist: optional [S, H] distances of the dead-reckoned poses to the goal pose (metre-equivalents),
    added with weight ``cfg.pose_weight``.
    """
    e = aggregate(distance(pred, goal, cfg.metric), cfg.aggregate)
    if pose_dist is not None and cfg.pose_weight > 0:
        e = e + cfg.pose_weight * aggregate(pose_dist, cfg.aggregate)
    if cfg.action_costs:
        costs = torch.tensor(cfg.action_costs, dtype=pred.dtype)
        if len(costs) == actions.shape[-1]:
            # discrete one-hot: per-use cost, averaged over the horizon; continuous: weighted mean square
            e = e + ((actions * actions) * costs).sum(-1).mean(1)
    return e
