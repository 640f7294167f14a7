"""The world model: its loss falls on real simulator data, training is deterministic, checkpoints
carry their config, and the exported .pte is fully delegated to XNNPACK and matches eager."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from edge_models.checkpoint import encoder_config
from edge_models.errors import CheckpointError, ConfigError
from edge_models.world_model import (
    TrainConfig,
    WorldModel,
    WorldModelConfig,
    load_world_model,
    save_world_model,
)
from edge_models.world_model.train import train
from simulator.world import WorldConfig
from simulator.world.collect import collect

ENCODER = "edge_models/weights/vit_pico.safetensors"


@pytest.fixture(scope="module")
def rollouts(tmp_path_factory):
    out = tmp_path_factory.mktemp("rollouts")
    collect(out, WorldConfig(rows=2, cols=2, size=64), episodes=6, steps=60, seed=7, progress=False)
    return out


@pytest.fixture(scope="module")
def trained(rollouts, tmp_path_factory):
    out = tmp_path_factory.mktemp("wm")
    cfg = TrainConfig(steps=150, batch_size=64, warmup=10, val_fraction=0.0, seed=3, log_every=10)
    return train(rollouts, ENCODER, out, cfg, {"hidden": 64}, progress=False)


def test_loss_falls_on_simulator_data(trained):
    s = trained.summary
    before, after = s["eval_before"], s["eval_after"]
    assert before["one_step"] == pytest.approx(
        before["identity_one_step"]
    )  # an untrained model is "nothing moves"
    assert after["one_step"] < 0.8 * before["one_step"]
    assert (
        after["rollout_last_step"] < before["rollout_last_step"]
    )  # also when its own predictions are fed back
    h = [r["loss"] for r in s["history"]]
    assert np.mean(h[-3:]) < np.mean(h[:3])
    assert s["train_config"]["rollout_steps"] >= 2


def test_training_is_deterministic_and_checkpoint_round_trips(trained, rollouts, tmp_path):
    again = tmp_path / "again"
    again.mkdir()
    shutil.copy(
        trained.checkpoint.parent / "embeddings.npz", again / "embeddings.npz"
    )  # same frames, no re-embedding
    cfg = TrainConfig(steps=150, batch_size=64, warmup=10, val_fraction=0.0, seed=3, log_every=10)
    res = train(rollouts, ENCODER, again, cfg, {"hidden": 64}, progress=False)
    a, b = load_file(str(trained.checkpoint)), load_file(str(res.checkpoint))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    model, meta = load_world_model(trained.checkpoint)
    assert model.config.hidden == 64 and model.config.action_dim == 4 and meta["kind"] == "world_model"
    with pytest.raises(CheckpointError, match="not a world model"):
        load_world_model(ENCODER)
    with pytest.raises(ConfigError, match="rollout_steps must be >= 2"):
        TrainConfig(rollout_steps=1)


def test_export_is_fully_delegated_and_pte_matches_eager(tmp_path):
    from export.pipeline import export_model
    from glasses_runtime.engines.pte import PteEngine
    from glasses_runtime.planner import ModuleWorldModel, MPCConfig, MPCPlanner, PteWorldModel
    from glasses_runtime.planner.config import CEMConfig

    torch.manual_seed(0)
    cfg = WorldModelConfig(embed_dim=96, hidden=32, depth=1, context=2, export_samples=8, export_horizon=3)
    model = WorldModel(cfg)
    with torch.no_grad():
        model.out.weight.normal_(0, 0.05)  # the zero init would hide a broken residual branch
    ckpt = save_world_model(tmp_path / "wm.safetensors", model, encoder_config(ENCODER), "0" * 64)
    res = export_model(ckpt, backend="xnnpack", out_dir=tmp_path / "models")
    m = res.manifest_data
    assert m.kind == "world_model" and m.action_dim == 4 and m.embedding_dim == 96
    assert [t.shape for t in m.inputs] == [[8, 2, 96], [8, 3, 4]] and m.outputs[0].shape == [8, 3, 96]
    d = m.delegation
    assert d["fully_delegated"] and d["delegated_subgraphs"] == 1 and d["ops_outside_delegates"] == {}

    engine = PteEngine(res.pte, threads=1)
    ctx = torch.nn.functional.normalize(torch.randn(8, 2, 96), dim=-1)
    actions = torch.nn.functional.one_hot(torch.randint(0, 4, (8, 3)), 4).float()
    with torch.no_grad():
        eager = model.rollout(ctx, actions)
    assert torch.allclose(engine.run(ctx, actions), eager, atol=1e-5)

    pcfg = MPCConfig(cem=CEMConfig(samples=8, elites=2, horizon=3))
    pte_wm = PteWorldModel(engine)
    assert (pte_wm.samples, pte_wm.horizon, pte_wm.context) == (8, 3, 2)
    z, goal = ctx[0, -1].numpy(), ctx[1, -1].numpy()
    g_pte = MPCPlanner(pte_wm, pcfg).step(z, goal)
    g_eager = MPCPlanner(ModuleWorldModel(model), pcfg).step(z, goal)
    assert g_pte.energy == pytest.approx(g_eager.energy, abs=1e-4)
