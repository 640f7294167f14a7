"""Quality measures for encoders: linear probe on Fashion-MNIST and shot retrieval on a real clip.

An "embedder" here is any callable ``f(x: [1, 3, S, S] float) -> [1, D]`` (eager module, teacher's
pooled output, or an ExecuTorch engine), so the teacher, the fp32 student and the int8 ``.pte``
are measured the same way.

* ``linear_probe``: multinomial logistic regression on standardised frozen embeddings, trained on
  the train split, accuracy on the test split.
* ``shot_retrieval``: for every frame, is its nearest neighbour (cosine, excluding frames within
  ``exclude`` frames of it) in the same shot? -> precision@1 (and @5).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from edge_models.datasets import to_rgb_size
from edge_models.preprocess import normalize

Embedder = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def embed_images(embed: Embedder, images: Sequence[np.ndarray], size: int, batch: int = 1) -> np.ndarray:
    """uint8 images (grey or RGB, any size; resized whole) -> float32 [N, D]."""
    out = []
    for i in range(0, len(images), batch):
        x = torch.cat([normalize(to_rgb_size(im, size)).unsqueeze(0) for im in images[i : i + batch]])
        out.append(embed(x).reshape(x.shape[0], -1).float().numpy())
    return np.concatenate(out)


def linear_probe(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, max_iter: int = 1000
) -> float:
    """Top-1 accuracy of a logistic-regression probe on frozen features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_x)
    clf = LogisticRegression(max_iter=max_iter, C=1.0)
    clf.fit(scaler.transform(train_x), train_y)
    return float((clf.predict(scaler.transform(test_x)) == test_y).mean())


def shot_ids(num_frames: int, cuts: Sequence[int]) -> np.ndarray:
    """Shot index of every frame given the first frame of each new shot."""
    ids = np.zeros(num_frames, dtype=np.int64)
    for c in cuts:
        ids[c:] += 1
    return ids


def shot_retrieval(z: np.ndarray, shots: np.ndarray, exclude: int = 5) -> dict[str, float]:
    """z: [T, D] frame embeddings; shots: [T] shot ids. -> precision@1 and @5."""
    zn = z / np.linalg.norm(z, axis=1, keepdims=True).clip(1e-12)
    sim = zn @ zn.T
    t = np.arange(len(z))
    sim[np.abs(t[:, None] - t[None, :]) <= exclude] = -np.inf
    order = np.argsort(-sim, axis=1)
    same = shots[order] == shots[:, None]
    return {"precision_at_1": float(same[:, 0].mean()), "precision_at_5": float(same[:, :5].mean())}
