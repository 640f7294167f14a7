"""Is the shipped encoder good enough for memory and planning? Every candidate measured the same way.

    .venv/bin/python benchmarks/bench_encoder_quality.py \\
        --default edge_models/weights/vit_tiny.safetensors \\
        --default-pte edge_models/weights/encoder_vit_tiny_int8_xnnpack.pte --out benchmarks/results

Rows: raw pixels (32x32 RGB, centred), the EfficientNet-Lite0 teacher (pooled, 224 px), the old
vit_pico (its shipped int8 ``.pte``), the new default in fp32 (eager) and int8 (``.pte``). Every
image goes through the runtime's own preprocessing (short side, centre crop, the manifest's size).

* Instance retrieval under augmentation: images the encoder never saw, each cut into 4 quadrants = 4
  instances: the 18 real photographs bundled with scikit-image (``pip install -e '.[bench]'``) and the
  held-out split of the Debian wallpapers (``edge_models.distill.mixture.photo_split``, one variant
  each; digital art more than photographs). Each instance is queried with ``--queries`` augmented views
  (a crop of 60-85 % of its area, brightness x0.6-1.4, a horizontal flip half the time) against a
  gallery of all instances plus distractors (every 2nd frame of bikes.mp4, Fashion-MNIST test images).
  top-1: the nearest gallery item (cosine) is the query's instance.
* Effective rank (RankMe: exp of the entropy of the normalised singular values) of the embeddings of
  the 250 real frames of bikes.mp4, and as a fraction of the dimension.
* Fashion-MNIST linear probe (seeded subsample of the standard split), and its ratio to the teacher.
* MiniWorld object and place recognition (``benchmarks/world_recognition.py``; skip with
  ``--world-episodes 0``).
* int8 against fp32 cosine on images unlike the calibration frames (held-out photos and their
  augmented views, Fashion-MNIST test images, MiniWorld renders).

Writes encoder_quality.json and prints a markdown table. Several minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_models.data import read_image  # noqa: E402
from edge_models.datasets import fashion_mnist, to_rgb_size  # noqa: E402
from edge_models.distill.mixture import load_photos, shrink  # noqa: E402
from edge_models.embed import read_frames  # noqa: E402
from edge_models.evaluation import linear_probe  # noqa: E402
from edge_models.preprocess import resize_center_crop, to_model_input  # noqa: E402
from edge_models.train.objectives import embedding_stats  # noqa: E402

BIKES = ROOT / "tests" / "assets" / "bikes.mp4"
OLD_PICO_PTE = ROOT / "edge_models" / "weights" / "encoder_vit_pico_int8_xnnpack.pte"


def unit(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float32)
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)


class RuntimeEmbedder:
    """Any model file the runtime loads (.pte or .safetensors), batched where the engine allows."""

    def __init__(self, path: Path, threads: int) -> None:
        from glasses_runtime.engines.encoder import load_encoder

        self.enc = load_encoder(path, threads=threads)
        self.dim = self.enc.dim

    def __call__(self, images: list[np.ndarray]) -> np.ndarray:
        if self.enc.kind == "eager":
            out = []
            for i in range(0, len(images), 64):
                x = torch.cat([self.enc.preprocess(im) for im in images[i : i + 64]])
                with torch.inference_mode():
                    out.append(self.enc.model.embed(x)[1].numpy())
            return unit(np.concatenate(out))
        from simulator.find_object import RuntimeEmbedder as OneFrameAtATime  # as on the glasses

        return unit(OneFrameAtATime(self.enc).many(images))


class TeacherEmbedder:
    def __init__(self, name: str, size: int = 224) -> None:
        from edge_models.distill.teachers import load_teacher

        self.teacher, self.size = load_teacher(name), size
        self.dim = self.teacher.dim

    def __call__(self, images: list[np.ndarray]) -> np.ndarray:
        out = []
        for i in range(0, len(images), 32):
            x = torch.cat([to_model_input(im, self.size) for im in images[i : i + 32]])
            out.append(self.teacher(x)[1].numpy())
        return unit(np.concatenate(out))


class PixelEmbedder:
    """Raw pixels: 32x32 RGB, each vector centred on its own mean (brightness-invariant at least)."""

    dim = 32 * 32 * 3

    def __call__(self, images: list[np.ndarray]) -> np.ndarray:
        v = np.stack([resize_center_crop(im, 32).astype(np.float32).ravel() for im in images])
        return unit(v - v.mean(axis=1, keepdims=True))


def rgb(im: np.ndarray) -> np.ndarray:
    return np.repeat(im[:, :, None], 3, axis=2) if im.ndim == 2 else im


# scikit-image's bundled photographs (real camera images; BSD-3), never used in training. Skipped: drawings,
# charts, synthetic patterns, and motorcycle_right (the stereo twin of motorcycle_left).
SKIMAGE_PHOTOS = (
    "astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "clock_motion.png", "coffee.png",
    "coins.png", "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png", "moon.png",
    "motorcycle_left.png", "page.png", "retina.jpg", "rocket.jpg", "text.png",
)  # fmt: skip


def skimage_photos() -> tuple[list[np.ndarray], list[str]]:
    try:
        import skimage
    except ImportError:
        raise SystemExit(
            "error: the retrieval benchmark needs scikit-image's photos: pip install -e '.[bench]'"
        ) from None
    root = Path(skimage.__file__).parent / "data"
    images = [rgb(read_image(root / name)) for name in SKIMAGE_PHOTOS]
    return [shrink(im, 768) for im in images], [f"skimage-{n.split('.')[0]}" for n in SKIMAGE_PHOTOS]


def wallpapers_eval() -> tuple[list[np.ndarray], list[str]]:
    """One variant of every held-out wallpaper (light/dark variants are near copies)."""
    images, names = load_photos("eval", max_side=768)
    seen, keep_i, keep_n = set(), [], []
    for im, n in zip(images, names, strict=True):
        group = n.split("/")[0]
        if group not in seen:
            seen.add(group)
            keep_i.append(im)
            keep_n.append(group)
    return keep_i, keep_n


def quadrants(im: np.ndarray) -> list[np.ndarray]:
    h, w = im.shape[:2]
    return [im[r : r + h // 2, c : c + w // 2] for r in (0, h // 2) for c in (0, w // 2)]


def augment(im: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A crop of 60-85 % of the area (aspect kept), brightness x0.6-1.4, flipped half the time."""
    h, w = im.shape[:2]
    s = math.sqrt(rng.uniform(0.6, 0.85))
    ch, cw = round(h * s), round(w * s)
    top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    out = im[top : top + ch, left : left + cw].astype(np.float32) * rng.uniform(0.6, 1.4)
    out = np.clip(out, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out[:, ::-1]) if rng.random() < 0.5 else out


