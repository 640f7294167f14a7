"""Train the world model on frozen-encoder embeddings of simulator rollouts.

    python -m simulator.world.collect --episodes 40 --steps 200 --out runs/world --seed 1000
    python -m edge_models.world_model.train --rollouts runs/world \
        --encoder edge_models/weights/vit_pico.safetensors --out runs/wm --steps 2000

Writes OUT/world_model.safetensors (weights, WorldModelConfig, the encoder's config and hash),
OUT/embeddings.npz (cached frame embeddings) and OUT/summary.json (losses, timings). The loss per
window is the squared L2 error of the teacher-forced next embedding plus ``rollout_weight`` times
the mean error of R-1 further steps where the model's own predictions are fed back. The validation
loss is reported beside the "nothing moves" baseline (predict z_t for z_{t+1}) so it can be judged.
Deterministic on the CPU for a given seed and thread count.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from edge_models.checkpoint import file_sha256, load_encoder
from edge_models.errors import CheckpointError, EdgeModelsError
from edge_models.world_model.checkpoint import save_world_model
from edge_models.world_model.config import TrainConfig, WorldModelConfig
from edge_models.world_model.data import WindowSampler, action_spec, load_embedded
from edge_models.world_model.model import WorldModel


@dataclass
class TrainResult:
    checkpoint: Path
    summary: dict


def window_loss(
    model: WorldModel,
    context: torch.Tensor,
    actions: torch.Tensor,
    targets: torch.Tensor,
    rollout_weight: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Teacher forcing + fed-back rollout. context [B, C, D], actions [B, R, A], targets [B, R, D].

    Returns (total, teacher-forced one-step loss, mean loss of the fed-back steps 2..R), each the
    mean squared L2 distance per embedding.
    """
    pred = model.rollout(context, actions)  # step 1 sees only true context: that is teacher forcing
    err = ((pred - targets) ** 2).sum(-1).mean(0)  # [R]
    one, rest = err[0], err[1:].mean()
    return one + rollout_weight * rest, one, rest


@torch.no_grad()
def evaluate(model: WorldModel, sampler: WindowSampler, max_windows: int = 4096) -> dict:
    """Losses on (up to max_windows evenly spaced) windows, and the identity baseline's."""
    idx = np.linspace(0, len(sampler) - 1, min(max_windows, len(sampler))).astype(np.int64)
    ctx, act, tgt = sampler.windows(idx)
    pred = model.rollout(ctx, act)
    err = ((pred - tgt) ** 2).sum(-1).mean(0)
    still = ((ctx[:, -1:, :] - tgt) ** 2).sum(-1).mean(0)
    return {
        "one_step": float(err[0]),
        "rollout_last_step": float(err[-1]),
        "identity_one_step": float(still[0]),
        "identity_last_step": float(still[-1]),
        "windows": len(idx),
    }


def _split(episodes: list, val_fraction: float) -> tuple[list, list]:
    """The last ``val_fraction`` of the episodes (at least one when > 0, none if that leaves no training
    episode) are held out."""
    n_val = 0 if val_fraction == 0 else max(1, round(len(episodes) * val_fraction))
    if n_val and len(episodes) - n_val < 1:
        n_val = 0
    return episodes[: len(episodes) - n_val], episodes[len(episodes) - n_val :]


def lr_schedule(cfg: TrainConfig) -> Callable[[int], float]:
    """Linear warm-up over ``cfg.warmup`` steps, then cosine decay to 0 at ``cfg.steps``."""

    def lr_at(step: int) -> float:
        if step < cfg.warmup:
            return cfg.lr * (step + 1) / cfg.warmup
        p = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * p))

    return lr_at


LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def fit(
    params, sampler: WindowSampler, loss_fn: LossFn, cfg: TrainConfig, desc: str, progress: bool
) -> tuple[list[dict], float]:
    """The optimisation loop both world models share: AdamW on ``params`` with ``lr_schedule``, one batch
    of ``cfg.batch_size`` windows per step, ``loss_fn(context, actions, targets) -> (total, one-step,
    fed-back)``. Returns (history logged every ``cfg.log_every`` steps, seconds)."""
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    lr_at = lr_schedule(cfg)
    history: list[dict] = []
    bar = tqdm(range(cfg.steps), desc=desc, disable=not progress, file=sys.stderr)
    t1 = time.perf_counter()
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        loss, one, rest = loss_fn(*sampler.sample(cfg.batch_size))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % cfg.log_every == 0 or step == cfg.steps - 1:
            rec = {"step": step, "loss": loss.item(), "one_step": one.item(), "rollout": rest.item()}
            history.append(rec)
            bar.set_postfix(loss=f"{rec['loss']:.4f}", one=f"{rec['one_step']:.4f}")
    return history, time.perf_counter() - t1


