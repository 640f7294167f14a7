"""JEPA objectives, schedules and collapse diagnostics.

* ``regression_loss``: L1 / smooth-L1 between predicted and layer-normed target tokens (I-JEPA).
* ``vicreg_loss``: invariance + variance + covariance (Bardes et al.), on token sets [M, D].
* ``ema_update`` / ``ema_momentum``: the target encoder follows the context encoder.
* ``embedding_stats``: per-dimension std and effective rank, so collapse shows in the logs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def regression_loss(pred: torch.Tensor, target: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """pred, target: [B, N, D]; target is layer-normed here (per token, no affine)."""
    target = F.layer_norm(target, (target.shape[-1],))
    if kind == "l1":
        return (pred - target).abs().mean()
    if kind == "smooth_l1":
        return F.smooth_l1_loss(pred, target)
    raise ValueError(f"unknown regression loss {kind}")


def _variance_term(z: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    std = torch.sqrt(z.var(dim=0) + eps)
    return F.relu(1.0 - std).mean()


def _covariance_term(z: torch.Tensor) -> torch.Tensor:
    m, d = z.shape
    z = z - z.mean(dim=0)
    cov = (z.T @ z) / max(m - 1, 1)
    off = cov - torch.diag(torch.diagonal(cov))
    return (off**2).sum() / d


def vicreg_loss(
    za: torch.Tensor, zb: torch.Tensor, weights: tuple[float, float, float] = (25.0, 25.0, 1.0)
) -> tuple[torch.Tensor, dict[str, float]]:
    """za, zb: [M, D] paired embeddings. -> (loss, parts)"""
    w_inv, w_var, w_cov = weights
    inv = F.mse_loss(za, zb)
    var = 0.5 * (_variance_term(za) + _variance_term(zb))
    cov = _covariance_term(za) + _covariance_term(zb)
    loss = w_inv * inv + w_var * var + w_cov * cov
    return loss, {"vic_inv": inv.item(), "vic_var": var.item(), "vic_cov": cov.item()}


def variance_covariance(z: torch.Tensor) -> torch.Tensor:
    """VICReg's anti-collapse terms alone on one set of embeddings z: [M, D] (variance + covariance)."""
    return _variance_term(z) + _covariance_term(z)


def relation_loss(zs: torch.Tensor, zt: torch.Tensor) -> torch.Tensor:
    """zs: [B, Ds] student, zt: [B, Dt] teacher. MSE between their batch cosine-similarity matrices.

    The teacher's features are centred over the batch first (they share a large positive mean); the
    student's are not, so its own cosine similarities, the ones memory ranks by, learn to be near 0
    for unrelated images instead of riding on a common component."""
    ss = F.normalize(zs, dim=-1)
    st = F.normalize(zt - zt.mean(dim=0), dim=-1)
    return F.mse_loss(ss @ ss.T, st @ st.T)


def ema_momentum(step: int, total_steps: int, start: float, end: float) -> float:
    """Linear ramp from ``start`` at step 0 to ``end`` at the last step."""
    if total_steps <= 1:
        return end
    return start + (end - start) * min(step, total_steps) / total_steps


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """target <- momentum * target + (1 - momentum) * online, parameter by parameter."""
    t_params = list(target.parameters())
    o_params = [p.detach() for p in online.parameters()]
    torch._foreach_mul_(t_params, momentum)
    torch._foreach_add_(t_params, o_params, alpha=1.0 - momentum)


def lr_at(step: int, total_steps: int, base: float, minimum: float, warmup: int) -> float:
    """Linear warm-up then cosine decay to ``minimum``."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    return minimum + 0.5 * (base - minimum) * (1.0 + math.cos(math.pi * min(progress, 1.0)))


@torch.no_grad()
def embedding_stats(z: torch.Tensor) -> dict[str, float]:
    """z: [B, D] pooled embeddings.

    std: mean over dims of the per-dim std of L2-normalised embeddings (collapse -> 0; for
    isotropic embeddings about 1/sqrt(D)). eff_rank: exp of the entropy of the normalised
    singular values of the centred batch (1 = collapsed to a line; at most min(B, D)).
    """
    z = z.float()
    zn = F.normalize(z, dim=-1)
    std = float(zn.std(dim=0).mean()) if z.shape[0] > 1 else 0.0
    s = torch.linalg.svdvals(z - z.mean(dim=0))
    p = s / s.sum().clamp_min(1e-12)
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum()
    return {"emb_std": std, "emb_std_iso": 1.0 / math.sqrt(z.shape[1]), "eff_rank": float(torch.exp(entropy))}
