"""Every console script answers --help truthfully; the trainer's CLI reports errors in one line."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from export.cli import app as export_app
from glasses_runtime.cli import app as runtime_app
from simulator.cli import app as sim_app

runner = CliRunner()


@pytest.mark.parametrize(
    ("app", "words"),
    [
        (export_app, ["ExecuTorch", "version"]),
        (runtime_app, ["runtime", "version"]),
        (sim_app, ["simulator", "version"]),
    ],
)
def test_help(app, words):
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for w in words:
        assert w in res.output


def test_version():
    res = runner.invoke(runtime_app, ["version"])
    assert res.exit_code == 0 and res.output.strip() == "0.1.0"


def test_train_cli_help_and_errors(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "edge_models.train", "--help"], capture_output=True, text=True)
    assert ok.returncode == 0 and "--preset" in ok.stdout and "--resume" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "edge_models.train", "--data", str(tmp_path), "--preset", "vit_huge"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("error: unknown preset 'vit_huge'")
    assert "Traceback" not in bad.stderr
