"""Distil a frozen teacher into a small JEPA student (SALT-style: a frozen teacher suffices).

Per step, for a batch x (the teacher sees it at ``teacher_size``, the student at ``img_size``):
  * the teacher's feature map is resampled onto the student's token grid -> target tokens;
  * JEPA: the student sees the I-JEPA context tokens, its predictor predicts the masked target
    positions, a linear head maps them to the teacher's width: L1 to the layer-normed teacher
    tokens at those positions;
  * pooled: the student's pooled embedding of the whole image, through a second linear head, matches
    the teacher's pooled feature: 1 - cosine;
  * dense (``dense_weight``): every token of the whole image, through a third head, regresses the
    teacher's token at its position (L1, layer-normed), so the tokens themselves carry layout;
  * relation (``relation_weight``): the batch's cosine-similarity matrix of the student's own pooled
    embeddings matches the teacher's, centred over the batch (MSE): the geometry that memory
    retrieval uses, with no head in between;
  * variance-covariance (``vicreg_weight``): VICReg's anti-collapse terms on the pooled embeddings.

The effective rank (RankMe: exp of the entropy of the normalised singular values) of the batch's
pooled embeddings is logged every ``log_every`` steps as ``eff_rank``.

    cfg = DistillConfig(teacher="efficientnet-lite0", student="vit_tiny", data="fashion-mnist", img_size=96)
    result = distill(cfg)        # -> OUT/encoder.safetensors (the student), checkpoints, metrics
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, RandomSampler, WeightedRandomSampler
from tqdm import tqdm

from edge_models.checkpoint import file_sha256, load_train_state, save_encoder, save_train_state
from edge_models.data import ImageFolder
from edge_models.datasets import ArrayImages, fashion_mnist
from edge_models.distill.mixture import Mixture, build_mixture
from edge_models.distill.teachers import load_teacher
from edge_models.errors import ConfigError
from edge_models.masks import MultiBlockMasks
from edge_models.models import Predictor, VisionTransformer, get_config
from edge_models.models.layers import gather_tokens
from edge_models.train.loop import latest_checkpoint
from edge_models.train.objectives import (
    embedding_stats,
    lr_at,
    regression_loss,
    relation_loss,
    variance_covariance,
)

NAMED_DATA = ("fashion-mnist",)


@dataclass
class DistillConfig:
    teacher: str
    data: str  # a folder of images, "fashion-mnist", or a mixture spec (edge_models.distill.mixture)
    student: str = "vit_tiny"
    out: str = "runs/distill"
    img_size: int = 96
    steps: int = 500
    batch_size: int = 64
    lr: float = 1e-3
    min_lr: float = 1e-5
    warmup_steps: int = 20
    weight_decay: float = 0.04
    pooled_weight: float = 1.0
    dense_weight: float = 0.0
    relation_weight: float = 0.0
    vicreg_weight: float = 0.0
    teacher_size: int | None = None  # the teacher's input resolution (default: img_size)
    seed: int = 0
    ckpt_every: int = 100
    log_every: int = 10
    resume: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        get_config(self.student)  # unknown preset -> ConfigError naming the choices
        for name in ("steps", "batch_size", "img_size", "ckpt_every", "log_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.img_size % 16:
            raise ConfigError(f"img_size {self.img_size} must be a multiple of 16 (the patch size)")
        if self.teacher_size is not None and self.teacher_size < self.img_size:
            raise ConfigError(f"teacher_size {self.teacher_size} must be >= img_size {self.img_size}")
        for name in ("pooled_weight", "dense_weight", "relation_weight", "vicreg_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")


@dataclass
class DistillResult:
    encoder_path: Path
    losses: list[float]
    summary: dict


def build_data(cfg: DistillConfig):
    """Items at the teacher's resolution; the student's input is resized from them."""
    size = cfg.teacher_size or cfg.img_size
    if cfg.data == "fashion-mnist":
        images, _ = fashion_mnist("train")
        return ArrayImages(images, size, train=True, seed=cfg.seed)
    if Path(cfg.data).is_dir():
        return ImageFolder(cfg.data, size=size, seed=cfg.seed)
    if "+" in cfg.data or ":" in cfg.data:
        return build_mixture(cfg.data, size, cfg.seed)
    raise ConfigError(
        f"--data must be a folder of images, one of {NAMED_DATA} or a mixture spec, got '{cfg.data}'"
    )


def teacher_tokens(fmap: torch.Tensor, grid_hw: tuple[int, int]) -> torch.Tensor:
    """Teacher map [B, C, h, w] resampled onto the student grid -> tokens [B, gh*gw, C]."""
    if fmap.shape[-2:] != grid_hw:
        fmap = F.interpolate(fmap, size=grid_hw, mode="bilinear", align_corners=False)
    return fmap.flatten(2).transpose(1, 2)


def distill(cfg: DistillConfig) -> DistillResult:
    torch.manual_seed(cfg.seed)
    teacher = load_teacher(cfg.teacher)
    enc_cfg = get_config(cfg.student, img_size=cfg.img_size)
    dataset = build_data(cfg)
    student = VisionTransformer(enc_cfg)
    predictor = Predictor(enc_cfg)
    token_head = nn.Linear(enc_cfg.width, teacher.dim)
    pooled_head = nn.Linear(enc_cfg.width, teacher.dim)
    modules = {
        "encoder": student,
        "predictor": predictor,
        "token_head": token_head,
        "pooled_head": pooled_head,
    }
    if cfg.dense_weight > 0:  # only then, so older checkpoints keep resuming
        modules["dense_head"] = nn.Linear(enc_cfg.width, teacher.dim)
    params = [p for m in modules.values() for p in m.parameters()]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    masks = MultiBlockMasks(seed=cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    start = 0
    if cfg.resume and (ckpt := latest_checkpoint(out)) is not None:
        start = load_train_state(ckpt, modules, optimizer, enc_cfg)
    (out / "distill_config.json").write_text(json.dumps(asdict(cfg), indent=2))

    gen = torch.Generator().manual_seed(cfg.seed)
    if isinstance(dataset, Mixture):
        sampler = WeightedRandomSampler(dataset.sample_weights(), len(dataset), generator=gen)
    else:
        sampler = RandomSampler(dataset, generator=gen)
    loader = DataLoader(dataset, batch_size=cfg.batch_size, sampler=sampler, drop_last=True)
    if len(loader) == 0:
        raise ConfigError(
            f"{len(dataset)} images are fewer than one batch of {cfg.batch_size}; lower --batch-size"
        )

    def batches(skip: int):
        """The batch stream is a function of the seed alone: a resumed run draws (and skips, without
        loading them) the ``start`` batches it already trained on, so it continues exactly where the
        interrupted run would have."""
        epoch = 0
        while True:
            dataset.set_epoch(epoch)
            if skip >= len(loader):
                for _ in loader.batch_sampler:  # advance the sampler's generator as that epoch did
                    pass
                skip -= len(loader)
            elif skip:
                indices = iter(loader.batch_sampler)
                for _ in range(skip):
                    next(indices)
                skip = 0
                for idx in indices:
                    yield loader.collate_fn([dataset[i] for i in idx])
            else:
                yield from loader
            epoch += 1

    it = batches(start)
    losses: list[float] = []
    stats: dict = {}
    bar = tqdm(
        total=cfg.steps,
        initial=start,
        desc=f"distill {cfg.student}<-{teacher.name}",
        disable=not cfg.progress,
    )
    t0 = time.perf_counter()
    with open(out / "metrics.jsonl", "a") as log:
        for step in range(start, cfg.steps):
            xt = next(it)
            fmap, tpool = teacher(xt)
            x = xt
            if xt.shape[-1] != cfg.img_size:
                x = F.interpolate(xt, size=(cfg.img_size,) * 2, mode="bilinear", antialias=True)
            grid = student.grid(x.shape)
            ttok = teacher_tokens(fmap, grid[1:])
            pair = masks(x.shape[0], grid, step)[0]
            ctx = student(x, pair.context)
            tok_loss = torch.zeros(())
            for tgt in pair.targets:
                pred = token_head(predictor(ctx, pair.context, tgt, grid))
                tok_loss = tok_loss + regression_loss(pred, gather_tokens(ttok, tgt), "l1")
            tok_loss = tok_loss / len(pair.targets)
            full = student(x)
            pooled = VisionTransformer.pool(full)
            pool_loss = 1.0 - F.cosine_similarity(pooled_head(pooled), tpool, dim=-1).mean()
            loss = tok_loss + cfg.pooled_weight * pool_loss
            extra = {}
            if cfg.dense_weight > 0:
                dense = regression_loss(modules["dense_head"](full), ttok, "l1")
                loss = loss + cfg.dense_weight * dense
                extra["dense_loss"] = dense.item()
            if cfg.relation_weight > 0:
                rel = relation_loss(pooled, tpool)
                loss = loss + cfg.relation_weight * rel
                extra["relation_loss"] = rel.item()
            if cfg.vicreg_weight > 0:
                vc = variance_covariance(pooled)
                loss = loss + cfg.vicreg_weight * vc
                extra["varcov_loss"] = vc.item()
            lr = lr_at(step, cfg.steps, cfg.lr, cfg.min_lr, cfg.warmup_steps)
            for g in optimizer.param_groups:
                g["lr"] = lr
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            losses.append(loss.item())
            rec = {
                "step": step + 1,
                "loss": losses[-1],
                "token_loss": tok_loss.item(),
                "pooled_cos_loss": pool_loss.item(),
                **extra,
                "lr": lr,
            }
            if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
                stats = embedding_stats(pooled.detach())
                rec.update(stats)
                bar.set_postfix(loss=f"{losses[-1]:.3f}", pool=f"{pool_loss.item():.3f}")
            log.write(json.dumps(rec) + "\n")
            log.flush()
            bar.update(1)
            if (step + 1) % cfg.ckpt_every == 0 or step + 1 == cfg.steps:
                save_train_state(
                    out / "checkpoints" / f"step_{step + 1:06d}.safetensors",
                    modules,
                    optimizer,
                    step + 1,
                    enc_cfg,
                    asdict(cfg),
                )
    bar.close()
    enc_path = save_encoder(
        out / "encoder.safetensors", student, extra={"distilled_from": teacher.name, "data": cfg.data}
    )
    head, tail = losses[: min(10, len(losses))], losses[-min(10, len(losses)) :]
    summary = {
        "teacher": teacher.name,
        "student": cfg.student,
        "img_size": cfg.img_size,
        "teacher_size": cfg.teacher_size or cfg.img_size,
        "steps": cfg.steps,
        "resumed_from": start,
        "data": cfg.data,
        "samples": len(dataset),
        "sources": dataset.describe() if isinstance(dataset, Mixture) else None,
        "loss_first": sum(head) / len(head) if head else None,
        "loss_last": sum(tail) / len(tail) if tail else None,
        **stats,
        "seconds": round(time.perf_counter() - t0, 1),
        "encoder": str(enc_path),
        "encoder_sha256": file_sha256(enc_path),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return DistillResult(encoder_path=enc_path, losses=losses, summary=summary)
