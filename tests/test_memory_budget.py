"""The activation memory budget sized from the memory available, and the job's cheaper per-batch work (issue 29).

References: the budget against a hand-worked share of a fake ``/proc/meminfo``; the RDMs against
scipy's ``pdist`` (correlation) and against the same call with every layer in memory / spilled; the chunked
float64 Gram against a float64 numpy product and against its unbuffered path (bit for bit).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist, squareform
from torch import nn

from extractors.hooks import clone_output
from extractors.streaming import stream_rdms
from rsa_bridge import budget, timing
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.gram_panels import Centring, _chunk, symmetric_gram
from rsa_bridge.options import AUTO_MEMORY_BUDGET, RDMOptions

MIB, GIB = 2 ** 20, 2 ** 30


def fake_meminfo(tmp_path, monkeypatch, available_kb: int | None):
    """Point the budget at a fake /proc/meminfo saying ``available_kb`` kB are available."""
    path = tmp_path / "meminfo"
    lines = ["MemTotal:       24576000 kB", "MemFree:          100000 kB"]
    if available_kb is not None:
        lines.append(f"MemAvailable:   {available_kb} kB")
    path.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(budget, "MEMINFO", path)
    return path


@pytest.mark.parametrize("available_kb, expected", [
    (16 * 2 ** 20, 2 * GIB),          # 16 GiB available: a quarter is 4 GiB, capped at 2 GiB
    (4 * 2 ** 20, 1 * GIB),           # 4 GiB: a quarter
    (3 * 2 ** 20, 768 * MIB),         # 3 GiB: a quarter
    (100 * 2 ** 10, 64 * MIB),        # 100 MiB: a quarter is 25 MiB, raised to the 64 MiB floor
    (0, 64 * MIB),
])
def test_default_budget_is_a_bounded_quarter_of_mem_available(tmp_path, monkeypatch, available_kb, expected):
    fake_meminfo(tmp_path, monkeypatch, available_kb)
    assert budget.available_memory() == available_kb * 1024
    assert budget.auto_memory_budget() == expected
    assert RDMOptions().budget_bytes == expected           # None: sized now, from the memory available
    assert RDMOptions(memory_budget=12345).budget_bytes == 12345  # --memory-budget overrides it
    assert RDMOptions(memory_budget=math.inf).budget_bytes == math.inf
    assert RDMOptions().attrs()["rdm_memory_budget"] == AUTO_MEMORY_BUDGET
    assert RDMOptions(memory_budget=7).attrs()["rdm_memory_budget"] == 7


def test_meminfo_without_mem_available_falls_back_to_psutil(tmp_path, monkeypatch):
    import psutil

    fake_meminfo(tmp_path, monkeypatch, None)
    assert abs(budget.available_memory() - psutil.virtual_memory().available) < 2 * GIB
    monkeypatch.setattr(budget, "MEMINFO", tmp_path / "missing")
    assert budget.available_memory() > 0


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5)).eval()


def _reference(net: nn.Module, x: torch.Tensor, batch: int = 5) -> dict[str, np.ndarray]:
    """scipy's RDMs of the activations, computed in the jobs' batches of 5 (a float32 Linear's rounding can depend
    on the batch size on some CPUs: 1.2e-7 between 12 and 5 rows on the CI machine of round 6)."""
    with torch.no_grad():
        parts = [x[i:i + batch] for i in range(0, len(x), batch)]
        a = torch.cat([net[1](net[0](p)).flatten(1) for p in parts]).double().numpy()
        out = torch.cat([net(p) for p in parts]).double().numpy()
        return {"1": squareform(pdist(a, "correlation")), "3": squareform(pdist(out, "correlation"))}


def test_layers_that_fit_the_automatic_budget_never_spill(tmp_path, monkeypatch):
    net, x = _net(), torch.randn(12, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    ref = _reference(net, x)
    fake_meminfo(tmp_path, monkeypatch, 8 * 2 ** 20)  # 8 GiB available: 2 GiB of activations may stay
    rdms = stream_rdms(net, x, ["1", "3"], RDMOptions(batch_size=5, spill_dir=tmp_path), progress=False)
    assert rdms.attrs["spilled_layers"] == "none" and rdms.attrs["gram_io_read_bytes"] == 0
    assert rdms.attrs["activation_memory_budget"] == 2 * GIB
    assert rdms.attrs["activation_memory_budget_from"] == AUTO_MEMORY_BUDGET
    for layer, expected in ref.items():
        np.testing.assert_allclose(rdms.sel(layer=layer).values, expected, atol=1e-12)
    # a machine with almost nothing available: the budget (floor lowered for the test) holds the narrow
    # layer (12 x 5 float32 = 240 bytes) only, the wide one (12 x 144 x 4 bytes) spills
    monkeypatch.setattr(budget, "MIN_ACTIVATION_BUDGET", 1000)
    fake_meminfo(tmp_path, monkeypatch, 0)
    spilled = stream_rdms(net, x, ["1", "3"], RDMOptions(batch_size=5, spill_dir=tmp_path), progress=False)
    assert spilled.attrs["spilled_layers"] == "1" and spilled.attrs["activation_memory_budget"] == 1000
    assert "1: out of core" in spilled.attrs["gram_paths"] and "3: in memory" in spilled.attrs["gram_paths"]
    np.testing.assert_array_equal(spilled.values, rdms.values)  # one block either way: the same sums
    given = stream_rdms(net, x, ["1", "3"], RDMOptions(batch_size=5, memory_budget=0, spill_dir=tmp_path),
                        progress=False)
    assert given.attrs["spilled_layers"] == "1,3" and given.attrs["activation_memory_budget_from"] == "given"
    assert list(tmp_path.glob("rsa-bridge-spill-*")) == []


def test_the_budget_used_is_in_the_timings(tmp_path, monkeypatch):
    monkeypatch.setenv(timing.ENV, str(tmp_path / "t.json"))
    monkeypatch.setattr(timing, "_state", {})
    try:
        net, x = _net(), torch.randn(6, 3, 8, 8, generator=torch.Generator().manual_seed(2))
        stream_rdms(net, x, ["1", "3"], RDMOptions(memory_budget=600), progress=False)
        stream_rdms(net, x, ["1", "3"], RDMOptions(memory_budget=700), progress=False)
        record = timing.recorder().stages["decode_forward"]
        assert record["memory_budget_bytes"] == 700 and record["spilled_layers"] == 1  # the last call's, not a sum
        assert record["calls"] == 2
    finally:
        timing.recorder().stop.set()


@pytest.mark.parametrize("metric", ["correlation", "euclidean", "cosine"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_activations_are_refused_by_name_whichever_check_runs(metric, bad):
    # correlation layers are checked through their float64 row sums, the others value by value
    net = nn.Sequential(nn.Flatten()).eval()
    x = torch.randn(6, 2, 3, 3, generator=torch.Generator().manual_seed(0))
    x[3, 1, 2, 0] = bad
    with pytest.raises(RSABridgeError, match=r"NaN or inf for stimuli.*'3'"):
        stream_rdms(net, x, ["0"], RDMOptions(metric=metric, batch_size=4), progress=False)
    x[3, 1, 2, 0], x[3, 0, 0, 0] = float("inf"), float("-inf")  # inf - inf: the row sum is NaN, still refused
    with pytest.raises(RSABridgeError, match=r"'3'"):
        stream_rdms(net, x, ["0"], RDMOptions(metric=metric, batch_size=4), progress=False)


def test_huge_finite_activations_are_not_refused():
    # float32's largest values: their float64 row sums stay finite, so the row-sum check raises nothing
    x = torch.rand((5, 1, 2, 50), generator=torch.Generator().manual_seed(4)) * 3.0e38
    rdms = stream_rdms(nn.Sequential(nn.Flatten()).eval(), x, ["0"], RDMOptions(batch_size=2), progress=False)
    assert np.isfinite(rdms.values).all()


def test_captured_outputs_are_contiguous_copies():
    t = torch.randn(2, 3, 4, 5).contiguous(memory_format=torch.channels_last)
    c = clone_output({"a": (t, [t])})
    assert c["a"][0].is_contiguous() and torch.equal(c["a"][0], t) and c["a"][0].data_ptr() != t.data_ptr()
    assert c["a"][1][0].reshape(2, -1)._base is not None or c["a"][1][0].reshape(2, -1).data_ptr() == \
        c["a"][1][0].data_ptr()  # flattening is a view, not another copy


@pytest.mark.parametrize("centre", ["none", "row", "column", "both"])
def test_buffered_float64_gram_equals_numpy_and_the_unbuffered_cast(centre):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((23, 301)) * 5 + 2).astype(np.float32)
    rows = x.astype(np.float64).mean(1) if centre in ("row", "both") else None
    cols = x.astype(np.float64).mean(0) if centre in ("column", "both") else None
    centring = Centring(rows, cols)
    x64 = x.astype(np.float64) - (0 if rows is None else rows[:, None]) - (0 if cols is None else cols[None, :])
    for chunk_bytes in (23 * 8 * 64, 23 * 8 * 301, 64 * MIB):  # 5 chunks (the last narrower), one, one
        g = symmetric_gram(x, "float64", centring=centring, chunk_bytes=chunk_bytes)
        np.testing.assert_allclose(g, x64 @ x64.T, rtol=1e-12, atol=1e-9)
        assert np.array_equal(g, g.T)
    buffer = np.full(23 * 301, np.nan)
    for cols_slice in (slice(0, 64), slice(256, 301)):
        a = _chunk(x, cols_slice, np.float64, centring, 0, 0, buffer)
        b = _chunk(x, cols_slice, np.float64, centring, 0, 0)
        assert a.flags.c_contiguous and np.array_equal(a, b)  # one pass, the same float64 values


@pytest.mark.parametrize("shape", [(7, 13), (64, 1000), (3, 1)])
def test_float64_sums_through_the_reused_buffer_are_torchs_bits(shape):
    from extractors.streaming import float64_sum

    scratch: list = []
    for seed in range(3):  # the buffer is reused (and grown) across calls
        x = torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * 10 ** seed
        for dim in (0, 1):
            assert torch.equal(float64_sum(x, dim, scratch), x.sum(dim=dim, dtype=torch.float64))
    assert float64_sum(torch.ones(2, 2), 1, [])[0].item() == 2.0


@pytest.mark.parametrize("extra_thread", [False, True])
def test_the_command_line_exits_with_its_code_after_the_atexit_handlers(tmp_path, extra_thread):
    # `rsa-bridge` with no command prints its help and returns 2; the process must still run the atexit
    # handlers (timings file, temporary folders), flush stdout, and, while another non-daemon thread works,
    # wait for it (a normal exit) instead of ending at once
    import subprocess
    import sys

    marker, worker = tmp_path / "atexit.txt", tmp_path / "thread.txt"
    code = (
        "import atexit, sys, threading, time\n"
        f"atexit.register(lambda: open({str(marker)!r}, 'w').write('ran'))\n"
        + (f"threading.Thread(target=lambda: (time.sleep(0.5), open({str(worker)!r}, 'w').write('done'))).start()\n"
           if extra_thread else "")
        + "sys.argv = ['rsa-bridge']\nfrom rsa_bridge.app.cli import run\nrun()\nprint('not reached')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "usage: rsa-bridge" in proc.stdout and "not reached" not in proc.stdout
    assert marker.read_text() == "ran"
    assert worker.exists() == extra_thread  # the thread finished: the exit waited for it


def test_an_automatic_budget_on_a_cuda_device_is_bounded_by_its_free_memory(monkeypatch):
    from extractors.streaming import device_budget

    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (4 * GIB, 80 * GIB))  # 4 GiB free
    assert device_budget(2 * GIB, torch.device("cuda", 0), given=False) == 1 * GIB
    assert device_budget(512 * MIB, torch.device("cuda", 0), given=False) == 512 * MIB
    assert device_budget(2 * GIB, torch.device("cuda", 0), given=True) == 2 * GIB      # --memory-budget wins
    assert device_budget(2 * GIB, torch.device("cpu"), given=False) == 2 * GIB


def test_stats_options_check_time_without_importing_it_when_unset():
    import subprocess
    import sys

    from rsa_bridge.options import StatsOptions

    with pytest.raises(RSABridgeError, match="TimeInferenceOptions"):
        StatsOptions(time=5)
    code = ("import sys; from rsa_bridge.options import StatsOptions; StatsOptions(bootstrap=10); "
            "print('rsa_bridge.stats.time_inference' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120).stdout.strip() == "False"
