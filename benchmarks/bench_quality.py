"""Quality of what we ship: teacher vs fp32 student vs int8 student (.pte), in one run.

    .venv/bin/python benchmarks/bench_quality.py --student runs/distill_tiny64/encoder.safetensors \\
        --pte models/encoder_vit_tiny_int8_xnnpack.pte --out benchmarks/results

* Linear probe on Fashion-MNIST (Debian dataset-fashion-mnist, standard train/test split; a seeded
  subsample of --train-n / --test-n images of each split, stated in the JSON).
* Shot retrieval on tests/assets/bikes.mp4 (cuts at 30, 76, 137, 187, 242): precision@1 of the
  nearest other frame (excluding +-5 frames) lying in the same shot.
* Fidelity: cosine between fp32 and int8 embeddings on the probe's test images.
Writes quality.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from edge_models.checkpoint import load_encoder
from edge_models.datasets import fashion_mnist
from edge_models.distill.teachers import load_teacher
from edge_models.embed import read_frames
from edge_models.evaluation import embed_images, linear_probe, shot_ids, shot_retrieval
from glasses_runtime.engines.pte import PteEngine

BIKES = Path(__file__).resolve().parents[1] / "tests" / "assets" / "bikes.mp4"
BIKES_CUTS = (30, 76, 137, 187, 242)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--student", type=Path, required=True)
    ap.add_argument("--pte", type=Path, help="int8 .pte of the same student (its manifest beside it)")
    ap.add_argument("--teacher", default="efficientnet-lite0")
    ap.add_argument("--train-n", type=int, default=10000)
    ap.add_argument("--test-n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    tr_x, tr_y = fashion_mnist("train")
    te_x, te_y = fashion_mnist("test")
    tri = rng.choice(len(tr_x), args.train_n, replace=False)
    tei = rng.choice(len(te_x), args.test_n, replace=False)
    tr_x, tr_y, te_x, te_y = tr_x[tri], tr_y[tri], te_x[tei], te_y[tei]
    student = load_encoder(args.student).inference_copy()
    size = student.config.img_size
    frames = read_frames(BIKES)
    shots = shot_ids(len(frames), BIKES_CUTS)
    teacher = load_teacher(args.teacher)
    models = {
        "teacher": lambda x: teacher(x)[1],
        "student_fp32": lambda x: student.embed(x)[1],
    }
    if args.pte:
        engine = PteEngine(args.pte, threads=args.threads)
        if engine.input_shape[-1] != size:
            raise SystemExit(
                f"{args.pte} takes {engine.input_shape[-1]} px but the student was trained at {size}"
            )
        models["student_int8"] = engine.run
    rows, test_feats = {}, {}
    for name, fn in models.items():
        t0 = time.perf_counter()
        batch = 1 if name == "student_int8" else 64
        ftr = embed_images(fn, tr_x, size, batch)
        fte = embed_images(fn, te_x, size, batch)
        acc = linear_probe(ftr, tr_y, fte, te_y)
        zb = embed_images(fn, frames, size, batch)
        rows[name] = {
            "probe_accuracy": acc,
            **shot_retrieval(zb, shots),
            "dim": int(ftr.shape[1]),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        test_feats[name] = fte
        print(name, rows[name], flush=True)
    result = {
        "benchmark": "quality",
        "teacher": args.teacher,
        "student": str(args.student),
        "pte": str(args.pte) if args.pte else None,
        "input_size": size,
        "fashion_mnist": {"train_images": args.train_n, "test_images": args.test_n, "seed": args.seed},
        "rows": rows,
    }
    t_acc = rows["teacher"]["probe_accuracy"]
    for name in rows:
        rows[name]["probe_vs_teacher"] = rows[name]["probe_accuracy"] / t_acc
    if "student_int8" in test_feats:
        a, b = test_feats["student_fp32"], test_feats["student_int8"]
        cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)
        result["int8_vs_fp32_cosine"] = {
            "mean": float(cos.mean()),
            "min": float(cos.min()),
            "p01": float(np.percentile(cos, 1)),
        }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "quality.json").write_text(json.dumps(result, indent=2))
    print("\n| model | probe acc. | x teacher | shot P@1 | shot P@5 | dim |\n|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['probe_accuracy']:.4f} | {r['probe_vs_teacher']:.3f} | {r['precision_at_1']:.3f} | "
            f"{r['precision_at_5']:.3f} | {r['dim']} |"
        )
    if "int8_vs_fp32_cosine" in result:
        c = result["int8_vs_fp32_cosine"]
        print(
            f"\nint8 vs fp32 embedding cosine: mean {c['mean']:.4f}, min {c['min']:.4f}, 1st percentile {c['p01']:.4f}"
        )


if __name__ == "__main__":
    main()
