"""The glasses display: draws the HUD over a camera frame with OpenCV (no window needed).

    hud = Hud(HudConfig(width=640, height=480))
    canvas = hud.draw(frame_rgb, HudState(fps=29.7, latency_ms=4.8, recording=Recording.ON))
    # canvas: RGB uint8 [480, 640, 3]; shown by a window (simulator/display.py) or written to a video

Layout (``HudLayout`` has the rectangles, so tests and the report can find every element):
top-left fps and latency; top-right the recording state (red REC dot, yellow PAUSED bars, grey
"no memory"); bottom-left the audio level bar and the speech dot; right column the memory hits
(thumbnail + label + "last seen ... ago"); bottom centre the planner guidance (arrow + text);
the centre box marks what ``e``/``q``/``g`` act on; a one-line message under the top bar.

The camera frame is scaled to fit the canvas (letterboxed, aspect kept).
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


def guidance_text(g: GuidanceLike) -> str:
    """One line for the HUD and the report: the action, energy, confidence, subgoal."""
    name = getattr(g, "action_name", None) or _action_label(g.action)
    parts = [name.replace("_", " "), f"E {g.energy:.3f}", f"conf {g.confidence:.2f}"]
    if g.subgoal is not None:
        parts.append(f"via #{g.subgoal}")
    if getattr(g, "reached", False):
        parts.insert(0, "REACHED")
    return " | ".join(parts)


def _action_label(action: int | np.ndarray) -> str:
    if isinstance(action, np.ndarray) and action.size >= 2:
        return f"move {float(action[0]):+.2f} m/s, turn {float(action[1]):+.0f} deg/s"
    return DISCRETE_NAMES.get(int(action), f"action {int(action)}")


def arrow_vector(action: int | np.ndarray) -> tuple[float, float]:
    """Screen direction (dx, dy), unit length or less, for an action: up = forward, left = turn left."""
    if isinstance(action, np.ndarray) and action.size >= 2:
        speed, turn = float(action[0]), float(action[1])
        angle = math.radians(max(-90.0, min(90.0, turn)))  # turn rate -> lean of the arrow
        mag = max(0.35, min(1.0, abs(speed)))
        sign = 1.0 if speed >= 0 else -1.0
        return (-math.sin(angle) * mag, -math.cos(angle) * mag * sign)
    return {0: (-1.0, 0.0), 1: (1.0, 0.0), 2: (0.0, -1.0), 3: (0.0, 1.0)}.get(int(action), (0.0, 0.0))


@dataclass
class MemoryHit:
    """One remembered moment on the HUD. thumb: RGB uint8 [h, w, 3] or None. age_s: how long ago."""

    label: str
    thumb: np.ndarray | None = None
    age_s: float | None = None
    score: float | None = None


@dataclass
class HudState:
    """Everything the HUD shows for one frame. audio_level_db: dBFS (-60..0), None without audio."""

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
    max_hits: memory hits shown at once. thumb_w: hit thumbnail width in pixels."""

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
    """Where each element goes on the canvas (and where the camera image lands)."""

    image: Rect
    top_bar: Rect
    rec: Rect
    message: Rect
    audio: Rect
    hits: tuple[Rect, ...]
    guidance: Rect
    box: Rect


