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
    # 5 copies (measured at 5,000 stimuli) x 9 RDMs x 8 n^2 bytes
    assert budget.needed_bytes(22000, 8, 1) == pytest.approx(5 * 9 * 8 * 22000 ** 2)
    budget.check_rdm_memory(1200, 8, 1, budget=24 * 2 ** 30)  # fits: no error


def test_disk_check(monkeypatch, tmp_path):
    monkeypatch.setattr(budget.shutil, "disk_usage", lambda p: types.SimpleNamespace(free=10 * 2 ** 20))
    with pytest.raises(RSABridgeError, match=r"model_rdms.nc needs about .* free; write to a larger disk"):
        budget.check_disk(tmp_path / "new" / "out", 1200, 8)
    budget.check_disk(tmp_path, 92, 8)  # 0.5 MB fits in 10 MB


def test_compare_refuses_before_any_forward_pass(monkeypatch):
    import psutil

    import extractors
    from rsa_bridge.app.pipeline import compare_models

    monkeypatch.setattr(psutil, "virtual_memory", lambda: types.SimpleNamespace(available=2 ** 20))
    monkeypatch.setattr(extractors, "load_model", lambda *a, **k: pytest.fail("a model was loaded"))
    with pytest.raises(RSABridgeError, match="640 stimuli: 8 model-layer RDMs and 1 brain RDMs"):
        compare_models(["alexnet"], ["V4"], weights="none", cache=False)


def test_store_path_fits_22000_stimuli_on_24_gib(tmp_path, monkeypatch):
    monkeypatch.setattr(budget.shutil, "disk_usage", lambda p: types.SimpleNamespace(free=2 ** 40))
    plan = budget.plan_store(22000, 8, 1, storage="float32", available=24 * 2 ** 30, spill_dir=tmp_path)
    # two dense squares + the budgets stay within 75% of 24 GiB; the rest of the 9 vectors and their ranks spills
    assert plan.needed <= 0.75 * 24 * 2 ** 30 + 1
    assert plan.needed == pytest.approx(2 * 8 * 22000 ** 2 + plan.memory_budget + plan.rank_budget)
    m = 22000 * 21999 // 2
    assert plan.spill == pytest.approx(9 * m * (4 + 4) - plan.memory_budget)  # float32 RDMs, uint32 2 x ranks
    small = budget.plan_store(1200, 8, 1, available=24 * 2 ** 30)  # everything in memory, nothing spilled
    assert small.spill == 0 and small.memory_budget == 9 * 1200 * 1199 // 2 * 12


def test_store_path_refusals_are_one_line(tmp_path, monkeypatch):
    with pytest.raises(RSABridgeError) as err:
        budget.plan_store(22000, 8, 1, available=8 * 2 ** 30)
    msg = str(err.value)
    assert "22000 stimuli: even with RDMs kept as upper triangles on disk" in msg and "3.6 GiB each" in msg
    assert "8.0 GiB is available" in msg and "fewer stimuli" in msg and "\n" not in msg
    monkeypatch.setattr(budget.shutil, "disk_usage", lambda p: types.SimpleNamespace(free=2 ** 30))
    with pytest.raises(RSABridgeError) as err:
        budget.plan_store(22000, 8, 1, available=24 * 2 ** 30, spill_dir=tmp_path / "spill")
    msg = str(err.value)
    assert msg.startswith(f"{tmp_path / 'spill'}: the RDMs of 22000 stimuli") and "1.0 GiB free" in msg
    assert "spill_dir" in msg and "float32" in msg and "\n" not in msg
