"""`glasses-export`: turn JEPA checkpoints into verified on-device models.

glasses-export --help
glasses-export version
"""

from __future__ import annotations

import typer

from glasses_runtime import __version__

app = typer.Typer(
    name="glasses-export",
    help="Distill, quantize and lower JEPA encoders to ExecuTorch .pte files; verify, inspect and "
    "benchmark them.",
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
