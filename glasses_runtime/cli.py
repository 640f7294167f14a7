"""`glasses-runtime`: the on-device runtime's command line.

glasses-runtime --help
glasses-runtime version
glasses-runtime run --source 0|FILE|DIR --model MODEL.pte --memory DB [--mic] [--mode video|live]
                    [--max-frames N] [--json] [--metrics-jsonl FILE]
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from glasses_runtime import __version__
from glasses_runtime.memory.cli import memory_app

app = typer.Typer(
    name="glasses-runtime",
    help="On-device perception runtime for smart glasses: streaming camera/microphone loop with "
    "ExecuTorch inference, episodic memory and a goal-driven planner.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(memory_app, name="memory")


@app.callback()
def _root() -> None:
    """Keep a command group even while it has one command, so --help lists every command."""


@app.command()
def version() -> None:
    """Print the package version."""
    typer.echo(__version__)


# Errors a user can hit while starting or running the loop: one line on stderr, exit 1.
def _user_errors() -> tuple[type[BaseException], ...]:
    from glasses_runtime.audio import AudioFileError
    from glasses_runtime.engines.pte import ModelFileError
    from glasses_runtime.memory import MemoryStoreError
    from glasses_runtime.planner.errors import PlannerError
    from glasses_runtime.runtime import RuntimeError_
    from glasses_runtime.sources import SourceError
    from glasses_runtime.writer import MemoryWriteError

    return (
        ModelFileError,
        SourceError,
        MemoryStoreError,
        MemoryWriteError,
        RuntimeError_,
        AudioFileError,
        PlannerError,
        ValueError,
    )


@app.command()
def run(
    source: Annotated[
        str, typer.Option("--source", "-s", help="Camera index (0), stream URL, video file or image folder.")
    ],
    model: Annotated[
        Path,
        typer.Option(
            "--model", "-m", help="Encoder .pte (with its manifest) or .safetensors (eager fallback)."
        ),
    ],
    memory: Annotated[
        Path | None, typer.Option("--memory", help="Episodic memory database to record into.")
    ] = None,
    mic: Annotated[
        bool, typer.Option("--mic", help="Listen to the default microphone; video-only if there is none.")
    ] = False,
    audio: Annotated[
        Path | None, typer.Option("--audio", help="A 16 kHz mono WAV run through the VAD alongside.")
    ] = None,
    mode: Annotated[
        str,
        typer.Option("--mode", help="video: every frame in order; live: newest frame wins, drops counted."),
    ] = "video",
    max_frames: Annotated[
        int | None, typer.Option("--max-frames", min=1, help="Stop after N frames.")
    ] = None,
    threads: Annotated[int, typer.Option("--threads", min=1, help="CPU threads for inference.")] = 2,
    folder_fps: Annotated[float, typer.Option("--folder-fps", help="Frame rate of an image folder.")] = 5.0,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON summary on stdout at the end.")
    ] = False,
    metrics_jsonl: Annotated[
        Path | None, typer.Option("--metrics-jsonl", help="Append metrics as JSON lines every second.")
    ] = None,
    table: Annotated[
        bool | None,
        typer.Option(
            "--table/--no-table",
            help="Live metrics table on stderr (default: on a terminal, without --json).",
        ),
    ] = None,
    surprise_model: Annotated[
        Path | None,
        typer.Option(
            "--surprise-model",
            help="Token world model (.pte beside its .safetensors): surprise = its prediction error "
            "(docs/runtime.md). Costs a batched call per frame.",
        ),
    ] = None,
) -> None:
    """Run the streaming loop: frames -> encoder -> salience -> keyframes/events in memory.

    Ctrl-C or SIGTERM stops it cleanly: the frame in flight finishes, everything is committed to the
    memory, and the summary is printed (exit 0).
    """
    from glasses_runtime.runner import RunConfig
    from glasses_runtime.runner import run as run_loop

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if stop.is_set():  # a second Ctrl-C: give up on the clean stop
            raise KeyboardInterrupt
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        cfg = RunConfig(
            source=source,
            model=model,
            memory=memory,
            mode=mode,
            max_frames=max_frames,
            mic=mic,
            audio_file=audio,
            threads=threads,
            folder_fps=folder_fps,
            metrics_jsonl=metrics_jsonl,
            live_table=(sys.stderr.isatty() and not json_out) if table is None else table,
            surprise_model=surprise_model,
        )
        summary = run_loop(cfg, stop=stop)
        if json_out:
            typer.echo(json.dumps(summary))
        else:
            lat = summary["latency_ms"]
            typer.echo(
                f"{summary['frames_processed']}/{summary['frames_in']} frames processed, "
                f"{summary['frames_dropped']} dropped, {summary['keyframes']} keyframes, {summary['events']} events, "
                f"{summary['fps']} fps, latency p50/p95/p99 {lat['p50']}/{lat['p95']}/{lat['p99']} ms "
                f"({summary['stopped_by']})"
            )
    except _user_errors() as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    finally:
        # Restored only after the summary is out: a signal arriving while it is printed must not kill the process.
        for s, h in previous.items():
            signal.signal(s, h)
    if summary.get("error"):
        typer.echo(f"error: {summary['error']}", err=True)
        raise typer.Exit(1)
