"""glasses-sim sessions end to end on the real clip: scripted keys enroll, query, pause and mark into a real
memory; the HUD video plays back with the expected frame count; the report is self-contained."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from glasses_runtime.engines.encoder import load_encoder
from glasses_runtime.memory import EpisodicMemory
from glasses_runtime.memory.codec import unpack_embedding
from glasses_runtime.sources import VideoFile, VideoFileConfig
from simulator.display import count_video_frames
from simulator.hud import crop_centre


def _frames(path, indices):
    src = VideoFile(VideoFileConfig(path))
    out, i = {}, 0
    while (f := src.read()) is not None and i <= max(indices):
        if i in indices:
            out[i] = f.image
        i += 1
    src.close()
    return out


def test_scripted_keys_enroll_query_pause_and_mark_into_memory(sim_run, bikes_mp4):
    log, cfg, summary = sim_run["log"], sim_run["cfg"], sim_run["summary"]
    assert summary["stopped_by"] == "max_frames" and summary["frames_shown"] == 80
    with EpisodicMemory.open(cfg.memory, readonly=True) as mem:
        objects = mem.db.execute("SELECT name FROM objects").fetchall()
        protos = mem.db.execute("SELECT count(*) FROM object_prototypes").fetchone()[0]
        kf = mem.db.execute("SELECT id, t_ns, emb FROM keyframes ORDER BY t_ns").fetchall()
        marks = mem.db.execute("SELECT t_ns, text FROM events WHERE kind = 'mark'").fetchall()
    assert objects == [("bike",)] and protos == 1

    # The query right after enrolling names the enrolled object.
    q41, q50 = (e for e in log.of_kind("query"))
    assert (q41.frame_index, q50.frame_index) == (41, 50)
    assert q41.data["object"] == "bike" and q41.data["object_score"] > 0.9

    # "Last seen" is what an exhaustive scan of the stored keyframes says: the newest one at or above the
    # threshold, before or at the query frame. The query embedding is recomputed independently here.
    enc = load_encoder(cfg.model)
    img = _frames(bikes_mp4, {50})[50]
    z = enc.encode(enc.preprocess(crop_centre(img, cfg.hud.box_frac))).reshape(-1)
    scores = [(t, float(unpack_embedding(e) @ z / np.linalg.norm(unpack_embedding(e))), i) for i, t, e in kf]
    eligible = [s for s in scores if s[1] >= cfg.query_threshold and s[0] <= q50.t_ns]
    assert eligible, "the clip's first shot should give the query at frame 50 a sighting"
    expected = max(eligible)
    seen = q50.data["last_seen"]
    assert seen["keyframe_id"] == expected[2] and seen["score"] == pytest.approx(expected[1], abs=0.01)
    assert q50.answer_thumb is not None and q50.data["age_s"] == pytest.approx((q50.t_ns - expected[0]) / 1e9)

    # Pause 62..70: the mark at 58 is stored, the one at 64 is not; keyframes decided while paused are not stored.
    assert [t for t, _ in marks] == [e.t_ns for e in log.of_kind("mark") if e.frame_index == 58]
    stored = [e.t_ns for e in log.of_kind("keyframe") if e.data["stored"]]
    assert [t for _, t, _ in kf] == stored
    paused = [e for e in log.of_kind("keyframe") if 62 <= e.frame_index < 70]
    assert all(not e.data["stored"] for e in paused)
    assert summary["memory"]["keyframes_acknowledged"] == len(kf)
    assert summary["planner"] == {"goal": "bike", "planner": "none", "steps": 0}


def test_headless_recording_is_a_playable_mp4_with_every_frame(sim_run):
    summary = sim_run["summary"]
    assert summary["recorded_frames"] == 80
    assert count_video_frames(sim_run["out"] / "hud.mp4") == 80


def test_report_is_self_contained_and_lists_the_session(sim_run):
    report = sim_run["out"] / "report"
    page = (report / "report.html").read_text()
    assert not re.search(r"https?://", page), "the page must not reference the network"
    assert "<script" not in page.lower() and "@import" not in page
    srcs = re.findall(r'src="([^"]*)"', page)
    log = sim_run["log"]
    n_images = sum((e.thumb is not None) + (e.answer_thumb is not None) for e in log.entries) + sum(
        (e.thumb is not None) + (e.answer_thumb is not None) for e in log.of_kind("query")
    )  # queries appear on the timeline and in the queries table
    assert len(srcs) == n_images and all(s.startswith("data:image/jpeg;base64,") for s in srcs)
    assert "<svg" in page and "<polyline" in page
    doc = json.loads((report / "report.json").read_text())
    kinds = {e["kind"] for e in doc["timeline"]}
    assert {"keyframe", "enroll", "query", "mark", "pause", "resume", "goal"} <= kinds
    assert len(doc["latency_ms"]) == 80 and doc["summary"]["frames_shown"] == 80


def test_live_stream_session_shows_every_frame_and_counts_drops(tmp_path, bikes_mp4, sim_run):
    from simulator.app import Session, SessionConfig

    cfg = SessionConfig(
        model=sim_run["cfg"].model, live=True, record=tmp_path / "live.mp4", max_frames=30, record_fps=30
    )
    summary = Session(cfg, VideoFile(VideoFileConfig(bikes_mp4, realtime=True))).run()
    assert summary["frames_shown"] == 30 == summary["frames_in"]
    assert summary["frames_in"] == summary["frames_processed"] + summary["frames_dropped"]
    assert count_video_frames(tmp_path / "live.mp4") == 30
    assert summary["memory_path"].startswith("temporary")


def test_goal_with_a_planner_shows_guidance_in_hud_and_report(tmp_path, bikes_mp4, sim_run, assets):
    """A planner callable gets (z, pose, goal) every frame once a goal is set; its guidance reaches the HUD
    (arrow pixels on the HUD) and the report; a real WAV runs through the audio meter."""
    from glasses_runtime.audio import WavSource
    from simulator.app import Session, SessionConfig
    from simulator.hud import ARROW, Hud, HudConfig, SimGuidance
    from simulator.keys import KeyScript

    calls = []

    def toward_goal(z, pose, goal):  # energy = cosine distance to the goal embedding
        calls.append(pose)
        e = float(1.0 - z @ goal.embedding)
        return SimGuidance(action=2, energy=e, subgoal=None, confidence=1.0, reached=e < 0.05)

    frames = []
    cfg = SessionConfig(
        model=sim_run["cfg"].model, max_frames=12, keys=KeyScript.parse("g@4:here"), report=tmp_path
    )
    session = Session(
        cfg,
        VideoFile(VideoFileConfig(bikes_mp4)),
        planner=toward_goal,
        audio=WavSource(assets / "speech_two_utterances.wav"),
        on_frame=lambda i, c: frames.append(c),
    )
    session.audio.inner.realtime = False
    summary = session.run()
    assert len(calls) == 8 and summary["planner"]["steps"] == 8  # frames 4..11
    assert 0.0 <= summary["planner"]["energy"] <= 2.0 and summary["planner"]["reached"] is False
    g0, g1, _, _ = Hud(HudConfig()).layout(frames[0].shape[:2]).guidance
    arrow = lambda c: (np.abs(c[g1:, g0:].astype(int) - ARROW) < 60).all(-1).sum()  # noqa: E731
    assert arrow(frames[3]) == 0 and arrow(frames[4]) > 30
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["planner"]["goal"] == "here" and "forward" in doc["planner"]["last_guidance"]
    assert session.audio.level_db is not None  # the WAV went through the meter
