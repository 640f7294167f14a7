"""Mask properties: counts, disjointness, block shapes, tubes spanning time, determinism."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_models.errors import ConfigError
from edge_models.masks import MultiBlockConfig, MultiBlockMasks, TubeConfig, TubeMasks
from edge_models.masks.blocks import block_size


def _rows(t: torch.Tensor) -> list[set[int]]:
    return [set(r.tolist()) for r in t]


def _bbox(indices: set[int], w: int) -> tuple[int, int]:
    rows = [i // w for i in indices]
    cols = [i % w for i in indices]
    return max(rows) - min(rows) + 1, max(cols) - min(cols) + 1


@pytest.mark.parametrize("grid", [(1, 14, 14), (1, 6, 6), (1, 12, 20)])
def test_multiblock_counts_and_disjoint(grid):
    pairs = MultiBlockMasks(seed=3)(batch_size=8, grid=grid, step=0)
    assert len(pairs) == 1
    pair = pairs[0]
    assert len(pair.targets) == 4
    n = grid[0] * grid[1] * grid[2]
    assert pair.context.shape[0] == 8 and pair.context.shape[1] >= 4
    for tgt in pair.targets:
        assert tgt.shape[0] == 8
        assert tgt.dtype == torch.int64
        assert int(tgt.min()) >= 0 and int(tgt.max()) < n
    for b in range(8):
        ctx = set(pair.context[b].tolist())
        assert len(ctx) == pair.context.shape[1]  # no duplicates
        for tgt in pair.targets:
            assert ctx.isdisjoint(set(tgt[b].tolist()))


def test_multiblock_target_blocks_are_rectangles_in_range():
    h = w = 14
    cfg = MultiBlockConfig()
    for step in range(20):
        pair = MultiBlockMasks(cfg, seed=0)(batch_size=4, grid=(1, h, w), step=step)[0]
        for tgt in pair.targets:
            for row in _rows(tgt):
                bh, bw = _bbox(row, w)
                assert bh * bw == len(row), "target block must be a full rectangle"
                assert cfg.target_scale[0] <= len(row) / (h * w) <= cfg.target_scale[1]
                assert cfg.target_aspect[0] <= bh / bw <= cfg.target_aspect[1]


@settings(max_examples=30, deadline=None)
@given(
    h=st.integers(4, 24),
    w=st.integers(4, 24),
    lo=st.floats(0.05, 0.5),
    span=st.floats(0.0, 0.3),
)
def test_block_size_respects_ranges_when_possible(h, w, lo, span):
    scale = (lo, min(1.0, lo + span))
    aspect = (0.75, 1.5)
    gen = torch.Generator().manual_seed(0)
    bh, bw = block_size(gen, h, w, scale, aspect)
    assert 1 <= bh <= h and 1 <= bw <= w
    feasible = [
        (a, b)
        for a in range(1, h + 1)
        for b in range(1, w + 1)
        if scale[0] <= a * b / (h * w) <= scale[1] and aspect[0] <= a / b <= aspect[1]
    ]
    if feasible:
        assert (bh, bw) in feasible


def test_masks_are_deterministic_by_seed_and_step():
    a = MultiBlockMasks(seed=1)(8, (1, 14, 14), step=5)[0]
    b = MultiBlockMasks(seed=1)(8, (1, 14, 14), step=5)[0]
    c = MultiBlockMasks(seed=1)(8, (1, 14, 14), step=6)[0]
    assert torch.equal(a.context, b.context)
    assert all(torch.equal(x, y) for x, y in zip(a.targets, b.targets, strict=True))
    assert not torch.equal(a.context, c.context) or not torch.equal(a.targets[0], c.targets[0])
    ta = TubeMasks(seed=1)(4, (4, 14, 14), step=2)
    tb = TubeMasks(seed=1)(4, (4, 14, 14), step=2)
    assert all(torch.equal(x.context, y.context) for x, y in zip(ta, tb, strict=True))


def test_tube_masks_span_all_frames_and_partition_tokens():
    gt, h, w = 4, 14, 14
    hw = h * w
    pairs = TubeMasks(seed=0)(batch_size=6, grid=(gt, h, w), step=0)
    assert len(pairs) == 2  # short-range (8 x 0.15) and long-range (2 x 0.7)
    sizes = []
    for pair in pairs:
        assert len(pair.targets) == 1
        tgt = pair.targets[0]
        assert tgt.shape[1] % gt == 0 and pair.context.shape[1] % gt == 0
        for b in range(6):
            ctx, tg = set(pair.context[b].tolist()), set(tgt[b].tolist())
            assert ctx.isdisjoint(tg)
            for tokens in (ctx, tg):
                spatial = {i % hw for i in tokens}
                # every spatial position present at every time step: a tube
                assert tokens == {t * hw + s for t in range(gt) for s in spatial}
        sizes.append(tgt.shape[1] / gt / hw)
    # the long-range mask hides much more than the short-range one
    assert sizes[1] > sizes[0]


def test_tube_block_scale_close_to_config():
    gen = torch.Generator().manual_seed(0)
    bh, bw = block_size(gen, 14, 14, (0.15, 0.15), (0.75, 1.5))
    assert abs(bh * bw / 196 - 0.15) < 0.02
    bh, bw = block_size(gen, 14, 14, (0.7, 0.7), (0.75, 1.5))
    assert abs(bh * bw / 196 - 0.7) < 0.03


def test_bad_mask_configs_are_clear_errors():
    with pytest.raises(ConfigError, match="target_scale"):
        MultiBlockConfig(target_scale=(0.3, 0.2))
    with pytest.raises(ConfigError, match="num_blocks"):
        TubeConfig(num_blocks=0, spatial_scale=0.1)
    with pytest.raises(ConfigError, match="context tokens"):
        TubeMasks((TubeConfig(num_blocks=4, spatial_scale=1.0),))(2, (2, 4, 4), step=0)
