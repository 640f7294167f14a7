"""A recorder process for the crash test: writes batches forever, printing each acknowledged id range."""

from __future__ import annotations

import sys

import numpy as np

from glasses_runtime.memory import EpisodicMemory, IndexConfig, KeyframeIn, MemoryConfig

if __name__ == "__main__":
    db, model = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(0)
    mem = EpisodicMemory.open(
        db, MemoryConfig(index=IndexConfig(flat_below=1000, save_every=700), blur_faces=False)
    )
    sid = mem.start_session("camera")
    t = 0
    while True:
        batch = []
        for _ in range(50):
            batch.append(KeyframeIn(t, rng.standard_normal(32).astype(np.float32), model))
            t += 10**8
        ids = mem.add_keyframes(batch, sid)
        print(ids[0], ids[-1], flush=True)
