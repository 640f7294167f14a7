"""Can an embedding tell a left turn from a right turn? The question behind latent-only planning.

A planner that works in embedding space can only choose which way to turn if the embedding of the
view before and after a turn says which way the view moved. This probe measures that directly on
simulator rollouts (``python -m simulator.world.collect``): for every turn (left or right) it takes
the embeddings of the frame before and after, ``(z_t, z_t+1 - z_t)``, and trains a classifier to name
the turn on the first half of the episodes; it reports held-out accuracy (0.5 = chance) on the rest.

Two read-outs of the same encoder's tokens are compared:

* ``pooled``: the mean over all tokens, L2-normalised (what the memory stores and the world model uses);
* ``strips``: the token grid cut into ``--strips`` vertical strips, each mean-pooled and
  L2-normalised, concatenated (keeps left/centre/right layout).

and two classifiers: logistic regression (linear) and a one-hidden-layer MLP (a world model is an MLP).

Then the planner's question itself (``--world-model-steps``, 0 skips it): a world model per read-out
(the repo's ``WorldModel``, teacher forcing + 3-step fed-back loss, as ``edge_models.world_model.train``)
on the first 90 % of all episodes; on every turn of the last 10 %, is its prediction with the true
turn closer to what came next than its prediction with the opposite turn? Counted in the read-out's
own space and against the next frame's pooled embedding (the strips summed and normalised), which is
what a goal from memory is compared with.

    python benchmarks/probe_turn_direction.py --rollouts runs/wm_data160 \
        --encoder edge_models/weights/vit_pico.safetensors --out benchmarks/results/turn_probe.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_models.checkpoint import file_sha256, load_encoder  # noqa: E402
from edge_models.preprocess import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402
from edge_models.world_model.data import read_index  # noqa: E402

TURN_LEFT, TURN_RIGHT = 0, 1  # simulator.world Action order: turn_left, turn_right, forward, back


def readouts(encoder, frames: np.ndarray, strips: int) -> dict[str, np.ndarray]:
    """uint8 [T, H, W, 3] -> {"pooled": [T, D], "strips": [T, strips * D]} (each part unit-norm)."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    x = (torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255 - mean) / std
    with torch.inference_mode():
        tokens, pooled = encoder.embed(x)
    t, n, d = tokens.shape
    side = int(round(n**0.5))
    if side * side != n or side % strips:
        raise SystemExit(
            f"a {side}x{side} token grid does not split into {strips} equal strips; pick --strips"
        )
    grid = tokens.reshape(t, side, side, d)
    w = side // strips
    parts = [
        torch.nn.functional.normalize(grid[:, :, i * w : (i + 1) * w].mean((1, 2)), dim=-1)
        for i in range(strips)
    ]
    return {
        "pooled": torch.nn.functional.normalize(pooled, dim=-1).numpy(),
        "strips": torch.cat(parts, dim=-1).numpy(),
    }


class Episodes:
    """Each rollout file loaded and embedded once: (read-outs, actions, poses), shared by both parts."""

    def __init__(self, encoder, strips: int) -> None:
        self.encoder, self.strips, self._seen = encoder, strips, {}

    def __call__(self, path: Path) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        if path not in self._seen:
            with np.load(path) as z:
                frames, actions, poses = z["frames"], z["actions"], z["poses"]
            self._seen[path] = (readouts(self.encoder, frames, self.strips), actions, poses)
        return self._seen[path]


