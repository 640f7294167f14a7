"""One encoder .pte, two named outputs: the pooled unit-norm ``embedding`` (memory, queries) and the spatial
``tokens`` grid (world model, planner energy). Every consumer picks its output by name, and older
single-output files keep working."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from glasses_runtime.embedder import load_embedder
from glasses_runtime.engines.encoder import EagerEncoder, PteEncoder, load_encoder
from glasses_runtime.engines.pte import ModelFileError
from glasses_runtime.manifest import manifest_path
from glasses_runtime.memory import EpisodicMemory
from glasses_runtime.runtime import RunningMode, Runtime, RuntimeOptions

WEIGHTS = Path(__file__).resolve().parents[2] / "edge_models" / "weights"
OLD_SINGLE_OUTPUT = WEIGHTS / "encoder_vit_pico_int8_xnnpack.pte"  # exported before tokens existed


def test_manifest_lists_both_outputs_and_the_pte_matches_eager(pico_pte, pico_ckpt, bikes_frames_rgb):
    m = json.loads(manifest_path(pico_pte).read_text())
    assert [(o["name"], o["shape"]) for o in m["outputs"]] == [
        ("embedding", [1, 96]),
        ("tokens", [1, 6, 6, 96]),
    ]
    pte, eager = PteEncoder(pico_pte), EagerEncoder(pico_ckpt)
    assert pte.token_grid == eager.token_grid == (6, 6)
    for f in bikes_frames_rgb[::60]:
        z, tok = pte.encode_with_tokens(pte.preprocess(f.image))
        ze, toke = eager.encode_with_tokens(eager.preprocess(f.image))
        assert z.shape == (96,) and tok.shape == (6, 6, 96)
        assert abs(float(np.linalg.norm(z)) - 1.0) < 1e-5
        assert float(z @ ze) > 0.9999
        cos = (tok * toke).sum(-1) / (np.linalg.norm(tok, axis=-1) * np.linalg.norm(toke, axis=-1))
        assert float(cos.min()) > 0.999
        # the embedding is the pooled tokens, so the two outputs come from one pass, not two models
        pooled = tok.reshape(-1, 96).mean(0)
        assert float(pooled @ z / np.linalg.norm(pooled)) > 0.9999
        np.testing.assert_array_equal(pte.encode(pte.preprocess(f.image)), z)


def test_runtime_memory_and_planner_read_the_embedding_by_name(pico_pte, bikes_frames_rgb, tmp_path):
    db = tmp_path / "m.db"
    opts = RuntimeOptions(pico_pte, running_mode=RunningMode.VIDEO, memory_path=db, source_name="bikes")
    with Runtime(opts) as rt:
        results = [rt.process_for_video(f, f.t_ns) for f in bikes_frames_rgb[:40]]
    assert all(r.embedding.shape == (96,) and r.tokens.shape == (6, 6, 96) for r in results)
    kept = [r for r in results if r.keyframe]
    with EpisodicMemory.open(db, readonly=True) as mem:
        for r in kept:  # what memory stored per keyframe is the embedding (int8 codes: cosine ~1)
            hits = mem.search(r.embedding, rt.encoder.model_id, k=len(kept))
            own = next(h for h in hits if h.t_ns == r.t_ns)
            assert own.score > 0.999 and own.score >= hits[0].score - 1e-3
    # the planner's embedder (goals from images, place recognition) reads the same output
    emb = load_embedder(pico_pte)
    assert emb.dim == 96
    np.testing.assert_allclose(emb.embed(bikes_frames_rgb[0].image), results[0].embedding, atol=1e-6)


def test_an_older_single_output_pte_keeps_working(bikes_frames_rgb):
    m = json.loads(manifest_path(OLD_SINGLE_OUTPUT).read_text())
    assert [o["name"] for o in m["outputs"]] == ["embedding"]
    enc = load_encoder(OLD_SINGLE_OUTPUT)
    assert enc.token_grid is None
    z, tok = enc.encode_with_tokens(enc.preprocess(bikes_frames_rgb[0].image))
    assert tok is None and z.shape == (96,)
    with Runtime(RuntimeOptions(OLD_SINGLE_OUTPUT, running_mode=RunningMode.VIDEO)) as rt:
        r = rt.process_for_video(bikes_frames_rgb[0], bikes_frames_rgb[0].t_ns)
    assert r.tokens is None and abs(float(np.linalg.norm(r.embedding)) - 1.0) < 1e-5


def test_a_tokens_output_of_the_wrong_rank_is_refused(pico_pte, tmp_path):
    dst = tmp_path / "bad.pte"
    shutil.copy(pico_pte, dst)
    m = json.loads(manifest_path(pico_pte).read_text())
    m["outputs"][1]["shape"] = [1, 36, 96]
    manifest_path(dst).write_text(json.dumps(m))
    with pytest.raises(ModelFileError, match="manifest says"):
        load_encoder(dst)
