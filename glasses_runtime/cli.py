"""`glasses-runtime`: the on-device runtime's command line.

glasses-runtime --help
glasses-runtime version
"""

from __future__ import annotations

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
