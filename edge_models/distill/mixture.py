"""Training mixtures: several offline image sources sampled with fixed shares.

A data spec is one source or several joined by ``+``, each optionally weighted with ``*W``:

    fashion-mnist                                  the Debian package's unlabelled train images
    photos:train                                   the images of Debian's wallpaper packages (digital
                                                   art and some photographs; the train split,
                                                   ``photos:eval`` is held out)
    rollouts:DIR                                   MiniWorld frames of a rollout folder (every 2nd)
    video:FILE                                     every frame of a video file
    DIR                                            a folder of images (recursive)

    "photos:train*2+video:tests/assets/bikes.mp4+rollouts:runs/mw*3+fashion-mnist"

Each source is held in memory as uint8 images no larger than needed (long photos are decoded once
and shrunk), so a training step never decodes a 5K PNG. Sampling: every source gets ``W / sum(W)``
of each batch in expectation, whatever its size, through a seeded ``WeightedRandomSampler``.
Augmentation (random resized crop + flip) is a pure function of ``(seed, epoch, index)``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset

from edge_models.data import IMAGE_EXTS, list_files, read_image
from edge_models.datasets import ArrayImages, fashion_mnist
from edge_models.errors import DataError

# Wallpapers that ship in Debian packages (gnome-backgrounds: CC-BY-SA 3.0; plasma-workspace-wallpapers:
# GPL-2+): digital art and some photographs, used as training images only, never redistributed.
PHOTO_ROOTS = (Path("/usr/share/backgrounds/gnome"), Path("/usr/share/wallpapers"))
PHOTO_PACKAGES = "gnome-backgrounds plasma-workspace-wallpapers"
# gnome-backgrounds also holds flat patterns and logos; these three have depth and texture.
GNOME_PHOTOS = ("adwaita", "wood", "licorice")


def photo_groups() -> dict[str, list[Path]]:
    """Photo name -> its files (light/dark variants of one picture share a name, so a split keeps
    them together). Plasma: the largest file of ``contents/images*``; gnome: the three textured ones."""
    groups: dict[str, list[Path]] = {}
    gnome, plasma = PHOTO_ROOTS
    if gnome.is_dir():
        for p in sorted(gnome.glob("*.webp")):
            name = p.stem.rsplit("-", 1)[0]
            if name in GNOME_PHOTOS:
                groups.setdefault(f"gnome-{name}", []).append(p)
    if plasma.is_dir():
        for d in sorted(x for x in plasma.iterdir() if x.is_dir()):
            for variant in ("images", "images_dark"):
                files = [p for p in (d / "contents" / variant).glob("*") if p.suffix.lower() in IMAGE_EXTS]
                if files:
                    biggest = max(files, key=lambda p: _pixels(p.stem))
                    groups.setdefault(f"plasma-{d.name}", []).append(biggest)
    return groups


def _pixels(stem: str) -> int:
    w, _, h = stem.partition("x")
    return int(w) * int(h) if w.isdigit() and h.isdigit() else 0


def photo_split(name: str) -> str:
    """'train' or 'eval', a pure function of the photo's name (about one in three held out)."""
    return "eval" if hashlib.sha256(name.encode()).digest()[0] % 3 == 0 else "train"


def load_photos(split: str, max_side: int) -> tuple[list[np.ndarray], list[str]]:
    """RGB uint8 photos of one split, shrunk so the short side is at most ``max_side``."""
    if split not in ("train", "eval", "all"):
        raise DataError(f"unknown photo split '{split}'; use photos:train, photos:eval or photos:all")
    images, names = [], []
    for name, files in photo_groups().items():
        if split != "all" and photo_split(name) != split:
            continue
        for p in files:
            rgb = read_image(p)
            if rgb is not None:
                images.append(shrink(rgb, max_side))
                names.append(f"{name}/{p.parent.name}")
    if not images:
        raise DataError(
            f"no real photos found under {', '.join(map(str, PHOTO_ROOTS))}; "
            f"install them with 'apt-get install {PHOTO_PACKAGES}'"
        )
    return images, names


