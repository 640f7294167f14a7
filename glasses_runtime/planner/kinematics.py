"""Dead reckoning of candidate action sequences: where each sequence would take the wearer.

Used only by the optional pose cost (``EnergyConfig.pose_weight > 0``) when the current pose and
the (sub)goal's pose are known (a device with VIO, the simulator). Poses follow the Frame contract
(docs/world.md): x, z on the floor in metres, yaw in radians, 0 facing +x, positive turning left,
heading vector (cos yaw, -sin yaw) in (x, z). Collisions are not modelled.

    poses = predict_poses(pose0, actions, KinematicsConfig())   # [3] (x, z, yaw), [S, H, A] -> [S, H, 3]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from glasses_runtime.planner.errors import PlannerConfigError


@dataclass(frozen=True)
class KinematicsConfig:
    """Discrete actions (turn_left, turn_right, forward, back): turn_deg per turn, step_m per move.
    Continuous actions ([forward_speed_mps, turn_rate_deg_s]) are applied for dt_s: turn, then move."""

    turn_deg: float = 30.0
    step_m: float = 0.25
    dt_s: float = 0.25

    def __post_init__(self) -> None:
        if self.turn_deg <= 0 or self.step_m <= 0 or self.dt_s <= 0:
            raise PlannerConfigError("turn_deg, step_m and dt_s must be > 0")


def predict_poses(
    pose0: torch.Tensor, actions: torch.Tensor, cfg: KinematicsConfig, discrete: bool
) -> torch.Tensor:
    """pose0 [3] (x, z, yaw); actions [S, H, A] -> poses after each action [S, H, 3]."""
    if discrete:
        turn = torch.tensor([1.0, -1.0, 0.0, 0.0]) * math.radians(cfg.turn_deg)
        move = torch.tensor([0.0, 0.0, 1.0, -1.0]) * cfg.step_m
        dyaw, dist = actions @ turn, actions @ move  # [S, H]
    else:
        dist = actions[..., 0] * cfg.dt_s
        dyaw = actions[..., 1] * math.radians(1.0) * cfg.dt_s
    yaw = pose0[2] + torch.cumsum(dyaw, dim=1)
    x = pose0[0] + torch.cumsum(dist * torch.cos(yaw), dim=1)
    z = pose0[1] + torch.cumsum(-dist * torch.sin(yaw), dim=1)
    return torch.stack([x, z, yaw], dim=-1)


def pose_distance(poses: torch.Tensor, goal: torch.Tensor, yaw_weight_m: float) -> torch.Tensor:
    """poses [..., 3], goal [3] -> metres + yaw_weight_m x |heading difference| [...].

    A NaN goal yaw means "any heading": position only.
    """
    d = torch.hypot(poses[..., 0] - goal[0], poses[..., 1] - goal[1])
    if torch.isnan(goal[2]):
        return d
    dyaw = torch.remainder(poses[..., 2] - goal[2] + math.pi, 2 * math.pi) - math.pi
    return d + yaw_weight_m * dyaw.abs()
