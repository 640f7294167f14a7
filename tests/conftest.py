"""Shared fixtures: paths to the small real assets in tests/assets/."""

from __future__ import annotations

from pathlib import Path

import pytest

ASSETS = Path(__file__).parent / "assets"


@pytest.fixture(scope="session")
def assets() -> Path:
    return ASSETS


@pytest.fixture(scope="session")
def bikes_frames() -> Path:
    return ASSETS / "bikes_frames"


@pytest.fixture(scope="session")
def bikes_mp4() -> Path:
    return ASSETS / "bikes.mp4"