def add_train_arguments(p: argparse.ArgumentParser, batch_size: int) -> None:
    """The options every world-model trainer shares (rollouts, encoder, out, schedule, seed, output)."""
    d = TrainConfig()
    p.add_argument(
        "--rollouts", required=True, help="rollout folder from 'python -m simulator.world.collect'"
    )
    p.add_argument("--encoder", required=True, help="frozen encoder checkpoint (.safetensors)")
    p.add_argument("--out", required=True, help="output folder (the checkpoint, summary.json)")
    p.add_argument("--steps", type=int, default=d.steps, help=f"optimiser steps (default {d.steps})")
    p.add_argument("--batch-size", type=int, default=batch_size, help=f"windows per step ({batch_size})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"AdamW peak learning rate ({d.lr})")
    p.add_argument("--rollout-steps", type=int, default=d.rollout_steps, help=f"R >= 2 ({d.rollout_steps})")
    p.add_argument("--seed", type=int, default=d.seed, help="seed (0)")
    p.add_argument("--threads", type=int, default=d.threads, help="torch CPU threads (1: reproducible)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")


def train_config_from(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        rollout_steps=args.rollout_steps,
        seed=args.seed,
        threads=args.threads,
    )


def train(
    rollouts: str | Path,
    encoder_path: str | Path,
    out: str | Path,
    cfg: TrainConfig | None = None,
    model_cfg: dict | None = None,
    progress: bool = True,
) -> TrainResult:
    """Embed the rollouts, train, save. model_cfg: WorldModelConfig overrides (context, hidden, depth, ...)."""
    cfg = cfg or TrainConfig()
    out = Path(out)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    t0 = time.perf_counter()
    encoder = load_encoder(encoder_path).inference_copy()
    enc_sha = file_sha256(encoder_path)
    bar = tqdm(total=None, desc="embedding episodes", disable=not progress, file=sys.stderr)

    def on_episode(i: int, n: int) -> None:
        bar.total = n
        bar.update(1)

    episodes, index = load_embedded(
        rollouts, encoder, enc_sha, cache=out / "embeddings.npz", on_episode=on_episode
    )
    bar.close()
    kind, adim, scale = action_spec(index)
    mcfg = WorldModelConfig(
        **{
            "embed_dim": encoder.config.width,
            "action_dim": adim,
            "action_kind": kind,
            "action_scale": scale,
            **(model_cfg or {}),
        }
    )
    train_eps, val_eps = _split(episodes, cfg.val_fraction)
    sampler = WindowSampler(train_eps, mcfg.context, cfg.rollout_steps, cfg.seed)
    val_sampler = WindowSampler(val_eps, mcfg.context, cfg.rollout_steps, cfg.seed) if val_eps else None
    t_embed = time.perf_counter() - t0

    model = WorldModel(mcfg)
    start_eval = evaluate(model, val_sampler or sampler)
    history, t_train = fit(
        model.parameters(),
        sampler,
        lambda ctx, act, tgt: window_loss(model, ctx, act, tgt, cfg.rollout_weight),
        cfg,
        "world model",
        progress,
    )
    model.eval()
    summary = {
        "rollouts": str(rollouts),
        "episodes": {"train": len(train_eps), "val": len(val_eps)},
        "train_windows": len(sampler),
        "encoder": str(encoder_path),
        "encoder_sha256": enc_sha,
        "model_config": mcfg.to_dict(),
        "train_config": cfg.to_dict(),
        "eval_before": start_eval,
        "eval_after": evaluate(model, val_sampler or sampler),
        "eval_split": "val" if val_sampler else "train",
        "history": history,
        "seconds": {"embed": round(t_embed, 2), "train": round(t_train, 2)},
    }
    ckpt = save_world_model(
        out / "world_model.safetensors",
        model,
        encoder.config,
        enc_sha,
        {k: summary[k] for k in ("rollouts", "episodes", "eval_after", "eval_split", "train_config")},
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return TrainResult(checkpoint=ckpt, summary=summary)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m edge_models.world_model.train",
        description="Train the action-conditioned world model on frozen-encoder embeddings of simulator rollouts.",
    )
    add_train_arguments(p, TrainConfig.batch_size)
    p.add_argument("--context", type=int, default=WorldModelConfig.context, help="context embeddings C (2)")
    p.add_argument("--hidden", type=int, default=WorldModelConfig.hidden, help="MLP width (128)")
    p.add_argument("--depth", type=int, default=WorldModelConfig.depth, help="residual blocks (2)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        cfg = train_config_from(args)
        result = train(
            args.rollouts,
            args.encoder,
            args.out,
            cfg,
            {"context": args.context, "hidden": args.hidden, "depth": args.depth},
            progress=not args.no_progress,
        )
    except (EdgeModelsError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    s = result.summary
    if args.json:
        print(json.dumps({k: v for k, v in s.items() if k != "history"}))
    else:
        e = s["eval_after"]
        print(
            f"wrote {result.checkpoint}: {s['eval_split']} one-step {e['one_step']:.4f} "
            f"(identity {e['identity_one_step']:.4f}), step {cfg.rollout_steps} {e['rollout_last_step']:.4f} "
            f"(identity {e['identity_last_step']:.4f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
