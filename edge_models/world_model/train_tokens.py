"""Train the token world model on the frozen encoder's token grids of simulator rollouts.

    python -m simulator.world.collect --episodes 160 --steps 100 --out runs/wm_data --seed 2000 --size 128
    python -m edge_models.world_model.train_tokens --rollouts runs/wm_data \
        --encoder edge_models/weights/vit_tiny.safetensors --out runs/token_wm --steps 3000

Every frame is encoded once (tokens [8, 8, Dt] -> rows averaged in pairs -> [4, 8, Dt], the grid
``glasses_runtime.tokens.reduce_tokens`` makes at run time) and cached in OUT/tokens.npz (float16)
keyed by the encoder's and the rollouts' hashes. A fixed PCA of the training tokens defines the state
(``token_model.fit_projection``). The loss per window is the mean squared error per state element of
the teacher-forced next state plus ``rollout_weight`` times that of R-1 fed-back steps; the
validation losses are reported beside "nothing moves" (predict s_t for s_{t+1}). Writes
OUT/token_world_model.safetensors and OUT/summary.json. Deterministic on the CPU for a seed and
thread count.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from edge_models.checkpoint import file_sha256, load_encoder
from edge_models.errors import CheckpointError, DataError, EdgeModelsError
from edge_models.models.vit import VisionTransformer
from edge_models.preprocess import normalize, resize_center_crop
from edge_models.world_model.config import TrainConfig
from edge_models.world_model.data import (
    EmbeddedEpisode,
    WindowSampler,
    action_spec,
    encode_actions,
    read_index,
)
from edge_models.world_model.token_model import (
    TokenWorldModel,
    TokenWorldModelConfig,
    fit_projection,
    grid_distance,
    save_token_world_model,
)
from edge_models.world_model.train import _split, add_train_arguments, fit, train_config_from


@torch.inference_mode()
def reduced_tokens(encoder: VisionTransformer, frames: np.ndarray, batch: int = 64) -> np.ndarray:
    """RGB uint8 [N, H, W, 3] -> reduced token grids float16 [N, gh // 2, gw, Dt] (rows averaged in pairs)."""
    size = encoder.config.img_size
    _, gh, gw = encoder.grid((1, 3, size, size))
    out = []
    for i in range(0, len(frames), batch):
        x = normalize(np.stack([resize_center_crop(f, size) for f in frames[i : i + batch]]))
        tok = encoder.embed(x)[0]  # [B, gh*gw, Dt]
        b, _, dt = tok.shape
        grid = tok.reshape(b, gh, gw, dt).permute(0, 3, 1, 2)
        pooled = torch.nn.functional.avg_pool2d(grid, (2, 1), ceil_mode=True)  # the pair-of-rows mean
        out.append(pooled.permute(0, 2, 3, 1).numpy().astype(np.float16))
    return np.concatenate(out)


def load_token_episodes(
    path: str | Path, encoder: VisionTransformer, encoder_sha256: str, cache: Path | None, progress: bool
) -> tuple[list[np.ndarray], list[np.ndarray], dict]:
    """(reduced tokens per episode [T+1, h, w, Dt] float16, one-hot actions per episode [T, A], index)."""
    path = Path(path)
    index = read_index(path)
    kind, dim, _ = action_spec(index)
    if kind != "discrete":
        raise DataError(
            "the token world model trains on discrete-action rollouts; collect without --continuous"
        )
    h = hashlib.sha256(encoder_sha256.encode())
    h.update(json.dumps(index, sort_keys=True).encode())
    key = h.hexdigest()
    actions = []
    for ep in index["episodes"]:
        with np.load(path / ep["file"]) as z:
            actions.append(encode_actions(z["actions"], kind, dim))
    if cache is not None and cache.is_file():
        with np.load(cache) as z:
            if str(z["key"]) == key:
                return [z[f"tok{i}"] for i in range(int(z["n"]))], actions, index
    toks = []
    for ep in tqdm(index["episodes"], desc="encoding episodes", disable=not progress, file=sys.stderr):
        try:
            with np.load(path / ep["file"]) as z:
                frames = z["frames"]
        except (OSError, ValueError, KeyError) as e:
            raise DataError(f"{path / ep['file']} is unreadable ({e}); collect again") from None
        toks.append(reduced_tokens(encoder, frames))
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            cache, key=np.array(key), n=np.array(len(toks)), **{f"tok{i}": t for i, t in enumerate(toks)}
        )
    return toks, actions, index


