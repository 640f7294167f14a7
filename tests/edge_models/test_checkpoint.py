"""Checkpoint round trip and clear errors for missing, corrupt, foreign and mismatched files."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from edge_models.checkpoint import encoder_config, load_encoder, save_encoder
from edge_models.errors import CheckpointError
from edge_models.models import vit_pico


def test_encoder_round_trip(tmp_path):
    enc = vit_pico().eval()
    path = save_encoder(tmp_path / "enc.safetensors", enc)
    loaded = load_encoder(path, preset="vit_pico")
    assert encoder_config(path) == enc.config
    x = torch.rand(2, 3, 96, 96)
    with torch.no_grad():
        assert torch.equal(enc.embed(x)[1], loaded.embed(x)[1])
    assert not list(tmp_path.glob("*.tmp"))  # atomic write leaves no temp file


def test_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_encoder(tmp_path / "nope.safetensors")
    enc_path = save_encoder(tmp_path / "enc.safetensors", vit_pico())
    with pytest.raises(CheckpointError, match="holds a 'vit_pico' encoder, not 'vit_tiny'"):
        load_encoder(enc_path, preset="vit_tiny")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(enc_path.read_bytes()[:300])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_encoder(truncated)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_encoder(garbage)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(3)}, str(foreign))
    with pytest.raises(CheckpointError, match="not a glasses-runtime checkpoint"):
        load_encoder(foreign)


def test_train_checkpoint_without_ema_target_names_what_it_holds(tmp_path):
    from edge_models.checkpoint import load_predictor, save_train_state
    from edge_models.models import Predictor

    enc = vit_pico()
    pred = Predictor(enc.config)
    opt = torch.optim.AdamW(enc.parameters())
    path = save_train_state(
        tmp_path / "step.safetensors", {"encoder": enc, "predictor": pred}, opt, 1, enc.config, {}
    )
    with pytest.raises(CheckpointError, match="no 'target_encoder.' weights .*encoder., .*predictor."):
        load_encoder(path)  # the default for a train checkpoint is the EMA target, absent here
    x = torch.rand(1, 3, 96, 96)
    with torch.no_grad():
        assert torch.equal(load_encoder(path, prefix="encoder.").embed(x)[1], enc.eval().embed(x)[1])
    assert isinstance(load_predictor(path), Predictor)
    with pytest.raises(CheckpointError, match="has no predictor"):
        load_predictor(save_encoder(tmp_path / "enc.safetensors", enc))
