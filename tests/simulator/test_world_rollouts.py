"""Rollout collection: the on-disk format round-trips, replays bit for bit, and the CLI fails clearly."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from simulator.world import ApartmentEnv, RolloutError, RolloutSet, WorldConfig
from simulator.world.collect import app, collect, episode_seeds

CFG = WorldConfig(size=16, max_steps=12)


def test_collected_rollouts_round_trip_and_replay_exactly(tmp_path):
    summary = collect(tmp_path / "r", CFG, episodes=2, steps=12, seed=3, policy="random", progress=False)
    assert summary["frames"] == 26
    rs = RolloutSet(tmp_path / "r")
    assert len(rs) == 2 and rs.complete and rs.config == CFG
    ep = rs[1]
    assert ep.frames.shape == (13, 16, 16, 3) and ep.frames.dtype == np.uint8
    assert ep.actions.shape == (12,) and ep.poses.shape == (13, 4)
    assert np.all(np.diff(ep.t_ns) == CFG.dt_ns)
    assert len(list(rs.transitions())) == 24
    frame, action, next_frame, pose, next_pose = next(rs[0].transitions())
    np.testing.assert_array_equal(frame, rs[0].frames[0])
    np.testing.assert_array_equal(next_frame, rs[0].frames[1])
    # replaying the stored actions in the stored world reproduces every stored frame and pose
    env = ApartmentEnv(CFG)
    try:
        frame, info = env.reset(seed=episode_seeds(3, 1)[0])
        assert ep.seed == episode_seeds(3, 1)[0]
        np.testing.assert_array_equal(frame, ep.frames[0])
        for t, a in enumerate(ep.actions):
            frame, _, _, _, info = env.step(int(a))
            np.testing.assert_array_equal(frame, ep.frames[t + 1])
            np.testing.assert_array_equal(np.asarray(info["pose"]), ep.poses[t + 1])
            assert info["collided"] == ep.collided[t]
        assert {k: tuple(v) for k, v in ep.objects.items()} == env.object_positions()
    finally:
        env.close()


def test_continuous_rollouts_store_speed_and_turn_rate(tmp_path):
    cfg = WorldConfig(size=16, max_steps=5, action_mode="continuous")
    collect(tmp_path, cfg, episodes=1, steps=5, progress=False)
    ep = RolloutSet(tmp_path)[0]
    assert ep.actions.shape == (5, 2) and ep.actions.dtype == np.float32
    assert np.all(np.abs(ep.actions[:, 0]) <= cfg.max_speed_mps)


def test_bad_rollout_folders_give_clear_errors(tmp_path):
    with pytest.raises(RolloutError, match="no index.json"):
        RolloutSet(tmp_path / "missing")
    collect(tmp_path / "r", CFG, episodes=1, steps=3, progress=False)
    with pytest.raises(RolloutError, match="--overwrite"):
        collect(tmp_path / "r", CFG, episodes=1, steps=3, progress=False)
    index = json.loads((tmp_path / "r" / "index.json").read_text())
    (tmp_path / "r" / "index.json").write_text(json.dumps({**index, "version": 99}))
    with pytest.raises(RolloutError, match="v99"):
        RolloutSet(tmp_path / "r")
    (tmp_path / "r" / "index.json").write_text(json.dumps(index))
    (tmp_path / "r" / "episode_00000.npz").unlink()
    with pytest.raises(RolloutError, match="missing"):
        RolloutSet(tmp_path / "r")


def test_cli_collects_and_prints_json(tmp_path):
    out = tmp_path / "cli"
    args = ["--out", str(out), "--episodes", "1", "--steps", "4", "--size", "16", "--seed", "1", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["frames"] == 5 and summary["size"] == 16
    assert len(RolloutSet(out)) == 1


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--episodes", "0"], "must be at least 1"),
        (["--size", "7"], "size=7 is out of range"),
        (["--policy", "teleport"], "unknown --policy 'teleport'"),
        (["--mode", "continuous", "--policy", "waypoint"], "needs --mode discrete"),
        (["--objects", "key,unicorn"], "unknown objects ['unicorn']"),
        (["--seed", "-1"], "--seed must be non-negative"),
    ],
)
def test_cli_rejects_bad_arguments_in_one_line(tmp_path, args, needle):
    result = CliRunner().invoke(app, ["--out", str(tmp_path / "x"), "--steps", "2", *args])
    assert result.exit_code == 2
    assert needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x" / "index.json").exists()
