"""Encoder and predictor shapes, presets, export-friendly layers, image/video consistency."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edge_models.errors import ConfigError
from edge_models.masks import MultiBlockMasks
from edge_models.models import PRESETS, build_encoder, build_predictor, get_config, vit_pico
from edge_models.models.layers import ExportLayerNorm
from edge_models.models.pos_embed import sincos_3d, split_dims


@pytest.mark.parametrize("size", [64, 96])
def test_encoder_image_shapes_two_resolutions(size):
    enc = vit_pico().eval()
    tokens, pooled = enc.embed(torch.rand(2, 3, size, size))
    n = (size // 16) ** 2
    assert tokens.shape == (2, n, 96)
    assert pooled.shape == (2, 96)
    assert torch.allclose(pooled, tokens.mean(dim=1), atol=1e-5)


@pytest.mark.parametrize(("frames", "size"), [(4, 64), (8, 96)])
def test_encoder_video_shapes_two_resolutions(frames, size):
    enc = vit_pico().eval()
    tokens, pooled = enc.embed(torch.rand(1, 3, frames, size, size))
    assert tokens.shape == (1, (frames // 2) * (size // 16) ** 2, 96)
    assert pooled.shape == (1, 96)


def test_non_square_image():
    enc = vit_pico().eval()
    tokens, _ = enc.embed(torch.rand(1, 3, 64, 112))
    assert tokens.shape == (1, 4 * 7, 96)


def test_image_equals_clip_of_repeated_frame():
    enc = vit_pico().eval()
    img = torch.rand(2, 3, 64, 64)
    clip = img.unsqueeze(2).repeat(1, 1, 2, 1, 1)  # one tubelet of the same frame
    with torch.no_grad():
        a = enc(img)
        b = enc(clip)
    assert torch.allclose(a, b, atol=1e-5)


def test_inference_copy_matches_and_is_frozen():
    enc = vit_pico().eval()
    inf = enc.inference_copy()
    x = torch.rand(2, 3, 96, 96)
    with torch.no_grad():
        assert torch.allclose(enc.embed(x)[1], inf.embed(x)[1], atol=1e-5)
    assert not any(p.requires_grad for p in inf.parameters())
    assert inf.image_patch_embed is not None and enc.image_patch_embed is None


def test_preset_registry_sizes():
    assert set(PRESETS) == {"vit_pico", "vit_tiny", "vit_small", "vit_base"}
    tiny, small, base = get_config("vit_tiny"), get_config("vit_small"), get_config("vit_base")
    assert (tiny.width, tiny.depth, tiny.heads) == (192, 12, 3)
    assert (small.width, small.depth, small.heads) == (384, 12, 6)
    assert (base.width, base.depth, base.heads) == (768, 12, 12)
    assert all(c.patch_size == 16 and c.tubelet_size == 2 for c in (tiny, small, base))
    n_params = sum(p.numel() for p in build_encoder("vit_tiny").parameters())
    assert 5.0e6 < n_params < 6.5e6  # ViT-Ti/16 is about 5.7M parameters


def test_unknown_preset_and_bad_inputs_are_clear():
    with pytest.raises(ConfigError, match="unknown preset 'vit_huge'.*vit_pico"):
        build_encoder("vit_huge")
    enc = vit_pico()
    with pytest.raises(ConfigError, match="multiple of the patch size"):
        enc(torch.rand(1, 3, 70, 64))
    with pytest.raises(ConfigError, match="channels"):
        enc(torch.rand(1, 1, 64, 64))
    with pytest.raises(ConfigError, match="tubelet"):
        enc(torch.rand(1, 3, 3, 64, 64))
    with pytest.raises(ConfigError, match="not divisible"):
        get_config("vit_pico", heads=5)


def test_context_masking_keeps_requested_tokens():
    enc = vit_pico().eval()
    keep = torch.tensor([[0, 5, 7], [1, 2, 35]])
    out = enc(torch.rand(2, 3, 96, 96), keep)
    assert out.shape == (2, 3, 96)


def test_predictor_outputs_target_tokens():
    cfg = get_config("vit_pico")
    enc, pred = vit_pico(), build_predictor(cfg)
    x = torch.rand(3, 3, 96, 96)
    grid = enc.grid(x.shape)
    pair = MultiBlockMasks(seed=0)(3, grid, step=0)[0]
    ctx = enc(x, pair.context)
    out = pred(ctx, pair.context, pair.targets[0], grid)
    assert out.shape == (3, pair.targets[0].shape[1], cfg.width)
    out.sum().backward()
    assert pred.mask_token.grad is not None and enc.patch_embed.weight.grad is not None


def test_export_layer_norm_matches_torch():
    torch.manual_seed(0)
    ref = nn.LayerNorm(48, eps=1e-6)
    nn.init.normal_(ref.weight)
    nn.init.normal_(ref.bias)
    ours = ExportLayerNorm(48)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(4, 9, 48) * 3 + 1
    assert torch.allclose(ours(x), ref(x), atol=1e-5)


def test_sincos_position_embeddings():
    assert sum(split_dims(192)) == 192
    pe = sincos_3d(96, 2, 4, 5)
    assert pe.shape == (40, 96)
    assert torch.unique(pe, dim=0).shape[0] == 40  # every position distinct
    # the same (t, h, w) position has the same embedding whatever the grid size
    big = sincos_3d(96, 2, 6, 7)
    assert torch.allclose(pe[1 * 5 + 2], big[1 * 7 + 2])
