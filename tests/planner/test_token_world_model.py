"""The token world model and latent-only navigation.

Its loss falls on recorded simulator rollouts and it learns to tell the actions apart; the exported
.pte is fully delegated to XNNPACK and matches eager; the navigator on an analytic token world model
takes the optimal actions and arrives, and "nothing moves" dynamics do not; the shipped models find an
object's keyframe from its enrollment views without ground truth and recognise a revisited place.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from edge_models.errors import CheckpointError
from edge_models.world_model.config import TrainConfig
from edge_models.world_model.token_model import load_token_world_model
from edge_models.world_model.train_tokens import train
from glasses_runtime.planner import PlannerConfigError
from glasses_runtime.planner.memory_view import KeyframeSet
from glasses_runtime.planner.navigator import (
    LatentNavigator,
    NavigatorConfig,
    TokenKeyframes,
    goal_from_views,
)
from glasses_runtime.planner.token_dynamics import (
    StillTokenWorldModel,
    TokenWorldModelFn,
    _Projection,
    load_token_world_model_file,
)
from glasses_runtime.tokens import reduce_tokens
from simulator.world import WorldConfig
from simulator.world.collect import collect

ENCODER = "edge_models/weights/vit_pico.safetensors"
WEIGHTS = "edge_models/weights"
TWM_PTE = f"{WEIGHTS}/token_world_model_twm_c2_d32_h32x3_g4x8_s64_t3_fp32_xnnpack.pte"
ENCODER_PTE = f"{WEIGHTS}/encoder_vit_tiny_int8_xnnpack.pte"


CFG = TrainConfig(steps=200, batch_size=64, lr=3e-3, warmup=10, val_fraction=0.0, seed=3, log_every=20)
MODEL = {"hidden": 16, "depth": 2, "state_dim": 16}


@pytest.fixture(scope="module")
def rollouts(tmp_path_factory):
    out = tmp_path_factory.mktemp("rollouts")
    collect(
        out,
        WorldConfig(rows=2, cols=2, size=96),
        episodes=6,
        steps=60,
        seed=11,
        policy="balanced",
        progress=False,
    )
    return out


@pytest.fixture(scope="module")
def trained(rollouts, tmp_path_factory):
    return train(rollouts, ENCODER, tmp_path_factory.mktemp("twm"), CFG, MODEL, progress=False)


def test_loss_falls_and_the_model_tells_actions_apart(trained):
    ckpt, s = trained
    before, after = s["eval_before"], s["eval_after"]
    assert before["one_step_mse"] == pytest.approx(
        before["identity_one_step_mse"]
    )  # untrained: nothing moves
    assert after["one_step_mse"] < 0.9 * before["one_step_mse"]
    assert after["true_action_best_share"] > 0.5  # chance is well below: 4 actions, ties count as wrong
    h = [r["loss"] for r in s["history"]]
    assert np.mean(h[-3:]) < np.mean(h[:3])
    model, meta = load_token_world_model(ckpt)
    assert model.config.grid == (3, 6) and model.config.token_dim == 96  # vit_pico at 96 px: 6x6 tokens
    assert meta["kind"] == "token_world_model"
    assert not any(p.requires_grad for p in model.proj.parameters())
    with pytest.raises(CheckpointError, match="not a token world model"):
        load_token_world_model(ENCODER)


def test_training_is_deterministic(trained, rollouts, tmp_path):
    import shutil

    from safetensors.torch import load_file

    ckpt, _ = trained
    shutil.copy(ckpt.parent / "tokens.npz", tmp_path / "tokens.npz")  # same frames, no re-encoding
    again, _ = train(rollouts, ENCODER, tmp_path, CFG, MODEL, progress=False)
    a, b = load_file(str(ckpt)), load_file(str(again))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_reduce_tokens_matches_the_training_pooling():
    from edge_models.checkpoint import load_encoder
    from edge_models.world_model.train_tokens import reduced_tokens

    enc = load_encoder(ENCODER).inference_copy()
    frames = np.random.default_rng(0).integers(0, 255, (2, 96, 96, 3), dtype=np.uint8)
    train_side = reduced_tokens(enc, frames).astype(np.float32)
    from edge_models.preprocess import normalize, resize_center_crop

    with torch.inference_mode():
        tok = enc.embed(normalize(np.stack([resize_center_crop(f, 96) for f in frames])))[0].numpy()
    _, gh, gw = enc.grid((1, 3, 96, 96))
    run_side = reduce_tokens(tok.reshape(2, gh, gw, tok.shape[-1]))
    assert train_side.shape == run_side.shape
    assert np.allclose(train_side, run_side, atol=2e-2)  # float16 cache on the training side
    with pytest.raises(ValueError, match="token grid"):
        reduce_tokens(np.zeros(5))


def test_export_is_fully_delegated_and_matches_eager(trained, tmp_path):
    from export.pipeline import export_model

    ckpt, _ = trained
    result = export_model(ckpt, backend="xnnpack", out_dir=tmp_path / "models")
    m = result.manifest_data
    assert m.kind == "token_world_model" and [t.name for t in m.outputs] == ["distance", "predicted"]
    assert m.delegation["fully_delegated"] and m.delegation["ops_outside_delegates"] == {}
    eager = load_token_world_model_file(ckpt)
    pte = load_token_world_model_file(result.pte)
    rng = np.random.default_rng(0)
    gh, gw = eager.grid
    ctx = rng.standard_normal((2, gh, gw, 96)).astype(np.float32)
    goal = rng.standard_normal((gh, gw, 96)).astype(np.float32)
    acts = torch.nn.functional.one_hot(torch.randint(0, 4, (pte.samples, pte.horizon)), 4).float()
    d_e, p_e = eager.rollout(ctx, acts, goal)
    d_p, p_p = pte.rollout(ctx, acts, goal)
    assert torch.allclose(d_e, d_p, atol=1e-4) and torch.allclose(p_e, p_p, atol=1e-4)
    assert np.allclose(eager.state(goal), pte.state(goal), atol=1e-5)  # the projection read beside the .pte
    # the one-step program salience's surprise uses: the 4 actions, one step, the same numbers
    small = export_model(ckpt, backend="xnnpack", out_dir=tmp_path / "small", candidates=(4, 1))
    assert small.manifest_data.delegation["fully_delegated"]
    one = load_token_world_model_file(small.pte)
    assert (one.samples, one.horizon) == (4, 1)
    acts1 = torch.eye(4)[:, None, :]
    assert torch.allclose(one.distances(ctx, acts1, goal), eager.distances(ctx, acts1, goal), atol=1e-4)


class CorridorModel(TokenWorldModelFn):
    """Analytic token world: positions 0..N-1 along a corridor, each with its own grid of orthogonal
    tokens. forward = +1, back = -1 (clamped), turns change nothing. Its predictions are exact."""

    samples = None
    horizon = None

    def __init__(self, n: int = 10, dt: int = 16) -> None:
        self.grid, self.token_dim, self.action_dim, self.context = (1, 2), dt, 4, 2
        self.encoder_sha256 = None
        basis = np.linalg.qr(np.random.default_rng(0).standard_normal((dt, dt)))[0][:n]
        self.views = np.stack([np.stack([np.stack([b, -b])]) for b in basis]).astype(
            np.float32
        )  # [n, 1, 2, dt]
        self.project = _Projection(np.eye(dt, dtype=np.float32), np.zeros(dt, dtype=np.float32))

    def where(self, tokens: np.ndarray) -> int:
        return int(np.argmax(self.views.reshape(len(self.views), -1) @ tokens.reshape(-1)))

    def _run(self, context, actions, goal):
        p = self.where(context[0, -1].numpy())
        step = actions.argmax(-1).numpy()
        move = np.where(step == 2, 1, np.where(step == 3, -1, 0))
        pos = np.clip(p + np.cumsum(move, axis=1), 0, len(self.views) - 1)  # [S, H]
        pred = self.state(self.views[pos])  # [S, H, h*w, d]
        g = self.state(goal.numpy()[0])
        dist = self.state_distance(pred, g[None, None])
        return torch.from_numpy(dist.astype(np.float32)), torch.from_numpy(pred.astype(np.float32))


def _corridor_map(model: CorridorModel) -> TokenKeyframes:
    n = len(model.views)
    kf = KeyframeSet(
        np.arange(100, 100 + n),
        np.arange(n) * 10**9,
        np.zeros(n, dtype=np.int64),
        np.eye(n, 8, dtype=np.float32),
        np.full((n, 4), np.nan),
    )
    return TokenKeyframes(kf, model.views)


def _walk(nav: LatentNavigator, model: CorridorModel, start: int, steps: int) -> tuple[int, list[str], bool]:
    pos, names = start, []
    for _ in range(steps):
        g = nav.step(model.views[pos])
        if g.reached:
            return pos, names, True
        names.append(g.action_name)
        pos = int(np.clip(pos + {"forward": 1, "back": -1}.get(g.action_name, 0), 0, len(model.views) - 1))
    return pos, names, False


def test_navigator_takes_the_optimal_actions_on_an_analytic_world():
    model = CorridorModel()
    nav = LatentNavigator(model, _corridor_map(model), NavigatorConfig(arrive_distance=0.05))
    nav.set_goal(103)  # position 3, from position 9: six steps back
    pos, names, reached = _walk(nav, model, start=9, steps=20)
    assert reached and pos == 3 and names == ["back"] * 6
    # the same planner with "nothing moves" dynamics cannot tell the actions apart and never gets there
    still = LatentNavigator(
        StillTokenWorldModel(model), _corridor_map(model), NavigatorConfig(arrive_distance=0.05)
    )
    still.set_goal(103)
    assert not _walk(still, model, start=9, steps=20)[2]


def test_navigator_rejects_bad_config_and_goals():
    model = CorridorModel()
    with pytest.raises(PlannerConfigError, match="energy"):
        NavigatorConfig(energy="teleport")
    nav = LatentNavigator(model, _corridor_map(model))
    with pytest.raises(Exception, match="not among the navigator's keyframes"):
        nav.set_goal(7)
    with pytest.raises(Exception, match="no goal set"):
        nav.step(model.views[0])


@pytest.fixture(scope="module")
def walk():
    """A real MiniWorld walk encoded by the shipped encoder .pte; the shipped token world model."""
    from glasses_runtime.engines.encoder import load_encoder
    from simulator.find_object import Episode, FindConfig, RuntimeEmbedder, draw_episode, enrollment_views
    from simulator.world import ApartmentEnv

    emb = RuntimeEmbedder(load_encoder(ENCODER_PTE, threads=1))
    cfg = FindConfig(explore_steps=120)
    env = ApartmentEnv(cfg.world())
    ep = draw_episode(
        env, seed=0, attempt=1, cfg=cfg
    )  # the benchmark's protocol: a walk that passed the cone
    assert isinstance(ep, Episode), ep
    z, tok = emb.many_tokens(ep.frames)
    n = len(z)
    kf = KeyframeSet(np.arange(n), np.array(ep.t_ns), np.zeros(n, dtype=np.int64), z, np.array(ep.poses))
    twm = load_token_world_model_file(TWM_PTE, threads=1)
    yield {
        "env": env,
        "emb": emb,
        "ep": ep,
        "map": TokenKeyframes(kf, tok),
        "twm": twm,
        "views": enrollment_views,
    }
    env.close()


def test_goal_from_enrollment_views_finds_the_object_without_ground_truth(walk):
    env, ep = walk["env"], walk["ep"]
    name = ep.object
    views = walk["views"](env, name)
    _, view_tokens = walk["emb"].many_tokens(np.stack(views))
    kid, dist = goal_from_views(walk["map"], view_tokens, walk["twm"])
    pose = ep.poses[kid]
    assert env.near_and_facing(name, pose), f"keyframe {kid} at {pose} does not see the {name}"
    assert 0 <= dist < 0.5


def test_place_recognition_localises_a_revisited_view(walk):
    env, twm = walk["env"], walk["twm"]
    nav = LatentNavigator(twm, walk["map"])
    poses = np.array(walk["ep"].poses)
    hits = 0
    for k in (20, 50, 80, 110):
        x, _, z, yaw = poses[k]
        env.set_pose(x + 0.05, z, yaw + math.radians(4))  # back at that place, not exactly the same view
        _, tok = walk["emb"].embed_tokens(env.render_frame())
        nav._belief, nav.node = None, None
        node = nav.localize(twm.state(tok))
        hits += np.hypot(*(poses[node, [0, 2]] - poses[k, [0, 2]])) < 0.5 and abs(
            (poses[node, 3] - yaw + math.pi) % (2 * math.pi) - math.pi
        ) < math.radians(35)
    assert hits >= 3  # from one frame; bare walls look alike from many places
