"""The action-conditioned world model: predicts the next pooled embedding from the last ones and an action.

    model = WorldModel(WorldModelConfig(embed_dim=96, action_dim=4, context=2))
    z_next = model(context, action)          # context [B, C, D], action [B, A] -> [B, D]
    z_seq = model.rollout(context, actions)   # actions [B, H, A] -> predictions [B, H, D]

Embeddings are the frozen encoder's pooled vectors, L2-normalised (the space the episodic memory
and the planner compare in). The model is a residual MLP on the flattened context and the action; it
predicts the change of the newest embedding, so an untrained model is "nothing moves".

Export-friendly by construction: fixed shapes, only linear, GELU, add, mul, div, sqrt, slice, cat and
reshape, a hand-written layer norm (XNNPACK does not delegate ``native_layer_norm``), and the
H-step rollout unrolled in the graph so that one call evaluates a whole batch of candidate sequences.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from edge_models.models.layers import ExportLayerNorm, init_weights
from edge_models.world_model.config import WorldModelConfig


class _Norm(nn.Module):
    """ExportLayerNorm for [B, F] (it works on [B, N, F])."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.ln = ExportLayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, f = x.shape
        return self.ln(x.reshape(b, 1, f)).reshape(b, f)


class ResidualBlock(nn.Module):
    """x + W2 GELU(W1 norm(x)). x: [B, F] -> [B, F]"""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = _Norm(dim)
        self.fc1 = nn.Linear(dim, dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(self.act(self.fc1(self.norm(x))))


class WorldModel(nn.Module):
    """z_{t+1} = z_t + f([z_{t-C+1}, ..., z_t], a_t) on L2-normalised pooled embeddings."""

    def __init__(self, config: WorldModelConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.in_scale = math.sqrt(c.embed_dim)  # unit vectors have components ~1/sqrt(D); bring them to ~1
        scale = torch.tensor(c.action_scale or (1.0,) * c.action_dim, dtype=torch.float32)
        self.register_buffer("inv_action_scale", 1.0 / scale)
        self.inp = nn.Linear(c.context * c.embed_dim + c.action_dim, c.hidden)
        self.blocks = nn.ModuleList(ResidualBlock(c.hidden) for _ in range(c.depth))
        self.norm = _Norm(c.hidden)
        self.out = nn.Linear(c.hidden, c.embed_dim)
        init_weights(self)
        nn.init.zeros_(self.out.weight)  # start as the identity dynamics

    def _step_flat(self, ctx: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """ctx: [B, C*D] (oldest first), action: [B, A] -> next embedding [B, D]."""
        d = self.config.embed_dim
        x = torch.cat([ctx * self.in_scale, action * self.inv_action_scale], dim=1)
        h = self.inp(x)
        for block in self.blocks:
            h = block(h)
        last = ctx[:, ctx.shape[1] - d :]
        return last + self.out(self.norm(h)) / self.in_scale

    def forward(self, context: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """context: [B, C, D], action: [B, A] (one-hot if discrete) -> next embedding [B, D]."""
        b, c, d = context.shape
        return self._step_flat(context.reshape(b, c * d), action)

    def rollout(self, context: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Feed predictions back for H steps.

        context: [B, C, D], actions: [B, H, A] -> predicted embeddings [B, H, D] (step h is after action h).
        """
        b, c, d = context.shape
        _, h, a = actions.shape
        ctx = context.reshape(b, c * d)
        flat_actions = actions.reshape(b, h * a)
        preds = []
        for i in range(h):
            z = self._step_flat(ctx, flat_actions[:, i * a : (i + 1) * a])
            preds.append(z)
            ctx = torch.cat([ctx[:, d:], z], dim=1) if c > 1 else z
        return torch.cat(preds, dim=1).reshape(b, h, d)


class WorldModelRollout(nn.Module):
    """The deployable program: S candidate sequences of H actions in, S x H predictions out.

    forward(context [S, C, D], actions [S, H, A]) -> [S, H, D]
    """

    def __init__(self, model: WorldModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, context: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.model.rollout(context, actions)
