"""Keyframes that let memory answer "where": a keyframe when the view has moved (token grid against the
last keyframe's), at most ``max_interval_s`` apart while the view keeps changing, none for a still view;
and on a real 200-step MiniWorld walk through the shipped default encoder, a keyframe in every room."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from glasses_runtime.salience import Salience, SalienceConfig

WEIGHTS = Path(__file__).resolve().parents[2] / "edge_models" / "weights"
DEFAULT_PTE = WEIGHTS / "encoder_vit_tiny_int8_xnnpack.pte"
S = 1_000_000_000  # ns per second


def _grid(rng: np.random.Generator, h: int = 4, w: int = 4, d: int = 16) -> np.ndarray:
    return rng.standard_normal((h, w, d)).astype(np.float32)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def test_a_moved_view_is_a_keyframe_even_when_the_pooled_embedding_stays():
    rng = np.random.default_rng(0)
    z = _unit(rng.standard_normal(16).astype(np.float32))
    grid = _grid(rng)
    sal = Salience(SalienceConfig(view_threshold=0.3, max_interval_s=None))
    assert sal.update(z, tokens=grid, t_ns=0).reason == "first"
    assert not sal.update(z, tokens=grid, t_ns=S // 10).keyframe  # same view
    # the wearer turned: what sat on the left is now on the right, same content, same pooled vector
    turned = grid[:, ::-1]
    s = sal.update(z, tokens=turned, t_ns=2 * S // 10)
    assert s.keyframe and s.reason == "view" and s.view_change > 0.3 and s.novelty < 1e-6
    # without tokens the same frames give no keyframe: that is what the old pooled-only policy missed
    old = Salience(SalienceConfig(view_threshold=0.3, max_interval_s=None))
    old.update(z, t_ns=0)
    assert not old.update(z, t_ns=S // 10).keyframe and not old.update(z, t_ns=2 * S // 10).keyframe


def test_a_slowly_changing_view_gets_a_keyframe_every_max_interval():
    rng = np.random.default_rng(1)
    z = _unit(rng.standard_normal(16).astype(np.float32))
    grid = _grid(rng)
    cfg = SalienceConfig(view_threshold=1.5, motion_threshold=0.01, max_interval_s=2.0)
    sal = Salience(cfg)
    kept = []
    for i in range(100):  # 10 s at 10 fps; each frame drifts a little, never far enough for the view rule
        grid = grid + 0.2 * _grid(rng)
        grid *= 4.0 / np.linalg.norm(grid, axis=-1, keepdims=True)  # keep the scale: a steady drift
        s = sal.update(z, tokens=grid, t_ns=i * S // 10)
        if s.keyframe:
            kept.append((i, s.reason))
    assert kept[0] == (0, "first")
    assert [r for _, r in kept[1:]] == ["interval"] * (len(kept) - 1)
    gaps = np.diff([i for i, _ in kept])
    assert len(kept) == 5 and set(gaps) == {20}  # every 2 s exactly, never more often


def test_a_still_view_stores_nothing_after_the_first_keyframe():
    rng = np.random.default_rng(2)
    z = _unit(rng.standard_normal(16).astype(np.float32))
    grid = _grid(rng)
    sal = Salience(SalienceConfig(max_interval_s=1.0))
    flags = [sal.update(z, tokens=grid + 1e-4 * _grid(rng), t_ns=i * S // 10).keyframe for i in range(100)]
    assert flags[0] and not any(flags[1:])


def test_config_is_validated():
    for bad in (
        {"view_threshold": 0.0},
        {"view_threshold": 3.0},
        {"max_interval_s": 0},
        {"motion_threshold": -1},
    ):
        with pytest.raises(ValueError):
            SalienceConfig(**bad)
    SalienceConfig(view_threshold=None, max_interval_s=None)  # both rules can be turned off


@pytest.mark.skipif(not DEFAULT_PTE.is_file(), reason="the shipped default encoder is made by `make models`")
def test_a_200_step_world_walk_leaves_keyframes_in_every_room_it_visited():
    from glasses_runtime.runtime import RunningMode, Runtime, RuntimeOptions
    from simulator.world import ApartmentEnv
    from simulator.world.collect import episode_seeds, run_episode
    from simulator.world.config import WorldConfig

    env = ApartmentEnv(WorldConfig(size=128, rows=3, cols=3))
    try:
        rollout = run_episode(env, "waypoint", episode_seeds(4242, 0), 200)
        rooms = [env.layout.room_at(float(p[0]), float(p[2])) for p in rollout.poses]
    finally:
        env.close()
    with Runtime(RuntimeOptions(DEFAULT_PTE, running_mode=RunningMode.VIDEO)) as rt:
        kept = [
            i
            for i, (img, t) in enumerate(zip(rollout.frames, rollout.t_ns, strict=True))
            if rt.process_for_video(np.ascontiguousarray(img), int(t)).keyframe
        ]
    visited = {r for r in rooms if r is not None}
    assert len(visited) >= 3, visited  # the walk does go places
    assert visited <= {rooms[i] for i in kept}, (visited, [rooms[i] for i in kept])
    assert len(kept) < len(rollout.frames) / 3  # not every frame: the policy still chooses
