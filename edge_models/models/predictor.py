"""JEPA predictor: a narrow ViT that predicts target tokens from context tokens.

The context tokens are projected to the predictor width and given their position embeddings; one
learned mask token per target position, plus that position's embedding, is appended; after the
transformer, the outputs at the mask positions are projected back to the encoder width.
"""

from __future__ import annotations

import torch
from torch import nn

from edge_models.models.layers import Block, ExportLayerNorm, gather_tokens, init_weights
from edge_models.models.pos_embed import sincos_3d
from edge_models.models.vit import EncoderConfig


class Predictor(nn.Module):
    """forward(ctx, ctx_idx, tgt_idx, grid):
    ctx:     [B, Nc, D]  context-encoder tokens
    ctx_idx: [B, Nc]     their token indices in the full grid
    tgt_idx: [B, Nt]     token indices to predict
    grid:    (t, h, w)   token grid of the full input
    -> [B, Nt, D] predicted target tokens
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        w = config.predictor_width
        self.width = w
        self.embed = nn.Linear(config.width, w)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, w))
        self.blocks = nn.ModuleList(
            [Block(w, config.predictor_heads, config.mlp_ratio) for _ in range(config.predictor_depth)]
        )
        self.norm = ExportLayerNorm(w)
        self.proj = nn.Linear(w, config.width)
        init_weights(self)
        nn.init.trunc_normal_(self.mask_token, std=0.02)

    def forward(
        self,
        ctx: torch.Tensor,
        ctx_idx: torch.Tensor,
        tgt_idx: torch.Tensor,
        grid: tuple[int, int, int],
    ) -> torch.Tensor:
        b, n_tgt = tgt_idx.shape
        pos = sincos_3d(self.width, *grid).to(dtype=ctx.dtype, device=ctx.device)
        pos = pos.unsqueeze(0).expand(b, -1, -1)  # [B, N, w]
        x = self.embed(ctx) + gather_tokens(pos, ctx_idx)
        queries = self.mask_token.expand(b, n_tgt, -1) + gather_tokens(pos, tgt_idx)
        x = torch.cat([x, queries], dim=1)
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x[:, -n_tgt:])
        return self.proj(x)


def build_predictor(config: EncoderConfig) -> Predictor:
    return Predictor(config)


class FixedMaskPredictor(nn.Module):
    """The predictor for deployment: one mask layout baked in, so the graph has no gathers.

    forward(ctx): ctx [1, Nc, D] context-encoder tokens at ``ctx_idx`` (in that order)
    -> [1, K * Nt, D] predicted tokens at ``tgt_idx`` (row-major: block 0 first).

    ctx_idx: [Nc] token indices of the context; tgt_idx: [K, Nt] K target blocks of Nt tokens each.
    As in training, each target block is predicted from the context alone (its own sequence, here
    a batch of K), so blocks do not see each other's mask tokens. The position embeddings of both
    index sets and the mask-token queries are gathered here, once, and held as buffers.
    """

    def __init__(
        self,
        predictor: Predictor,
        ctx_idx: torch.Tensor,
        tgt_idx: torch.Tensor,
        grid: tuple[int, int, int],
    ) -> None:
        super().__init__()
        self.embed = predictor.embed
        self.blocks = predictor.blocks
        self.norm = predictor.norm
        self.proj = predictor.proj
        self.num_blocks, self.num_targets = tgt_idx.shape
        with torch.no_grad():
            pos = sincos_3d(predictor.width, *grid)  # [N, w]
            # [K, Nc, w]: one copy per target block, so adding it broadcasts the context to a batch of
            # K (XNNPACK delegates a broadcast add; a cat of K copies of one tensor it leaves outside).
            ctx_pos = pos[ctx_idx].unsqueeze(0).expand(self.num_blocks, -1, -1)
            self.register_buffer("ctx_pos", ctx_pos.contiguous().clone())
            queries = predictor.mask_token.detach().reshape(1, 1, -1) + pos[tgt_idx]  # [K, Nt, w]
            self.register_buffer("queries", queries.clone())
        self.eval().requires_grad_(False)

    def forward(self, ctx: torch.Tensor) -> torch.Tensor:
        x = self.embed(ctx) + self.ctx_pos  # [K, Nc, w]
        x = torch.cat([x, self.queries], dim=1)
        for blk in self.blocks:
            x = blk(x)
        x = self.proj(self.norm(x[:, -self.num_targets :]))  # [K, Nt, D]
        return x.reshape(1, self.num_blocks * self.num_targets, x.shape[-1])
