"""Training: EMA math, schedules, loss falls on real images without collapse, determinism,
exact resume, VICReg without EMA, video clips, bad data."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from edge_models.checkpoint import load_encoder
from edge_models.errors import ConfigError, DataError
from edge_models.models import vit_pico
from edge_models.train import TrainConfig, train
from edge_models.train.distributed import weights_digest
from edge_models.train.objectives import (
    ema_momentum,
    ema_update,
    embedding_stats,
    lr_at,
    regression_loss,
    vicreg_loss,
)


def _cfg(data, out, **kw) -> TrainConfig:
    base = {
        "preset": "vit_pico",
        "steps": 6,
        "batch_size": 8,
        "img_size": 64,
        "progress": False,
        "log_every": 2,
    }
    base.update(kw)
    return TrainConfig(data=str(data), out=str(out), **base)


def test_ema_update_math():
    torch.manual_seed(0)
    online, target = vit_pico(), vit_pico()
    before = [p.clone() for p in target.parameters()]
    ema_update(target, online, momentum=0.9)
    for t, b, o in zip(target.parameters(), before, online.parameters(), strict=True):
        assert torch.allclose(t, 0.9 * b + 0.1 * o, atol=1e-6)
    ema_update(target, online, momentum=0.0)  # momentum 0 copies
    assert all(torch.equal(t, o) for t, o in zip(target.parameters(), online.parameters(), strict=True))


def test_momentum_and_lr_schedules():
    assert ema_momentum(0, 100, 0.996, 1.0) == pytest.approx(0.996)
    assert ema_momentum(50, 100, 0.996, 1.0) == pytest.approx(0.998)
    assert ema_momentum(100, 100, 0.996, 1.0) == pytest.approx(1.0)
    lrs = [lr_at(s, 100, 1e-3, 1e-5, 10) for s in range(100)]
    assert lrs[9] == pytest.approx(1e-3)
    assert all(a <= b for a, b in zip(lrs[:10], lrs[1:10], strict=False))  # warm-up rises
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))  # cosine falls
    assert lrs[-1] > 1e-5 and lrs[-1] < 1e-4


def test_collapse_shows_in_stats():
    collapsed = torch.ones(16, 32) + 1e-6 * torch.randn(16, 32)
    healthy = torch.randn(16, 32)
    line = torch.randn(16, 1) * torch.randn(1, 32)  # dimensional collapse onto one direction
    c, h, ln = embedding_stats(collapsed), embedding_stats(healthy), embedding_stats(line)
    assert c["emb_std"] < 1e-3 < h["emb_std"]
    assert ln["eff_rank"] < 1.5 < 8 < h["eff_rank"]


def test_losses():
    pred = torch.randn(2, 5, 8)
    assert regression_loss(pred, pred.clone() * 3 + 2, "l1") < regression_loss(
        pred, torch.randn(2, 5, 8), "l1"
    )
    z = torch.randn(64, 16)
    same, parts = vicreg_loss(z, z)
    assert parts["vic_inv"] == 0.0
    const = torch.zeros(64, 16)
    collapsed_loss, parts_c = vicreg_loss(const, const)
    assert parts_c["vic_var"] > 0.9 and collapsed_loss > same


def test_loss_falls_on_real_images_without_collapse(bikes_frames, tmp_path):
    res = train(_cfg(bikes_frames, tmp_path / "run", steps=30, batch_size=16, img_size=96, log_every=5))
    head, tail = sum(res.losses[:5]) / 5, sum(res.losses[-5:]) / 5
    assert tail < 0.9 * head, f"loss did not fall: {head:.4f} -> {tail:.4f}"
    # collapse: every image maps to the same embedding -> std ~ 0 and effective rank ~ 1
    assert res.stats["emb_std"] > 0.01
    assert res.stats["eff_rank"] > 3.0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["loss_last"] < summary["loss_first"]
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 30 and "eff_rank" in json.loads(lines[4])


def test_deterministic_on_cpu(bikes_frames, tmp_path):
    a = train(_cfg(bikes_frames, tmp_path / "a"))
    b = train(_cfg(bikes_frames, tmp_path / "b"))
    assert a.losses == b.losses
    assert a.digests == b.digests
    c = train(_cfg(bikes_frames, tmp_path / "c", seed=1))
    assert c.digests != a.digests


def test_resume_reproduces_uninterrupted_run(bikes_frames, tmp_path):
    full = train(_cfg(bikes_frames, tmp_path / "full", steps=6, ckpt_every=3))
    # a run that stopped after step 3: only the step-3 checkpoint exists
    part = tmp_path / "part" / "checkpoints"
    part.mkdir(parents=True)
    shutil.copy(tmp_path / "full" / "checkpoints" / "step_000003.safetensors", part)
    resumed = train(_cfg(bikes_frames, tmp_path / "part", steps=6, ckpt_every=3, resume=True))
    assert resumed.summary["resumed_from"] == 3
    assert resumed.losses == full.losses[3:]
    assert resumed.digests == full.digests


def test_vicreg_without_ema_trains(bikes_frames, tmp_path):
    res = train(_cfg(bikes_frames, tmp_path / "v", regression="none", vicreg=True, ema=False, steps=4))
    assert all(torch.isfinite(torch.tensor(res.losses)))
    assert res.stats["emb_std"] > 0.01
    enc = load_encoder(res.encoder_path)
    assert weights_digest(enc) == res.digests[0]


def test_video_clips_train(bikes_mp4, tmp_path):
    data = tmp_path / "videos"
    data.mkdir()
    shutil.copy(bikes_mp4, data)
    res = train(_cfg(data, tmp_path / "vid", steps=2, batch_size=2, num_frames=4, frame_step=4))
    assert res.summary["modality"] == "video"
    assert all(torch.isfinite(torch.tensor(res.losses)))


def test_unreadable_files_are_skipped_and_counted(bikes_frames, tmp_path):
    data = tmp_path / "mixed"
    shutil.copytree(bikes_frames, data)
    (data / "broken.jpg").write_bytes(b"not a jpeg at all")
    (data / "truncated.png").write_bytes((bikes_frames / "frame_000.jpg").read_bytes()[:40])
    res = train(_cfg(data, tmp_path / "out", steps=8, batch_size=13))
    assert res.skipped_files == 2
    assert res.summary["skipped_files"] == 2


def test_bad_data_and_config_are_clear(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match="no images"):
        train(_cfg(empty, tmp_path / "o"))
    with pytest.raises(DataError, match="not found"):
        train(_cfg(tmp_path / "missing", tmp_path / "o"))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.jpg").write_bytes(b"garbage")
    with pytest.raises(DataError, match="could be decoded"):
        train(_cfg(broken, tmp_path / "o"))
    with pytest.raises(ConfigError, match="unknown preset"):
        _cfg(empty, tmp_path / "o", preset="vit_giant")
    with pytest.raises(ConfigError, match="collapses"):
        _cfg(empty, tmp_path / "o", ema=False)


def test_resume_with_other_preset_is_clear(bikes_frames, tmp_path):
    train(_cfg(bikes_frames, tmp_path / "r", steps=2, ckpt_every=2))
    from edge_models.errors import CheckpointError

    with pytest.raises(CheckpointError, match="vit_pico"):
        train(_cfg(bikes_frames, tmp_path / "r", preset="vit_tiny", steps=4, resume=True, batch_size=2))
