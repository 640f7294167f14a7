"""`glasses-sim demo`: what `make demo` runs, headless, with the shipped models (registered on
``simulator.cli.app``; split out so the CLI module stays one concern per file)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from simulator.cli import (
    BUNDLED_CLIP,
    SHIPPED_PTE,
    SHIPPED_WORLD_MODEL_PTE,
    Model,
    Threads,
    WorldModel,
    _fail,
    _find,
    app,
)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the videos, reports and memory.")] = Path(
        "runs/demo"
    ),
    clip: Annotated[
        Path, typer.Option("--clip", help="The real clip run through the runtime.")
    ] = BUNDLED_CLIP,
    model: Model = SHIPPED_PTE,
    world_model: WorldModel = SHIPPED_WORLD_MODEL_PTE,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the find-the-object episode.")] = 0,
    threads: Threads = 2,
) -> None:
    """What `make demo` runs, headless, with the shipped models: the bundled clip through the runtime into a
    fresh memory (enroll, mark, visual query), then one "find the object" episode solved by the planner;
    prints a summary table and where the videos and reports are."""
    from rich.console import Console
    from rich.table import Table

    from glasses_runtime.engines.encoder import load_encoder
    from glasses_runtime.engines.pte import ModelFileError
    from glasses_runtime.sources import SourceError, VideoFile, VideoFileConfig
    from simulator.app import Session, SessionConfig
    from simulator.errors import SimulatorError
    from simulator.keys import KeyScript

    out.mkdir(parents=True, exist_ok=True)
    for stale in ("memory.db", "memory.db-wal", "memory.db-shm", "find_memory.db"):
        (out / stale).unlink(missing_ok=True)  # fresh memories every run
    t0 = time.monotonic()
    try:
        load_encoder(model, threads=threads)  # a missing or foreign model fails here, before any work
        cfg = SessionConfig(
            model=model,
            memory=out / "memory.db",
            record=out / "hud.mp4",
            report=out,
            keys=KeyScript.parse("e@40:bike,m@60,q@110"),
            threads=threads,
        )
        clip_summary = Session(cfg, VideoFile(VideoFileConfig(clip, realtime=False))).run()
    except (SimulatorError, SourceError, ModelFileError, ValueError) as e:
        _fail(str(e))
        return
    if clip_summary.get("error"):
        _fail(clip_summary["error"])
    query = next(
        (e for e in reversed(_report_timeline(out / "report.json")) if e["kind"] == "query"),
        None,
    )
    find = _find(
        model,
        world_model,
        seed,
        200,
        100,
        "hierarchical_pose",
        out / "find_memory.db",
        out / "find.mp4",
        out / "find",
        threads,
    )
    table = Table(title=f"glasses-sim demo ({time.monotonic() - t0:.0f} s)")
    table.add_column("step")
    table.add_column("result")
    table.add_column("output", overflow="fold")
    table.add_row(
        f"runtime: {clip.name} -> memory",
        f"{clip_summary['frames_processed']} frames, {clip_summary['keyframes']} keyframes, "
        f"p50 {clip_summary['latency_ms']['p50']} ms/frame ({clip_summary['engine']})",
        str(cfg.memory),
    )
    table.add_row(
        "enroll + visual query",
        (query["text"] if query else "no query ran"),
        str(clip_summary["report"]["html"]),
    )
    table.add_row(
        "HUD video (clip)", f"{clip_summary['recorded_frames']} frames", str(clip_summary["record"])
    )
    table.add_row(
        f"find the object ({find['policy']})",
        f"{find['outcome']}; replan p50 {find['replan_ms_p50']} ms",
        f"{find['record']}\n{find['report']['html']}",
    )
    Console().print(table)
    if not find["success"]:
        typer.echo(
            "the planner did not reach the object in this episode (see the benchmark for rates)", err=True
        )


def _report_timeline(path: Path) -> list[dict]:
    return json.loads(path.read_text())["timeline"]