def _states(model: TokenWorldModel, tokens: np.ndarray) -> np.ndarray:
    """[T+1, h, w, Dt] -> flattened states float32 [T+1, d*h*w]."""
    with torch.no_grad():
        s = model.project(torch.from_numpy(tokens.astype(np.float32)))
    return s.reshape(len(tokens), -1).numpy()


def _cell_distance(pred: torch.Tensor, tgt: torch.Tensor, shape) -> torch.Tensor:
    """grid_distance on flattened states [..., d*h*w] -> [...]."""
    d, gh, gw = shape
    lead = pred.shape[:-1]
    return grid_distance(pred.reshape(*lead, d, gh, gw), tgt.reshape(*lead, d, gh, gw))


def window_loss(model: TokenWorldModel, ctx, act, tgt, shape, rollout_weight: float, margin: float = 0.05):
    """ctx [B, C, F], act [B, R, A], tgt [B, R, F] (flattened states) -> (total, one-step, rest).

    Per step: the grid distance the planner's energy uses (1 - mean cell cosine) plus 0.1 x the mean
    squared error; the first step also gets a ranking term: the prediction under the action taken must
    be closer to what followed than the predictions under every other action, by ``margin``. That is
    the decision the planner makes, and a turn's prediction that is merely blurry would not learn it."""
    b, c, _ = ctx.shape
    d, gh, gw = shape
    ctx5 = ctx.reshape(b, c, d, gh, gw)
    pred = model.rollout(ctx5, act).reshape(b, act.shape[1], -1)
    err = _cell_distance(pred, tgt, shape).mean(0) + 0.1 * ((pred - tgt) ** 2).mean(-1).mean(0)  # [R]
    n_act = act.shape[-1]
    others = []
    for k in range(1, n_act):
        alt = torch.roll(act[:, :1], shifts=k, dims=-1)
        p = model.rollout(ctx5, alt).reshape(b, -1)
        others.append(_cell_distance(p, tgt[:, 0], shape))
    true_d = _cell_distance(pred[:, 0], tgt[:, 0], shape)
    rank = torch.relu(margin + true_d[:, None] - torch.stack(others, 1)).mean()
    return err[0] + rollout_weight * err[1:].mean() + rank, err[0], err[1:].mean()


@torch.no_grad()
def evaluate(model: TokenWorldModel, sampler: WindowSampler, shape, max_windows: int = 2048) -> dict:
    idx = np.linspace(0, len(sampler) - 1, min(max_windows, len(sampler))).astype(np.int64)
    ctx, act, tgt = sampler.windows(idx)
    b, c, _ = ctx.shape
    pred = model.rollout(ctx.reshape(b, c, *shape), act).reshape(b, act.shape[1], -1)
    err = ((pred - tgt) ** 2).mean(-1).mean(0)
    still = ((ctx[:, -1:, :] - tgt) ** 2).mean(-1).mean(0)
    # does the model tell the actions apart? error of the prediction under the true action vs the others
    wrong = []
    for shift in range(1, act.shape[-1]):
        alt = torch.roll(act, shifts=shift, dims=-1)
        p = model.rollout(ctx.reshape(b, c, *shape), alt[:, :1]).reshape(b, -1)
        wrong.append(((p - tgt[:, 0]) ** 2).mean(-1))
    true1 = ((pred[:, 0] - tgt[:, 0]) ** 2).mean(-1)
    picks = (true1[:, None] < torch.stack(wrong, 1)).all(1).float().mean()
    return {
        "one_step_mse": float(err[0]),
        "last_step_mse": float(err[-1]),
        "identity_one_step_mse": float(still[0]),
        "identity_last_step_mse": float(still[-1]),
        "true_action_best_share": round(float(picks), 4),
        "windows": len(idx),
    }


