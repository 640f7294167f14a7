"""`glasses-runtime run`: the JSON summary, one-line errors, and SIGTERM on a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from typer.testing import CliRunner

from glasses_runtime.cli import app

runner = CliRunner()
REQUIRED = ("frames_in", "frames_processed", "frames_dropped", "keyframes", "events", "fps", "latency_ms")


def test_run_prints_one_json_summary(pico_pte, bikes_frames, tmp_path):
    jsonl = tmp_path / "metrics.jsonl"
    res = runner.invoke(
        app,
        [
            "run",
            "--source",
            str(bikes_frames),
            "--model",
            str(pico_pte),
            "--memory",
            str(tmp_path / "m.db"),
            "--max-frames",
            "20",
            "--json",
            "--metrics-jsonl",
            str(jsonl),
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert all(k in summary for k in REQUIRED)
    assert summary["frames_in"] == summary["frames_processed"] == 20 and summary["frames_dropped"] == 0
    assert set(summary["latency_ms"]) == {"p50", "p95", "p99"}
    assert summary["latency_ms"]["p50"] <= summary["latency_ms"]["p99"]
    assert summary["memory"]["keyframes_acknowledged"] == summary["keyframes"] >= 1
    lines = [json.loads(x) for x in jsonl.read_text().splitlines()]
    assert lines[-1]["frames_processed"] == 20


def test_run_errors_are_one_line(pico_pte, tmp_path, bikes_frames):
    for args, msg in (
        (["--source", str(bikes_frames), "--model", str(tmp_path / "none.pte")], "model file not found"),
        (["--source", str(tmp_path / "none.mp4"), "--model", str(pico_pte)], "not a camera index"),
        (["--source", str(bikes_frames), "--model", str(pico_pte), "--mode", "fast"], "mode must be one of"),
    ):
        res = runner.invoke(app, ["run", *args])
        assert res.exit_code == 1, res.output
        err = res.stderr.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and msg in err[0], err


def test_sigterm_flushes_prints_the_summary_and_exits_0(pico_pte, bikes_mp4, tmp_path):
    db, jsonl = tmp_path / "m.db", tmp_path / "metrics.jsonl"
    exe = os.path.join(os.path.dirname(sys.executable), "glasses-runtime")
    # live mode paces the 10 s clip in real time, so the loop is still running when the signal comes
    proc = subprocess.Popen(
        [
            exe,
            "run",
            "--source",
            str(bikes_mp4),
            "--model",
            str(pico_pte),
            "--memory",
            str(db),
            "--mode",
            "live",
            "--json",
            "--metrics-jsonl",
            str(jsonl),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (
            jsonl.exists() and jsonl.read_text().strip()
        ):  # the first metrics line: frames are flowing
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["stopped_by"] == "signal"
    assert 0 < summary["frames_in"] < 250
    assert summary["memory"]["keyframes_acknowledged"] == summary["keyframes"] >= 1
    assert summary["memory"]["pending"] == 0

    import sqlite3

    con = sqlite3.connect(db)
    n, ended = con.execute(
        "SELECT (SELECT count(*) FROM keyframes WHERE session_id = s.id), ended_ns FROM sessions s WHERE id = ?",
        (summary["memory"]["session_id"],),
    ).fetchone()
    con.close()
    assert n == summary["keyframes"] and ended is not None  # committed and the session closed


def test_run_surprise_model_errors_are_one_line(pico_pte, bikes_frames, tmp_path):
    # a missing file, and a model that cannot read this encoder's output (the pico .pte has no tokens)
    shipped = "edge_models/weights/token_world_model_twm_c2_d32_h32x3_g4x8_s64_t3_fp32_xnnpack.pte"
    for model, want in ((tmp_path / "none.pte", "does not exist"), (shipped, "token")):
        res = runner.invoke(
            app,
            [
                "run",
                "-s",
                str(bikes_frames),
                "-m",
                str(pico_pte),
                "--max-frames",
                "3",
                "--surprise-model",
                str(model),
            ],
        )
        assert res.exit_code == 1, res.output
        last = res.output.strip().splitlines()[-1]
        assert last.startswith("error: ") and want in last and "Traceback" not in res.output


def test_run_output_paths_are_checked_before_anything_runs(pico_pte, bikes_frames, tmp_path):
    # were tracebacks (#15): a directory as --memory, a missing folder for --memory / --metrics-jsonl
    cases = [
        (["--memory", str(tmp_path)], "is a directory"),
        (["--memory", str(tmp_path / "no" / "m.db")], "does not exist"),
        (["--metrics-jsonl", str(tmp_path / "no" / "m.jsonl")], "does not exist"),
    ]
    for extra, want in cases:
        res = runner.invoke(
            app, ["run", "-s", str(bikes_frames), "-m", str(pico_pte), "--max-frames", "2", *extra]
        )
        last = res.output.strip().splitlines()[-1]
        assert res.exit_code == 1 and last.startswith("error: ") and want in last, res.output
        assert "Traceback" not in res.output
