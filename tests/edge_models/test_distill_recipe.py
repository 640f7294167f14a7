"""The default encoder's recipe at pico scale: a mixture of real video, real frames and MiniWorld renders,
distilled from the real EfficientNet-Lite0 teacher with the dense, relation and variance-covariance terms,
and the effective rank (RankMe) logged."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from edge_models.distill import DistillConfig, distill
from edge_models.distill import mixture as mx
from edge_models.errors import DataError
from edge_models.train.objectives import relation_loss, variance_covariance


@pytest.fixture(scope="module")
def rollouts(tmp_path_factory):
    """Two short real MiniWorld rollouts (64 px), written by the simulator's own collector."""
    from simulator.world.collect import collect
    from simulator.world.config import WorldConfig

    out = tmp_path_factory.mktemp("mw")
    collect(out, WorldConfig(size=64, rows=2, cols=2), episodes=2, steps=12, seed=11, progress=False)
    return out


def test_recipe_runs_a_few_steps_and_logs_the_rank(tmp_path, rollouts, bikes_mp4, bikes_frames):
    spec = f"video:{bikes_mp4}*2+rollouts:{rollouts}+{bikes_frames}"
    cfg = DistillConfig(
        teacher="efficientnet-lite0",
        student="vit_pico",
        data=spec,
        img_size=64,
        teacher_size=128,
        steps=4,
        batch_size=8,
        dense_weight=1.0,
        relation_weight=1.0,
        vicreg_weight=0.5,
        log_every=2,
        out=str(tmp_path / "run"),
        progress=False,
    )
    res = distill(cfg)
    recs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == [1, 2, 3, 4]
    for key in ("dense_loss", "relation_loss", "varcov_loss", "token_loss", "pooled_cos_loss"):
        assert all(np.isfinite(r[key]) for r in recs), key
    ranks = [r["eff_rank"] for r in recs if "eff_rank" in r]
    assert len(ranks) == 2 and all(1.0 <= r <= 8.0 for r in ranks)  # RankMe of a batch of 8
    shares = res.summary["sources"]
    assert shares[f"video:{bikes_mp4}"] == {"images": 250, "share": 0.5}
    assert shares[f"rollouts:{rollouts}"]["images"] == 2 * 7  # every 2nd of 13 frames per episode
    assert res.summary["teacher_size"] == 128
    # the student is a plain encoder at the student resolution; the heads stay behind
    from edge_models.checkpoint import load_encoder

    enc = load_encoder(res.encoder_path)
    assert enc.config.img_size == 64
    assert enc.embed(torch.zeros(1, 3, 64, 64))[1].shape == (1, 96)


def test_mixture_shares_follow_the_weights_not_the_sizes(bikes_mp4, bikes_frames):
    mix = mx.build_mixture(f"video:{bikes_mp4}*3+{bikes_frames}", size=32, seed=0)
    w = mix.sample_weights()
    n_video = 250
    assert float(w[:n_video].sum()) == pytest.approx(0.75) and float(w[n_video:].sum()) == pytest.approx(0.25)
    assert mix[0].shape == (3, 32, 32)


def test_bad_sources_are_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="unknown data source"):
        mx.build_mixture("nowhere:thing", 32, 0)
    with pytest.raises(DataError, match="weight"):
        mx.build_mixture(f"{tmp_path}*zero", 32, 0)
    monkeypatch.setattr(mx, "PHOTO_ROOTS", (tmp_path / "a", tmp_path / "b"))
    with pytest.raises(DataError, match="apt-get install gnome-backgrounds plasma-workspace-wallpapers"):
        mx.build_mixture("photos:train", 32, 0)
    with pytest.raises(DataError, match="split"):
        mx.load_photos("test", 64)


def test_photo_split_is_stable_and_keeps_variants_together():
    names = [f"plasma-{i}" for i in range(60)]
    splits = [mx.photo_split(n) for n in names]
    assert splits == [mx.photo_split(n) for n in names]
    assert 10 <= splits.count("eval") <= 30


def test_relation_loss_and_varcov():
    g = torch.Generator().manual_seed(0)
    t = torch.randn(16, 40, generator=g) + 5.0  # a teacher with a large common mean
    s = torch.randn(16, 8, generator=g)
    # a student whose own cosines equal the teacher's centred ones has no relation loss
    tc = torch.nn.functional.normalize(t - t.mean(0), dim=-1)
    assert float(relation_loss(tc, t)) == pytest.approx(0.0, abs=1e-6)
    assert float(relation_loss(s, t)) > 0.01
    # collapsed: every dim constant -> the variance hinge is ~1; spread and decorrelated (Hadamard columns,
    # zero mean, std > 1) -> 0
    assert float(variance_covariance(torch.ones(16, 8))) == pytest.approx(1.0, abs=0.02)
    h = torch.tensor([[1.0]])
    for _ in range(4):
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    assert float(variance_covariance(1.5 * h[:, 1:9])) == pytest.approx(0.0, abs=1e-5)


def test_a_resumed_run_ends_with_exactly_the_weights_of_an_uninterrupted_one(tmp_path, bikes_frames):
    from safetensors.torch import load_file

    def run(out, steps, resume=False):
        cfg = DistillConfig(
            teacher="efficientnet-lite0",
            student="vit_pico",
            data=str(bikes_frames),
            img_size=64,
            steps=steps,
            batch_size=8,
            dense_weight=1.0,
            relation_weight=1.0,
            ckpt_every=2,
            out=str(out),
            resume=resume,
            progress=False,
        )
        return distill(cfg).encoder_path

    whole = load_file(str(run(tmp_path / "a", 4)))
    run(tmp_path / "b", 2)  # interrupted after 2 steps (its checkpoint), then continued to 4
    resumed = load_file(str(run(tmp_path / "b", 4, resume=True)))
    assert whole.keys() == resumed.keys()
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_whitening_gives_unit_covariance_and_is_baked_into_the_encoder(tmp_path, bikes_frames):
    from edge_models.checkpoint import load_encoder
    from edge_models.distill.whitening import fit_whitening, whiten_checkpoint
    from edge_models.embed import PICO_WEIGHTS
    from edge_models.errors import ConfigError

    rng = np.random.default_rng(0)
    z = rng.standard_normal((4000, 8)) @ np.diag([10.0, 5, 2, 1, 0.5, 0.2, 0.1, 0.05]) + 3.0
    w, mu, rep = fit_whitening(z, shrink=0.0)
    np.testing.assert_allclose(np.cov(((z - mu) @ w).T), np.eye(8), atol=1e-6)
    assert rep["variance_top1"] > 0.7
    with pytest.raises(ConfigError, match="too few"):
        fit_whitening(z[:10], 1e-3)

    dst = tmp_path / "white.safetensors"
    whiten_checkpoint(PICO_WEIGHTS, dst, str(bikes_frames), samples=256, shrink=1e-3)
    base, white = load_encoder(PICO_WEIGHTS), load_encoder(dst)
    assert white.config.embed_head and not base.config.embed_head
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        tb, pb = base.embed(x)
        tw, pw = white.embed(x)
    assert torch.equal(tb, tw)  # tokens untouched
    assert torch.allclose(pw, white.embed_head(pb), atol=1e-6)
    with pytest.raises(ConfigError, match="already has an embedding head"):
        whiten_checkpoint(dst, tmp_path / "twice.safetensors", str(bikes_frames), samples=256)
