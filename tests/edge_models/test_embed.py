"""The demo job: the bundled default encoder embeds the real clip and finds its shot cuts."""

from __future__ import annotations

import json

import numpy as np
import typer
from typer.testing import CliRunner

from edge_models.embed import DEFAULT_WEIGHTS, main, scene_changes

app = typer.Typer()
app.command()(main)


def test_bundled_weights_exist_and_load():
    from edge_models.checkpoint import load_encoder

    enc = load_encoder(DEFAULT_WEIGHTS, preset="vit_tiny")
    assert enc.config.img_size == 128 and next(enc.parameters()).dtype.is_floating_point


def test_embed_video_finds_most_shot_cuts(bikes_mp4):
    res = CliRunner().invoke(app, [str(bikes_mp4), "--json", "--reference-cuts", "30,76,137,187,242"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["frames"] == 250 and out["embedding_dim"] == 192
    assert len(out["reference_cuts_found"]) >= 4  # the cut at 76 joins two similar street shots


def test_scene_changes_on_synthetic_embeddings():
    z = np.repeat(np.eye(4), 10, axis=0)  # four "shots" of 10 identical frames
    assert [f for f, _ in scene_changes(z, 3)] == [10, 20, 30]


def test_bad_video_is_clear(tmp_path):
    bad = tmp_path / "x.mp4"
    bad.write_bytes(b"nope")
    res = CliRunner().invoke(app, [str(bad)])
    assert res.exit_code == 2
    assert "error:" in res.output
