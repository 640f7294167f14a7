"""The shipped default encoder (made by `make models-encoder`): it loads, embeds a real frame through both
engines, its int8 .pte has both outputs and comes from the shipped checkpoint."""

from __future__ import annotations

import numpy as np

from edge_models.embed import DEFAULT_WEIGHTS
from edge_models.hashing import file_sha256
from glasses_runtime.engines.encoder import load_encoder
from glasses_runtime.manifest import load_manifest

DEFAULT_PTE = DEFAULT_WEIGHTS.parent / "encoder_vit_tiny_int8_xnnpack.pte"


def test_the_default_encoder_embeds_a_real_frame(bikes_frames_rgb):
    m = load_manifest(DEFAULT_PTE)
    assert m.kind == "encoder" and m.quantization["mode"] == "int8" and m.delegation["fully_delegated"]
    assert [(t.name, t.shape) for t in m.outputs] == [("embedding", [1, 192]), ("tokens", [1, 8, 8, 192])]
    assert m.source_checkpoint_sha256 == file_sha256(DEFAULT_WEIGHTS)
    pte, eager = load_encoder(DEFAULT_PTE), load_encoder(DEFAULT_WEIGHTS)
    assert pte.size == eager.size == 128 and pte.dim == eager.dim == 192
    frames = [f.image for f in bikes_frames_rgb[::50]]
    for img in frames:
        z, tok = pte.encode_with_tokens(pte.preprocess(img))
        ze, toke = eager.encode_with_tokens(eager.preprocess(img))
        assert z.shape == (192,) and tok.shape == (8, 8, 192) and abs(float(np.linalg.norm(z)) - 1) < 1e-5
        assert float(z @ ze) > 0.98  # int8 against the fp32 checkpoint
    # it tells different shots apart: frames of one shot are closer to each other than to other shots
    z = np.stack([pte.encode(pte.preprocess(f.image)) for f in bikes_frames_rgb[40:70:10]])  # shot 2
    other = pte.encode(pte.preprocess(bikes_frames_rgb[160].image))  # shot 4
    within = float(np.mean([z[i] @ z[j] for i in range(3) for j in range(i + 1, 3)]))
    assert within > float(np.max(z @ other))
