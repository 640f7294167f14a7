"""`glasses-sim`: the desktop pretends to be the glasses.

glasses-sim --help
glasses-sim version
"""

from __future__ import annotations

import typer

from glasses_runtime import __version__

app = typer.Typer(
    name="glasses-sim",
    help="Desktop simulator: runs a webcam, a video or a 3D world through the runtime with a HUD.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Keep a command group even while it has one command, so --help lists every command."""


@app.command()
def version() -> None:
    """Print the package version."""
    typer.echo(__version__)
