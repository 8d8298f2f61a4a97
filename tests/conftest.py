"""Shared fixtures: where ../shared/data is, and small deterministic inputs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """../shared/data next to the repository; tests that need it skip when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent (real data lives beside the repo only on the team's machines)")
    return SHARED


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
