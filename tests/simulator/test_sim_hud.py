"""The HUD drawing, key scripts and config validation (no model, no window)."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.errors import KeySpecError
from simulator.hud import (
    ARROW,
    BOX,
    CYAN,
    GREEN,
    GREY,
    RED,
    WHITE,
    YELLOW,
    Hud,
    HudConfig,
    HudState,
    MemoryHit,
    Recording,
    SimGuidance,
    action_name,
    crop_centre,
    guidance_text,
    hit_lines,
    push_hit,
    rects_overlap,
    text_width,
    unique_hits,
    wrap_text,
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


def _changed(a, b):
    """Boolean mask [H, W]: pixels that differ between two canvases."""
    return (a != b).any(axis=-1)


def _inside(mask, rects):
    """Whether every set pixel of mask lies in one of rects."""
    allowed = np.zeros_like(mask)
    for x0, y0, x1, y1 in rects:
        allowed[max(0, y0) : y1, max(0, x0) : x1] = True
    return not (mask & ~allowed).any()


def _arrow_centroid(hud, frame, g):
    """Centroid (dx, dy) of the arrow-coloured pixels in the arrow square, relative to its centre."""
    ax0, ay0, ax1, ay1 = hud.layout(frame.shape[:2]).guidance_arrow
    region = hud.draw(frame, HudState(guidance=g, goal_label="key"))[ay0:ay1, ax0:ax1]
    ys, xs = np.nonzero(_near(region, ARROW, 60))
    assert len(xs) > 100  # a big, solid arrow
    return xs.mean() - (ax1 - ax0) / 2, ys.mean() - (ay1 - ay0) / 2


def _assert_points(c, action):
    """The arrow head holds more pixels than the tail, so the centroid leans towards where it points."""
    dx, dy = c
    if action in (0, 1):
        assert abs(dx) > 3 > abs(dy) and (dx < 0) == (action == 0)
    else:
        assert abs(dy) > 3 > abs(dx) and (dy < 0) == (action == 2)


def test_guidance_arrow_points_the_way_and_text_says_it():
    hud = Hud(HudConfig())
    frame = np.zeros((96, 128, 3), np.uint8)
    lay = hud.layout(frame.shape[:2])
    ax0, ay0, ax1, ay1 = lay.guidance_arrow
    title_rows = slice(lay.guidance[1] + 28, lay.guidance[1] + 48)  # the action name, right of the arrow
    title_cols = slice(ax1 + 1, lay.guidance[2])
    goal_only, blank = hud.draw(frame, HudState(goal_label="key")), hud.draw(frame, HudState())
    titles = []
    for action in (0, 1, 2, 3):
        g = SimGuidance(action=action, energy=0.25, subgoal=7, confidence=0.8)
        _assert_points(_arrow_centroid(hud, frame, g), action)
        canvas = hud.draw(frame, HudState(guidance=g, goal_label="key"))
        # everything the guidance draws stays inside its panel (text included: no overflow)
        assert _inside(_changed(canvas, blank), [lay.guidance])
        assert _inside(_changed(canvas, goal_only), [lay.guidance])
        title = _near(canvas[title_rows, title_cols], ARROW, 60)
        assert title.sum() > 80  # the action name in big arrow-coloured letters
        titles.append(title)
    # four different names
    assert all((titles[i] != titles[j]).sum() > 40 for i in range(4) for j in range(i))
    assert guidance_text(SimGuidance(2, 0.25, 7, 0.8)) == "forward | E 0.250 | conf 0.80 | via #7"
    cont = SimGuidance(np.array([0.5, -30.0], np.float32), 1.0, None, 0.5)
    assert guidance_text(cont).startswith("move +0.50 m/s, turn -30 deg/s")
    assert action_name(cont) == "move" and action_name(SimGuidance(1, 0.0, None, 1.0)) == "turn right"
    dx, dy = _arrow_centroid(hud, frame, SimGuidance(np.array([1.0, -60.0], np.float32), 1.0, None, 0.5))
    assert dx > 3 and dy < -1  # forward while turning right (a negative turn rate is clockwise)
    no_arrow = hud.draw(frame, HudState(goal_label="key"))[lay.guidance[1] : lay.guidance[3], ax0:ax1]
    assert _near(no_arrow, ARROW, 60).sum() == 0  # goal without a planner: no arrow


def test_reached_shows_a_check_instead_of_an_arrow():
    hud = Hud(HudConfig())
    frame = np.zeros((96, 128, 3), np.uint8)
    lay = hud.layout(frame.shape[:2])
    ax0, ay0, ax1, ay1 = lay.guidance_arrow
    g = SimGuidance(2, 0.01, None, 0.9, "forward", reached=True)
    canvas = hud.draw(frame, HudState(guidance=g, goal_label="mug"))
    square = canvas[ay0:ay1, ax0:ax1]
    assert _near(square, ARROW, 20).sum() == 0 and _near(square, GREEN, 20).sum() > 200
    title = canvas[lay.guidance[1] + 28 : lay.guidance[1] + 48, ax1 + 1 : lay.guidance[2]]
    assert _near(title, GREEN, 20).sum() > 80 and _near(title, ARROW, 20).sum() == 0  # "REACHED", in green
    assert guidance_text(g).startswith("REACHED | forward")
    assert _inside(_changed(canvas, hud.draw(frame, HudState())), [lay.guidance])


def test_the_planners_own_guidance_is_shown():
    mpc = pytest.importorskip("glasses_runtime.planner.mpc")
    hud = Hud(HudConfig())
    frame = np.zeros((96, 96, 3), np.uint8)
    for action, name in enumerate(("turn_left", "turn_right", "forward", "back")):
        g = mpc.Guidance(action=action, action_name=name, energy=0.3, subgoal=4, confidence=0.7, plan_ms=12.0)
        assert isinstance(g, mpc.Guidance) and action_name(g) == name.replace("_", " ")
        _assert_points(_arrow_centroid(hud, frame, g), action)
    # the name decides the arrow: a planner whose action 0 is "forward" points up, not left
    _assert_points(_arrow_centroid(hud, frame, mpc.Guidance(0, "forward", 0.3, None, 0.7)), 2)
    done = mpc.Guidance(1, "turn_right", 0.0, None, 1.0, reached=True)
    ax0, ay0, ax1, ay1 = hud.layout(frame.shape[:2]).guidance_arrow
    square = hud.draw(frame, HudState(guidance=done))[ay0:ay1, ax0:ax1]
    assert _near(square, ARROW, 20).sum() == 0 and _near(square, GREEN, 20).sum() > 200


LONG = (
    "keyframe #1234: last seen 12.3 s ago (keyframe #1234, cos 0.93); object 'coffee-mug' cos 0.88 "
    "and then some more words so that the message cannot fit on two lines at all"
)
CANVASES = [(640, 480, 112), (320, 240, 96), (480, 360, 112), (1280, 720, 160), (640, 480, 48)]
FRAMES = [(96, 96), (360, 640), (224, 224), (96, 128)]


@pytest.mark.parametrize("canvas", CANVASES, ids=lambda c: f"{c[0]}x{c[1]}")
@pytest.mark.parametrize("frame_hw", FRAMES, ids=lambda f: f"{f[1]}x{f[0]}")
def test_hud_elements_never_overlap(canvas, frame_hw):
    w, h, thumb_w = canvas
    lay = Hud(HudConfig(width=w, height=h, thumb_w=thumb_w)).layout(frame_hw)
    assert len(lay.hits) == len(lay.hit_cards) >= 1
    for card in lay.hit_cards:
        assert card[0] >= 0 and card[2] <= w and card[3] <= h
        for other in (lay.message, lay.guidance, lay.audio, lay.top_bar):
            assert not rects_overlap(card, other)
    assert all(not rects_overlap(a, b) for i, a in enumerate(lay.hit_cards) for b in lay.hit_cards[:i])
    for a, b in [
        (lay.message, lay.top_bar),
        (lay.message, lay.guidance),
        (lay.guidance, lay.audio),
        (lay.message, lay.audio),
    ]:
        assert not rects_overlap(a, b)
    gx0, gy0, gx1, gy1 = lay.guidance
    assert gx0 >= 0 and gx1 <= w and gy1 <= h and gx1 - gx0 >= 180
    ax0, ay0, ax1, ay1 = lay.guidance_arrow
    assert gx0 <= ax0 and ax1 <= gx1 and gy0 <= ay0 and ay1 <= gy1 and ax1 - ax0 >= 50


@pytest.mark.parametrize("canvas", CANVASES, ids=lambda c: f"{c[0]}x{c[1]}")
@pytest.mark.parametrize("frame_hw", [(96, 96), (360, 640)], ids=lambda f: f"{f[1]}x{f[0]}")
def test_message_stays_in_its_band_beside_the_hits(canvas, frame_hw):
    """A long query answer used to run on under the memory-hit cards; now it wraps inside its band."""
    w, h, thumb_w = canvas
    hud = Hud(HudConfig(width=w, height=h, thumb_w=thumb_w))
    frame = _frame(*frame_hw)
    lay = hud.layout(frame_hw)
    thumb = np.full((30, 40, 3), (10, 200, 30), np.uint8)
    hits = [MemoryHit("coffee-mug", thumb, 3.2), MemoryHit("keys"), MemoryHit("not seen")]
    without = hud.draw(frame, HudState(hits=hits))
    with_msg = hud.draw(frame, HudState(hits=hits, message=LONG))
    changed = _changed(with_msg, without)
    assert _inside(changed, [lay.message])  # nothing outside the band, so nothing under a card
    for x0, y0, x1, y1 in lay.hit_cards:
        assert (with_msg[y0:y1, x0:x1] == without[y0:y1, x0:x1]).all()
    mx0, my0, mx1, my1 = lay.message
    text = _near(with_msg[my0:my1, mx0:mx1], WHITE, 40)
    rows = np.nonzero(text.any(axis=1))[0]
    assert rows.max() - rows.min() > 20  # two lines
    assert text[:, (mx1 - mx0) * 3 // 4 :].any()  # the lines use the band's width
    lines = wrap_text(LONG, mx1 - mx0 - 16, 0.45, 2)
    assert len(lines) == 2 and (" ".join(lines) == LONG or lines[-1].endswith("..."))  # all of it, or cut
    assert all(text_width(line, 0.45) <= mx1 - mx0 - 16 for line in lines)
    short = _changed(hud.draw(frame, HudState(hits=hits, message="enrolled 'mug'")), without)
    assert _inside(short, [(mx0, my0, mx1, my0 + 26)])  # a short message: a one-line panel


def test_memory_hit_cards_are_unique_and_say_not_seen_once():
    hud = Hud(HudConfig())
    frame = np.zeros((96, 128, 3), np.uint8)
    lay = hud.layout(frame.shape[:2])
    thumb = np.full((30, 40, 3), (10, 200, 30), np.uint8)
    mug, mug_again, keys = MemoryHit("mug"), MemoryHit("mug"), MemoryHit("keys", thumb, 3.2, 0.9)
    canvas = hud.draw(frame, HudState(hits=[mug, mug_again, keys]))
    (x0, y0, x1, y1), (k0, l0, k1, l1), (_, _, _, _) = lay.hits
    assert _near(canvas[l0 + 5 : l1 - 5, k0 + 5 : k1 - 5], (10, 200, 30), 8).all()  # keys moved up to card 2
    c0, c1, c2, c3 = lay.hit_cards[2]
    assert (canvas[c1:c3, c0:c2] == hud.draw(frame, HudState())[c1:c3, c0:c2]).all()  # no third card
    assert _inside(_changed(canvas, hud.draw(frame, HudState())), lay.hit_cards)
    # an enrolled object never seen: its label, then "not seen" in grey (not "last seen never")
    assert hit_lines(mug) == [("mug", CYAN), ("not seen", GREY)]
    assert hit_lines(keys) == [("keys", CYAN), ("seen 3.2 s ago", WHITE)]
    assert hit_lines(MemoryHit("not seen")) == [("not seen", GREY)]  # a query with no match: said once
    line2 = slice(y1 + 13, y1 + 27)
    assert _near(canvas[line2, x0:x1], GREY, 40).sum() > 20
    alone = hud.draw(frame, HudState(hits=[MemoryHit("not seen")]))
    assert (
        _near(alone[line2, x0:x1], GREY, 40).sum() == 0
        and _near(alone[y1 + 1 : y1 + 13, x0:x1], GREY, 40).any()
    )
    assert unique_hits([mug, keys, mug_again]) == [mug, keys]
    newer = MemoryHit("keys", thumb, 0.2)
    assert push_hit([mug, keys], newer, 3) == [newer, mug]
    assert push_hit([mug, keys, MemoryHit("cup")], MemoryHit("pen"), 3)[-1] is keys


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
