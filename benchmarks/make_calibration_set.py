"""Write a mixed int8 calibration folder: street frames and Fashion-MNIST train images, interleaved
(and, with ``--rollouts DIR`` / ``--photos``, MiniWorld frames and the train split of the real photos).

    .venv/bin/python benchmarks/make_calibration_set.py --out runs/calib_mix
    .venv/bin/python benchmarks/make_calibration_set.py --out runs/calib4 --rollouts runs/mw_enc22 --photos \
        --per-source 12 --size 128
    glasses-export lower STUDENT.safetensors --quantize int8 --calib runs/calib_mix --out models/

Static int8 fixes each activation's range from the calibration images. Calibrated on street frames
only, the distilled vit_tiny's int8 embeddings of Fashion-MNIST images (grey clothing on black, far
from the street) drift (cosine to fp32 min 0.86 over 2,000 test images); with both kinds of image the
ranges cover both. ``glasses-export lower`` takes the first 32 files (sorted) for calibration and the
next 16 as held-out fidelity images, so interleaving puts both kinds in each. Fashion-MNIST images
come from the *train* split (the quality benchmark's probe is measured on the test split); the street
frames are spread evenly over tests/assets/bikes_frames.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_models.data import IMAGE_EXTS, list_files  # noqa: E402
from edge_models.datasets import fashion_mnist, to_rgb_size  # noqa: E402
from edge_models.distill.mixture import load_photos, rollout_frames, shrink  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--frames", type=Path, default=ROOT / "tests/assets/bikes_frames")
    ap.add_argument("--per-source", type=int, default=24, help="images of each kind")
    ap.add_argument("--size", type=int, default=64, help="side of the Fashion-MNIST images written")
    ap.add_argument("--rollouts", type=Path, help="also MiniWorld frames of this rollout folder")
    ap.add_argument("--photos", action="store_true", help="also the train split of the real photos")
    args = ap.parse_args()
    street = list_files(args.frames, IMAGE_EXTS)
    n = args.per_source
    if len(street) < n:
        raise SystemExit(f"error: {args.frames} has {len(street)} images, fewer than --per-source {n}")
    clothes, _ = fashion_mnist("train")
    kinds = {
        "street": [
            cv2.cvtColor(cv2.imread(str(street[i * len(street) // n])), cv2.COLOR_BGR2RGB) for i in range(n)
        ],
        "fmnist": [to_rgb_size(clothes[i], args.size) for i in range(n)],
    }
    if args.rollouts:
        frames = rollout_frames(args.rollouts)
        kinds["world"] = [frames[i * len(frames) // n] for i in range(n)]
    if args.photos:
        photos = load_photos("train", max_side=2 * args.size)[0]
        kinds["photo"] = [shrink(photos[i % len(photos)], 2 * args.size) for i in range(n)]
    args.out.mkdir(parents=True, exist_ok=True)
    k = 0
    for i in range(
        n
    ):  # interleaved, so the first 32 (calibration) and the next 16 (held out) hold every kind
        for name, images in kinds.items():
            cv2.imwrite(str(args.out / f"{k:03d}_{name}.png"), cv2.cvtColor(images[i], cv2.COLOR_RGB2BGR))
            k += 1
    print(f"wrote {k} images to {args.out}")


if __name__ == "__main__":
    main()