class Hud:
    def __init__(self, config: HudConfig | None = None) -> None:
        self.cfg = config or HudConfig()

    def layout(self, frame_hw: tuple[int, int]) -> HudLayout:
        c = self.cfg
        fh, fw = frame_hw
        scale = min(c.width / fw, c.height / fh)
        iw, ih = max(1, int(round(fw * scale))), max(1, int(round(fh * scale)))
        ix, iy = (c.width - iw) // 2, (c.height - ih) // 2
        bx0, by0, bx1, by1 = centre_box(ih, iw, c.box_frac)
        th = int(round(c.thumb_w * 0.75))
        hits = tuple(
            (c.width - c.thumb_w - 8, 40 + i * (th + 30), c.width - 8, 40 + i * (th + 30) + th)
            for i in range(c.max_hits)
        )
        return HudLayout(
            image=(ix, iy, ix + iw, iy + ih),
            top_bar=(0, 0, c.width, 28),
            rec=(c.width - 130, 0, c.width, 28),
            message=(0, 30, c.width - c.thumb_w - 16, 54),
            audio=(10, c.height - 40, 150, c.height - 12),
            hits=hits,
            guidance=(c.width // 2 - 150, c.height - 110, c.width // 2 + 150, c.height - 8),
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
        if state.message:
            _panel(canvas, lay.message)
            _text(canvas, state.message[:80], (lay.message[0] + 8, lay.message[3] - 7), 0.5, WHITE)
        if state.show_box:
            self._box(canvas, lay.box)
        self._audio(canvas, lay.audio, state)
        for rect, hit in zip(lay.hits, state.hits[: c.max_hits], strict=False):
            self._hit(canvas, rect, hit)
        if state.guidance is not None or state.goal_label is not None:
            self._guidance(canvas, lay.guidance, state)
        return canvas

    # ---- elements -------------------------------------------------------------------------------

    def _top_bar(self, canvas: np.ndarray, lay: HudLayout, s: HudState) -> None:
        _panel(canvas, lay.top_bar)
        fps = f"{s.fps:5.1f} fps" if s.fps is not None else "  -- fps"
        lat = f"{s.latency_ms:6.1f} ms" if s.latency_ms is not None else "   -- ms"
        _text(canvas, f"{fps}  {lat}", (8, 20), 0.55, WHITE)
        x0, y0, _, y1 = lay.rec
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

    def _hit(self, canvas: np.ndarray, rect: Rect, hit: MemoryHit) -> None:
        x0, y0, x1, y1 = rect
        _panel(canvas, (x0 - 4, y0 - 4, x1 + 4, y1 + 26))
        if hit.thumb is not None and hit.thumb.size:
            canvas[y0:y1, x0:x1] = _fit(hit.thumb, x1 - x0, y1 - y0)
        else:
            cv2.rectangle(canvas, (x0, y0), (x1 - 1, y1 - 1), GREY, 1)
        cv2.rectangle(canvas, (x0, y0), (x1 - 1, y1 - 1), CYAN, 1)
        _text(canvas, hit.label[:16], (x0, y1 + 10), 0.38, CYAN)
        when = "last seen " + (format_age(hit.age_s) if hit.age_s is not None else "never")
        _text(canvas, when[:20], (x0, y1 + 22), 0.38, WHITE)

    def _guidance(self, canvas: np.ndarray, rect: Rect, s: HudState) -> None:
        x0, y0, x1, y1 = rect
        _panel(canvas, rect)
        if s.goal_label is not None:
            _text(canvas, f"goal: {s.goal_label}"[:40], (x0 + 8, y0 + 18), 0.45, WHITE)
        g = s.guidance
        if g is None:
            _text(canvas, "no planner: goal stored", (x0 + 8, y1 - 10), 0.45, GREY)
            return
        dx, dy = arrow_vector(g.action)
        cx, cy, r = (x0 + x1) // 2, (y0 + y1) // 2 - 4, 30
        if dx or dy:
            tip = (int(round(cx + dx * r)), int(round(cy + dy * r)))
            tail = (int(round(cx - dx * r)), int(round(cy - dy * r)))
            cv2.arrowedLine(canvas, tail, tip, ARROW, 5, cv2.LINE_AA, tipLength=0.45)
        _text(canvas, guidance_text(g)[:44], (x0 + 8, y1 - 8), 0.42, ARROW)


def format_age(age_s: float) -> str:
    """Seconds -> '3.2 s ago' / '4 min ago' / '2.0 h ago' / 'just now'."""
    if age_s < 0.5:
        return "just now"
    if age_s < 60:
        return f"{age_s:.1f} s ago"
    if age_s < 3600:
        return f"{age_s / 60:.0f} min ago"
    return f"{age_s / 3600:.1f} h ago"


def _fit(img: np.ndarray, w: int, h: int) -> np.ndarray:
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if img.shape[1] > w else cv2.INTER_LINEAR)


def _panel(canvas: np.ndarray, rect: Rect, alpha: float = 0.55) -> None:
    """Darken a rectangle so text stays readable on any image."""
    x0, y0, x1, y1 = (max(0, v) for v in rect)
    region = canvas[y0:y1, x0:x1]
    region[:] = (region.astype(np.float32) * (1.0 - alpha)).astype(np.uint8)


def _text(canvas: np.ndarray, text: str, org: tuple[int, int], scale: float, colour: RGB) -> None:
    cv2.putText(canvas, text, org, FONT, scale, colour, 1, cv2.LINE_AA)