def retrieval_sets(queries_per: int, seed: int, distractor_fmnist: int):
    sk, sk_names = skimage_photos()
    wp, wp_names = wallpapers_eval()
    photos, names = sk + wp, sk_names + wp_names
    instances = [q for p in photos for q in quadrants(p)]
    kinds = ["photograph"] * 4 * len(sk) + ["wallpaper"] * 4 * len(wp)
    rng = np.random.default_rng(seed)
    queries, labels, query_kinds = [], [], []
    for i, inst in enumerate(instances):
        for _ in range(queries_per):
            queries.append(augment(inst, rng))
            labels.append(i)
            query_kinds.append(kinds[i])
    frames = read_frames(BIKES)
    te_x, _ = fashion_mnist("test")
    fm = [rgb(to_rgb_size(te_x[i], 64)) for i in rng.choice(len(te_x), distractor_fmnist, replace=False)]
    distractors = [shrink(f, 256) for f in frames[::2]] + fm
    return {
        "photos": names,
        "instances": instances,
        "queries": queries,
        "labels": np.asarray(labels),
        "query_kinds": np.asarray(query_kinds),
        "distractors": distractors,
    }


def instance_retrieval(embed, sets) -> dict:
    gallery = embed(sets["instances"] + sets["distractors"])
    q = embed(sets["queries"])
    order = np.argsort(-(q @ gallery.T), axis=1)
    labels, kinds = sets["labels"], sets["query_kinds"]
    hit1 = order[:, 0] == labels
    return {
        "top1": float(hit1.mean()),
        "top5": float((order[:, :5] == labels[:, None]).any(axis=1).mean()),
        "top1_photographs": float(hit1[kinds == "photograph"].mean()),
        "top1_wallpapers": float(hit1[kinds == "wallpaper"].mean()),
        "queries": len(labels),
        "gallery": len(gallery),
    }


