"""glasses-export on the JEPA predictor of a training checkpoint: a fixed mask layout baked in,
lowered fp32 to XNNPACK with every op delegated, manifest, .pte vs eager on real-frame context
tokens, and one-line errors for checkpoints without a predictor and unknown layouts."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from edge_models.checkpoint import file_sha256, save_encoder, save_train_state
from edge_models.models import Predictor, VisionTransformer, get_config
from export.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def train_ckpt(tmp_path_factory):
    """A vit_pico training checkpoint at 64 px (4x4 tokens), written by the training code's own saver."""
    torch.manual_seed(0)
    cfg = get_config("vit_pico", img_size=64)
    encoder, predictor = VisionTransformer(cfg), Predictor(cfg)
    modules = {"encoder": encoder, "predictor": predictor, "target_encoder": copy.deepcopy(encoder)}
    opt = torch.optim.AdamW([*encoder.parameters(), *predictor.parameters()])
    path = tmp_path_factory.mktemp("train") / "step_000001.safetensors"
    return save_train_state(path, modules, opt, 1, cfg, {"preset": "vit_pico"})


@pytest.fixture(scope="module")
def lowered(train_ckpt, tmp_path_factory):
    out = tmp_path_factory.mktemp("pred")
    args = ["lower", str(train_ckpt), "--model", "predictor", "--mask", "multiblock:1", "--out", str(out)]
    res = runner.invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_predictor_is_fully_delegated_with_manifest(lowered, train_ckpt):
    d = lowered["delegation"]
    assert d["ops_outside_delegates"] == {} and d["fully_delegated"] and d["delegated_subgraphs"] == 1
    m = json.loads(Path(lowered["manifest"]).read_text())
    assert m["kind"] == "predictor" and m["preset"] == "vit_pico" and m["backend"] == "xnnpack"
    assert m["source_checkpoint_sha256"] == file_sha256(train_ckpt)
    mask = m["normalization"]["mask"]
    assert mask["layout"] == "multiblock:1" and m["normalization"]["grid"] == [1, 4, 4]
    k, nt = len(mask["target_idx"]), len(mask["target_idx"][0])
    assert k == 4 and not set(mask["context_idx"]) & {i for t in mask["target_idx"] for i in t}
    assert m["inputs"][0]["shape"] == [1, len(mask["context_idx"]), 96]
    assert m["outputs"][0]["shape"] == [1, k * nt, 96]
    assert "multiblock-s1" in lowered["pte"]


def test_predictor_pte_matches_eager_on_real_frames(lowered, bikes_frames):
    res = runner.invoke(
        app, ["verify", lowered["pte"], "--images", str(bikes_frames), "--limit", "4", "--json"]
    )
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout.strip().splitlines()[-1])
    assert rep["inputs"] == "real frames" and rep["cases"] == 4 and rep["cosine_min"] >= 0.999
    ins = runner.invoke(app, ["inspect", lowered["pte"], "--json"])
    (meth,) = json.loads(ins.stdout.strip().splitlines()[-1])["methods"]
    assert meth["delegates"] == {"XnnpackBackend": 1} and meth["ops_outside_delegates"] == {}


def test_predictor_errors_are_one_clear_line(train_ckpt, tmp_path):
    enc = save_encoder(tmp_path / "encoder.safetensors", VisionTransformer(get_config("vit_pico")))
    ckpt = str(train_ckpt)
    cases = [
        (["lower", str(enc), "--model", "predictor", "--mask", "right-half"], "has no predictor"),
        (["lower", ckpt, "--model", "predictor", "--mask", "left-ear"], "unknown mask layout 'left-ear'"),
        (["lower", ckpt, "--model", "predictor"], "needs --mask"),
        (["lower", ckpt, "--model", "decoder"], "unknown --model 'decoder'"),
        (["lower", ckpt, "--mask", "right-half"], "--model predictor only"),
    ]
    for args, message in cases:
        res = runner.invoke(app, [*args, "--out", str(tmp_path)])
        assert res.exit_code == 2, (args, res.output)
        assert message in res.output and "Traceback" not in res.output, (args, res.output)
        assert len(res.output.strip().splitlines()) == 1, res.output
    res = runner.invoke(app, cases[0][0])
    assert "pass a training checkpoint" in res.output


def test_predictor_static_int8_calibrates_on_context_tokens_and_benches(train_ckpt, bikes_frames, tmp_path):
    """Static int8 calibrates on context tokens encoded from real frames; bench has eager + ONNX baselines."""
    args = ["lower", str(train_ckpt), "--model", "predictor", "--mask", "right-half", "--quantize", "int8"]
    res = runner.invoke(
        app, [*args, "--calib", str(bikes_frames), "--num-calib", "4", "--out", str(tmp_path), "--json"]
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    q = out["quantization"]
    assert q["mode"] == "int8" and q["calibration_images"] == 4
    assert q["fidelity_vs_fp32"]["images"] > 0 and q["fidelity_vs_fp32"]["cosine_min"] >= 0.99
    assert out["delegation"]["ops_outside_delegates"] == {} and out["delegation"]["delegated_subgraphs"] == 1
    res = runner.invoke(app, ["bench", out["pte"], "--runs", "3", "--warmup", "1", "--json"])
    assert res.exit_code == 0, res.output
    b = json.loads(res.stdout.strip().splitlines()[-1])
    assert (
        b["eager_fp32"]["p50_ms"] > 0 and b["onnxruntime_fp32"]["p50_ms"] > 0 and b["ratio_vs_eager_fp32"] > 0
    )
