"""Surprise from the token world model (glasses_runtime.surprise): the prediction error for the action
taken, or the smallest over all actions when the action is unknown; None until the context is full; wired
into salience and the runtime. And in a real MiniWorld apartment, through the shipped default encoder and
token world model: a box moved while the wearer turns is a larger surprise than any normal motion and than
the same turn without the move, where the token grid's frame-to-frame change does not single it out."""

from __future__ import annotations

import math
import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from edge_models.world_model.token_model import TokenWorldModel, TokenWorldModelConfig
from glasses_runtime.planner.errors import WorldModelMismatchError
from glasses_runtime.planner.token_dynamics import ModuleTokenWorldModel
from glasses_runtime.salience import Salience, SalienceConfig, cosine_distance, grid_distance, unit_tokens
from glasses_runtime.sources.base import Frame
from glasses_runtime.surprise import TokenSurprise, one_step_candidates, token_surprise_from
from glasses_runtime.tokens import reduce_tokens

WEIGHTS = Path(__file__).resolve().parents[2] / "edge_models" / "weights"
DEFAULT_PTE = WEIGHTS / "encoder_vit_tiny_int8_xnnpack.pte"
TWM_PTE = WEIGHTS / "token_world_model_twm_c2_d32_h32x3_g4x8_s64_t3_fp32_xnnpack.pte"
shipped = pytest.mark.skipif(
    not (DEFAULT_PTE.is_file() and TWM_PTE.is_file()),
    reason="the shipped default encoder and token world model are made by `make models`",
)
TURN_LEFT, TURN_RIGHT, FORWARD, BACK = range(4)


def _tiny(shift_left_turn: bool = False) -> ModuleTokenWorldModel:
    """An untrained eager token world model (predicts "nothing moves"); with ``shift_left_turn`` its
    turn_left moves every column one to the right (cyclically), so that action explains a rolled grid."""
    torch.manual_seed(0)
    model = TokenWorldModel(TokenWorldModelConfig())
    if shift_left_turn:
        w = model.config.grid[1]
        shift = torch.zeros(w, w)
        shift[(torch.arange(w) - 1) % w, torch.arange(w)] = 1.0  # new column j = old column j - 1
        with torch.no_grad():
            model.transport.weight[:, TURN_LEFT] = shift.reshape(-1)
    return ModuleTokenWorldModel(model)


