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


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory):
    """Point rsa-bridge's on-disk cache at a per-session temporary folder so tests never read or write
    the user's ~/.cache (a test that wants a specific cache folder sets RSA_BRIDGE_CACHE itself)."""
    import os

    old = os.environ.get("RSA_BRIDGE_CACHE")
    os.environ["RSA_BRIDGE_CACHE"] = str(tmp_path_factory.mktemp("rsa_bridge_cache"))
    yield
    if old is None:
        os.environ.pop("RSA_BRIDGE_CACHE", None)
    else:
        os.environ["RSA_BRIDGE_CACHE"] = old
