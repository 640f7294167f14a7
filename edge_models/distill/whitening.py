"""PCA whitening of the pooled embedding, fitted on unlabelled training images and baked into the encoder.

A small distilled student spreads what tells images apart over a few strong directions and many weak
ones; cosine similarity then listens mostly to the strong few. Whitening (Jegou & Chum, ECCV 2012: PCA
whitening with shrinkage for retrieval) rescales every principal direction of the embeddings of
training-distribution images to unit variance, with a shrinkage ``shrink * trace`` added to every
eigenvalue so that directions with almost no variance are not blown up into noise:

    W = V (diag(lambda) + shrink * sum(lambda))^-1/2 V^T,   embedding = W (pooled - mu)

It is one linear layer (``EncoderConfig.embed_head``): the tokens are untouched, the export lowers it
with the rest, and the runtime L2-normalises the result as before. Measured on the default encoder
(docs/encoder.md): instance retrieval and effective rank both rise.

    python -m edge_models.distill.whitening runs/enc/encoder.safetensors runs/enc/encoder_whitened.safetensors \\
        --data "photos:train+rollouts:runs/mw" --samples 2048 --shrink 1e-5
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from edge_models.checkpoint import file_sha256, load_encoder, read_metadata, save_encoder
from edge_models.distill.mixture import build_mixture
from edge_models.errors import ConfigError, EdgeModelsError
from edge_models.models.vit import VisionTransformer


@torch.no_grad()
def pooled_embeddings(
    encoder: VisionTransformer, data: str, samples: int, seed: int, batch: int = 128
) -> np.ndarray:
    """Raw pooled embeddings [samples, D] (float64) of ``samples`` images drawn from the mixture ``data``
    by its weights (seeded), at the encoder's resolution."""
    mix = build_mixture(data, encoder.config.img_size, seed)
    gen = torch.Generator().manual_seed(seed)
    idx = torch.multinomial(mix.sample_weights(), samples, replacement=True, generator=gen).tolist()
    enc = encoder.inference_copy()
    out = []
    for k in range(0, samples, batch):
        x = torch.stack([mix[i] for i in idx[k : k + batch]])
        out.append(enc.pool(enc(x)).double().numpy())
    return np.concatenate(out)


def fit_whitening(z: np.ndarray, shrink: float) -> tuple[np.ndarray, np.ndarray, dict]:
    """z: [N, D] -> (W [D, D], mu [D], report). ``shrink``: added to every eigenvalue, times their sum."""
    if shrink < 0:
        raise ConfigError(f"--shrink must be >= 0, got {shrink}")
    n, d = z.shape
    if n < 2 * d:
        raise ConfigError(
            f"{n} samples are too few to estimate a {d}x{d} covariance; use --samples >= {2 * d}"
        )
    mu = z.mean(axis=0)
    ev, v = np.linalg.eigh(np.cov((z - mu).T))
    ev = np.clip(ev, 0.0, None)
    w = v @ np.diag(1.0 / np.sqrt(ev + shrink * ev.sum() + 1e-12)) @ v.T
    spectrum = ev[::-1] / ev.sum()
    report = {
        "samples": n,
        "shrink": shrink,
        "variance_top1": float(spectrum[0]),
        "variance_top10": float(spectrum[:10].sum()),
        "participation_ratio": float(ev.sum() ** 2 / (ev**2).sum()),
    }
    return w, mu, report


def whiten_checkpoint(
    src: str | Path, dst: str | Path, data: str, samples: int = 2048, shrink: float = 1e-5, seed: int = 0
) -> dict:
    """Write ``dst``: the encoder of ``src`` with a whitening ``embed_head`` fitted on ``data``."""
    encoder = load_encoder(src)
    if encoder.config.embed_head:
        raise ConfigError(f"{src} already has an embedding head; whiten the checkpoint it was made from")
    w, mu, report = fit_whitening(pooled_embeddings(encoder, data, samples, seed), shrink)
    out = VisionTransformer(replace(encoder.config, embed_head=True))
    missing, unexpected = out.load_state_dict(encoder.state_dict(), strict=False)
    assert not unexpected and sorted(missing) == ["embed_head.bias", "embed_head.weight"], (
        missing,
        unexpected,
    )
    with torch.no_grad():
        out.embed_head.weight.copy_(torch.from_numpy(w).float())
        out.embed_head.bias.copy_(torch.from_numpy(-(w @ mu)).float())
    report.update({"data": data, "seed": seed, "source": str(src), "source_sha256": file_sha256(src)})
    meta = {k: v for k, v in read_metadata(src).items() if k not in ("format", "kind", "config")}
    meta["whitening"] = json.dumps(report)
    save_encoder(dst, out.eval(), extra=meta)
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", type=Path, help="encoder checkpoint (.safetensors)")
    ap.add_argument("dst", type=Path, help="where to write the whitened encoder")
    ap.add_argument(
        "--data", required=True, help="mixture spec of training images (edge_models.distill.mixture)"
    )
    ap.add_argument("--samples", type=int, default=2048)
    ap.add_argument("--shrink", type=float, default=1e-5, help="eigenvalue shrinkage, times their sum")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(2)
    try:
        report = whiten_checkpoint(args.src, args.dst, args.data, args.samples, args.shrink, args.seed)
    except EdgeModelsError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
