"""The JEPA training loop: I-JEPA on image folders, V-JEPA on video folders.

    from edge_models.train import TrainConfig, train
    result = train(TrainConfig(data="tests/assets/bikes_frames", preset="vit_pico", steps=50))

Per step: the context encoder sees the context tokens, the predictor predicts every target block
from them, the target (EMA) encoder sees the whole input; loss against the target tokens; AdamW
step; EMA update. Runs alone or under torchrun (DDP); rank 0 writes checkpoints, metrics.jsonl and
summary.json (which records every rank's weight digest, so a desynchronised run shows).
"""

from __future__ import annotations

import copy
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from edge_models.checkpoint import file_sha256, load_train_state, save_encoder, save_train_state
from edge_models.data import ImageFolder, VideoFolder, detect_modality
from edge_models.masks import MaskPair, MultiBlockMasks, TubeMasks
from edge_models.models import Predictor, VisionTransformer, get_config
from edge_models.models.layers import gather_tokens
from edge_models.train.config import TrainConfig
from edge_models.train.distributed import DistInfo, gather_digests, init_distributed, shutdown, weights_digest
from edge_models.train.objectives import (
    ema_momentum,
    ema_update,
    embedding_stats,
    lr_at,
    regression_loss,
    vicreg_loss,
)

log = logging.getLogger(__name__)


class JEPA(nn.Module):
    """Context encoder + predictor: the trainable part (what DDP wraps)."""

    def __init__(self, encoder: VisionTransformer, predictor: Predictor) -> None:
        super().__init__()
        self.encoder = encoder
        self.predictor = predictor

    def forward(
        self,
        x: torch.Tensor,
        pairs: list[MaskPair],
        grid: tuple[int, int, int],
        target_encoder: VisionTransformer | None,
    ) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
        """-> ([(pred [B, Nt, D], target [B, Nt, D]) per target block], full target tokens [B, N, D])"""
        if target_encoder is None:
            full = self.encoder(x)  # online target (VICReg keeps it from collapsing)
        else:
            with torch.no_grad():
                full = target_encoder(x)
        outs = []
        for pair in pairs:
            ctx = self.encoder(x, pair.context)
            for tgt_idx in pair.targets:
                pred = self.predictor(ctx, pair.context, tgt_idx, grid)
                outs.append((pred, gather_tokens(full, tgt_idx)))
        return outs, full


@dataclass
class TrainResult:
    steps: int
    losses: list[float]
    stats: dict[str, float]
    encoder_path: Path
    digests: list[str]
    skipped_files: int
    summary: dict = field(default_factory=dict)


def _loader(dataset, cfg: TrainConfig, info: DistInfo) -> tuple[DataLoader, DistributedSampler]:
    sampler = DistributedSampler(
        dataset, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=cfg.seed, drop_last=False
    )
    # Full batches only (a 2-sample tail batch makes the batch statistics meaningless), unless
    # one process's share of the data is smaller than a batch.
    loader = DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        sampler=sampler,
        num_workers=cfg.num_workers,
        drop_last=len(sampler) >= cfg.batch_size,
    )
    return loader, sampler


def _batches(loader: DataLoader, sampler: DistributedSampler, dataset, start_step: int):
    """Endless batches, positioned as if ``start_step`` batches had been drawn (for exact resume)."""
    per_epoch = len(loader)
    epoch, skip = divmod(start_step, per_epoch)
    while True:
        sampler.set_epoch(epoch)
        dataset.set_epoch(epoch)
        for i, batch in enumerate(loader):
            if i < skip:
                continue
            yield batch
        skip = 0
        epoch += 1


def latest_checkpoint(out: Path) -> Path | None:
    ckpts = sorted((out / "checkpoints").glob("step_*.safetensors"))
    return ckpts[-1] if ckpts else None


def _prune(out: Path, keep: int = 2) -> None:
    for old in sorted((out / "checkpoints").glob("step_*.safetensors"))[:-keep]:
        old.unlink(missing_ok=True)


def build_dataset(cfg: TrainConfig, img_size: int, num_frames: int):
    modality = detect_modality(cfg.data) if cfg.modality == "auto" else cfg.modality
    if modality == "image":
        return modality, ImageFolder(cfg.data, size=img_size, seed=cfg.seed)
    return modality, VideoFolder(
        cfg.data, size=img_size, num_frames=num_frames, frame_step=cfg.frame_step, seed=cfg.seed
    )


def train(cfg: TrainConfig) -> TrainResult:
    info = init_distributed()
    try:
        return _train(cfg, info)
    finally:
        shutdown(info)


