"""Online episode consolidation matches its definition, whatever the batch size or member cache."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DIM, MODEL

from glasses_runtime.memory import EpisodicMemory, KeyframeIn, MemoryConfig, episodes
from glasses_runtime.memory.codec import normalise, pack_many, unpack_many

GAP_NS = 30 * 10**9  # MemoryConfig.episode_max_gap_s


def _stream(seed: int = 0) -> tuple[np.ndarray, list[int]]:
    """-> (embeddings float32 [N, DIM], t_ns [N]): runs of near-duplicates of many lengths, singletons,
    a gap longer than episode_max_gap_s inside a run and a timestamp going backwards."""
    rng = np.random.default_rng(seed)
    parts = []
    for length in [1, 1, 3, 40, 1, 7, 130, 2, 1, 25, 1, 1, 60]:
        centre = rng.standard_normal(DIM)
        parts.append(centre + 0.05 * rng.standard_normal((length, DIM)))
    x = np.concatenate(parts).astype(np.float32)
    t = list(range(0, len(x) * 10**9, 10**9))
    t[100:] = [v + 31 * 10**9 for v in t[100:]]  # inside the run of 130: a gap over 30 s
    t[150] = t[149] - 1  # and one keyframe stamped before its predecessor
    return x, t


def _reference(x: np.ndarray, t: list[int], threshold: float = 0.9) -> list[tuple[int, int, int, int]]:
    """Episodes by definition: (start_ns, end_ns, n_keyframes, representative id); ids start at 1."""
    v = unpack_many(pack_many(normalise(x)), x.shape[1])  # what the memory stores
    cuts = [0] + [
        i for i in range(1, len(v)) if not (0 <= t[i] - t[i - 1] <= GAP_NS and v[i] @ v[i - 1] >= threshold)
    ]
    out = []
    for s, e in zip(cuts, [*cuts[1:], len(v)], strict=True):
        rep = s + int(np.argmax(v[s:e] @ normalise(v[s:e].mean(axis=0)))) + 1
        out.append((min(t[s:e]), max(t[s:e]), e - s, rep))
    return out


def _episodes(mem: EpisodicMemory) -> list[tuple[int, int, int, int]]:
    return mem.db.execute(
        "SELECT start_ns, end_ns, n_keyframes, rep_keyframe_id FROM episodes ORDER BY id"
    ).fetchall()


@pytest.mark.parametrize("batch", [1, 7, 64, 1000])
@pytest.mark.parametrize("cache", [episodes.MEMBERS_IN_MEMORY, 5])
def test_episodes_match_their_definition(tmp_path, monkeypatch, batch, cache):
    monkeypatch.setattr(episodes, "MEMBERS_IN_MEMORY", cache)  # 5: long episodes read members from SQLite
    x, t = _stream()
    expected = _reference(x, t)
    assert len(expected) == 15 and max(e[2] for e in expected) == 60  # the stream exercises every rule
    with EpisodicMemory.open(tmp_path / "m.db", MemoryConfig(synchronous="NORMAL", blur_faces=False)) as mem:
        sid = mem.start_session("camera")
        for i in range(0, len(x), batch):
            mem.add_keyframes([KeyframeIn(t[j], x[j], MODEL) for j in range(i, min(i + batch, len(x)))], sid)
        assert _episodes(mem)[:-1] == expected[:-1]
        assert _episodes(mem)[-1][3] is None  # the last episode is still open
        mem.end_session(sid)
        assert _episodes(mem) == expected
        assert [e.episode_id for e in mem.timeline(0, 10**15)[0]] == list(range(1, 16))


def test_deletion_inside_the_open_episode(tmp_path):
    """Forgetting part of the episode being recorded: its representative comes from what is left."""
    x, t = _stream(seed=1)
    x, t = x[-60:], t[-60:]  # one run of 60 near-duplicates
    with EpisodicMemory.open(tmp_path / "m.db", MemoryConfig(synchronous="NORMAL", blur_faces=False)) as mem:
        sid = mem.start_session("camera")
        mem.add_keyframes([KeyframeIn(t[j], x[j], MODEL) for j in range(40)], sid)
        mem.forget(t0=t[0], t1=t[19])  # ids 1..20
        mem.add_keyframes([KeyframeIn(t[j], x[j], MODEL) for j in range(40, 60)], sid)
        mem.end_session(sid)
        ((start, end, n, rep),) = _episodes(mem)
    (ref_start, ref_end, ref_n, ref_rep) = _reference(x[20:], t[20:])[0]
    assert (start, end, n, rep) == (ref_start, ref_end, ref_n, ref_rep + 20)
