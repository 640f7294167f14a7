"""A "find the object" episode on the glasses HUD: the planner's guidance over every frame, as video + report.

    with FindTheObject(encoder, world_model, seed=0) as task:
        summary = play(task, record="find.mp4", report="find/")   # what `glasses-sim find` prints

The HUD shows the remembered goal moment as a memory card ("goal: cone"), the guidance arrow, action,
energy and confidence each step, the replan time in place of the encoder latency, and "reached" at the
end. The report (``report.json`` + ``report.html``) holds the goal, a guidance entry every
``every`` steps with its frame, the outcome, and the replan time per step as the latency plot.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from simulator.display import VideoRecorder
from simulator.find_object import FindTheObject
from simulator.hud import Hud, HudConfig, HudState, MemoryHit, Recording, guidance_text
from simulator.report import Entry, SessionLog, jpeg, write_report


def play(
    task: FindTheObject,
    *,
    record: str | Path | None = None,
    report: str | Path | None = None,
    memory: str | Path | None = None,
    fps: float = 10.0,
    every: int = 5,
    hud: HudConfig | None = None,
) -> dict:
    """Prepare (explore + remember) and run the episode, drawing each step; -> the summary dict."""
    t0 = time.monotonic()
    recorder = VideoRecorder(record, fps) if record is not None else None  # bad paths fail before the work
    ep = task.prepare(memory)
    prepared_s = time.monotonic() - t0
    painter = Hud(hud or HudConfig())
    goal_rgb = ep.frames[ep.goal_frame]
    age_s = (ep.t_ns[-1] - ep.t_ns[ep.goal_frame]) / 1e9
    state = HudState(recording=Recording.OFF, goal_label=task.goal.label, show_box=False)
    state.hits = [MemoryHit(f"goal: {ep.object}", goal_rgb, age_s, None)]
    log = SessionLog()
    t_goal = ep.t_ns[ep.goal_frame]
    log.add(
        Entry(
            "goal",
            0,
            t_goal,
            f"find the {ep.object}: remembered keyframe {task.goal.keyframe_id}, seen {age_s:.1f} s before the "
            f"walk ended",
            thumb=jpeg(goal_rgb),
            data={"keyframe": task.goal.keyframe_id, "object": ep.object},
        )
    )

    def on_step(step: int, frame: np.ndarray, pose: tuple, g: Any) -> None:
        state.guidance = g
        state.latency_ms = float(g.plan_ms) if g is not None else None
        state.message = f"step {step}/{task.cfg.max_steps}" + (
            f": {'reached' if g.reached else g.action_name.replace('_', ' ')}" if g is not None else ""
        )
        if g is not None:
            log.latency_ms.append((step, float(g.plan_ms)))
            if step % every == 0 or g.reached:
                log.add(
                    Entry(
                        "guidance",
                        step,
                        t_goal + step,
                        guidance_text(g),
                        thumb=jpeg(frame),
                        data={"pose": [round(float(v), 3) for v in pose]},
                    )
                )
        if recorder is not None:
            recorder.write(painter.draw(frame, state))

    try:
        result = task.run(on_step)
    finally:
        if recorder is not None:
            recorder.close()
    outcome = (
        f"{'found' if result['success'] else 'not found'}: the {result['object']} in {result['steps']} steps "
        f"(shortest path {result['oracle_steps']})"
    )
    log.add(Entry("outcome", result["steps"] + 1, t_goal + result["steps"] + 1, outcome))
    log.planner = {
        k: result[k] for k in ("policy", "success", "stopped", "steps", "oracle_steps", "replan_ms_p50")
    }
    summary = {
        "source": f"find the object (world seed {result['world_seed']})",
        **result,
        "outcome": outcome,
        "engine": {
            "encoder": task.emb.encoder.kind,
            "world_model": type(task.world_model).__name__,
        },
        "prepare_s": round(prepared_s, 2),
        "wall_s": round(time.monotonic() - t0, 2),
        "recorded_frames": recorder.frames if recorder else 0,
        "record": str(recorder.path) if recorder else None,
    }
    if report is not None:
        paths = write_report(report, log, summary)
        summary["report"] = {k: str(v) for k, v in paths.items()}
    return summary
