"""The session report: what happened in a simulator session, as JSON and as one self-contained HTML page.

    log = SessionLog()                      # filled by the session loop (simulator/app.py)
    paths = write_report("out/", log, summary)   # out/report.json, out/report.html

The HTML page needs nothing else: thumbnails are inlined as base64 ``data:`` URIs, the latency plot
is inline SVG (no namespace URL: HTML5 does not need one), the style is inline CSS, and there is no script at all, so it opens offline, from a
mail attachment or an archive, and cannot fetch anything. Sections: summary, timeline (keyframes
with thumbnails, marks, speech, surprise boundaries, enrolments, queries, goals, in time order),
queries and their answers, planner outcome, latency per frame.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from simulator.errors import ReportError

MAX_KEYFRAMES_SHOWN = 120  # more would make the page heavy; the JSON keeps them all


def jpeg(rgb: np.ndarray, max_side: int = 160, quality: int = 80) -> bytes:
    """RGB uint8 [H, W, 3] -> small JPEG bytes (for the report and the HUD's memory hits)."""
    h, w = rgb.shape[:2]
    s = min(1.0, max_side / max(h, w))
    small = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise ReportError("OpenCV could not encode a JPEG thumbnail")
    return buf.tobytes()


def decode_jpeg(data: bytes) -> np.ndarray | None:
    """JPEG bytes -> RGB uint8 [H, W, 3], or None if they do not decode."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@dataclass
class Entry:
    """One timeline entry. kind: keyframe | mark | speech | surprise | enroll | query | goal | pause | resume.
    thumb: JPEG of the frame (or of the centre crop for enroll/query/goal). answer_thumb: a query's answer."""

    kind: str
    frame_index: int
    t_ns: int
    text: str = ""
    thumb: bytes | None = None
    answer_thumb: bytes | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict:
        d = asdict(self)
        d["has_thumb"], d["has_answer_thumb"] = self.thumb is not None, self.answer_thumb is not None
        del d["thumb"], d["answer_thumb"]
        return d


@dataclass
class SessionLog:
    """What the session loop records for the report (thumbnails are small JPEGs)."""

    entries: list[Entry] = field(default_factory=list)
    latency_ms: list[tuple[int, float]] = field(default_factory=list)  # (frame index, total ms)
    planner: dict[str, Any] | None = None

    def add(self, entry: Entry) -> Entry:
        self.entries.append(entry)
        return entry

    def of_kind(self, kind: str) -> list[Entry]:
        return [e for e in self.entries if e.kind == kind]


def write_report(out_dir: str | Path, log: SessionLog, summary: dict) -> dict[str, Path]:
    """Write ``report.json`` and ``report.html`` into out_dir (created if needed)."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ReportError(
            f"cannot create the report folder {out} ({e}); pick a writable --report folder"
        ) from None
    doc = {
        "format": "glasses-sim-report",
        "version": 1,
        "summary": summary,
        "timeline": [e.to_json() for e in sorted(log.entries, key=lambda e: (e.frame_index, e.t_ns))],
        "latency_ms": [{"frame": i, "total": round(v, 3)} for i, v in log.latency_ms],
        "planner": log.planner,
    }
    paths = {"json": out / "report.json", "html": out / "report.html"}
    paths["json"].write_text(json.dumps(doc, indent=2, default=_json_default))
    paths["html"].write_text(render_html(log, summary))
    return paths


def _json_default(o: object) -> object:
    if isinstance(o, (np.integer, np.floating)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# ---- HTML ---------------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;background:#111;color:#eee}
h1,h2{font-weight:600} table{border-collapse:collapse} td,th{padding:4px 10px;border-bottom:1px solid #333;text-align:left}
.tl{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-start} .card{background:#1c1c1c;border-radius:6px;padding:6px;width:170px;font-size:12px}
.card img{width:160px;display:block;border-radius:4px} .kind{font-weight:600;text-transform:uppercase;font-size:11px}
.keyframe .kind{color:#6cf} .mark .kind{color:#fd4} .speech .kind{color:#4e8} .surprise .kind{color:#f66}
.enroll .kind{color:#f0f} .query .kind{color:#0ef} .goal .kind{color:#0f8} .q img{width:160px}
.muted{color:#999} svg{background:#1c1c1c;border-radius:6px}
"""


def _img(data: bytes | None, alt: str) -> str:
    if data is None:
        return ""
    return f'<img alt="{html.escape(alt)}" src="data:image/jpeg;base64,{base64.b64encode(data).decode()}">'


def _card(e: Entry) -> str:
    t_s = e.data.get("t_s")
    when = f"frame {e.frame_index}" + (f" · {t_s:.2f} s" if isinstance(t_s, (int, float)) else "")
    return (
        f'<div class="card {html.escape(e.kind)}"><div class="kind">{html.escape(e.kind)}</div>'
        f"{_img(e.thumb, e.kind)}{_img(e.answer_thumb, 'answer')}"
        f'<div class="muted">{html.escape(when)}</div><div>{html.escape(e.text)}</div></div>'
    )


def latency_svg(points: list[tuple[int, float]], width: int = 720, height: int = 200) -> str:
    """An inline SVG line plot of per-frame latency (ms) with its p50 and p95 as dashed lines."""
    if not points:
        return '<p class="muted">no frames were processed</p>'
    xs = np.array([p[0] for p in points], dtype=np.float64)
    ys = np.array([p[1] for p in points], dtype=np.float64)
    pad_l, pad_b, pad_t, pad_r = 48, 24, 10, 10
    x_span = max(1.0, float(xs.max() - xs.min()))
    y_max = max(1e-3, float(np.percentile(ys, 99)) * 1.15, float(np.percentile(ys, 95)) * 1.2)

    def sx(x: float) -> float:
        return pad_l + (x - xs.min()) / x_span * (width - pad_l - pad_r)

    def sy(y: float) -> float:
        return height - pad_b - min(y, y_max) / y_max * (height - pad_b - pad_t)

    line = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, ys, strict=True))
    p50, p95 = (float(v) for v in np.percentile(ys, [50, 95]))
    parts = [
        f'<svg width="{width}" height="{height}" role="img" aria-label="latency per frame">',
        f'<line x1="{pad_l}" y1="{height - pad_b}" x2="{width - pad_r}" y2="{height - pad_b}" stroke="#888"/>',
        f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{height - pad_b}" stroke="#888"/>',
        f'<polyline fill="none" stroke="#6cf" stroke-width="1.5" points="{line}"/>',
    ]
    for name, v, colour in (("p50", p50, "#4e8"), ("p95", p95, "#fd4")):
        parts.append(
            f'<line x1="{pad_l}" y1="{sy(v):.1f}" x2="{width - pad_r}" y2="{sy(v):.1f}" stroke="{colour}" '
            f'stroke-dasharray="4 3"/><text x="{width - pad_r - 4}" y="{sy(v) - 3:.1f}" fill="{colour}" '
            f'font-size="11" text-anchor="end">{name} {v:.1f} ms</text>'
        )
    parts.append(f'<text x="4" y="{pad_t + 10}" fill="#aaa" font-size="11">{y_max:.0f} ms</text>')
    parts.append(f'<text x="4" y="{height - pad_b}" fill="#aaa" font-size="11">0</text>')
    parts.append(
        f'<text x="{width - pad_r}" y="{height - 6}" fill="#aaa" font-size="11" text-anchor="end">frame</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _summary_rows(summary: dict) -> str:
    keys = (
        "source",
        "mode",
        "frames_in",
        "frames_processed",
        "frames_dropped",
        "keyframes",
        "events",
        "fps",
        "latency_ms",
        "memory_path",
        "stopped_by",
        "engine",
    )
    rows = []
    for k in keys:
        if k in summary:
            v = summary[k]
            text = json.dumps(v, default=_json_default) if isinstance(v, (dict, list)) else str(v)
            rows.append(f"<tr><th>{html.escape(k)}</th><td>{html.escape(text)}</td></tr>")
    return "".join(rows)


def render_html(log: SessionLog, summary: dict) -> str:
    entries = sorted(log.entries, key=lambda e: (e.frame_index, e.t_ns))
    keyframes = [e for e in entries if e.kind == "keyframe"]
    note = ""
    if len(keyframes) > MAX_KEYFRAMES_SHOWN:
        step = len(keyframes) / MAX_KEYFRAMES_SHOWN
        keep = {id(keyframes[int(i * step)]) for i in range(MAX_KEYFRAMES_SHOWN)}
        entries = [e for e in entries if e.kind != "keyframe" or id(e) in keep]
        note = f'<p class="muted">{len(keyframes)} keyframes; {MAX_KEYFRAMES_SHOWN} shown evenly spaced (all in report.json)</p>'
    queries = [e for e in entries if e.kind == "query"]
    q_rows = "".join(
        f'<tr class="q"><td>{e.frame_index}</td><td>{_img(e.thumb, "query crop")}</td>'
        f"<td>{_img(e.answer_thumb, 'answer') or '<span class=muted>no answer</span>'}</td>"
        f"<td>{html.escape(e.text)}</td></tr>"
        for e in queries
    )
    planner = log.planner
    if planner:
        p_html = (
            "<table>"
            + "".join(
                f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                for k, v in planner.items()
            )
            + "</table>"
        )
    else:
        p_html = '<p class="muted">no planner in this session</p>'
    title = f"glasses-sim session: {summary.get('source', '')}"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><h2>Summary</h2><table>{_summary_rows(summary)}</table>"
        f'<h2>Timeline</h2>{note}<div class="tl">{"".join(_card(e) for e in entries)}</div>'
        f"<h2>Queries and answers</h2>"
        + (
            f"<table><tr><th>frame</th><th>query</th><th>answer</th><th></th></tr>{q_rows}</table>"
            if queries
            else '<p class="muted">no queries</p>'
        )
        + f"<h2>Planner</h2>{p_html}<h2>Latency per frame</h2>{latency_svg(log.latency_ms)}"
        "</body></html>"
    )