def _train(cfg: TrainConfig, info: DistInfo) -> TrainResult:
    torch.manual_seed(cfg.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    overrides = {}
    if cfg.img_size is not None:
        overrides["img_size"] = cfg.img_size
    if cfg.num_frames is not None:
        overrides["num_frames"] = cfg.num_frames
    enc_cfg = get_config(cfg.preset, **overrides)
    modality, dataset = build_dataset(cfg, enc_cfg.img_size, enc_cfg.num_frames)

    encoder = VisionTransformer(enc_cfg).to(info.device)
    predictor = Predictor(enc_cfg).to(info.device)
    target = copy.deepcopy(encoder).requires_grad_(False) if cfg.ema else None
    model = JEPA(encoder, predictor)
    ddp_model: nn.Module = DistributedDataParallel(model) if info.enabled else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    masks = MultiBlockMasks(seed=cfg.seed) if modality == "image" else TubeMasks(seed=cfg.seed)

    out = cfg.out_dir
    modules = {"encoder": encoder, "predictor": predictor}
    if target is not None:
        modules["target_encoder"] = target
    start_step = 0
    if cfg.resume and (ckpt := latest_checkpoint(out)) is not None:
        start_step = load_train_state(ckpt, modules, optimizer, enc_cfg)
        if info.is_main:
            log.info("resumed from %s at step %d", ckpt, start_step)
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    metrics_file = open(out / "metrics.jsonl", "a") if info.is_main else None  # noqa: SIM115

    loader, sampler = _loader(dataset, cfg, info)
    batches = _batches(loader, sampler, dataset, start_step)
    bar = tqdm(
        total=cfg.steps,
        initial=start_step,
        desc=f"jepa {cfg.preset}",
        disable=not (info.is_main and cfg.progress),
    )
    losses: list[float] = []
    stats: dict[str, float] = {}
    t0 = time.perf_counter()
    step = start_step
    try:
        for step in range(start_step, cfg.steps):
            x = next(batches).to(info.device)
            grid = encoder.grid(x.shape)
            pairs = masks(x.shape[0], grid, step)
            lr = lr_at(step, cfg.steps, cfg.lr, cfg.min_lr, cfg.warmup_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            outs, full = ddp_model(x, pairs, grid, target)
            loss = torch.zeros((), device=info.device)
            parts: dict[str, float] = {}
            for pred, tgt in outs:
                if cfg.regression != "none":
                    loss = loss + regression_loss(pred, tgt, cfg.regression)
                if cfg.vicreg:
                    vl, parts = vicreg_loss(pred.flatten(0, 1), tgt.flatten(0, 1), cfg.vicreg_weights)
                    loss = loss + vl
            loss = loss / len(outs)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            momentum = ema_momentum(step, cfg.steps, cfg.ema_start, cfg.ema_end)
            if target is not None:
                ema_update(target, encoder, momentum)
            losses.append(loss.item())
            record = {"step": step + 1, "loss": losses[-1], "lr": lr, "ema": momentum, **parts}
            if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
                stats = embedding_stats(VisionTransformer.pool(full.detach()))
                record.update(stats)
                bar.set_postfix(
                    loss=f"{losses[-1]:.4f}", std=f"{stats['emb_std']:.3f}", rank=f"{stats['eff_rank']:.1f}"
                )
            if metrics_file is not None:
                metrics_file.write(json.dumps(record) + "\n")
                metrics_file.flush()
            bar.update(1)
            if info.is_main and ((step + 1) % cfg.ckpt_every == 0 or step + 1 == cfg.steps):
                save_train_state(
                    out / "checkpoints" / f"step_{step + 1:06d}.safetensors",
                    modules,
                    optimizer,
                    step + 1,
                    enc_cfg,
                    cfg.to_dict(),
                )
                _prune(out)
    except KeyboardInterrupt:
        if info.is_main and step > start_step:
            save_train_state(
                out / "checkpoints" / f"step_{step:06d}.safetensors",
                modules,
                optimizer,
                step,
                enc_cfg,
                cfg.to_dict(),
            )
            log.warning("interrupted: saved step %d; continue with --resume", step)
        raise
    finally:
        bar.close()
        if metrics_file is not None:
            metrics_file.close()

    final = target if target is not None else encoder
    digests = gather_digests(info, weights_digest(final))
    encoder_path = out / "encoder.safetensors"
    summary: dict = {}
    if info.is_main:
        save_encoder(encoder_path, final, extra={"trained_steps": str(cfg.steps), "data": str(cfg.data)})
        head, tail = losses[: min(5, len(losses))], losses[-min(5, len(losses)) :]
        summary = {
            "preset": cfg.preset,
            "modality": modality,
            "steps": cfg.steps,
            "resumed_from": start_step,
            "world_size": info.world_size,
            "samples": len(dataset),
            "skipped_files": dataset.skipped,
            "loss_first": sum(head) / len(head) if head else None,
            "loss_last": sum(tail) / len(tail) if tail else None,
            **stats,
            "seconds": round(time.perf_counter() - t0, 2),
            "rank_weight_digests": digests,
            "encoder": str(encoder_path),
            "encoder_sha256": file_sha256(encoder_path),
        }
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        if dataset.skipped:
            log.warning("skipped %d unreadable file(s) in %s", dataset.skipped, cfg.data)
    return TrainResult(
        steps=cfg.steps,
        losses=losses,
        stats=stats,
        encoder_path=encoder_path,
        digests=digests,
        skipped_files=dataset.skipped,
        summary=summary,
    )
