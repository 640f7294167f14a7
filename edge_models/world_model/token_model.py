"""The token world model: action-conditioned prediction of the encoder's spatial token grid.

    model = TokenWorldModel(TokenWorldModelConfig(token_dim=192, grid=(4, 8)))
    model.set_projection(mean, proj)             # fixed PCA of the training tokens (fit_projection)
    s = model.project(tokens)                    # reduced tokens [B, h, w, Dt] -> state [B, d, h, w]
    s_seq = model.rollout(context, actions)      # [B, C, d, h, w], [B, H, A] -> [B, H, d, h, w]

Why tokens: the pooled embedding cannot tell a left turn from a right one; the grid keeps where
things are in the view, so "turn left" is a shift of the columns the model can learn and the
planner's energy sees. The state is the grid of ``glasses_runtime.tokens.reduce_tokens`` (rows
averaged in pairs: [4, 8] at 128 px) projected by a fixed PCA (``fit_projection``: centred, the top
``state_dim`` components, one global scale so the state has unit variance per element). The
projection is a buffer, not trained: a trained one could shrink the state and the loss with it.

The predictor first moves the newest state across columns with a learned [w, w] transport matrix
per action (initialised to the identity; a turn slides the view sideways), then a small conv net
over the grid (3x3 input conv over the C stacked context states and the moved one, then residual blocks of 3x3 conv -> FiLM(action) -> GELU -> 1x1 conv), predicting the change
of the newest state; the output conv starts at zero and the transport at the identity, so an untrained model is
"nothing moves". Export-friendly: conv2d, linear, bmm, GELU, add, mul, cat, reshape and slices only, and the H-step rollout
unrolled in the graph (``TokenPlannerStep``: one call scores S candidate sequences).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edge_models.errors import CheckpointError, ConfigError
from edge_models.models.layers import mean_last_dim

KIND = "token_world_model"


@dataclass(frozen=True)
class TokenWorldModelConfig:
    """token_dim: the encoder's token width Dt. grid: (h, w) of the reduced grid. state_dim: d, the
    PCA components kept per token. action_dim / action_kind: as WorldModelConfig (discrete = one-hot).
    context: C past states seen (newest last). hidden / depth: conv channels and residual blocks.
    export_samples / export_horizon: the fixed [S, H] of the exported planner step."""

    token_dim: int = 192
    grid: tuple[int, int] = (4, 8)
    state_dim: int = 32
    action_dim: int = 4
    action_kind: str = "discrete"
    context: int = 2
    hidden: int = 32
    depth: int = 3
    export_samples: int = 64
    export_horizon: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "grid", tuple(int(g) for g in self.grid))
        for name in (
            "token_dim",
            "state_dim",
            "action_dim",
            "context",
            "hidden",
            "depth",
            "export_samples",
            "export_horizon",
        ):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"TokenWorldModelConfig.{name} must be a positive int, got {v!r}")
        if len(self.grid) != 2 or min(self.grid) < 1:
            raise ConfigError(f"grid must be (h, w) with positive sides, got {self.grid}")
        if self.state_dim > self.token_dim:
            raise ConfigError(f"state_dim {self.state_dim} cannot exceed token_dim {self.token_dim}")
        if self.action_kind != "discrete":
            raise ConfigError(
                "the token world model takes discrete actions (one-hot); continuous ones are not built yet"
            )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["grid"] = list(self.grid)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TokenWorldModelConfig:
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(
                f"unknown token-world-model config fields {sorted(unknown)}; written by a newer version?"
            )
        return cls(**{**d, "grid": tuple(d.get("grid", (4, 8)))})


def fit_projection(tokens: np.ndarray, state_dim: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Whitening PCA of token vectors: tokens [N, Dt] -> (mean [Dt], proj [Dt, d], info).

    proj holds the top-d principal directions, each scaled to unit variance on these tokens: a few
    directions (how much wall or floor is in view) carry most of the variance of raw tokens and tell
    places apart worst, so all d count alike. info: explained variance share of the d components."""
    x = np.asarray(tokens, dtype=np.float64)
    mean = x.mean(0)
    cov = np.cov((x - mean).T)
    vals, vecs = np.linalg.eigh(cov)
    order = np.argsort(vals)[::-1][:state_dim]
    vecs = vecs[:, order]
    kept = float(vals[order].sum() / vals.sum())
    scale = 1.0 / np.sqrt(np.maximum(vals[order], 1e-12 * vals.max()))
    return mean.astype(np.float32), (vecs * scale).astype(np.float32), {"explained_variance": round(kept, 4)}


class _Block(nn.Module):
    """h + W1x1 GELU(FiLM(conv3x3(h), action))."""

    def __init__(self, ch: int, action_dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)
        self.film = nn.Linear(action_dim, 2 * ch)
        self.act = nn.GELU()
        self.mix = nn.Conv2d(ch, ch, 1)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, h: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        b, c = h.shape[0], h.shape[1]
        gb = self.film(action)
        gamma = gb[:, :c].reshape(b, c, 1, 1)
        beta = gb[:, c:].reshape(b, c, 1, 1)
        y = self.conv(h)
        return h + self.mix(self.act(y * (1.0 + gamma) + beta))


