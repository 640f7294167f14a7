"""Analytic world models with known optimal actions, for planner tests.

LinearSphereModel: z_{t+1} = normalize(z_t + B a_t), with B's rows orthogonal small steps; from
z_0 = e_0 the embedding after actions a_1..a_H is normalize(e_0 + sum_h B a_h), so the distance to a
goal built from a known action sequence is zero exactly for that sequence's action counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class _Cfg:
    embed_dim: int
    action_dim: int
    context: int


class LinearSphereModel:
    samples = None
    horizon = None

    def __init__(self, dim: int = 8, action_dim: int = 4, step: float = 0.1, context: int = 1) -> None:
        self.embed_dim, self.action_dim, self.context = dim, action_dim, context
        self.config = _Cfg(dim, action_dim, context)
        self.B = torch.zeros(action_dim, dim)
        for a in range(action_dim):
            self.B[a, 1 + a] = step  # action a moves along axis 1 + a
        self.calls: list[tuple[int, ...]] = []

    def rollout(self, context: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(actions.shape))
        z = context[:, -1]
        out = []
        for h in range(actions.shape[1]):
            z = torch.nn.functional.normalize(z + actions[:, h] @ self.B, dim=-1)
            out.append(z)
        return torch.stack(out, 1)

    def goal_after(self, z0: torch.Tensor, actions: list) -> torch.Tensor:
        """The embedding the model predicts after the given actions (ints or float vectors)."""
        a = torch.stack(
            [
                torch.nn.functional.one_hot(torch.tensor(x), self.action_dim).float()
                if isinstance(x, int)
                else x
                for x in actions
            ]
        )
        return self.rollout(z0[None, None], a[None])[0, -1]


def e(dim: int, i: int) -> torch.Tensor:
    v = torch.zeros(dim)
    v[i] = 1.0
    return v
