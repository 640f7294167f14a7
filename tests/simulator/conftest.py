"""Fixtures for the 3D world tests: one small apartment per module keeps GL contexts few and tests fast."""

from __future__ import annotations

import pytest
from world_helpers import SMALL

from simulator.world import ApartmentEnv


@pytest.fixture(scope="module")
def env():
    e = ApartmentEnv(SMALL)
    yield e
    e.close()