def probe(embed, n_train: int, n_test: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    tr_x, tr_y = fashion_mnist("train")
    te_x, te_y = fashion_mnist("test")
    tri = rng.choice(len(tr_x), n_train, replace=False)
    tei = rng.choice(len(te_x), n_test, replace=False)
    ftr = embed([rgb(tr_x[i]) for i in tri])
    fte = embed([rgb(te_x[i]) for i in tei])
    return linear_probe(ftr, tr_y[tri], fte, te_y[tei])


def world_frames(n: int, seed: int, size: int) -> list[np.ndarray]:
    """MiniWorld renders from worlds no training run used (seeded random walk frames)."""
    from simulator.world import ApartmentEnv
    from simulator.world.collect import episode_seeds, run_episode
    from simulator.world.config import WorldConfig

    env = ApartmentEnv(WorldConfig(size=size, rows=2, cols=2))
    try:
        frames: list[np.ndarray] = []
        ep = 0
        while len(frames) < n:
            frames.extend(run_episode(env, "random", episode_seeds(seed, ep), 60).frames[::6])
            ep += 1
    finally:
        env.close()
    return frames[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--default", type=Path, required=True, help="the new default encoder .safetensors")
    ap.add_argument("--default-pte", type=Path, help="its int8 .pte (manifest beside it)")
    ap.add_argument("--old-pte", type=Path, default=OLD_PICO_PTE, help="the old default's int8 .pte")
    ap.add_argument("--teacher", default="efficientnet-lite0")
    ap.add_argument("--queries", type=int, default=3, help="augmented queries per instance")
    ap.add_argument("--distractors", type=int, default=100, help="Fashion-MNIST distractors (plus bikes)")
    ap.add_argument("--train-n", type=int, default=5000)
    ap.add_argument("--test-n", type=int, default=1000)
    ap.add_argument(
        "--world-episodes", type=int, default=50, help="object recognition episodes per apartment"
    )
    ap.add_argument(
        "--place-episodes", type=int, default=None, help="place recognition walks (default: the same)"
    )
    ap.add_argument("--world-layouts", default="2x2,3x3", help="apartments, rows x cols")
    ap.add_argument(
        "--world-models",
        default="pixels,teacher,old_pico_int8,default_int8",
        help="rows that get the MiniWorld figures (they take most of the time)",
    )
    ap.add_argument("--world-size", type=int, default=None, help="render size (default: the encoder's)")
    ap.add_argument("--seed", type=int, default=7919)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    models = {"pixels": PixelEmbedder(), "teacher": TeacherEmbedder(args.teacher)}
    if args.old_pte and args.old_pte.is_file():
        models["old_pico_int8"] = RuntimeEmbedder(args.old_pte, args.threads)
    models["default_fp32"] = RuntimeEmbedder(args.default, args.threads)
    if args.default_pte:
        models["default_int8"] = RuntimeEmbedder(args.default_pte, args.threads)
    size = args.world_size or models["default_fp32"].enc.size
    sets = retrieval_sets(args.queries, args.seed, args.distractors)
    frames = read_frames(BIKES)
    rows: dict[str, dict] = {}
    for name, embed in models.items():
        t0 = time.perf_counter()
        r: dict = {"dim": int(embed.dim), "instance_retrieval": instance_retrieval(embed, sets)}
        stats = embedding_stats(torch.from_numpy(embed(frames)))
        r["effective_rank"] = stats["eff_rank"]
        r["effective_rank_fraction"] = stats["eff_rank"] / min(embed.dim, len(frames))
        r["probe_accuracy"] = probe(embed, args.train_n, args.test_n, args.seed)
        if args.world_episodes and name in args.world_models.split(","):
            from world_recognition import object_recognition, place_recognition

            for key in args.world_layouts.split(","):
                rows_, cols_ = (int(v) for v in key.split("x"))
                kw = dict(seed=args.seed, rows=rows_, cols=cols_, size=size)
                r[f"object_recognition_{key}"] = object_recognition(embed, episodes=args.world_episodes, **kw)
                places = args.place_episodes or args.world_episodes
                r[f"place_recognition_{key}"] = place_recognition(
                    embed, episodes=places, queries_per_episode=4, **kw
                )
        r["seconds"] = round(time.perf_counter() - t0, 1)
        rows[name] = r
        brief = {
            k: ({a: b for a, b in v.items() if a != "records"} if isinstance(v, dict) else v)
            for k, v in r.items()
        }
        print(name, json.dumps(brief), flush=True)
    t_acc = rows["teacher"]["probe_accuracy"]
    for r in rows.values():
        r["probe_vs_teacher"] = r["probe_accuracy"] / t_acc
    result: dict = {
        "benchmark": "encoder_quality",
        "default": str(args.default),
        "default_pte": str(args.default_pte) if args.default_pte else None,
        "old_pte": str(args.old_pte),
        "seed": args.seed,
        "retrieval": {
            "photos": sets["photos"],
            "instances": len(sets["instances"]),
            "queries_per_instance": args.queries,
            "distractors": len(sets["distractors"]),
        },
        "fashion_mnist": {"train_images": args.train_n, "test_images": args.test_n},
        "rows": rows,
    }
    if "default_int8" in models:
        unseen = sets["queries"] + sets["instances"] + world_frames(64, args.seed + 1, size)
        te_x, _ = fashion_mnist("test")
        unseen += [rgb(te_x[i]) for i in range(200)]
        cos = (models["default_fp32"](unseen) * models["default_int8"](unseen)).sum(axis=1)
        result["int8_vs_fp32_cosine"] = {
            "images": len(unseen),
            "mean": float(cos.mean()),
            "min": float(cos.min()),
            "p01": float(np.percentile(cos, 1)),
        }
    result["seconds"] = round(time.perf_counter() - t_start, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "encoder_quality.json").write_text(json.dumps(result, indent=2))
    print(table(result))


def table(result: dict) -> str:
    lines = [
        "| model | dim | retrieval top-1 (photos / wallpapers) | top-5 | eff. rank (frac.) | F-MNIST probe (x teacher) | "
        "object within 1 m, 2x2 / 3x3 | place 2x2 / 3x3 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in result["rows"].items():
        ir = r["instance_retrieval"]

        def rate(key: str, r: dict = r) -> str:
            if key not in r:
                return "-"
            hit = r[key].get("rate_1m", r[key]["rate"])  # objects: the 1 m and facing
            return f"{hit:.2f}"

        lines.append(
            f"| {name} | {r['dim']} | {ir['top1']:.3f} ({ir['top1_photographs']:.3f} / {ir['top1_wallpapers']:.3f}) "
            f"| {ir['top5']:.3f} | {r['effective_rank']:.1f} "
            f"({r['effective_rank_fraction']:.2f}) | {r['probe_accuracy']:.4f} ({r['probe_vs_teacher']:.3f}) | "
            f"{rate('object_recognition_2x2')} / {rate('object_recognition_3x3')} | "
            f"{rate('place_recognition_2x2')} / {rate('place_recognition_3x3')} |"
        )
    if "int8_vs_fp32_cosine" in result:
        c = result["int8_vs_fp32_cosine"]
        lines.append(
            f"\nint8 vs fp32 on {c['images']} unseen images: cosine mean {c['mean']:.4f}, min {c['min']:.4f}, "
            f"p01 {c['p01']:.4f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