class TokenWorldModel(nn.Module):
    """s_{t+1} = s_t + f([s_{t-C+1}, ..., s_t], a_t) on PCA-projected reduced token grids."""

    def __init__(self, config: TokenWorldModelConfig) -> None:
        super().__init__()
        self.config = c = config
        # the fixed projection as a frozen linear (XNNPACK delegates linears with constant weights):
        # state = (tokens - mean) @ proj = tokens @ proj + (-mean @ proj)
        self.proj = nn.Linear(c.token_dim, c.state_dim)
        self.proj.requires_grad_(False)
        gw = c.grid[1]
        # action-conditioned transport across columns: turning moves the view sideways
        self.transport = nn.Linear(c.action_dim, gw * gw, bias=False)  # one-hot action -> its [w, w] matrix
        with torch.no_grad():
            self.transport.weight.copy_(torch.eye(gw).reshape(gw * gw, 1).repeat(1, c.action_dim))
        self.inp = nn.Conv2d((c.context + 1) * c.state_dim + c.action_dim, c.hidden, 3, padding=1)
        self.blocks = nn.ModuleList(_Block(c.hidden, c.action_dim) for _ in range(c.depth))
        self.out = nn.Conv2d(c.hidden, c.state_dim, 1)
        self.register_buffer("ones_grid", torch.ones(1, 1, *c.grid), persistent=False)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def set_projection(self, mean: np.ndarray, proj: np.ndarray) -> None:
        c = self.config
        if mean.shape != (c.token_dim,) or proj.shape != (c.token_dim, c.state_dim):
            raise ConfigError(
                f"projection must be mean [{c.token_dim}] and proj [{c.token_dim}, {c.state_dim}], "
                f"got {mean.shape} and {proj.shape}"
            )
        p = np.asarray(proj, dtype=np.float64)
        with torch.no_grad():
            self.proj.weight.copy_(torch.from_numpy(p.T.astype(np.float32)))
            self.proj.bias.copy_(
                torch.from_numpy((-np.asarray(mean, dtype=np.float64) @ p).astype(np.float32))
            )

    def token_mean(self) -> torch.Tensor:
        """The projection's centre [Dt] (least-squares: the point it maps to the zero state)."""
        w, b = self.proj.weight.double(), self.proj.bias.double()  # [d, Dt], [d]
        return (torch.linalg.pinv(w) @ (-b)).float()

    def project(self, tokens: torch.Tensor) -> torch.Tensor:
        """Reduced tokens [B, h, w, Dt] -> state [B, d, h, w]."""
        b, h, w, dt = tokens.shape
        x = self.proj(tokens.reshape(b * h * w, dt))
        return x.reshape(b, h, w, self.config.state_dim).permute(0, 3, 1, 2)

    def step(self, ctx: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """ctx: [B, C*d, h, w] (oldest first), action [B, A] -> next state [B, d, h, w].

        The newest state is first moved across columns by the action's [w, w] transport matrix (a learned
        shift: a turn slides the view sideways), then the conv net adds what the move reveals or hides."""
        b, _, gh, gw = ctx.shape
        d = self.config.state_dim
        a = action.shape[1]
        last = ctx[:, ctx.shape[1] - d :]
        mix = self.transport(action).reshape(b, gw, gw)
        moved = torch.bmm(last.reshape(b, d * gh, gw), mix).reshape(b, d, gh, gw)
        a_map = (
            action.reshape(b, a, 1, 1) * self.ones_grid
        )  # broadcast by a multiply: XNNPACK does not delegate expand
        h = self.inp(torch.cat([ctx, moved, a_map], dim=1))
        for blk in self.blocks:
            h = blk(h, action)
        return moved + self.out(h)

    def rollout(self, context: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """context [B, C, d, h, w] (states, oldest first), actions [B, H, A] -> [B, H, d, h, w]."""
        b, c, d, gh, gw = context.shape
        n_steps, a = actions.shape[1], actions.shape[2]
        ctx = context.reshape(b, c * d, gh, gw)
        flat = actions.reshape(b, n_steps * a)
        preds = []
        for i in range(n_steps):
            # a slice over the whole tensor (H = 1) would be an alias XNNPACK does not take
            act = flat if n_steps == 1 else flat[:, i * a : (i + 1) * a]
            s = self.step(ctx, act)
            preds.append(s.reshape(b, 1, d, gh, gw))
            if i + 1 < n_steps:  # no dead update after the last step (it would stay outside the delegate)
                ctx = torch.cat([ctx[:, d:], s], dim=1) if c > 1 else s
        return preds[0] if n_steps == 1 else torch.cat(preds, dim=1)


def grid_distance(pred: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
    """1 - mean over grid cells of the cosine between states: pred [..., d, h, w], goal broadcastable
    -> [...] in [0, 2]. The place-recognition measure, the planner's energy and surprise all use it."""
    num = (pred * goal).sum(-3)
    den = torch.sqrt((pred * pred).sum(-3) * (goal * goal).sum(-3) + 1e-8)
    return 1.0 - (num / den).mean((-1, -2))


class TokenPlannerStep(nn.Module):
    """The deployable program: one planner iteration (or one surprise check).

    forward(context [1, C, h, w, Dt] reduced tokens, oldest first; actions [S, H, A] one-hot;
            goal [1, h, w, Dt] reduced tokens) -> (distance [S, H], predicted [S, H, h*w, d])
    distance[s, k]: ``grid_distance`` between the state predicted after actions[s, :k+1] and the
    goal's state; predicted: the predicted states, each cell scaled to unit length (what the
    navigator compares with every nearby keyframe to read the route's cost-to-go). With the goal set to the frame that followed, distance[s, 0] for the
    action taken is the prediction error: salience's surprise.
    """

    def __init__(self, model: TokenWorldModel, samples: int | None = None) -> None:
        super().__init__()
        self.model = model
        s = samples or model.config.export_samples
        self.register_buffer("ones_samples", torch.ones(s, 1, 1, 1), persistent=False)

    def forward(self, context: torch.Tensor, actions: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        c = self.model.config
        _, n_ctx, gh, gw, dt = context.shape
        s = actions.shape[0]
        d = c.state_dim
        states = self.model.project(context.reshape(n_ctx, gh, gw, dt))  # [C, d, h, w]
        # broadcast to the S candidates by a multiply (XNNPACK delegates it; expand it does not)
        ones = self.ones_samples if self.ones_samples.shape[0] == s else torch.ones(s, 1, 1, 1)
        ctx = states.reshape(1, n_ctx * d, gh, gw) * ones
        pred = self.model.rollout(ctx.reshape(s, n_ctx, d, gh, gw), actions)  # [S, H, d, h, w]
        n_steps = actions.shape[1]
        n = s * n_steps
        cells = pred.reshape(n, d, gh * gw).permute(0, 2, 1)  # [S*H, h*w, d]
        # sums over the last dim as means (global average pooling: the form XNNPACK delegates)
        fd = float(d)  # a float constant: an int one becomes a dtype cast outside the delegate
        cells = cells / torch.sqrt(mean_last_dim(cells * cells) * fd + 1e-8)
        g = self.model.project(goal).reshape(d, gh * gw).permute(1, 0).reshape(1, gh * gw, d)
        g = g / torch.sqrt(mean_last_dim(g * g) * fd + 1e-8)
        cos = mean_last_dim(cells * g) * fd  # [S*H, h*w, 1]
        distance = 1.0 - mean_last_dim(cos.reshape(1, n, gh * gw)).reshape(s, n_steps)
        return distance, cells.reshape(s, n_steps, gh * gw, d)


# ---- checkpoints ----------------------------------------------------------------------------------------


def save_token_world_model(
    path: str | Path,
    model: TokenWorldModel,
    encoder_config: Any,
    encoder_sha256: str,
    train_summary: dict | None = None,
) -> Path:
    """Weights (projection included) + configs, atomically. ``encoder_config``: the frozen encoder's
    EncoderConfig (every glasses checkpoint names its encoder the same way)."""
    from edge_models.checkpoint import FORMAT, _atomic_save

    if encoder_config.width != model.config.token_dim:
        raise ConfigError(
            f"the model reads {model.config.token_dim}-d tokens but the encoder's are {encoder_config.width}-d"
        )
    meta = {
        "format": FORMAT,
        "kind": KIND,
        "token_world_model_config": json.dumps(model.config.to_dict()),
        "config": json.dumps(encoder_config.to_dict()),
        "encoder_sha256": encoder_sha256,
        "train": json.dumps(train_summary or {}),
    }
    path = Path(path)
    _atomic_save({k: v.contiguous() for k, v in model.state_dict().items()}, meta, path)
    return path


def load_token_world_model(path: str | Path) -> tuple[TokenWorldModel, dict[str, str]]:
    """An eval-mode token world model and its metadata; CheckpointError naming the fix otherwise."""
    from edge_models.checkpoint import _load_tensors, read_metadata

    meta = read_metadata(path)
    if meta.get("kind") != KIND:
        raise CheckpointError(
            f"{path} holds a '{meta.get('kind')}' checkpoint, not a token world model; train one with "
            "'python -m edge_models.world_model.train_tokens'"
        )
    try:
        cfg = TokenWorldModelConfig.from_dict(json.loads(meta["token_world_model_config"]))
    except (KeyError, json.JSONDecodeError, TypeError, ConfigError) as e:
        raise CheckpointError(
            f"token world-model checkpoint {path} has no valid config ({e}); retrain it"
        ) from None
    model = TokenWorldModel(cfg)
    missing, unexpected = model.load_state_dict(_load_tensors(path), strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not match the token world-model architecture (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}); retrain it"
        )
    return model.eval(), meta
