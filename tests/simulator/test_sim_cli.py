"""glasses-sim commands: headless world and video runs through the CLI, errors as one line, WASD steering."""

from __future__ import annotations

import json
import math

from typer.testing import CliRunner

from simulator.cli import app
from simulator.inputs import SteerableWorld
from simulator.world import Action, WorldConfig

runner = CliRunner()


def test_world_headless_run_with_scripted_keys_prints_the_summary(tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)  # headless is automatic without a display
    args = ["world", "--max-frames", "8", "--size", "32", "--autopilot", "none", "--json"]
    args += ["--keys", "w@1,w@2,a@3,e@4:spot,q@5,esc@6", "--record", str(tmp_path / "w.mp4")]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["stopped_by"] == "key" and summary["frames_shown"] == 7
    assert summary["enrolled"] == ["spot"] and summary["queries"] == 1 and summary["recorded_frames"] == 7


def test_cli_errors_are_one_line_and_exit_1(tmp_path, bikes_mp4):
    cases = [
        (["video", str(tmp_path / "missing.mp4"), "--headless"], "video file not found"),
        (["video", str(bikes_mp4), "--headless", "--keys", "e@x"], "--keys"),
        (
            ["video", str(bikes_mp4), "--headless", "--record", str(tmp_path / "no" / "x.mp4")],
            "does not exist",
        ),
        (["video", str(bikes_mp4), "--headless", "--model", str(tmp_path / "m.pte")], "model file not found"),
        (["world", "--headless", "--autopilot", "fly"], "--autopilot"),
    ]
    for args, words in cases:
        res = runner.invoke(app, args)
        lines = res.stderr.strip().splitlines()
        assert res.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error: "), res.output
        assert words in lines[0]


def test_world_help_documents_the_planner_options():
    res = runner.invoke(app, ["world", "--help"])
    assert res.exit_code == 0 and "--world-model" in res.output and "planner" in res.output
    assert "--no-planner" in res.output


def test_wasd_steers_the_world_and_idle_frames_keep_the_pose():
    src = SteerableWorld(WorldConfig(rows=1, cols=2, size=32), seed=3)
    try:
        p0 = src.read().pose
        p_idle = src.read().pose
        assert p_idle == p0 and src.steps == 0
        src.steer(Action.TURN_LEFT)
        p1 = src.read().pose
        assert math.isclose(math.remainder(p1[3] - p0[3], 2 * math.pi), math.radians(30), abs_tol=1e-6)
        src.steer(Action.FORWARD)
        f = src.read()
        moved = math.hypot(f.pose[0] - p1[0], f.pose[2] - p1[2])
        assert src.steps == 2 and (moved == 0.0) == (src.collisions == 1)
        assert moved == 0.0 or math.isclose(moved, 0.25, abs_tol=1e-6)
        times = [f.t_ns, src.read().t_ns, src.read().t_ns]
        assert times == sorted(set(times))
    finally:
        src.close()
