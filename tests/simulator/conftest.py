"""Fixtures for the 3D world tests: one small apartment per module keeps GL contexts few and tests fast."""

from __future__ import annotations

import pytest
from world_helpers import SMALL

from simulator.world import ApartmentEnv


@pytest.fixture(scope="module")
def env():
    e = ApartmentEnv(SMALL)
    yield e
    e.close()


# ---- glasses-sim (test_sim_*.py) ---------------------------------------------------------------------

# Enroll at 40, ask right after (same object) and later, pause 62-70 with a mark on each side, goal at 72.
SIM_KEYS = "e@40:bike,q@41,q@50,m@58,p@62,m@64,p@70,g@72:bike"
SIM_FRAMES = 80


@pytest.fixture(scope="session")
def sim_run(tmp_path_factory, bikes_mp4):
    """One real headless session on bikes.mp4 (eager vit_pico): scripted keys, MP4 recording and report.

    The centre box is the whole frame (box_frac=1) so queries compare like with like (frame vs keyframe),
    and the "last seen" threshold is 0.5 so the query at frame 50 has an answer to check."""
    from glasses_runtime.sources import VideoFile, VideoFileConfig
    from simulator.app import Session, SessionConfig
    from simulator.hud import HudConfig
    from simulator.keys import KeyScript

    out = tmp_path_factory.mktemp("sim_run")
    cfg = SessionConfig(
        model=bikes_mp4.resolve().parents[2] / "edge_models" / "weights" / "vit_pico.safetensors",
        memory=out / "memory.db",
        record=out / "hud.mp4",
        report=out / "report",
        max_frames=SIM_FRAMES,
        keys=KeyScript.parse(SIM_KEYS),
        hud=HudConfig(box_frac=1.0),
        query_threshold=0.5,
    )
    session = Session(cfg, VideoFile(VideoFileConfig(bikes_mp4)))
    summary = session.run()
    return {"out": out, "cfg": cfg, "summary": summary, "log": session.log}
