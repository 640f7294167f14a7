"""`glasses-sim`: the desktop pretends to be the glasses.

glasses-sim --help
glasses-sim webcam [--camera 0]                          # a window with the HUD; keys e q g p m, Esc
glasses-sim video tests/assets/bikes.mp4 --headless --record out.mp4 --report out/ --keys "e@40:bike,q@56"
glasses-sim world                                         # WASD walks the wearer through the apartment
glasses-sim world --autopilot planner --keys "g@150"      # explore, then the planner walks back to a goal
glasses-sim find --seed 0 --record find.mp4               # one "find the object" episode, solved by the planner
glasses-sim demo --out runs/demo                          # what `make demo` runs: clip + query + find, a table
glasses-sim version

Each command is a thin wrapper over ``simulator.app.Session``. Errors print one line on stderr and
exit 1; ``--json`` prints the session summary as one JSON object on stdout.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from glasses_runtime import __version__

app = typer.Typer(
    name="glasses-sim",
    help="Desktop simulator: runs a webcam, a video or a 3D world through the runtime with a HUD.",
    no_args_is_help=True,
    add_completion=False,
)

WEIGHTS = Path(__file__).resolve().parent.parent / "edge_models" / "weights"
DEFAULT_MODEL = WEIGHTS / "vit_tiny.safetensors"
DEFAULT_WORLD_MODEL = WEIGHTS / "world_model.safetensors"
SHIPPED_PTE = WEIGHTS / "encoder_vit_tiny_int8_xnnpack.pte"
SHIPPED_WORLD_MODEL_PTE = WEIGHTS / "world_model_wm_c2_h128x2_s64_t5_fp32_xnnpack.pte"
BUNDLED_CLIP = (
    Path(__file__).resolve().parent.parent / "tests" / "assets" / "bikes.mp4"
)  # works from any folder

Model = Annotated[
    Path, typer.Option("--model", help="Encoder: a .pte with its manifest, or a .safetensors checkpoint.")
]
Memory = Annotated[
    Path | None,
    typer.Option(
        "--memory", help="Episodic memory file to record into (default: a temporary one, deleted at the end)."
    ),
]
Headless = Annotated[bool, typer.Option("--headless", help="No window (automatic when DISPLAY is not set).")]
Record = Annotated[Path | None, typer.Option("--record", help="Write the HUD video to this .mp4 (mp4v).")]
Report = Annotated[
    Path | None,
    typer.Option("--report", help="Write report.json and a self-contained report.html into this folder."),
]
MaxFrames = Annotated[int | None, typer.Option("--max-frames", min=1, help="Stop after this many frames.")]
Keys = Annotated[
    str | None,
    typer.Option(
        "--keys", help="Scripted keys KEY@FRAME[:NAME], comma-separated, e.g. 'e@10:mug,q@40,esc@90'."
    ),
]
Audio = Annotated[
    Path | None,
    typer.Option("--audio", help="A 16 kHz mono WAV to run through the VAD (audio level + speech)."),
]
Mic = Annotated[bool, typer.Option("--mic", help="Listen to the default microphone (level + speech events).")]
Threads = Annotated[int, typer.Option("--threads", min=1, help="CPU threads for inference.")]
Json = Annotated[bool, typer.Option("--json", help="Print the session summary as one JSON object.")]
WorldModel = Annotated[
    Path,
    typer.Option(
        "--world-model",
        help="World model for the planner: a .pte with its manifest or a world_model.safetensors, trained on --model's embeddings.",
    ),
]


@dataclass(frozen=True)
class Common:
    """The options every session command shares."""

    model: Path
    memory: Path | None
    headless: bool
    record: Path | None
    report: Path | None
    max_frames: int | None
    keys: str | None
    audio: Path | None
    mic: bool
    threads: int
    json_out: bool


@app.callback()
def _root() -> None:
    """Keep a command group even while it has one command, so --help lists every command."""


@app.command()
def version() -> None:
    """Print the package version."""
    typer.echo(__version__)


@app.command()
def webcam(
    camera: Annotated[int, typer.Option("--camera", min=0, help="Camera index (OpenCV).")] = 0,
    model: Model = DEFAULT_MODEL,
    memory: Memory = None,
    headless: Headless = False,
    record: Record = None,
    report: Report = None,
    max_frames: MaxFrames = None,
    keys: Keys = None,
    audio: Audio = None,
    mic: Mic = False,
    threads: Threads = 2,
    json_out: Json = False,
) -> None:
    """A webcam through the runtime (LIVE_STREAM: the newest frame wins) with the glasses HUD."""

    def source():
        from glasses_runtime.sources import CameraConfig, OpenCVCamera

        return OpenCVCamera(CameraConfig(device=camera)).connect()

    _run(
        source,
        Common(model, memory, headless, record, report, max_frames, keys, audio, mic, threads, json_out),
        live=True,
        record_fps=30.0,
        pace_fps=None,
    )


@app.command()
def video(
    file: Annotated[Path, typer.Argument(help="A video file (anything FFmpeg reads).")],
    model: Model = DEFAULT_MODEL,
    memory: Memory = None,
    headless: Headless = False,
    record: Record = None,
    report: Report = None,
    max_frames: MaxFrames = None,
    keys: Keys = None,
    audio: Audio = None,
    mic: Mic = False,
    threads: Threads = 2,
    live: Annotated[
        bool, typer.Option("--live", help="LIVE_STREAM (paced like a camera; slow encoders drop frames).")
    ] = False,
    json_out: Json = False,
) -> None:
    """A video file through the runtime with the HUD.

    In a window it plays at its own frame rate; headless it runs as fast as it decodes (every frame, unless --live)."""
    from glasses_runtime.sources import VideoFile, VideoFileConfig

    windowed = not _is_headless(headless)
    holder: dict = {}

    def source():
        holder["src"] = VideoFile(VideoFileConfig(file, realtime=windowed or live))
        return holder["src"]

    _run(
        source,
        Common(model, memory, headless, record, report, max_frames, keys, audio, mic, threads, json_out),
        live=live,
        record_fps=lambda: holder["src"].fps,
        pace_fps=None,
    )


@app.command()
def world(
    model: Model = DEFAULT_MODEL,
    memory: Memory = None,
    headless: Headless = False,
    record: Record = None,
    report: Report = None,
    max_frames: MaxFrames = None,
    keys: Keys = None,
    audio: Audio = None,
    mic: Mic = False,
    threads: Threads = 2,
    seed: Annotated[int, typer.Option("--seed", help="World seed (floor plan, objects, start).")] = 0,
    rows: Annotated[int, typer.Option("--rows", help="Rooms along z.")] = 2,
    cols: Annotated[int, typer.Option("--cols", help="Rooms along x.")] = 2,
    size: Annotated[int, typer.Option("--size", help="Camera frame side in pixels.")] = 128,
    autopilot: Annotated[
        str | None,
        typer.Option(
            "--autopilot",
            help="Walk on its own when no key is pressed: random | waypoint | planner | none "
            "(planner: a random walk until a goal is set with g, then the planner's guidance drives; "
            "default: none in a window, random headless).",
        ),
    ] = None,
    world_model: WorldModel = DEFAULT_WORLD_MODEL,
    planner: Annotated[
        bool, typer.Option("--planner/--no-planner", help="Show the planner's guidance toward the goal (g).")
    ] = True,
    fps: Annotated[float, typer.Option("--fps", min=0.5, help="Frames per second in a window.")] = 10.0,
    json_out: Json = False,
) -> None:
    """The 3D apartment in closed loop: WASD walk the wearer (w forward, s back, a/d turn).

    `g` sets a goal (an enrolled object's name, else the centre-box view); the hierarchical planner
    (place graph over this session's memory + MPC with the world model) shows its guidance on the HUD,
    and with --autopilot planner the wearer follows it until the goal is reached."""
    from simulator.world import WorldConfig

    windowed = not _is_headless(headless)
    pilot = autopilot if autopilot is not None else ("none" if windowed else "random")
    if pilot not in ("none", "random", "waypoint", "planner"):
        _fail(f"--autopilot must be random, waypoint, planner or none, got {pilot!r}")
    if pilot == "planner" and not planner:
        _fail("--autopilot planner needs the planner; drop --no-planner")
    try:
        cfg = WorldConfig(rows=rows, cols=cols, size=size, max_steps=1_000_000)
    except ValueError as e:
        _fail(str(e))

    def source():
        from simulator.inputs import SteerableWorld

        policy = {"none": None, "planner": "random"}.get(pilot, pilot)
        return SteerableWorld(cfg, seed=seed, policy=policy)

    _run(
        source,
        Common(model, memory, headless, record, report, max_frames, keys, audio, mic, threads, json_out),
        live=False,
        record_fps=fps,
        pace_fps=fps if windowed else None,
        world_model=world_model if planner else None,
        follow_guidance=pilot == "planner",
    )


@app.command()
def find(
    model: Model = SHIPPED_PTE,
    world_model: WorldModel = SHIPPED_WORLD_MODEL_PTE,
    seed: Annotated[int, typer.Option("--seed", help="Run seed: worlds and walks are drawn from it.")] = 0,
    explore_steps: Annotated[
        int, typer.Option("--explore-steps", min=1, help="Random-walk steps recorded into memory.")
    ] = 200,
    max_steps: Annotated[
        int, typer.Option("--max-steps", min=1, help="Step budget to reach the object.")
    ] = 100,
    policy: Annotated[
        str,
        typer.Option(
            "--policy",
            help="hierarchical_pose (default), hierarchical, flat_mpc, oracle or random (see the benchmark).",
        ),
    ] = "hierarchical_pose",
    memory: Memory = None,
    record: Record = None,
    report: Report = None,
    threads: Threads = 2,
    json_out: Json = False,
) -> None:
    """One "find the object" episode in the 3D apartment, headless: a random walk is recorded into memory,
    then the planner walks back to the object passed longest ago (benchmarks/bench_planner.py's protocol)."""
    summary = _find(
        model, world_model, seed, explore_steps, max_steps, policy, memory, record, report, threads
    )
    if json_out:
        typer.echo(json.dumps(summary, default=str))
        return
    typer.echo(
        f"{summary['outcome']}; replan p50 {summary['replan_ms_p50']} ms"
        + (f", video {summary['record']}" if summary["record"] else "")
        + (f", report {summary['report']['html']}" if "report" in summary else "")
    )


def _find(
    model, world_model, seed, explore_steps, max_steps, policy, memory, record, report, threads
) -> dict:
    from glasses_runtime.engines.encoder import load_encoder
    from glasses_runtime.engines.pte import ModelFileError
    from glasses_runtime.planner import PlannerError
    from simulator.errors import SimulatorError
    from simulator.find_object import FindConfig, FindError, FindTheObject
    from simulator.find_view import play
    from simulator.world import WorldError

    if memory is not None and Path(memory).exists():
        _fail(f"--memory {memory} exists; the episode records into a fresh memory: give a new path")
    try:
        cfg = FindConfig(explore_steps=explore_steps, max_steps=max_steps)
        encoder = load_encoder(model, threads=threads)
        with FindTheObject(
            encoder, _load_world_model(world_model, threads), seed=seed, config=cfg, policy=policy
        ) as task:
            return play(task, record=record, report=report, memory=memory)
    except (SimulatorError, ModelFileError, PlannerError, FindError, WorldError, ValueError) as e:
        _fail(str(e))
        raise  # unreachable: _fail exits


def _load_world_model(path: Path, threads: int):
    """A world model file -> the planner's callable; a missing or unreadable file -> SimulatorError."""
    from edge_models.errors import CheckpointError
    from glasses_runtime.planner import load_world_model_file
    from simulator.errors import SimulatorError

    if not Path(path).is_file():
        raise SimulatorError(
            f"world model {path} not found; `make models` writes the shipped one "
            "(or pass --world-model FILE, or --no-planner)"
        )
    try:
        return load_world_model_file(path, threads=threads)
    except CheckpointError as e:
        raise SimulatorError(f"{path}: {e}") from None


# ---- shared plumbing ------------------------------------------------------------------------------------


def _is_headless(flag: bool) -> bool:
    from simulator.display import display_available

    return flag or not display_available()


def _fail(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(1)


def _run(
    make_source: Callable[[], Any],
    opts: Common,
    *,
    live: bool,
    record_fps: float | Callable[[], float],
    pace_fps: float | None,
    world_model: Path | None = None,
    follow_guidance: bool = False,
) -> None:
    """Build the session from the command's options, run it, print the summary; errors -> one line, exit 1."""
    from glasses_runtime.audio import AudioFileError, AudioUnavailableError, MicrophoneSource, WavSource
    from glasses_runtime.engines.pte import ModelFileError
    from glasses_runtime.memory import MemoryStoreError
    from glasses_runtime.planner import PlannerError
    from glasses_runtime.sources import SourceError
    from simulator.app import Session, SessionConfig
    from simulator.display import TkWindow
    from simulator.errors import SimulatorError
    from simulator.keys import KeyQueue, KeyScript
    from simulator.world import WorldError

    headless = _is_headless(opts.headless)
    stop = threading.Event()
    display = source = None
    try:
        script = KeyScript.parse(opts.keys)
        source = make_source()
        cfg = SessionConfig(
            model=opts.model,
            memory=opts.memory,
            live=live,
            record=opts.record,
            report=opts.report,
            max_frames=opts.max_frames,
            keys=script,
            threads=opts.threads,
            record_fps=record_fps() if callable(record_fps) else record_fps,
            pace_fps=pace_fps,
            follow_guidance=follow_guidance,
        )
        planner = None
        if world_model is not None:
            from simulator.planning import SessionPlanner

            planner = SessionPlanner(_load_world_model(world_model, opts.threads))
        audio = None
        if opts.audio is not None:
            audio = WavSource(opts.audio, realtime=not headless or live)
        elif opts.mic:
            try:
                audio = MicrophoneSource()
            except AudioUnavailableError as e:
                typer.echo(f"{e}; running video-only", err=True)
        keys = KeyQueue()
        if not headless:
            display = TkWindow("glasses-sim", keys)
        # Ctrl-C / SIGTERM end the loop cleanly (memory flushed, video and report written).
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            summary = Session(
                cfg, source, keys=keys, display=display, planner=planner, audio=audio, stop=stop
            ).run()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    except (
        SimulatorError,
        SourceError,
        ModelFileError,
        MemoryStoreError,
        WorldError,
        AudioFileError,
        PlannerError,
        ValueError,
    ) as e:
        if display is not None:
            display.close()
        if source is not None:
            source.close()
        _fail(str(e))
        return
    if opts.json_out:
        typer.echo(json.dumps(summary, default=str))
    else:
        lat = summary["latency_ms"]["p50"]
        typer.echo(
            f"{summary['frames_shown']} frames, {summary['keyframes']} keyframes, {summary['events']} events, "
            f"{summary['fps']} fps, p50 {lat} ms, stopped by {summary['stopped_by']}"
            + (f", video {summary['record']}" if summary["record"] else "")
            + (f", report {summary['report']['html']}" if "report" in summary else "")
        )
    if summary.get("error"):
        typer.echo(f"error: {summary['error']}", err=True)
        raise typer.Exit(1)


# `glasses-sim demo` (what `make demo` runs) lives in simulator/cli_demo.py and registers on this app.
from simulator import cli_demo  # noqa: E402, F401

if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