def world_model_turn_choice(episodes: Episodes, root: Path, index: dict, strips: int, steps: int) -> dict:
    """Train a world model per read-out; how often the true turn predicts the next frame better."""
    import math

    from edge_models.world_model.config import WorldModelConfig
    from edge_models.world_model.data import EmbeddedEpisode, WindowSampler
    from edge_models.world_model.model import WorldModel
    from edge_models.world_model.train import window_loss

    eps: dict[str, list] = {"pooled": [], "strips": []}
    for ep in index["episodes"]:
        r, actions, poses = episodes(root / ep["file"])
        onehot = np.eye(4, dtype=np.float32)[actions]
        eps["pooled"].append(EmbeddedEpisode(r["pooled"], onehot, poses))
        eps["strips"].append(EmbeddedEpisode(r["strips"] / math.sqrt(strips), onehot, poses))  # unit norm
    n_train = int(len(index["episodes"]) * 0.9)

    def pooled(z: torch.Tensor, kind: str) -> torch.Tensor:
        return z if kind == "pooled" else torch.nn.functional.normalize(z.reshape(strips, -1).sum(0), dim=-1)

    out = {}
    for kind, data in eps.items():
        torch.manual_seed(0)
        dim = data[0].emb.shape[1]
        model = WorldModel(WorldModelConfig(embed_dim=dim, hidden=128 if kind == "pooled" else 256))
        sampler = WindowSampler(data[:n_train], model.config.context, 3, seed=0)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
        for step in range(steps):
            for group in opt.param_groups:
                group["lr"] = 1e-3 * 0.5 * (1 + math.cos(math.pi * step / steps))
            loss, _, _ = window_loss(model, *sampler.sample(256), rollout_weight=1.0)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        own = near = total = 0
        with torch.no_grad():
            for e, ref in zip(data[n_train:], eps["pooled"][n_train:], strict=True):
                acts = e.actions.argmax(1)
                for t in range(1, len(acts)):
                    if acts[t] not in (TURN_LEFT, TURN_RIGHT):
                        continue
                    ctx = torch.from_numpy(e.emb[t - 1 : t + 1]).unsqueeze(0)
                    a = torch.zeros(2, 1, 4)
                    a[0, 0, acts[t]] = 1
                    a[1, 0, TURN_LEFT + TURN_RIGHT - acts[t]] = 1
                    pred = model.rollout(ctx.expand(2, -1, -1), a)[:, 0]  # [true, opposite]
                    nxt, nxt_pooled = torch.from_numpy(e.emb[t + 1]), torch.from_numpy(ref.emb[t + 1])
                    d = ((pred - nxt) ** 2).sum(-1)
                    dp = torch.stack([((pooled(x, kind) - nxt_pooled) ** 2).sum() for x in pred])
                    own += int(d[0] < d[1])
                    near += int(dp[0] < dp[1])
                    total += 1
        out[kind] = {
            "dim": dim,
            "held_out_turns": total,
            "own_space": round(own / total, 4),
            "pooled": round(near / total, 4),
        }
    out["setup"] = f"{n_train} training / {len(eps['pooled']) - n_train} held-out episodes, {steps} steps"
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rollouts", default="runs/wm_data160", help="folder of simulator rollouts (index.json)")
    p.add_argument("--encoder", default="edge_models/weights/vit_pico.safetensors")
    p.add_argument("--episodes", type=int, default=80, help="episodes used (every other one of the folder)")
    p.add_argument("--strips", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--world-model-steps", type=int, default=3000, help="0: skip the world-model part")
    p.add_argument("--out", default="benchmarks/results/turn_probe.json")
    args = p.parse_args(argv)

    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    root = Path(args.rollouts)
    index = read_index(root)
    files = [root / ep["file"] for ep in index["episodes"]][::2][: args.episodes]
    if len(files) < 4:
        raise SystemExit(f"{root} has too few episodes for a held-out split; collect more")
    episodes = Episodes(load_encoder(args.encoder).eval(), args.strips)
    feats: dict[str, list] = {"pooled": [], "strips": []}
    labels, groups = [], []
    for i, f in enumerate(files):
        r, actions, _ = episodes(f)
        for t, a in enumerate(actions):
            if a in (TURN_LEFT, TURN_RIGHT):
                for k in feats:
                    feats[k].append(np.concatenate([r[k][t], r[k][t + 1] - r[k][t]]))
                labels.append(int(a))
                groups.append(i)
    y, g = np.array(labels), np.array(groups)
    train = g < len(files) // 2
    results: dict = {}
    for k, rows in feats.items():
        x = np.array(rows)
        results[k] = {"dim": x.shape[1] // 2}
        for name, clf in {
            "logistic": LogisticRegression(max_iter=2000),
            "mlp": MLPClassifier((256,), max_iter=500, random_state=0),
        }.items():
            clf.fit(x[train], y[train])
            results[k][f"{name}_accuracy"] = round(float(clf.score(x[~train], y[~train])), 4)
    if args.world_model_steps > 0:
        results["world_model_turn_choice"] = world_model_turn_choice(
            episodes, root, index, args.strips, args.world_model_steps
        )
    report = {
        "benchmark": "turn direction from embeddings (held-out episodes)",
        "encoder": args.encoder,
        "encoder_sha256": file_sha256(args.encoder),
        "rollouts": str(root),
        "episodes": len(files),
        "turns": {"train": int(train.sum()), "held_out": int((~train).sum())},
        "strips": args.strips,
        "chance": 0.5,
        "results": results,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    for k in ("pooled", "strips"):
        v = results[k]
        print(f"{k:7s} ({v['dim']}-d): logistic {v['logistic_accuracy']:.3f}  mlp {v['mlp_accuracy']:.3f}")
    for k, v in results.get("world_model_turn_choice", {}).items():
        if k == "setup":
            continue
        print(
            f"world model on {k:7s}: true turn closer on {v['own_space']:.3f} (own space), {v['pooled']:.3f} (pooled)"
        )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
