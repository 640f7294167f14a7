"""Export-friendly transformer building blocks.

Everything here lowers to ops that ExecuTorch's XNNPACK backend delegates (linear, bmm, softmax,
add, mul, sub, div, sqrt, GELU, permute, view): layer norm is written out by hand because XNNPACK does
not delegate ``native_layer_norm``; means are taken as 4-D means over the two innermost dims, as XNNPACK only
delegates ``mean.dim`` over the spatial dims of 4-D tensors; attention is three projections and two
3-D ``bmm`` (4-D ``matmul`` decomposes into ``expand_copy`` and the fused-qkv split into
``select_copy``, which XNNPACK leaves to portable kernels). There is no data-dependent control flow,
so ``torch.export`` traces every module as one static graph.
"""

from __future__ import annotations

import torch
from torch import nn


class ExportLayerNorm(nn.Module):
    """Layer norm over the last dim, written as elementary ops.

    Numerically identical (to float rounding) to ``nn.LayerNorm``; same parameter names
    (``weight``, ``bias``) so checkpoints map one to one.

    x: [..., D] -> [..., D]
    """

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = mean_last_dim(x)
        centred = x - mean
        var = mean_last_dim(centred * centred)
        return centred / torch.sqrt(var + self.eps) * self.weight + self.bias


def mean_last_dim(x: torch.Tensor) -> torch.Tensor:
    """Mean over the last dim, keepdim. x: [B, N, D] -> [B, N, 1]

    Taken as a 4-D mean over the two innermost dims, the only form XNNPACK delegates
    (global average pooling).
    """
    b, n, d = x.shape
    return x.reshape(b, n, d, 1).mean(dim=(2, 3), keepdim=True).reshape(b, n, 1)


def mean_tokens(x: torch.Tensor) -> torch.Tensor:
    """Mean over the token dim (export-friendly pooling). x: [B, N, D] -> [B, D]"""
    b, n, d = x.shape
    return x.transpose(1, 2).reshape(b, d, n, 1).mean(dim=(2, 3), keepdim=True).reshape(b, d)


class Attention(nn.Module):
    """Multi-head self-attention as explicit matmul + softmax.

    x: [B, N, D] -> [B, N, D]
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.k = nn.Linear(dim, dim, bias=qkv_bias)
        self.v = nn.Linear(dim, dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """[B, N, D] -> [B*H, N, hd]"""
        b, n, _ = x.shape
        return (
            x.reshape(b, n, self.num_heads, self.head_dim)
            .permute(0, 2, 1, 3)
            .reshape(b * self.num_heads, n, self.head_dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q = self._heads(self.q(x) * self.scale)
        k = self._heads(self.k(x))
        v = self._heads(self.v(x))
        attn = torch.bmm(q, k.transpose(1, 2)).softmax(dim=-1)  # [B*H, N, N]
        out = torch.bmm(attn, v)  # [B*H, N, hd]
        out = out.reshape(b, self.num_heads, n, self.head_dim).permute(0, 2, 1, 3).reshape(b, n, d)
        return self.proj(out)


class MLP(nn.Module):
    """x: [B, N, D] -> [B, N, D] with a GELU hidden layer of ``hidden`` units."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block. x: [B, N, D] -> [B, N, D]"""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = ExportLayerNorm(dim)
        self.attn = Attention(dim, num_heads)
        self.norm2 = ExportLayerNorm(dim)
        self.mlp = MLP(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def gather_tokens(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Keep the tokens at ``idx`` for each sample.

    x: [B, N, D], idx: [B, K] (int64 token indices) -> [B, K, D]
    """
    return torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """Truncated-normal init for linear layers, as in ViT/I-JEPA."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.trunc_normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, ExportLayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
