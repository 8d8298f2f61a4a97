"""Jobs whose RDMs cannot fit: one clear line before any computing."""
from __future__ import annotations

import types

import pytest

from rsa_bridge import budget
from rsa_bridge.errors import RSABridgeError


def test_rdm_memory_message_says_what_is_needed_and_what_to_change():
    with pytest.raises(RSABridgeError) as err:
        budget.check_rdm_memory(22000, 8, 1, budget=24 * 2 ** 30)
    msg = str(err.value)
    assert "22000 stimuli" in msg and "3.6 GiB each" in msg and "--layers" in msg and "24.0 GiB" in msg
    assert "\n" not in msg
    # 2.5 copies x 9 RDMs x 8 n^2 bytes
    assert budget.needed_bytes(22000, 8, 1) == pytest.approx(2.5 * 9 * 8 * 22000 ** 2)
    budget.check_rdm_memory(1200, 8, 1, budget=24 * 2 ** 30)  # fits: no error


def test_disk_check(monkeypatch, tmp_path):
    monkeypatch.setattr(budget.shutil, "disk_usage", lambda p: types.SimpleNamespace(free=10 * 2 ** 20))
    with pytest.raises(RSABridgeError, match=r"model_rdms.nc needs about .* free; write to a larger disk"):
        budget.check_disk(tmp_path / "new" / "out", 1200, 8)
    budget.check_disk(tmp_path, 92, 8)  # 0.5 MB fits in 10 MB


def test_compare_refuses_before_any_forward_pass(monkeypatch):
    import psutil

    import extractors
    from rsa_bridge.pipeline import compare_models

    monkeypatch.setattr(psutil, "virtual_memory", lambda: types.SimpleNamespace(available=2 ** 20))
    monkeypatch.setattr(extractors, "load_model", lambda *a, **k: pytest.fail("a model was loaded"))
    with pytest.raises(RSABridgeError, match="640 stimuli: 8 model-layer RDMs and 1 brain RDMs"):
        compare_models(["alexnet"], ["V4"], weights="none", cache=False)
