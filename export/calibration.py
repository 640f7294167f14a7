"""Real frames for calibration, verification and fidelity: a folder of images, preprocessed
exactly as the runtime will (short side resize, centre crop, ImageNet normalisation)."""

from __future__ import annotations

from pathlib import Path

import torch

from edge_models.data import IMAGE_EXTS, VIDEO_EXTS, list_files, read_image
from edge_models.preprocess import to_model_input
from export.errors import ExportError


def load_images(
    folder: str | Path, size: int, limit: int | None = None, offset: int = 0
) -> list[torch.Tensor]:
    """Up to ``limit`` images from ``folder`` (sorted, skipping the first ``offset``) -> [1, 3, S, S] each.

    Undecodable files are skipped; a folder with none usable is an ExportError.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ExportError(f"image folder not found: {folder}; pass a folder of real images (jpg/png)")
    files = list_files(folder, IMAGE_EXTS)
    if not files:
        videos = list_files(folder, VIDEO_EXTS)
        hint = " (it holds videos: extract frames first)" if videos else ""
        raise ExportError(f"no images in {folder}{hint}; calibration and verification need real images")
    out = []
    for path in files[offset:]:
        rgb = read_image(path)
        if rgb is None:
            continue
        out.append(to_model_input(rgb, size))
        if limit is not None and len(out) >= limit:
            break
    if not out:
        raise ExportError(f"none of the {len(files)} images in {folder} could be decoded")
    return out


@torch.no_grad()
def load_context_tokens(
    folder: str | Path,
    encoder: torch.nn.Module,
    size: int,
    ctx_idx: torch.Tensor,
    limit: int | None = None,
    offset: int = 0,
) -> list[torch.Tensor]:
    """Predictor inputs from real frames: each image through ``encoder`` on the context positions only.

    As in JEPA training, the context encoder sees only the tokens at ``ctx_idx`` ([Nc] indices).
    -> [1, Nc, D] per image (same selection and order as ``load_images``).
    """
    keep = ctx_idx.reshape(1, -1)
    return [encoder(x, keep) for x in load_images(folder, size, limit=limit, offset=offset)]
