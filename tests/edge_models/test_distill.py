"""Distillation: the teachers load offline (EfficientNet-Lite0 with real ImageNet weights, our own
JEPA checkpoints, V-JEPA 2 from a local transformers folder) and a student learns from them."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from edge_models.data import read_image
from edge_models.distill import DistillConfig, distill, load_teacher
from edge_models.embed import PICO_WEIGHTS
from edge_models.errors import ConfigError
from edge_models.preprocess import to_model_input
from export.cli import app


@pytest.fixture(scope="module")
def frames(bikes_frames):
    return torch.cat([to_model_input(read_image(p), 64) for p in sorted(bikes_frames.glob("*.jpg"))[:4]])


def test_efficientnet_teacher_has_real_imagenet_weights(frames, bikes_frames, capsys):
    teacher = load_teacher("efficientnet-lite0")
    assert capsys.readouterr().out == ""  # the library's "Loaded pretrained weights" must not break --json
    fmap, pooled = teacher(frames)
    assert fmap.shape == (4, 1280, 2, 2) and pooled.shape == (4, 1280)
    # pretrained weights give confident ImageNet predictions on a real street frame;
    # a randomly initialised net spreads ~1/1000 over every class
    from edge_models.distill.teachers import _renormalize

    big = to_model_input(read_image(bikes_frames / "frame_000.jpg"), 224)
    with torch.no_grad():
        probs = teacher.net(_renormalize(big, (0.5,) * 3, (0.5,) * 3)).softmax(-1)
    assert float(probs.max()) > 0.2


def test_jepa_teacher(frames):
    teacher = load_teacher(f"jepa:{PICO_WEIGHTS}")
    fmap, pooled = teacher(frames)
    assert fmap.shape == (4, 96, 4, 4) and pooled.shape == (4, 96)
    assert torch.allclose(fmap.flatten(2).mean(-1), pooled, atol=1e-5)


def test_vjepa2_teacher_from_local_folder(tmp_path, frames):
    from transformers import VJEPA2Config, VJEPA2Model

    cfg = VJEPA2Config(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        crop_size=64,
        frames_per_clip=2,
        pred_hidden_size=16,
        pred_num_hidden_layers=1,
        pred_num_attention_heads=2,
        mlp_ratio=2.0,
    )
    VJEPA2Model(cfg).save_pretrained(tmp_path / "vjepa2-tiny")
    teacher = load_teacher(f"vjepa2:{tmp_path / 'vjepa2-tiny'}")
    fmap, pooled = teacher(frames)
    assert fmap.shape == (4, 32, 4, 4) and pooled.shape == (4, 32)
    with pytest.raises(ConfigError, match="config.json"):
        load_teacher(f"vjepa2:{tmp_path / 'missing'}")


def test_bad_teacher_specs():
    with pytest.raises(ConfigError, match="unknown teacher"):
        load_teacher("resnet-9000")
    with pytest.raises(ConfigError, match="needs a path"):
        load_teacher("jepa")
    with pytest.raises(ConfigError, match="unknown preset"):
        DistillConfig(teacher="efficientnet-lite0", data=".", student="vit_giant")


def test_student_learns_from_teacher_and_resumes(bikes_frames, tmp_path):
    cfg = DistillConfig(
        teacher=f"jepa:{PICO_WEIGHTS}",
        data=str(bikes_frames),
        student="vit_pico",
        out=str(tmp_path / "d"),
        img_size=64,
        steps=24,
        batch_size=16,
        ckpt_every=12,
        progress=False,
    )
    res = distill(cfg)
    head, tail = sum(res.losses[:4]) / 4, sum(res.losses[-4:]) / 4
    assert tail < head, f"distillation loss did not fall: {head:.3f} -> {tail:.3f}"
    more = distill(DistillConfig(**{**cfg.__dict__, "steps": 26, "resume": True}))
    assert more.summary["resumed_from"] == 24 and len(more.losses) == 2


def test_all_one_liner(bikes_frames, tmp_path):
    res = CliRunner().invoke(
        app,
        [
            "all",
            "--teacher",
            "efficientnet-lite0",
            "--student",
            "vit_pico",
            "--data",
            str(bikes_frames),
            "--calib",
            str(bikes_frames),
            "--quantize",
            "int8",
            "--backend",
            "xnnpack",
            "--out",
            str(tmp_path / "models"),
            "--img-size",
            "64",
            "--steps",
            "3",
            "--batch-size",
            "8",
            "--threshold",
            "0.9",
            "--no-progress",
            "--bundle",
            "2",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout.strip().splitlines()[-1])
    assert rep["delegation"]["fully_delegated"]
    assert rep["verify_bundled"]["passed"] and rep["verify_bundled"]["cases"] == 2
    assert rep["verify"]["passed"] and rep["quantization"]["mode"] == "int8"
    assert rep["onnx"]["ort_cosine_vs_eager"] > 0.999
    assert (tmp_path / "models" / "encoder_vit_pico_int8_xnnpack.manifest.json").is_file()
