"""The reduced token grid: what memory keeps per keyframe and what the token world model works on.

    grid = reduce_tokens(tokens)        # encoder tokens float32 [h, w, D] -> [h // 2, w, D]

The encoder's ``tokens`` output is an [8, 8, D] grid at 128 px. Averaging pairs of rows keeps every
column (a 30 degree turn with an 80 degree field of view moves the view by 3 of 8 columns, so the
horizontal layout is what tells a left turn from a right one) and halves the bytes memory stores per
keyframe. One function, used by the runtime when it writes keyframes, by the planner when it plans
and by the world model's training data, so all three see the same grid.
"""

from __future__ import annotations

import numpy as np

ROW_POOL = 2  # rows averaged together


def reduce_tokens(tokens: np.ndarray) -> np.ndarray:
    """float [h, w, D] (or a batch [N, h, w, D]) -> float32 [h // 2, w, D] (rows averaged in pairs).

    An odd last row is averaged on its own. Raises ValueError naming the shape when it is not a grid."""
    t = np.asarray(tokens, dtype=np.float32)
    if t.ndim not in (3, 4) or min(t.shape) < 1:
        raise ValueError(
            f"a token grid is [h, w, D] or [N, h, w, D]; got shape {t.shape} (pass the encoder's 'tokens' output)"
        )
    batch = t.ndim == 4
    if not batch:
        t = t[None]
    n, h, w, d = t.shape
    full = (h // ROW_POOL) * ROW_POOL
    out = t[:, :full].reshape(n, h // ROW_POOL, ROW_POOL, w, d).mean(axis=2)
    if full < h:
        out = np.concatenate([out, t[:, full:].mean(axis=1, keepdims=True)], axis=1)
    out = np.ascontiguousarray(out, dtype=np.float32)
    return out if batch else out[0]