def train(
    rollouts: str | Path,
    encoder_path: str | Path,
    out: str | Path,
    cfg: TrainConfig | None = None,
    model_cfg: dict | None = None,
    progress: bool = True,
) -> tuple[Path, dict]:
    cfg = cfg or TrainConfig()
    out = Path(out)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    t0 = time.perf_counter()
    encoder = load_encoder(encoder_path).inference_copy()
    enc_sha = file_sha256(encoder_path)
    toks, actions, index = load_token_episodes(rollouts, encoder, enc_sha, out / "tokens.npz", progress)
    _, gh, gw, dt = toks[0].shape
    mcfg = TokenWorldModelConfig(**{"token_dim": dt, "grid": (gh, gw), **(model_cfg or {})})
    train_toks, val_toks = _split(toks, cfg.val_fraction)
    n_val = len(val_toks)
    train_ids = range(len(train_toks))
    model = TokenWorldModel(mcfg)
    rng = np.random.default_rng(cfg.seed)
    sample = np.concatenate([toks[i].reshape(-1, dt) for i in train_ids])
    sample = sample[rng.choice(len(sample), size=min(len(sample), 200_000), replace=False)]
    mean, proj, pca = fit_projection(sample.astype(np.float32), mcfg.state_dim)
    model.set_projection(mean, proj)
    eps = [
        EmbeddedEpisode(_states(model, t), a, np.zeros((len(t), 4)))
        for t, a in zip(toks, actions, strict=True)
    ]
    shape = (mcfg.state_dim, gh, gw)
    sampler = WindowSampler(eps[: len(eps) - n_val], mcfg.context, cfg.rollout_steps, cfg.seed)
    val = WindowSampler(eps[len(eps) - n_val :], mcfg.context, cfg.rollout_steps, cfg.seed) if n_val else None
    t_embed = time.perf_counter() - t0
    before = evaluate(model, val or sampler, shape)
    history, t_train = fit(
        [p for p in model.parameters() if p.requires_grad],  # the projection stays fixed
        sampler,
        lambda ctx, act, tgt: window_loss(model, ctx, act, tgt, shape, cfg.rollout_weight),
        cfg,
        "token world model",
        progress,
    )
    model.eval()
    summary = {
        "rollouts": str(rollouts),
        "episodes": {"train": len(eps) - n_val, "val": n_val},
        "train_windows": len(sampler),
        "encoder": str(encoder_path),
        "encoder_sha256": enc_sha,
        "model_config": mcfg.to_dict(),
        "train_config": cfg.to_dict(),
        "projection": pca,
        "eval_before": before,
        "eval_after": evaluate(model, val or sampler, shape),
        "eval_split": "val" if val else "train",
        "history": history,
        "seconds": {"encode": round(t_embed, 2), "train": round(t_train, 2)},
    }
    ckpt = save_token_world_model(
        out / "token_world_model.safetensors",
        model,
        encoder.config,
        enc_sha,
        {
            k: summary[k]
            for k in ("rollouts", "episodes", "eval_after", "eval_split", "train_config", "projection")
        },
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return ckpt, summary


def main(argv: list[str] | None = None) -> int:
    m = TokenWorldModelConfig()
    p = argparse.ArgumentParser(
        prog="python -m edge_models.world_model.train_tokens",
        description="Train the token world model on the frozen encoder's token grids of simulator rollouts.",
    )
    add_train_arguments(p, batch_size=128)
    p.add_argument(
        "--state-dim", type=int, default=m.state_dim, help=f"PCA components per token ({m.state_dim})"
    )
    p.add_argument("--hidden", type=int, default=m.hidden, help=f"conv channels ({m.hidden})")
    p.add_argument("--depth", type=int, default=m.depth, help=f"residual blocks ({m.depth})")
    p.add_argument("--context", type=int, default=m.context, help=f"context states C ({m.context})")
    args = p.parse_args(argv)
    try:
        cfg = train_config_from(args)
        ckpt, s = train(
            args.rollouts,
            args.encoder,
            args.out,
            cfg,
            {
                "state_dim": args.state_dim,
                "hidden": args.hidden,
                "depth": args.depth,
                "context": args.context,
            },
            progress=not args.no_progress,
        )
    except (EdgeModelsError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({k: v for k, v in s.items() if k != "history"}))
    else:
        e = s["eval_after"]
        print(
            f"wrote {ckpt}: {s['eval_split']} one-step mse {e['one_step_mse']:.4f} (nothing moves "
            f"{e['identity_one_step_mse']:.4f}), step {cfg.rollout_steps} {e['last_step_mse']:.4f} (nothing moves "
            f"{e['identity_last_step_mse']:.4f}), true action best in {e['true_action_best_share']:.0%}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
