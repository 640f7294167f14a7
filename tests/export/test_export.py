"""glasses-export end to end on the bundled pico encoder and real frames: lower (fp32 and int8),
manifest, full XNNPACK delegation, verify against eager, inspect, bench, ONNX, and clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from export.cli import app

runner = CliRunner()


def _json(res) -> dict:
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout.strip().splitlines()[-1])  # stdout only: backends log to stderr


@pytest.fixture(scope="module")
def int8_pte(ckpt, bikes_frames, tmp_path_factory):
    out = tmp_path_factory.mktemp("int8")
    res = runner.invoke(
        app,
        [
            "lower",
            str(ckpt),
            "--quantize",
            "int8",
            "--calib",
            str(bikes_frames),
            "--num-calib",
            "16",
            "--out",
            str(out),
            "--json",
        ],
    )
    return _json(res)


@pytest.fixture(scope="module")
def fp32_pte(ckpt, tmp_path_factory):
    out = tmp_path_factory.mktemp("fp32")
    return _json(runner.invoke(app, ["lower", str(ckpt), "--out", str(out), "--json"]))


def test_int8_lowering_is_fully_delegated_with_manifest(int8_pte, ckpt):
    d = int8_pte["delegation"]
    assert d["fully_delegated"] and d["delegated_subgraphs"] == 1 and d["ops_outside_delegates"] == {}
    manifest = json.loads(Path(int8_pte["manifest"]).read_text())
    assert manifest["kind"] == "encoder" and manifest["preset"] == "vit_pico"
    assert manifest["inputs"] == [{"name": "image", "shape": [1, 3, 96, 96], "dtype": "float32"}]
    assert manifest["outputs"][0]["shape"] == [1, 96] and manifest["embedding_dim"] == 96
    assert manifest["quantization"]["calibration_images"] == 16
    fid = manifest["quantization"]["fidelity_vs_fp32"]
    assert fid["images"] == 16 and 0.9 < fid["cosine_mean"] <= 1.0
    assert manifest["normalization"]["size"] == 96 and len(manifest["normalization"]["mean"]) == 3
    for key in ("pte_sha256", "source_checkpoint_sha256", "versions", "backend"):
        assert manifest[key]


def test_int8_is_smaller_than_fp32(int8_pte, fp32_pte):
    assert int8_pte["size_bytes"] < 0.5 * fp32_pte["size_bytes"]


def test_verify_fp32_and_int8(fp32_pte, int8_pte, bikes_frames):
    ok = _json(
        runner.invoke(
            app, ["verify", fp32_pte["pte"], "--images", str(bikes_frames), "--limit", "8", "--json"]
        )
    )
    assert ok["passed"] and ok["cosine_min"] >= 0.999 and ok["threshold"] == 0.999
    q = _json(
        runner.invoke(
            app,
            [
                "verify",
                int8_pte["pte"],
                "--images",
                str(bikes_frames),
                "--limit",
                "8",
                "--threshold",
                "0.9",
                "--json",
            ],
        )
    )
    assert q["passed"] and q["cosine_mean"] > 0.95
    strict = runner.invoke(
        app, ["verify", int8_pte["pte"], "--images", str(bikes_frames), "--threshold", "0.999999"]
    )
    assert strict.exit_code == 1 and "disagrees with eager" in strict.output


def test_inspect(int8_pte):
    rep = _json(runner.invoke(app, ["inspect", int8_pte["pte"], "--json"]))
    (m,) = rep["methods"]
    assert m["name"] == "forward" and m["delegates"] == {"XnnpackBackend": 1}
    assert m["ops_outside_delegates"] == {} and m["fully_delegated"]
    assert m["inputs"][0]["shape"] == [1, 3, 96, 96] and m["outputs"][0]["shape"] == [1, 96]
    assert m["inputs"][0]["dtype"] == m["outputs"][0]["dtype"] == "float32"  # named as in the manifest
    assert rep["manifest"]["hash_matches"]


def test_bench_reports_all_engines(int8_pte):
    rep = _json(runner.invoke(app, ["bench", int8_pte["pte"], "--runs", "3", "--warmup", "1", "--json"]))
    for k in ("executorch", "eager_fp32", "onnxruntime_fp32"):
        assert rep[k]["p50_ms"] > 0 and rep[k]["runs"] == 3
    assert rep["ratio_vs_eager_fp32"] > 0 and rep["ratio_vs_onnxruntime_fp32"] > 0


def test_bench_runs_a_multi_input_world_model():
    # the shipped one-step token world model: three inputs (context, actions, goal); it was a TypeError (#15)
    pte = "edge_models/weights/token_world_model_twm_c2_d32_h32x3_g4x8_s4_t1_fp32_xnnpack.pte"
    rep = _json(runner.invoke(app, ["bench", pte, "--runs", "3", "--warmup", "1", "--json"]))
    assert set(rep["input"]) == {"context", "actions", "goal"}
    for k in ("executorch", "eager_fp32", "onnxruntime_fp32"):
        assert rep[k]["p50_ms"] > 0 and rep[k]["runs"] == 3


def test_onnx_export_checked_by_onnxruntime(ckpt, tmp_path):
    rep = _json(runner.invoke(app, ["onnx", str(ckpt), "--out", str(tmp_path), "--json"]))
    assert rep["ort_cosine_vs_eager"] > 0.999


def test_tampered_truncated_and_foreign_pte_are_clear(int8_pte, tmp_path, bikes_frames):
    src = int8_pte["pte"]
    data = Path(src).read_bytes()
    bad = tmp_path / "tampered.pte"
    bad.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    shutil.copy(int8_pte["manifest"], tmp_path / "tampered.manifest.json")
    res = runner.invoke(app, ["verify", str(bad), "--images", str(bikes_frames)])
    assert res.exit_code == 2 and "does not match its manifest" in res.output
    trunc = tmp_path / "trunc.pte"
    trunc.write_bytes(data[: len(data) // 3])
    res = runner.invoke(app, ["inspect", str(trunc)])
    assert res.exit_code == 2 and "error:" in res.output and "Traceback" not in res.output
    foreign = tmp_path / "foreign.pte"
    foreign.write_bytes(b"PK\x03\x04 this is a zip, not a program" * 10)
    res = runner.invoke(app, ["inspect", str(foreign)])
    assert res.exit_code == 2 and "not a readable ExecuTorch program" in res.output
    res = runner.invoke(app, ["bench", str(foreign)])
    assert res.exit_code == 2 and "manifest" in res.output


def test_bad_inputs_are_one_clear_line(ckpt, tmp_path, bikes_frames):
    cases = [
        (["lower", str(tmp_path / "missing.safetensors")], "not found"),
        (["lower", str(ckpt), "--backend", "tpu9000"], "unknown backend 'tpu9000'"),
        (["lower", str(ckpt), "--quantize", "int4"], "unknown quantization"),
        (["lower", str(ckpt), "--quantize", "int8"], "needs --calib"),
        (["lower", str(ckpt), "--quantize", "int8", "--calib", str(tmp_path)], "no images"),
        (["lower", str(ckpt), "--backend", "ethos-u"], "int8 only"),
    ]
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00" * 100)
    cases.append((["lower", str(corrupt)], "corrupt"))
    for args, message in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        assert message in res.output, (args, res.output)
        assert "Traceback" not in res.output


def test_qnn_without_sdk_says_what_to_install(ckpt, tmp_path, monkeypatch):
    monkeypatch.delenv("QNN_SDK_ROOT", raising=False)
    res = runner.invoke(app, ["lower", str(ckpt), "--backend", "qnn", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "QNN_SDK_ROOT" in res.output


def test_ethos_u_without_toolchain_says_what_to_install(ckpt, bikes_frames, tmp_path):
    pytest.importorskip("executorch")
    try:
        import executorch.backends.arm.ethosu  # noqa: F401

        pytest.skip("the Arm toolchain is installed here; the clear-error path does not apply")
    except ImportError:
        pass
    res = runner.invoke(
        app,
        [
            "lower",
            str(ckpt),
            "--backend",
            "ethos-u",
            "--quantize",
            "int8",
            "--calib",
            str(bikes_frames),
            "--num-calib",
            "2",
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 2 and "executorch[ethos-u]" in res.output


@pytest.mark.parametrize("backend", ["portable", "coreml", "vulkan"])
def test_other_backends_produce_pte(ckpt, tmp_path, backend):
    rep = _json(
        runner.invoke(app, ["lower", str(ckpt), "--backend", backend, "--out", str(tmp_path), "--json"])
    )
    assert rep["size_bytes"] > 100_000 and rep["backend"] == backend
    if backend == "portable":
        assert rep["delegation"]["delegated_subgraphs"] == 0
    else:
        assert rep["delegation"]["fully_delegated"]
