"""The glasses display: draws the HUD over a camera frame with OpenCV (no window needed).

    hud = Hud(HudConfig(width=640, height=480))
    canvas = hud.draw(frame_rgb, HudState(fps=29.7, latency_ms=4.8, recording=Recording.ON))
    # canvas: RGB uint8 [480, 640, 3]; shown by a window (simulator/display.py) or written to a video

Layout (``HudLayout`` has the rectangles, so tests and the report can find every element):
top-left fps and latency; top-right the recording state (red REC dot, yellow PAUSED bars, grey
"no memory"); bottom-left the audio level bar and the speech dot; right column the memory hits
(thumbnail + label + "seen ... ago" / "not seen"; newest first, one card per label); bottom centre
the planner guidance (arrow, action name, confidence bar, energy; a green check once reached); the
centre box marks what ``e``/``q``/``g`` act on; a message band (up to two wrapped lines) under the
top bar, left of the memory-hit column. Elements never overlap one another, and text is wrapped,
shrunk or cut with "..." to stay inside its element, for every valid ``HudConfig``.

The camera frame is scaled to fit the canvas (letterboxed, aspect kept; a 96x96 world frame is
scaled up, a 1280x720 video frame down).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

RGB = tuple[int, int, int]
Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive) in canvas pixels

RED: RGB = (230, 30, 30)
YELLOW: RGB = (250, 200, 0)
GREY: RGB = (150, 150, 150)
GREEN: RGB = (40, 220, 90)
CYAN: RGB = (0, 220, 255)
WHITE: RGB = (255, 255, 255)
BOX: RGB = (255, 0, 255)  # the centre box: magenta, rare in camera images, easy to find in screenshots
ARROW: RGB = (0, 255, 128)
FONT = cv2.FONT_HERSHEY_SIMPLEX


class Recording(enum.Enum):
    ON = "rec"
    PAUSED = "paused"
    OFF = "off"  # no memory attached


@runtime_checkable
class GuidanceLike(Protocol):
    """What the HUD needs from a planner's guidance (``glasses_runtime.planner.Guidance`` has these).

    action: discrete action index (0 turn left, 1 turn right, 2 forward, 3 back, as ``simulator.world.Action``)
    or a continuous ``[forward_speed_mps, turn_rate_deg_s]``. energy: plan energy (lower is better).
    subgoal: keyframe id of the waypoint, None for a flat plan. confidence: in [0, 1].

    Read when present (the planner's ``Guidance`` and ``SimGuidance`` have them): action_name, the
    action's label ("turn_left", "forward", ...; "move" for continuous actions), which decides the arrow
    when it names one of the four moves (so a planner with its own action order still points the right
    way); reached, true once the goal is reached: the HUD then shows a green check and "REACHED"
    instead of an arrow.
    """

    action: int | np.ndarray
    energy: float
    subgoal: int | None
    confidence: float


@dataclass(frozen=True)
class SimGuidance:
    """A plain ``GuidanceLike`` (what a planner adapter or the report builds)."""

    action: int | np.ndarray
    energy: float
    subgoal: int | None
    confidence: float
    action_name: str | None = None
    reached: bool = False


DISCRETE_NAMES = {0: "turn left", 1: "turn right", 2: "forward", 3: "back"}
_DISCRETE_VECTORS = {0: (-1.0, 0.0), 1: (1.0, 0.0), 2: (0.0, -1.0), 3: (0.0, 1.0)}
_NAMED_VECTORS = {
    "turn left": (-1.0, 0.0),
    "left": (-1.0, 0.0),
    "turn right": (1.0, 0.0),
    "right": (1.0, 0.0),
    "forward": (0.0, -1.0),
    "forwards": (0.0, -1.0),
    "back": (0.0, 1.0),
    "backward": (0.0, 1.0),
    "backwards": (0.0, 1.0),
}


def guidance_text(g: GuidanceLike) -> str:
    """One line for the HUD and the report: the action, energy, confidence, subgoal."""
    name = getattr(g, "action_name", None) or _action_label(g.action)
    parts = [name.replace("_", " "), f"E {g.energy:.3f}", f"conf {g.confidence:.2f}"]
    if g.subgoal is not None:
        parts.append(f"via #{g.subgoal}")
    if getattr(g, "reached", False):
        parts.insert(0, "REACHED")
    return " | ".join(parts)


def action_name(g: GuidanceLike) -> str:
    """The action's short name, lower case with spaces: the planner's ``action_name`` when it has one,
    else the discrete name ("turn left", ...) or "move" for a continuous action."""
    name = getattr(g, "action_name", None)
    if name:
        return _norm_name(str(name))
    if _is_continuous(g.action):
        return "move"
    return DISCRETE_NAMES.get(int(g.action), f"action {int(g.action)}")


def _norm_name(name: str) -> str:
    return " ".join(name.replace("_", " ").replace("-", " ").split()).lower()


def _is_continuous(action: int | np.ndarray) -> bool:
    return isinstance(action, np.ndarray) and action.size >= 2


def _action_label(action: int | np.ndarray) -> str:
    if _is_continuous(action):
        assert isinstance(action, np.ndarray)
        return f"move {float(action[0]):+.2f} m/s, turn {float(action[1]):+.0f} deg/s"
    return DISCRETE_NAMES.get(int(action), f"action {int(action)}")


def arrow_vector(action: int | np.ndarray, name: str | None = None) -> tuple[float, float]:
    """Screen direction (dx, dy), unit length or less, for an action: up = forward, left = turn left.

    name: the planner's action_name; when it is one of the four moves it wins over the index."""
    if name is not None and _norm_name(name) in _NAMED_VECTORS:
        return _NAMED_VECTORS[_norm_name(name)]
    if _is_continuous(action):
        assert isinstance(action, np.ndarray)
        speed, turn = float(action[0]), float(action[1])
        angle = math.radians(max(-90.0, min(90.0, turn)))  # turn rate -> lean of the arrow
        mag = max(0.35, min(1.0, abs(speed)))
        sign = 1.0 if speed >= 0 else -1.0
        return (-math.sin(angle) * mag, -math.cos(angle) * mag * sign)
    return _DISCRETE_VECTORS.get(int(action), (0.0, 0.0))


@dataclass
class MemoryHit:
    """One remembered moment on the HUD. thumb: RGB uint8 [h, w, 3] or None. age_s: how long ago it
    was last seen; None: not seen (an enrolled object with no matching keyframe, or no match at all)."""

    label: str
    thumb: np.ndarray | None = None
    age_s: float | None = None
    score: float | None = None


NOT_SEEN = "not seen"


def _label_key(label: str) -> str:
    return " ".join(label.split()).casefold()


def unique_hits(hits: list[MemoryHit], limit: int | None = None) -> list[MemoryHit]:
    """hits (newest first) with one card per label: the newest of each label is kept, in order."""
    out: list[MemoryHit] = []
    keys: set[str] = set()
    for hit in hits:
        key = _label_key(hit.label)
        if key in keys:
            continue
        keys.add(key)
        out.append(hit)
        if limit is not None and len(out) >= limit:
            break
    return out


def hit_lines(hit: MemoryHit) -> list[tuple[str, RGB]]:
    """The text under a hit card's thumbnail, (line, colour): the label, then "seen 3.2 s ago" or
    "not seen"; a hit labelled "not seen" (a query with no match) says it once."""
    if _label_key(hit.label) == NOT_SEEN:
        return [(NOT_SEEN, GREY)]
    if hit.age_s is None:
        return [(hit.label, CYAN), (NOT_SEEN, GREY)]
    return [(hit.label, CYAN), (f"seen {format_age(hit.age_s)}", WHITE)]


def push_hit(hits: list[MemoryHit], hit: MemoryHit, max_hits: int) -> list[MemoryHit]:
    """The new hit first, any older card with the same label dropped, at most max_hits kept.

    ``HudState.hits = push_hit(state.hits, MemoryHit(...), cfg.max_hits)`` is how a query adds its answer."""
    return unique_hits([hit, *hits], max_hits)


@dataclass
class HudState:
    """Everything the HUD shows for one frame. audio_level_db: dBFS (-60..0), None without audio.
    hits: newest first; cards with the same label are shown once (the newest)."""

    fps: float | None = None
    latency_ms: float | None = None
    recording: Recording = Recording.OFF
    audio_level_db: float | None = None
    speaking: bool = False
    hits: list[MemoryHit] = field(default_factory=list)
    guidance: GuidanceLike | None = None
    goal_label: str | None = None
    message: str | None = None
    show_box: bool = True


@dataclass(frozen=True)
class HudConfig:
    """width/height: canvas pixels. box_frac: centre box side as a fraction of the image's shorter side.
    max_hits: memory hits shown at once (fewer when the canvas is too short for them). thumb_w: hit
    thumbnail width in pixels."""

    width: int = 640
    height: int = 480
    box_frac: float = 0.4
    max_hits: int = 3
    thumb_w: int = 112

    def __post_init__(self) -> None:
        if not (320 <= self.width <= 4096 and 240 <= self.height <= 4096):
            raise ValueError(
                f"HUD size must be between 320x240 and 4096x4096, got {self.width}x{self.height}"
            )
        if not 0.05 <= self.box_frac <= 1.0:
            raise ValueError(f"box_frac must be in [0.05, 1], got {self.box_frac}")
        if not 0 <= self.max_hits <= 6:
            raise ValueError(f"max_hits must be in [0, 6], got {self.max_hits}")
        if not 32 <= self.thumb_w <= self.width // 3:
            raise ValueError(f"thumb_w must be in [32, width/3], got {self.thumb_w}")


def centre_box(h: int, w: int, frac: float) -> Rect:
    """The centre box of an h x w image: a square of side frac * min(h, w)."""
    side = max(1, int(round(frac * min(h, w))))
    x0, y0 = (w - side) // 2, (h - side) // 2
    return x0, y0, x0 + side, y0 + side


def crop_centre(image: np.ndarray, frac: float) -> np.ndarray:
    """The centre-box crop of an RGB image [H, W, 3] (what enroll, query and goal embed)."""
    x0, y0, x1, y1 = centre_box(image.shape[0], image.shape[1], frac)
    return np.ascontiguousarray(image[y0:y1, x0:x1])


@dataclass(frozen=True)
class HudLayout:
    """Where each element goes on the canvas (and where the camera image lands).

    message: the band the message may use (its panel shrinks to one line for a short message).
    hits: the thumbnail of each memory-hit card; hit_cards: the whole card (panel, thumbnail, two text
    lines), one per hit that fits the canvas. guidance: the planner panel; guidance_arrow: the square
    in it that holds the arrow (or the reached check)."""

    image: Rect
    top_bar: Rect
    rec: Rect
    message: Rect
    audio: Rect
    hits: tuple[Rect, ...]
    hit_cards: tuple[Rect, ...]
    guidance: Rect
    guidance_arrow: Rect
    box: Rect


MESSAGE_LINES = 2
_MSG_SCALE, _MSG_PITCH, _MSG_BASE = 0.45, 18, 17  # font scale, line pitch, first baseline below the top
_GUIDE_W, _GUIDE_H = 300, 102


def rects_overlap(a: Rect, b: Rect) -> bool:
    """Whether two rectangles (x0, y0, x1, y1; exclusive ends) share a pixel."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


class Hud:
    def __init__(self, config: HudConfig | None = None) -> None:
        self.cfg = config or HudConfig()

    def layout(self, frame_hw: tuple[int, int]) -> HudLayout:
        c = self.cfg
        W, H = c.width, c.height
        fh, fw = frame_hw
        scale = min(W / fw, H / fh)
        iw, ih = max(1, int(round(fw * scale))), max(1, int(round(fh * scale)))
        ix, iy = (W - iw) // 2, (H - ih) // 2
        bx0, by0, bx1, by1 = centre_box(ih, iw, c.box_frac)

        # Right column: memory-hit cards, as many as fit above the bottom edge.
        th = int(round(c.thumb_w * 0.75))
        hits: list[Rect] = []
        cards: list[Rect] = []
        for i in range(c.max_hits):
            hx0, hy0 = W - c.thumb_w - 8, 40 + i * (th + 32)
            card = (hx0 - 4, hy0 - 4, W - 4, hy0 + th + 28)
            if card[3] > H - 4:
                break
            hits.append((hx0, hy0, W - 8, hy0 + th))
            cards.append(card)
        column_x0 = cards[0][0] if cards else W

        # Message band: under the top bar, left of the hit column (never under a card).
        msg_h = _MSG_BASE + _MSG_PITCH * (MESSAGE_LINES - 1) + 8
        message = (0, 30, column_x0 - 4, 30 + msg_h)

        # Bottom: audio bar left, guidance centred; on a narrow canvas the guidance moves left of the
        # hit column and, if it then meets the audio bar, above it.
        audio = (10, H - 40, 150, H - 12)
        gx0, gx1 = W // 2 - _GUIDE_W // 2, W // 2 + _GUIDE_W // 2
        gy0, gy1 = H - 8 - _GUIDE_H, H - 8
        right = column_x0 - 4 if cards else W - 8
        if gx1 > right:
            gx1, gx0 = right, max(8, right - _GUIDE_W)
        if gx0 < audio[2] + 8:
            if gx1 - (audio[2] + 8) >= 240:
                gx0 = audio[2] + 8
            else:
                gy1 = audio[1] - 4
                gy0 = gy1 - _GUIDE_H
        side = min(_GUIDE_H - 12, (gx1 - gx0 - 12) // 3)
        arrow_box = (gx0 + 6, gy0 + 6, gx0 + 6 + side, gy0 + 6 + side)
        return HudLayout(
            image=(ix, iy, ix + iw, iy + ih),
            top_bar=(0, 0, W, 28),
            rec=(W - 130, 0, W, 28),
            message=message,
            audio=audio,
            hits=tuple(hits),
            hit_cards=tuple(cards),
            guidance=(gx0, gy0, gx1, gy1),
            guidance_arrow=arrow_box,
            box=(ix + bx0, iy + by0, ix + bx1, iy + by1),
        )

    def draw(self, frame: np.ndarray, state: HudState) -> np.ndarray:
        """frame: RGB uint8 [H, W, 3] -> canvas RGB uint8 [height, width, 3] with the HUD drawn on it."""
        c = self.cfg
        lay = self.layout(frame.shape[:2])
        canvas = np.zeros((c.height, c.width, 3), np.uint8)
        x0, y0, x1, y1 = lay.image
        interp = cv2.INTER_AREA if (x1 - x0) < frame.shape[1] else cv2.INTER_LINEAR
        canvas[y0:y1, x0:x1] = cv2.resize(frame, (x1 - x0, y1 - y0), interpolation=interp)
        self._top_bar(canvas, lay, state)
        if state.show_box:
            self._box(canvas, lay.box)
        if state.message:
            self._message(canvas, lay.message, state.message)
        self._audio(canvas, lay.audio, state)
        for rect, card, hit in zip(
            lay.hits, lay.hit_cards, unique_hits(state.hits, len(lay.hits)), strict=False
        ):
            self._hit(canvas, rect, card, hit)
        if state.guidance is not None or state.goal_label is not None:
            self._guidance(canvas, lay, state)
        return canvas

    # ---- elements -------------------------------------------------------------------------------

    def _top_bar(self, canvas: np.ndarray, lay: HudLayout, s: HudState) -> None:
        _panel(canvas, lay.top_bar)
        fps = f"{s.fps:5.1f} fps" if s.fps is not None else "  -- fps"
        lat = f"{s.latency_ms:6.1f} ms" if s.latency_ms is not None else "   -- ms"
        x0, y0, _, y1 = lay.rec
        top, ts = fit_text(f"{fps}  {lat}", x0 - 12, 0.55, min_scale=0.4)  # stays left of the REC state
        _text(canvas, top, (8, 20), ts, WHITE)
        cy = (y0 + y1) // 2
        if s.recording is Recording.ON:
            cv2.circle(canvas, (x0 + 16, cy), 8, RED, -1, cv2.LINE_AA)
            _text(canvas, "REC", (x0 + 30, cy + 6), 0.6, RED)
        elif s.recording is Recording.PAUSED:
            cv2.rectangle(canvas, (x0 + 9, cy - 8), (x0 + 13, cy + 8), YELLOW, -1)
            cv2.rectangle(canvas, (x0 + 18, cy - 8), (x0 + 22, cy + 8), YELLOW, -1)
            _text(canvas, "PAUSED", (x0 + 30, cy + 6), 0.6, YELLOW)
        else:
            cv2.circle(canvas, (x0 + 16, cy), 7, GREY, 2, cv2.LINE_AA)
            _text(canvas, "no memory", (x0 + 30, cy + 6), 0.5, GREY)

    def _message(self, canvas: np.ndarray, rect: Rect, message: str) -> None:
        x0, y0, x1, _ = rect
        lines = wrap_text(message, x1 - x0 - 16, _MSG_SCALE, MESSAGE_LINES)
        if not lines:
            return
        _panel(canvas, (x0, y0, x1, y0 + _MSG_BASE + _MSG_PITCH * (len(lines) - 1) + 8))
        for k, line in enumerate(lines):
            _text(canvas, line, (x0 + 8, y0 + _MSG_BASE + k * _MSG_PITCH), _MSG_SCALE, WHITE)

    def _box(self, canvas: np.ndarray, box: Rect) -> None:
        x0, y0, x1, y1 = box
        arm = max(6, (x1 - x0) // 5)
        for cx, cy, dx, dy in (
            (x0, y0, 1, 1),
            (x1 - 1, y0, -1, 1),
            (x0, y1 - 1, 1, -1),
            (x1 - 1, y1 - 1, -1, -1),
        ):
            cv2.line(canvas, (cx, cy), (cx + dx * arm, cy), BOX, 3)
            cv2.line(canvas, (cx, cy), (cx, cy + dy * arm), BOX, 3)

    def _audio(self, canvas: np.ndarray, rect: Rect, s: HudState) -> None:
        x0, y0, x1, y1 = rect
        _panel(canvas, rect)
        _text(canvas, "mic", (x0 + 6, y1 - 9), 0.45, WHITE)
        bar = (x0 + 40, y0 + 9, x1 - 30, y1 - 9)
        cv2.rectangle(canvas, bar[:2], (bar[2], bar[3]), GREY, 1)
        if s.audio_level_db is None:
            _text(canvas, "off", (bar[0] + 6, bar[3] - 2), 0.4, GREY)
        else:
            frac = (min(0.0, max(-60.0, s.audio_level_db)) + 60.0) / 60.0
            fill = bar[0] + int(round(frac * (bar[2] - bar[0])))
            if fill > bar[0]:
                cv2.rectangle(canvas, (bar[0] + 1, bar[1] + 1), (fill, bar[3] - 1), GREEN, -1)
        colour = GREEN if s.speaking else GREY
        cv2.circle(canvas, (x1 - 15, (y0 + y1) // 2), 7, colour, -1 if s.speaking else 1, cv2.LINE_AA)

    def _hit(self, canvas: np.ndarray, rect: Rect, card: Rect, hit: MemoryHit) -> None:
        x0, y0, x1, y1 = rect
        _panel(canvas, card)
        if hit.thumb is not None and hit.thumb.size:
            canvas[y0:y1, x0:x1] = _fit(hit.thumb, x1 - x0, y1 - y0)
        else:  # nothing to show: a grey "?" placeholder
            q_scale = max(0.5, (y1 - y0) / 60)
            (qw, qh), _ = cv2.getTextSize("?", FONT, q_scale, 2)
            _text(canvas, "?", ((x0 + x1 - qw) // 2, (y0 + y1 + qh) // 2), q_scale, GREY, 2)
        cv2.rectangle(canvas, (x0, y0), (x1 - 1, y1 - 1), CYAN, 1)
        width = x1 - x0 - 1
        for k, (line, colour) in enumerate(hit_lines(hit)):
            t, ts = fit_text(line, width, 0.4 if k == 0 else 0.38, min_scale=0.32)
            _text(canvas, t, (x0, y1 + 11 + 11 * k), ts, colour)

    def _guidance(self, canvas: np.ndarray, lay: HudLayout, s: HudState) -> None:
        x0, y0, x1, _ = lay.guidance
        ax0, ay0, ax1, ay1 = lay.guidance_arrow
        _panel(canvas, lay.guidance)
        tx = ax1 + 8
        tw = x1 - 8 - tx
        if s.goal_label is not None:
            goal, gs = fit_text(f"goal: {s.goal_label}", tw, 0.42, min_scale=0.34)
            _text(canvas, goal, (tx, y0 + 17), gs, WHITE)
        g = s.guidance
        if g is None:
            t, ts = fit_text("no planner", tw, 0.55, min_scale=0.4)
            _text(canvas, t, (tx, y0 + 44), ts, GREY)
            t, ts = fit_text("goal stored", tw, 0.42, min_scale=0.34)
            _text(canvas, t, (tx, y0 + 64), ts, GREY)
            return
        cx, cy, side = (ax0 + ax1) // 2, (ay0 + ay1) // 2, ax1 - ax0
        reached = bool(getattr(g, "reached", False))
        if reached:  # arrived: a green ring with a check, no arrow
            r = int(side * 0.4)
            cv2.circle(canvas, (cx, cy), r, GREEN, max(2, side // 30), cv2.LINE_AA)
            pts = np.array(
                [(cx - r * 0.5, cy + r * 0.02), (cx - r * 0.12, cy + r * 0.4), (cx + r * 0.55, cy - r * 0.38)]
            )
            cv2.polylines(
                canvas, [pts.round().astype(np.int32)], False, GREEN, max(3, side // 18), cv2.LINE_AA
            )
            title, colour = "REACHED", GREEN
        else:
            dx, dy = arrow_vector(g.action, getattr(g, "action_name", None))
            r = side * 0.38
            if dx or dy:
                tip = (int(round(cx + dx * r)), int(round(cy + dy * r)))
                tail = (int(round(cx - dx * r)), int(round(cy - dy * r)))
                cv2.arrowedLine(canvas, tail, tip, ARROW, max(3, side // 18), cv2.LINE_AA, tipLength=0.45)
            else:  # an action the HUD has no direction for: a dot, the name says what it is
                cv2.circle(canvas, (cx, cy), max(3, side // 10), ARROW, -1, cv2.LINE_AA)
            title, colour = action_name(g).upper(), ARROW
        t, ts = fit_text(title, tw, 0.62, thickness=2, min_scale=0.4)
        _text(canvas, t, (tx, y0 + 44), ts, colour, 2)

        conf = float(g.confidence)
        conf = min(1.0, max(0.0, conf)) if math.isfinite(conf) else 0.0
        label, cs = fit_text(f"conf {conf:.2f}", tw, 0.4, min_scale=0.34)
        _text(canvas, label, (tx, y0 + 64), cs, WHITE)
        bx0 = tx + cv2.getTextSize(label, FONT, cs, 1)[0][0] + 6
        if tx + tw - bx0 >= 20:  # the confidence bar, when there is room for it
            cv2.rectangle(canvas, (bx0, y0 + 55), (tx + tw - 1, y0 + 64), GREY, 1)
            fill = bx0 + 1 + int(round(conf * (tx + tw - 3 - bx0)))
            bar_colour = GREEN if conf >= 0.6 else YELLOW if conf >= 0.3 else RED
            if fill > bx0 + 1:
                cv2.rectangle(canvas, (bx0 + 1, y0 + 56), (fill, y0 + 63), bar_colour, -1)

        details = []
        if _is_continuous(g.action):
            a = np.asarray(g.action, dtype=np.float64).ravel()
            details.append(f"{a[0]:+.2f} m/s {a[1]:+.0f} deg/s")
        details.append(f"E {float(g.energy):.3f}" + (f"  via #{g.subgoal}" if g.subgoal is not None else ""))
        for k, line in enumerate(details):
            t, ds = fit_text(line, tw, 0.4, min_scale=0.34)
            _text(canvas, t, (tx, y0 + 81 + 16 * k), ds, WHITE)


def format_age(age_s: float) -> str:
    """Seconds -> '3.2 s ago' / '4 min ago' / '2.0 h ago' / 'just now'."""
    if age_s < 0.5:
        return "just now"
    if age_s < 60:
        return f"{age_s:.1f} s ago"
    if age_s < 3600:
        return f"{age_s / 60:.0f} min ago"
    return f"{age_s / 3600:.1f} h ago"


def text_width(text: str, scale: float, thickness: int = 1) -> int:
    """Pixels the HUD font needs for text on one line."""
    return int(cv2.getTextSize(text, FONT, scale, thickness)[0][0]) if text else 0


def ellipsize(text: str, max_w: int, scale: float, thickness: int = 1) -> str:
    """text, cut and ended with '...' if it is wider than max_w pixels ('' if not even '...' fits)."""
    if text_width(text, scale, thickness) <= max_w:
        return text
    for k in range(len(text) - 1, -1, -1):
        cut = text[:k].rstrip() + "..."
        if text_width(cut, scale, thickness) <= max_w:
            return cut
    return ""


def fit_text(
    text: str, max_w: int, scale: float, *, thickness: int = 1, min_scale: float | None = None
) -> tuple[str, float]:
    """(text, scale) that fits max_w pixels: the scale shrinks down to min_scale, then the text is cut."""
    floor = scale if min_scale is None else min_scale
    while text_width(text, scale, thickness) > max_w and scale - 0.02 >= floor - 1e-9:
        scale = round(scale - 0.02, 3)
    return ellipsize(text, max_w, scale, thickness), scale


def wrap_text(text: str, max_w: int, scale: float, max_lines: int, thickness: int = 1) -> list[str]:
    """Word-wrap text into at most max_lines lines of at most max_w pixels; the last line ends with
    '...' when the text does not fit. Words wider than a line are broken."""
    lines: list[str] = []
    cur = ""
    for word in text.split():
        cand = f"{cur} {word}" if cur else word
        if text_width(cand, scale, thickness) <= max_w:
            cur = cand
            continue
        if cur:
            lines.append(cur)
        while len(word) > 1 and text_width(word, scale, thickness) > max_w:  # a word wider than a line
            k = 1
            while k < len(word) and text_width(word[: k + 1], scale, thickness) <= max_w:
                k += 1
            lines.append(word[:k])
            word = word[k:]
        cur = word
    if cur:
        lines.append(cur)
    if len(lines) > max_lines:
        rest = " ".join(lines[max_lines - 1 :])
        lines = [*lines[: max_lines - 1], ellipsize(rest, max_w, scale, thickness)]
    return lines


def _fit(img: np.ndarray, w: int, h: int) -> np.ndarray:
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if img.shape[1] > w else cv2.INTER_LINEAR)


def _panel(canvas: np.ndarray, rect: Rect, alpha: float = 0.55) -> None:
    """Darken a rectangle so text stays readable on any image."""
    x0, y0, x1, y1 = (max(0, v) for v in rect)
    region = canvas[y0:y1, x0:x1]
    region[:] = (region.astype(np.float32) * (1.0 - alpha)).astype(np.uint8)


def _text(
    canvas: np.ndarray, text: str, org: tuple[int, int], scale: float, colour: RGB, thickness: int = 1
) -> None:
    cv2.putText(canvas, text, org, FONT, scale, colour, thickness, cv2.LINE_AA)
