"""Sampling-based sequence optimisers: CEM and MPPI over discrete (categorical) or continuous (Gaussian)
action sequences.

    dist = Categorical(horizon=5, num_actions=4, min_prob=0.02, generator=g)
    result = cem(dist, evaluate, CEMConfig())        # evaluate(actions [S, H, A]) -> energies [S]

``evaluate`` is called once per iteration with all S candidates: that is the one batched
world-model call. The distribution object keeps its state between calls, so MPC warm-starts the next
replan from the shifted previous one (``dist.shift()``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from glasses_runtime.planner.config import CEMConfig, MPPIConfig

Evaluate = Callable[[torch.Tensor], torch.Tensor]


class Categorical:
    """Independent categorical distributions per step: probs [H, K]; samples are one-hot [S, H, K]."""

    def __init__(self, horizon: int, num_actions: int, min_prob: float, generator: torch.Generator) -> None:
        self.horizon, self.k, self.min_prob, self.gen = horizon, num_actions, min_prob, generator
        self.reset()

    def reset(self) -> None:
        self.probs = torch.full((self.horizon, self.k), 1.0 / self.k)

    def shift(self) -> None:
        """Drop the executed step, append a uniform one (receding horizon warm start)."""
        self.probs = torch.cat([self.probs[1:], torch.full((1, self.k), 1.0 / self.k)])

    def sample(self, n: int) -> torch.Tensor:
        idx = torch.multinomial(self.probs, n, replacement=True, generator=self.gen).T  # [n, H]
        return torch.nn.functional.one_hot(idx, self.k).float()

    def refit(self, samples: torch.Tensor, weights: torch.Tensor, momentum: float) -> None:
        """samples [M, H, K] one-hot, weights [M] summing to 1."""
        freq = (samples * weights[:, None, None]).sum(0)
        p = momentum * self.probs + (1 - momentum) * freq
        p = p.clamp_min(self.min_prob)
        self.probs = p / p.sum(-1, keepdim=True)

    def first_action_share(self, samples: torch.Tensor, weights: torch.Tensor, action: torch.Tensor) -> float:
        """Weight share of samples whose first action equals ``action`` (one-hot [K])."""
        same = (samples[:, 0] * action).sum(-1)
        return float((same * weights).sum())

    def vote(self, samples: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """The first action with the most weight, one-hot [K]."""
        return torch.nn.functional.one_hot((samples[:, 0] * weights[:, None]).sum(0).argmax(), self.k).float()


class Gaussian:
    """Independent clipped Gaussians per step and component: mean, std [H, A] within [low, high]."""

    def __init__(
        self, horizon: int, low: torch.Tensor, high: torch.Tensor, init_std: float, generator: torch.Generator
    ) -> None:
        self.horizon, self.low, self.high, self.gen = horizon, low, high, generator
        self.init_std = init_std * (high - low)
        self.reset()

    def reset(self) -> None:
        self.mean = ((self.low + self.high) / 2).expand(self.horizon, -1).clone()
        self.std = self.init_std.expand(self.horizon, -1).clone()

    def shift(self) -> None:
        self.mean = torch.cat([self.mean[1:], ((self.low + self.high) / 2)[None]])
        self.std = torch.cat([self.std[1:], self.init_std[None]])

    def sample(self, n: int) -> torch.Tensor:
        noise = torch.randn((n, *self.mean.shape), generator=self.gen)
        return torch.minimum(torch.maximum(self.mean + self.std * noise, self.low), self.high)

    def refit(self, samples: torch.Tensor, weights: torch.Tensor, momentum: float) -> None:
        w = weights[:, None, None]
        mean = (samples * w).sum(0)
        var = (((samples - mean) ** 2) * w).sum(0)
        self.mean = momentum * self.mean + (1 - momentum) * mean
        floor = 1e-3 * (self.high - self.low)
        self.std = torch.maximum(momentum * self.std + (1 - momentum) * var.sqrt(), floor)

    def first_action_share(self, samples: torch.Tensor, weights: torch.Tensor, action: torch.Tensor) -> float:
        """1 - (weighted std of the first action / its range), averaged over components: 1 = all agree."""
        w = weights[:, None]
        first = samples[:, 0]
        std = ((((first - (first * w).sum(0)) ** 2) * w).sum(0)).sqrt()
        return float((1 - 2 * std / (self.high - self.low)).clamp(0, 1).mean())

    def vote(self, samples: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return (samples[:, 0] * weights[:, None]).sum(0)


Distribution = Categorical | Gaussian


@dataclass
class OptResult:
    """actions: the plan [H, A] (first row is executed); energy: its energy; confidence in [0, 1];
    best_per_iteration: lowest energy found so far after each iteration (non-increasing);
    elite_mean_per_iteration: mean energy of the elites (CEM) or weighted mean (MPPI) per iteration."""

    actions: torch.Tensor
    energy: float
    confidence: float
    best_per_iteration: list[float] = field(default_factory=list)
    elite_mean_per_iteration: list[float] = field(default_factory=list)


def cem(dist: Distribution, evaluate: Evaluate, cfg: CEMConfig) -> OptResult:
    """Cross-entropy method; the best sequence so far is re-entered each iteration (elitism), so the best
    energy never gets worse. Executes the best sequence's first action."""
    best, best_e = None, float("inf")
    bests, means = [], []
    uniform = torch.full((cfg.elites,), 1.0 / cfg.elites)
    elites = None
    for _ in range(cfg.iterations):
        cand = dist.sample(cfg.samples)
        if best is not None:
            cand[0] = best
        e = evaluate(cand)
        order = torch.argsort(e)[: cfg.elites]
        elites = cand[order]
        dist.refit(elites, uniform, cfg.momentum)
        if float(e[order[0]]) < best_e:
            best, best_e = cand[order[0]].clone(), float(e[order[0]])
        bests.append(best_e)
        means.append(float(e[order].mean()))
    assert best is not None and elites is not None
    conf = dist.first_action_share(elites, uniform, best[0])
    return OptResult(best, best_e, conf, bests, means)


def mppi(dist: Distribution, evaluate: Evaluate, cfg: MPPIConfig) -> OptResult:
    """MPPI: every sample refits the distribution with weight softmax(-energy / temperature); executes
    the weighted vote (discrete) or weighted mean (continuous) of the first actions."""
    bests, means = [], []
    best_e = float("inf")
    cand = weights = None
    best = None
    for _ in range(cfg.iterations):
        cand = dist.sample(cfg.samples)
        if best is not None:
            cand[0] = best
        e = evaluate(cand)
        weights = torch.softmax(-(e - e.min()) / cfg.temperature, dim=0)
        dist.refit(cand, weights, cfg.momentum)
        i = int(torch.argmin(e))
        if float(e[i]) < best_e:
            best, best_e = cand[i].clone(), float(e[i])
        bests.append(best_e)
        means.append(float((weights * e).sum()))
    assert cand is not None and weights is not None and best is not None
    first = dist.vote(cand, weights)
    plan = torch.cat([first[None], best[1:]])
    return OptResult(plan, means[-1], dist.first_action_share(cand, weights, first), bests, means)
