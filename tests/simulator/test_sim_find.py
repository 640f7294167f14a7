"""glasses-sim find / demo and the planner behind the HUD, with the shipped models (int8 encoder .pte,
world model .pte): the episode is solved closed-loop, recorded and reported; bad input is one line."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from simulator.cli import DEFAULT_MODEL, DEFAULT_WORLD_MODEL, SHIPPED_PTE, SHIPPED_WORLD_MODEL_PTE, app

runner = CliRunner()


def frame_count(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def test_shipped_models_exist_with_manifests_and_match_each_other():
    from glasses_runtime.manifest import load_manifest

    enc = load_manifest(SHIPPED_PTE)
    wm = load_manifest(SHIPPED_WORLD_MODEL_PTE)
    assert enc.kind == "encoder" and enc.quantization["mode"] == "int8"
    assert enc.delegation["fully_delegated"] and wm.delegation["fully_delegated"]
    assert wm.kind == "world_model" and wm.embedding_dim == enc.embedding_dim
    # the int8 encoder and the world model both come from the shipped encoder checkpoint
    from edge_models.hashing import file_sha256

    sha = file_sha256(DEFAULT_MODEL)
    assert enc.source_checkpoint_sha256 == sha == wm.normalization["encoder_sha256"]
    assert DEFAULT_WORLD_MODEL.is_file()


def test_find_solves_the_seed_0_episode_and_records_it(tmp_path):
    args = ["find", "--seed", "0", "--record", str(tmp_path / "find.mp4"), "--report", str(tmp_path / "rep")]
    args += ["--memory", str(tmp_path / "walk.db"), "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    s = json.loads(res.stdout.strip().splitlines()[-1])
    assert s["policy"] == "hierarchical_pose" and s["success"] and s["stopped"]
    assert s["steps"] <= s["max_steps"] and s["oracle_steps"] >= 6
    assert s["keyframes_remembered"] == s["explore_steps"] + 1
    # one HUD frame per planner step, including the one that said "reached"
    assert s["recorded_frames"] == s["steps"] + 1 == frame_count(tmp_path / "find.mp4")
    doc = json.loads((tmp_path / "rep" / "report.json").read_text())
    kinds = [e["kind"] for e in doc["timeline"]]
    assert kinds[0] == "goal" and kinds[-1] == "outcome" and "guidance" in kinds
    assert "REACHED" in [e for e in doc["timeline"] if e["kind"] == "guidance"][-1]["text"]
    assert len(doc["latency_ms"]) == s["steps"] + 1 and doc["planner"]["success"] is True
    # the walk went into a real memory file, every frame with its pose
    from glasses_runtime.memory import EpisodicMemory

    with EpisodicMemory.open(tmp_path / "walk.db") as mem:
        assert mem.stats()["keyframes"] == s["keyframes_remembered"]


def test_find_errors_are_one_line(tmp_path):
    from edge_models.checkpoint import save_encoder
    from edge_models.models import build_encoder

    other = tmp_path / "other_tiny.safetensors"  # same size as the shipped encoder, other weights
    save_encoder(other, build_encoder("vit_tiny", img_size=128))
    (tmp_path / "used.db").write_bytes(b"")
    cases = [
        (["--world-model", str(tmp_path / "nope.pte")], "world model"),
        (["--model", str(other)], "trained on the embeddings of encoder"),
        (["--memory", str(tmp_path / "used.db")], "fresh memory"),
        (["--policy", "teleport"], "unknown policy"),
        (["--record", str(tmp_path / "no" / "x.mp4")], "does not exist"),
    ]
    for extra, words in cases:
        res = runner.invoke(app, ["find", *extra])
        lines = res.stderr.strip().splitlines()
        assert res.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error: "), (extra, res.output)
        assert words in lines[0], lines[0]


class Spy:
    """Wraps the session's planner and keeps what it said, frame by frame."""

    def __init__(self, inner):
        self.inner, self.advice = inner, []

    def bind(self, mem, encoder):
        self.inner.bind(mem, encoder)

    def __call__(self, z, pose, goal):
        g = self.inner(z, pose, goal)
        self.advice.append(g)
        return g


def test_world_autopilot_planner_follows_the_guidance(tmp_path):
    """Random walk for 40 frames (recorded into the session's memory), enroll what is in view at 20, then
    g sets the enrolled object as goal: the planner's action is what the wearer does on every later frame."""
    from glasses_runtime.planner import load_world_model_file
    from simulator.app import Session, SessionConfig
    from simulator.inputs import SteerableWorld
    from simulator.keys import KeyScript
    from simulator.planning import SessionPlanner
    from simulator.world import WorldConfig

    src = SteerableWorld(WorldConfig(rows=2, cols=2, size=96, max_steps=10_000), seed=1, policy="random")
    taken: list[int] = []
    steer = src.steer
    src.steer = lambda a: (taken.append(int(a)), steer(a))  # type: ignore[method-assign]
    planner = Spy(SessionPlanner(load_world_model_file(SHIPPED_WORLD_MODEL_PTE)))
    cfg = SessionConfig(
        model=SHIPPED_PTE,  # the shipped int8 encoder and exported world model, as on the glasses
        max_frames=60,
        keys=KeyScript.parse("e@20:spot,g@40:spot"),
        follow_guidance=True,
        report=tmp_path,
    )
    summary = Session(cfg, src, planner=planner).run()
    assert summary["error"] is None and summary["planner"]["goal"] == "spot"
    advice = planner.advice
    assert planner.inner.nodes > 0 and summary["planner"]["steps"] == len(advice) > 0
    followed = [int(g.action) for g in advice if not g.reached]
    assert taken == followed  # every un-reached guidance was steered, nothing else was
    assert all(np.isfinite(g.energy) and 0.0 <= g.confidence <= 1.0 for g in advice)


def test_world_planner_without_memory_says_so_on_the_hud(tmp_path):
    """A goal before anything is remembered (memory paused from the start) is a HUD message, not a crash."""
    from glasses_runtime.memory import EpisodicMemory
    from glasses_runtime.planner import load_world_model_file
    from simulator.app import Session, SessionConfig
    from simulator.inputs import SteerableWorld
    from simulator.keys import KeyScript
    from simulator.planning import SessionPlanner
    from simulator.world import WorldConfig

    with EpisodicMemory.open(tmp_path / "m.db") as mem:
        mem.pause()
    src = SteerableWorld(WorldConfig(rows=1, cols=2, size=32), seed=0, policy="random")
    cfg = SessionConfig(
        model=DEFAULT_MODEL, memory=tmp_path / "m.db", max_frames=6, keys=KeyScript.parse("g@2")
    )
    summary = Session(cfg, src, planner=SessionPlanner(load_world_model_file(DEFAULT_WORLD_MODEL))).run()
    assert summary["error"] is None and summary["frames_shown"] == 6
    assert "error" in summary["planner"] and "memory" in summary["planner"]["error"].lower()


@pytest.mark.slow
def test_demo_runs_the_clip_the_query_and_the_episode(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # from any folder, not only the repository root (#15)
    res = runner.invoke(app, ["demo", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    for name in ("hud.mp4", "report.html", "find.mp4", "find/report.html", "memory.db"):
        assert (tmp_path / name).is_file(), name
    assert "found" in res.stdout and "last seen" in res.stdout