def shrink(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """Resize so the short side is at most ``max_side`` (area interpolation), else unchanged."""
    h, w = rgb.shape[:2]
    scale = max_side / min(h, w)
    if scale >= 1:
        return rgb
    return cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)


def video_frames(path: str | Path, max_side: int, every: int = 1) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise DataError(f"cannot open video {path}; pass a readable video file")
    frames, i = [], 0
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            if i % every == 0:
                frames.append(shrink(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), max_side))
            i += 1
    finally:
        cap.release()
    if not frames:
        raise DataError(f"no frame of {path} could be decoded")
    return frames


def rollout_frames(root: str | Path, every: int = 2) -> list[np.ndarray]:
    """Every ``every``-th frame of every episode of a ``simulator.world.collect`` folder."""
    from edge_models.world_model.data import read_index

    index = read_index(root)
    frames: list[np.ndarray] = []
    for ep in index["episodes"]:
        with np.load(Path(root) / ep["file"]) as data:
            frames.extend(data["frames"][::every])
    return frames


@dataclass(frozen=True)
class Source:
    name: str
    dataset: Dataset
    weight: float


def load_source(spec: str, size: int, seed: int) -> Source:
    """One ``NAME[*W]`` part of a data spec -> an augmented in-memory dataset."""
    body, _, weight_s = spec.partition("*")
    try:
        weight = float(weight_s) if weight_s else 1.0
    except ValueError:
        raise DataError(f"bad weight in data source '{spec}'; write NAME*2.5") from None
    if weight <= 0:
        raise DataError(f"data source '{spec}' has weight {weight}; weights must be > 0")
    kind, _, arg = body.partition(":")
    max_side = 2 * size
    if body == "fashion-mnist":
        images: np.ndarray | list[np.ndarray] = fashion_mnist("train")[0]
    elif kind == "photos":
        images = load_photos(arg or "train", max_side)[0]
    elif kind == "video":
        images = video_frames(arg, max_side)
    elif kind == "rollouts":
        images = rollout_frames(arg)
    elif Path(body).is_dir():
        files = list_files(body, IMAGE_EXTS)
        images = [shrink(im, max_side) for im in map(read_image, files) if im is not None]
        if not images:
            raise DataError(f"no decodable images under {body}")
    else:
        raise DataError(
            f"unknown data source '{body}'; use fashion-mnist, photos:train, video:FILE, rollouts:DIR or a folder"
        )
    return Source(body, ArrayImages(images, size, train=True, seed=seed), weight)


class Mixture(ConcatDataset):
    """The sources one after another; ``sample_weights`` gives each source its share."""

    def __init__(self, sources: list[Source]) -> None:
        super().__init__([s.dataset for s in sources])
        self.sources = sources

    def set_epoch(self, epoch: int) -> None:
        for s in self.sources:
            s.dataset.set_epoch(epoch)

    @property
    def skipped(self) -> int:
        return sum(getattr(s.dataset, "skipped", 0) for s in self.sources)

    def sample_weights(self) -> torch.Tensor:
        total = sum(s.weight for s in self.sources)
        return torch.cat(
            [
                torch.full((len(s.dataset),), s.weight / total / len(s.dataset), dtype=torch.float64)
                for s in self.sources
            ]
        )

    def describe(self) -> dict[str, dict]:
        total = sum(s.weight for s in self.sources)
        return {s.name: {"images": len(s.dataset), "share": round(s.weight / total, 4)} for s in self.sources}


def build_mixture(spec: str, size: int, seed: int) -> Mixture:
    parts = [p.strip() for p in spec.split("+") if p.strip()]
    if not parts:
        raise DataError(
            "empty data spec; pass a folder, fashion-mnist, photos:train, video:FILE or rollouts:DIR"
        )
    return Mixture([load_source(p, size, seed + i) for i, p in enumerate(parts)])