def _grid(rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal((4, 8, 192)).astype(np.float32)


def test_candidates_cover_every_action_first_and_pad_to_the_fixed_size():
    pte = one_step_candidates(4, 64, 3)
    assert pte.shape == (64, 3, 4) and torch.all(pte.sum(-1) == 1)
    assert pte[:4, 0].argmax(-1).tolist() == [0, 1, 2, 3]
    eager = one_step_candidates(4, None, None)
    assert eager.shape == (4, 1, 4) and torch.equal(eager[:, 0], torch.eye(4))
    with pytest.raises(WorldModelMismatchError, match="export_samples"):
        one_step_candidates(4, 2, 3)


def test_none_until_the_context_is_full_then_the_error_of_the_action_taken():
    rng = np.random.default_rng(0)
    ts = TokenSurprise(_tiny())
    g = _grid(rng)
    assert ts.update(g, FORWARD) is None and ts.update(g, FORWARD) is None  # C = 2 frames of context
    assert ts.errors is None
    assert ts.update(g, FORWARD) == pytest.approx(0.0, abs=1e-5)  # nothing moved, as predicted
    assert ts.update(_grid(rng), FORWARD) > 0.5  # a different view: not predicted
    assert ts.errors.shape == (4,)
    ts.reset()
    assert ts.update(g) is None


def test_encoder_tokens_are_reduced_like_the_stored_grids():
    rng = np.random.default_rng(1)
    full = [rng.standard_normal((8, 8, 192)).astype(np.float32) for _ in range(3)]
    a, b = TokenSurprise(_tiny()), TokenSurprise(_tiny())
    got = [a.update(t, BACK) for t in full]
    want = [b.update(reduce_tokens(t), BACK) for t in full]
    assert got[:2] == [None, None] and got[2] == pytest.approx(want[2], abs=1e-6)
    with pytest.raises(WorldModelMismatchError, match=r"\[h, w, D\]"):
        a.update(full[0][None])


def test_unknown_action_takes_the_action_that_explains_the_frame_best():
    rng = np.random.default_rng(2)
    g = _grid(rng)
    turned = np.roll(g, 1, axis=1)  # what this model's turn_left predicts
    known, unknown = TokenSurprise(_tiny(shift_left_turn=True)), TokenSurprise(_tiny(shift_left_turn=True))
    for ts in (known, unknown):
        ts.update(g)
        ts.update(g)
    assert known.update(turned, FORWARD) > 0.5  # "forward" (nothing moves here) does not explain a turn
    assert unknown.update(turned, None) == pytest.approx(0.0, abs=1e-5)  # some action does: no surprise
    assert unknown.explained_by == TURN_LEFT
    assert unknown.errors.min() == unknown.errors[TURN_LEFT]
    assert known.errors == pytest.approx(unknown.errors)  # one batched call scores every action


def test_actions_are_checked():
    ts = TokenSurprise(_tiny())
    g = np.zeros((4, 8, 192), np.float32)
    assert ts.update(g, np.array([0, 0, 1, 0], np.float32)) is None  # one-hot is fine
    for bad in (4, -1, True, 1.0, np.array([1, 1, 0, 0]), "forward"):
        with pytest.raises(ValueError, match="action must be|one-hot"):
            ts.update(g, bad)


class _Encoder:
    """The parts of the runtime's encoder that the check reads."""

    def __init__(self, token_grid, model_id="e" * 64, source_id=None):
        self.token_grid, self.model_id, self.source_id = token_grid, model_id, source_id


def test_the_encoder_must_give_the_tokens_the_model_was_trained_on():
    ts = TokenSurprise(_tiny())
    ts.check_encoder(_Encoder((8, 8)))  # 8x8 reduces to the model's 4x8; an untrained model names no encoder
    with pytest.raises(WorldModelMismatchError, match="'tokens' output"):
        ts.check_encoder(_Encoder(None))
    with pytest.raises(WorldModelMismatchError, match="reduces to 2x4"):
        ts.check_encoder(_Encoder((4, 4)))
    ts.model.encoder_sha256 = "a" * 64
    with pytest.raises(WorldModelMismatchError, match="trained on the tokens of encoder aaaaaaaaaaaa"):
        ts.check_encoder(_Encoder((8, 8)))
    ts.check_encoder(_Encoder((8, 8), source_id="a" * 64))  # an int8 .pte counts as its checkpoint
    with pytest.raises(WorldModelMismatchError, match="does not exist"):
        token_surprise_from("no/such/model.pte")
    with pytest.raises(WorldModelMismatchError, match="must be a path"):
        token_surprise_from(3)


def test_salience_takes_surprise_from_the_token_world_model_when_the_frame_has_tokens():
    rng = np.random.default_rng(3)
    z = rng.standard_normal(16).astype(np.float32)
    z /= np.linalg.norm(z)
    g = _grid(rng)
    # the pooled floor (min_surprise) set out of reach: the token path has its own (min_token_surprise)
    cfg = SalienceConfig(warmup=3, min_surprise=2.0, view_threshold=None, max_interval_s=None)
    sal = Salience(cfg, token_surprise=TokenSurprise(_tiny()))
    out = [sal.update(z, FORWARD, tokens=g + 0.05 * _grid(rng), t_ns=i) for i in range(6)]
    assert [s.surprise for s in out[:2]] == [None, None]
    assert {s.surprise_source for s in out[2:]} == {"token_world_model"} and not any(s.boundary for s in out)
    cut = sal.update(z, FORWARD, tokens=_grid(rng), t_ns=6)  # same pooled z, another view
    assert cut.boundary and cut.surprise > cfg.min_token_surprise and cut.reason == "boundary"
    high = Salience(
        replace(cfg, min_surprise=0.0, min_token_surprise=2.0), token_surprise=TokenSurprise(_tiny())
    )
    for i in range(6):
        high.update(z, FORWARD, tokens=g + 0.05 * _grid(rng), t_ns=i)
    assert not high.update(z, FORWARD, tokens=_grid(rng), t_ns=6).boundary
    # a frame without tokens falls back to persistence, on statistics of its own
    s = sal.update(z, FORWARD, tokens=None, t_ns=7)
    assert s.surprise_source == "persistence" and s.threshold is None and sal.stats_source == "persistence"
    with pytest.raises(ValueError, match="min_token_surprise"):
        SalienceConfig(min_token_surprise=-0.1)


@shipped
def test_runtime_takes_the_frame_action_and_stores_token_surprise_boundaries(tmp_path, bikes_frames_rgb):
    from glasses_runtime.engines.encoder import load_encoder
    from glasses_runtime.runtime import RunningMode, Runtime, RuntimeOptions

    seen: list[int | None] = []

    class Spy(TokenSurprise):
        def update(self, tokens, action=None):
            seen.append(action)
            return super().update(tokens, action)

    from glasses_runtime.planner.token_dynamics import load_token_world_model_file

    spy = Spy(load_token_world_model_file(TWM_PTE))
    db = tmp_path / "m.db"
    opts = RuntimeOptions(DEFAULT_PTE, running_mode=RunningMode.VIDEO, token_world_model=spy, memory_path=db)
    frames = bikes_frames_rgb[:34]  # the first shot cut is at frame 30
    with Runtime(opts) as rt:
        results = [
            rt.process_for_video(Frame(f.t_ns, f.image, action=i % 4 if i < 3 else None), f.t_ns)
            for i, f in enumerate(frames)
        ]
    assert seen[:4] == [0, 1, 2, None]  # the frame's action reaches the world model
    assert [r.surprise for r in results[:2]] == [None, None] and results[2].surprise is not None
    assert [i for i, r in enumerate(results) if r.boundary] == [30]
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        events = con.execute("SELECT kind, text FROM events").fetchall()
    finally:
        con.close()
    assert len(events) == 1 and events[0][0] == "surprise" and "(token_world_model)" in events[0][1]
    pico = load_encoder(WEIGHTS / "vit_pico.safetensors")  # a 6x6 token grid at 96 px
    with pytest.raises(WorldModelMismatchError, match="reduces to 3x6"):
        Runtime(RuntimeOptions(encoder=pico, token_world_model=TWM_PTE))


# ---- a real apartment ------------------------------------------------------------------------------

# A box 1.3 m ahead; the wearer steps back, looks around and steps forward (actions known), and as they
# turn right (index MOVED) someone slides the box 1 m to the wearer's left: where the model expects it
# there is floor, and it shows at the edge of the view.
ACTIONS = (
    BACK,
    TURN_LEFT,
    TURN_RIGHT,
    TURN_RIGHT,
    TURN_LEFT,
    FORWARD,
    TURN_LEFT,
    TURN_RIGHT,
    TURN_RIGHT,
    TURN_LEFT,
)
MOVED = 7


def _face(env, name: str, dist_m: float) -> None:
    """Stand dist_m from the object, facing it (the first free direction of 16)."""
    ox, _, oz = env.object_position(name)
    for k in range(16):
        a = 2 * math.pi * k / 16
        x, z = ox + dist_m * math.cos(a), oz - dist_m * math.sin(a)
        if env.nav.is_free(x, z):
            env.set_pose(x, z, math.atan2(-(oz - z), ox - x))  # heading (cos yaw, -sin yaw) at the object
            return
    raise AssertionError(f"no free spot {dist_m} m from the {name}")


def _walk(env, encoder, twm, move: bool) -> list[dict]:
    """The scripted walk (the box slid at MOVED when ``move``) -> per frame that has a surprise: known and
    unknown-action surprise, the token grid's and the pooled frame-to-frame change, and whether it is MOVED."""
    from simulator.world import WorldError

    env.reset(seed=0)
    _face(env, "box", 1.3)
    box = next(
        e for e in env.entities if e is not env.agent and np.allclose(e.pos, env.object_position("box"))
    )
    known, unknown = TokenSurprise(twm), TokenSurprise(twm)
    rows, prev = [], None
    img = env.render_frame()
    for i, a in enumerate((None, *ACTIONS)):
        if a is not None:
            if move and i - 1 == MOVED:
                p = env.pose
                left = np.array([-math.sin(p.yaw), 0.0, -math.cos(p.yaw)])
                box.pos = box.pos + 1.0 * left
            img, _, _, _, info = env.step(a)
            if info["collided"]:
                raise WorldError("the scripted walk bumped into something")
        z, tok = encoder.encode_with_tokens(encoder.preprocess(img))
        grid = unit_tokens(reduce_tokens(tok))
        row = {
            "known": known.update(tok, a),
            "unknown": unknown.update(tok, None),
            "moved": move and i - 1 == MOVED,
        }
        if prev is not None:
            row["grid"] = grid_distance(grid, prev[1])
            row["pooled"] = cosine_distance(z, prev[0])
        rows.append(row)
        prev = (z, grid)
    return [r for r in rows if r["known"] is not None]


@shipped
def test_a_box_moved_while_turning_is_the_largest_surprise_of_the_walk():
    from glasses_runtime.engines.encoder import load_encoder
    from glasses_runtime.planner.token_dynamics import load_token_world_model_file
    from simulator.world import ApartmentEnv, WorldConfig

    encoder = load_encoder(DEFAULT_PTE)
    twm = load_token_world_model_file(TWM_PTE)
    env = ApartmentEnv(WorldConfig(rows=2, cols=2, size=128))
    try:
        rows = _walk(env, encoder, twm, move=True)
        same_walk_unmoved = _walk(env, encoder, twm, move=False)
    finally:
        env.close()
    moved = next(r for r in rows if r["moved"])
    normal = [r for r in rows if not r["moved"]]

    def ratio(key: str) -> float:  # the moved frame against the largest normal one
        return moved[key] / max(r[key] for r in normal)

    cf = same_walk_unmoved[rows.index(moved)]
    # measured (moved, largest normal, ratio): known 0.452 / 0.316 / 1.43, unknown the same, grid 0.263 / 0.300
    # / 0.88, pooled 0.197 / 0.261 / 0.75; the same turn without the move 0.352
    seen = {
        k: (round(moved[k], 3), round(max(r[k] for r in normal), 3))
        for k in ("known", "unknown", "grid", "pooled")
    }
    seen["unmoved"] = round(cf["known"], 3)
    # Normal motion with the action known: forward ~0.1, turns ~0.25-0.32 (what the turn reveals is new).
    assert max(r["known"] for r in normal) < 0.35, seen
    # The moved box: clearly above every normal frame, and above the same turn without the move.
    assert ratio("known") > 1.25 and moved["known"] > cf["known"] + 0.05, seen
    # Without the action the smallest error over the actions singles it out as well (nothing explains it).
    assert ratio("unknown") > 1.25, seen
    # The token grid's frame-to-frame change does not: the turns themselves change it as much or more (so in
    # 44 of 48 variants of this scene, docs/runtime.md). The pooled change misses it here (0.75) but not in
    # general (37 of 48 variants: a 0.5 m box is much of the view), so that is not asserted.
    assert ratio("grid") < 1.0, seen
