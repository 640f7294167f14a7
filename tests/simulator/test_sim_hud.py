"""The HUD drawing, key scripts and config validation (no model, no window)."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.errors import KeySpecError
from simulator.hud import (
    ARROW,
    BOX,
    GREEN,
    RED,
    YELLOW,
    Hud,
    HudConfig,
    HudState,
    MemoryHit,
    Recording,
    SimGuidance,
    crop_centre,
    guidance_text,
)
from simulator.keys import KeyEvent, KeyQueue, KeyScript


def _frame(h=96, w=128):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _near(img, colour, tol=30):
    return (np.abs(img.astype(np.int16) - np.array(colour)) <= tol).all(axis=-1)


def test_recording_state_box_and_camera_image():
    hud = Hud(HudConfig())
    frame = _frame()
    lay = hud.layout(frame.shape[:2])
    x0, y0, x1, y1 = lay.rec
    on = hud.draw(frame, HudState(recording=Recording.ON))[y0:y1, x0:x1]
    paused = hud.draw(frame, HudState(recording=Recording.PAUSED))[y0:y1, x0:x1]
    assert _near(on, RED).sum() > 50 and _near(on, YELLOW).sum() == 0
    assert _near(paused, YELLOW).sum() > 50 and _near(paused, RED).sum() == 0
    canvas = hud.draw(frame, HudState())
    bx0, by0, bx1, by1 = lay.box
    assert _near(canvas[by0 : by0 + 3, bx0 : bx0 + 10], BOX).all()  # box corner
    assert not _near(hud.draw(frame, HudState(show_box=False))[by0 : by0 + 3, bx0 : bx0 + 10], BOX).all()
    ix0, iy0, ix1, iy1 = lay.image
    assert (ix1 - ix0) / (iy1 - iy0) == pytest.approx(128 / 96, rel=0.01)  # aspect kept


def test_crop_is_the_centre_box_of_the_frame():
    frame = _frame(100, 200)
    crop = crop_centre(frame, 0.4)
    assert crop.shape == (40, 40, 3)
    assert (crop == frame[30:70, 80:120]).all()


def test_guidance_arrow_points_the_way_and_text_says_it():
    hud = Hud(HudConfig())
    frame = np.zeros((96, 128, 3), np.uint8)
    lay = hud.layout(frame.shape[:2])
    gx0, gy0, gx1, gy1 = lay.guidance
    centroids = {}
    for action in (0, 1, 2, 3):
        g = SimGuidance(action=action, energy=0.25, subgoal=7, confidence=0.8)
        region = hud.draw(frame, HudState(guidance=g, goal_label="key"))[gy0 : gy1 - 20, gx0:gx1]
        ys, xs = np.nonzero(_near(region, ARROW, 60))
        assert len(xs) > 30
        centroids[action] = (xs.mean() - (gx1 - gx0) / 2, ys.mean())
    # the arrow head holds more pixels than the tail, so the centroid leans towards where it points
    assert centroids[0][0] < -2 < 2 < centroids[1][0]
    assert centroids[2][1] < centroids[3][1]
    assert guidance_text(SimGuidance(2, 0.25, 7, 0.8)) == "forward | E 0.250 | conf 0.80 | via #7"
    cont = SimGuidance(np.array([0.5, -30.0], np.float32), 1.0, None, 0.5)
    assert guidance_text(cont).startswith("move +0.50 m/s, turn -30 deg/s")
    no_arrow = hud.draw(frame, HudState(goal_label="key"))[gy0:gy1, gx0:gx1]
    assert _near(no_arrow, ARROW, 60).sum() == 0  # goal without a planner: no arrow


def test_memory_hit_thumbnail_and_audio_level():
    hud = Hud(HudConfig())
    frame = np.zeros((96, 128, 3), np.uint8)
    thumb = np.full((30, 40, 3), (10, 200, 30), np.uint8)
    lay = hud.layout(frame.shape[:2])
    canvas = hud.draw(frame, HudState(hits=[MemoryHit("keys", thumb, 3.2, 0.9)]))
    hx0, hy0, hx1, hy1 = lay.hits[0]
    assert _near(canvas[hy0 + 5 : hy1 - 5, hx0 + 5 : hx1 - 5], (10, 200, 30), 8).all()
    ax0, ay0, ax1, ay1 = lay.audio
    loud = hud.draw(frame, HudState(audio_level_db=-6.0, speaking=True))[ay0:ay1, ax0:ax1]
    quiet = hud.draw(frame, HudState(audio_level_db=-54.0))[ay0:ay1, ax0:ax1]
    assert _near(loud, GREEN).sum() > 4 * _near(quiet, GREEN).sum() > 0


def test_key_script_and_queue():
    s = KeyScript.parse("q@40, e@10:mug ,esc@90,W@3")
    assert (
        s.due(10) == [KeyEvent("e", "mug")] and s.due(40) == [KeyEvent("q")] and s.due(3) == [KeyEvent("w")]
    )
    assert s.last_frame == 90 and KeyScript.parse("").events == ()
    for bad in ("e10", "x@3", "e@-1", "e@3:two words"):
        with pytest.raises(KeySpecError, match="--keys"):
            KeyScript.parse(bad)
    q = KeyQueue()
    q.push(KeyEvent("p"))
    q.push(KeyEvent("m"))
    assert [e.key for e in q.drain()] == ["p", "m"] and q.drain() == []


@pytest.mark.parametrize("kwargs", [{"width": 100}, {"box_frac": 0.0}, {"max_hits": 9}, {"thumb_w": 400}])
def test_hud_config_is_validated(kwargs):
    with pytest.raises(ValueError):
        HudConfig(**kwargs)
