"""ExecuTorch Bundled Programs: `lower --bundle N` writes MODEL.bpte (the .pte + N real held-out frames
+ their eager fp32 outputs) recorded in the manifest; `verify MODEL.bpte` runs every case through
ExecuTorch's bundled-program loader and passes an fp32 (portable) and an int8 (XNNPACK) pico encoder; a truncated, tampered,
foreign or wrong-reference .bpte is one clear line and a non-zero exit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from export.cli import app
from export.errors import ExportError

runner = CliRunner()


def _json(res) -> dict:
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout.strip().splitlines()[-1])


def _one_error_line(res, code: int, message: str) -> None:
    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output
    # ExecuTorch's C++ logs ("[cpuinfo_utils.cpp:71] ...") may precede it; ours is one line
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], res.stderr
    assert res.stderr.rstrip().splitlines()[-1] == errors[0]


@pytest.fixture(scope="module")
def fp32(ckpt, bikes_frames, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("fp32")
    # portable (no delegate): a third of XNNPACK's lowering time, and the int8 one covers a delegate
    args = ["lower", str(ckpt), "--backend", "portable", "--calib", str(bikes_frames), "--bundle", "3"]
    return _json(runner.invoke(app, [*args, "--out", str(out), "--json"]))


@pytest.fixture(scope="module")
def int8(ckpt, bikes_frames, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("int8")
    args = ["lower", str(ckpt), "--quantize", "int8", "--calib", str(bikes_frames), "--num-calib", "4"]
    return _json(runner.invoke(app, [*args, "--bundle", "4", "--out", str(out), "--json"]))


def test_lower_writes_bpte_recorded_in_manifest(fp32, int8):
    from edge_models.checkpoint import file_sha256

    for rep, cases, offset in ((fp32, 3, 0), (int8, 4, 4)):
        bpte, pte = Path(rep["bpte"]), Path(rep["pte"])
        assert bpte == pte.with_suffix(".bpte") and bpte.read_bytes()[4:8] == b"BP08"
        entry = json.loads(Path(rep["manifest"]).read_text())["bundled"]
        assert entry["file"] == bpte.name and entry["sha256"] == file_sha256(bpte)
        assert entry["cases"] == cases and entry["inputs_offset"] == offset and entry["method"] == "forward"
        assert entry["inputs"].startswith("real frames") and "fp32" in entry["references"]
        # the program plus one [1, 3, 96, 96] float input per case
        assert entry["size_bytes"] == bpte.stat().st_size > pte.stat().st_size + cases * 3 * 96 * 96 * 4
    assert "held out" in int8["bundled"]["inputs"] and "held out" not in fp32["bundled"]["inputs"]
    assert fp32["bundled"]["comparison"]["cosine_min"] == 0.999
    assert int8["bundled"]["comparison"]["cosine_min"] == 0.99
    assert 0 < fp32["bundled"]["comparison"]["atol"] < int8["bundled"]["comparison"]["atol"]


def test_verify_bpte_fp32_and_int8(fp32, int8):
    for rep, thr in ((fp32, 0.999), (int8, 0.99)):
        ok = _json(runner.invoke(app, ["verify", rep["bpte"], "--json"]))
        assert ok["passed"] and ok["cases"] == rep["bundled"]["cases"] == len(ok["per_case"])
        assert ok["threshold"] == thr and ok["cosine_min"] >= thr
        assert all(c["allclose"] for c in ok["per_case"])  # ExecuTorch's own check at the recorded atol
    text = runner.invoke(app, ["verify", int8["bpte"]])
    assert text.exit_code == 0 and "case 3: cosine" in text.stdout
    strict = runner.invoke(app, ["verify", int8["bpte"], "--threshold", "0.9999999"])
    _one_error_line(strict, 1, "disagrees with its bundled references")


def test_truncated_tampered_and_foreign_bpte_are_one_clear_line(int8, tmp_path):
    data = Path(int8["bpte"]).read_bytes()
    manifest = Path(int8["manifest"])

    def verify(name: str, payload: bytes, with_manifest: bool = True, *extra: str):
        path = tmp_path / f"{name}.bpte"
        path.write_bytes(payload)
        if with_manifest:
            shutil.copy(manifest, tmp_path / f"{name}.manifest.json")
        return runner.invoke(app, ["verify", str(path), *extra])

    mid = len(data) - 1000  # one flipped byte: the manifest's sha256 catches it before ExecuTorch
    flipped = data[:mid] + bytes([data[mid] ^ 0xFF]) + data[mid + 1 :]
    _one_error_line(verify("tampered", flipped), 2, "does not match its manifest")
    _one_error_line(verify("trunc", data[: len(data) // 2]), 2, "truncated or corrupted")
    _one_error_line(
        verify("trunc_alone", data[: len(data) // 2], False, "--threshold", "0.99"), 2, "truncated"
    )
    _one_error_line(verify("short", data[:6]), 2, "not an ExecuTorch bundled program")
    pte = Path(int8["pte"]).read_bytes()
    _one_error_line(verify("foreign", pte), 2, "not an ExecuTorch bundled program")
    _one_error_line(verify("alone", data, False), 2, "pass --threshold")
    ok = _json(verify("alone2", data, False, "--threshold", "0.99", "--json"))
    assert ok["passed"] and ok["allclose"] is None
    res = runner.invoke(app, ["verify", int8["bpte"], "--images", str(tmp_path)])
    _one_error_line(res, 2, "drop --images")
    res = runner.invoke(app, ["verify", int8["bpte"], "--limit", "2"])
    _one_error_line(res, 2, "runs all of its cases")


def test_relowering_without_bundle_removes_the_stale_bpte(ckpt, tmp_path):
    args = ["lower", str(ckpt), "--backend", "portable", "--out", str(tmp_path), "--json"]
    first = _json(runner.invoke(app, [*args, "--bundle", "1"]))
    assert Path(first["bpte"]).is_file()
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and "removed the stale" in res.stderr, res.output
    assert not Path(first["bpte"]).exists() and "bundled" not in json.loads(
        Path(first["manifest"]).read_text()
    )


def test_wrong_references_fail_verification(int8, ckpt, tmp_path):
    """A bundle whose references are not this model's outputs: ExecuTorch's allclose and cosine both fail."""
    from export.bundled import read_bundled_program, write_bundled_program
    from export.spec import spec_from_checkpoint

    pte = Path(shutil.copy(int8["pte"], tmp_path / "wrong.pte"))
    manifest = json.loads(Path(int8["manifest"]).read_text())
    _, contents = read_bundled_program(int8["bpte"])
    spec = spec_from_checkpoint(ckpt)
    spec.module = torch.nn.Sequential(spec.module, _Negate()).eval()
    cases = [tuple(ins) for ins, _ in contents.cases]
    manifest["bundled"] = write_bundled_program(pte, spec, cases, {"inputs": "real frames"}, "int8")
    (tmp_path / "wrong.manifest.json").write_text(json.dumps(manifest))
    res = runner.invoke(app, ["verify", str(tmp_path / "wrong.bpte"), "--json"])
    _one_error_line(res, 1, "disagrees with its bundled references")
    assert " cosine -" in res.stderr


class _Negate(torch.nn.Module):
    def forward(self, x: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor | tuple[torch.Tensor, ...]:
        return tuple(-y for y in x) if isinstance(x, tuple) else -x


def test_bundle_inputs_choice(ckpt, bikes_frames):
    from export.bundled import bundle_inputs
    from export.spec import spec_from_checkpoint

    spec = spec_from_checkpoint(ckpt)
    cases, info = bundle_inputs(spec, None, 5)
    assert len(cases) == 1 and info == {"inputs": "example inputs"}
    assert torch.equal(cases[0][0], spec.example_inputs[0])
    cases, info = bundle_inputs(spec, bikes_frames, 8, offset=47)  # 50 frames: 3 left
    assert len(cases) == 3 and cases[0][0].shape == (1, 3, 96, 96) and info["inputs_offset"] == 47
    with pytest.raises(ExportError, match="no frames left"):
        bundle_inputs(spec, bikes_frames, 2, offset=50)
    with pytest.raises(ExportError, match="at least 1"):
        bundle_inputs(spec, bikes_frames, 0)
