"""Fixtures shared by the export tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edge_models.embed import PICO_WEIGHTS


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """A private copy of the shipped vit_pico checkpoint (96 px): what the export tests lower."""
    return Path(shutil.copy(PICO_WEIGHTS, tmp_path_factory.mktemp("ckpt") / "vit_pico.safetensors"))
