"""The Gram at the GEMM limit (rsa_bridge.gram_panels, rsa_bridge.app.gram_tiles) against numpy float64 X X^T.

Tolerances: float64 to 1e-10 relative to max |G|; float32 (float32 products over <= SUM_UNITS units, summed in
float64) to 1e-5 relative to max |G| (rounding ~ sqrt(SUM_UNITS) * 2^-24 per chunk, measured ~3e-7 here).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.gram_panels import (
    Centring,
    PanelReader,
    _schedule,
    mirror_upper,
    out_of_core_gram,
    plan_panels,
    symmetric_gram,
    tile_product,
)
from rsa_bridge.options import RDMOptions

TOL = {"float64": 1e-10, "float32": 1e-5}


def _reference(x: np.ndarray, centring: Centring | None = None) -> np.ndarray:
    y = x.astype(np.float64)
    if centring is not None and centring.row_means is not None:
        y = y - centring.row_means[:, None]
    if centring is not None and centring.col_means is not None:
        y = y - centring.col_means[None, :]
    return y @ y.T


def _close(got: np.ndarray, want: np.ndarray, precision: str) -> None:
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, got.T)
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL[precision] * np.abs(want).max())


def _centrings(x: np.ndarray) -> dict[str, Centring]:
    y = x.astype(np.float64)
    return {"none": Centring(), "row": Centring(row_means=y.mean(axis=1)), "column": Centring(col_means=y.mean(axis=0))}


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return (np.random.default_rng(0).standard_normal((53, 37)) + 2.0).astype(np.float32)


@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("centre", ["none", "row", "column"])
def test_in_memory_syrk_equals_numpy(x, precision, centre):
    centring = _centrings(x)[centre]
    before = x.copy()
    _close(symmetric_gram(x, precision, centring=centring, chunk_bytes=53 * 8 * 5), _reference(x, centring), precision)
    np.testing.assert_array_equal(x, before)  # the activations are never changed
    x64 = x.astype(np.float64)  # float64 activations: one dsyrk into out, no copy
    out = np.full((53, 53), np.nan)
    assert symmetric_gram(x64, "float64", out=out) is out
    _close(out, _reference(x), "float64")


def test_float32_sums_chunks_in_float64(monkeypatch):
    import rsa_bridge.gram_panels as gp

    x = np.random.default_rng(1).standard_normal((9, 40)).astype(np.float32)
    monkeypatch.setattr(gp, "SUM_UNITS", 7)  # 6 chunks, the last of 5 units
    want = sum((x[:, k:k + 7] @ x[:, k:k + 7].T).astype(np.float64) for k in range(0, 40, 7))
    np.testing.assert_allclose(symmetric_gram(x, "float32"), want, rtol=1e-6)
    _close(symmetric_gram(x, "float32"), _reference(x), "float32")


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7])
def test_schedule_visits_each_upper_tile_once_and_reads_the_planned_panels(count):
    tiles, reads = _schedule(count)
    assert sorted(tiles) == [(i, j) for i in range(count) for j in range(i, count)]
    assert len(reads) == 1 + count * (count - 1) // 2
    held: list[int] = []  # replay: two resident panels, each read loads one
    pending = list(reads)
    for i, j in tiles:
        for k in (i, j):
            if k not in held:
                assert pending.pop(0) == k
                held = [h for h in held if h in (i, j)] + [k]
        assert len(held) <= 2
    assert pending == []


@pytest.mark.parametrize("n, budget_rows, panels", [(53, 53, 1), (53, 20, 3), (53, 7, 8), (10, 1, 10)])
@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_out_of_core_equals_numpy_and_reads_what_it_planned(x, tmp_path, n, budget_rows, panels, precision):
    data = x[:n]
    path = tmp_path / "layer.f32"
    data.tofile(path)
    plan = plan_panels(n, data.shape[1], budget_bytes=3 * 4 * data.shape[1] * budget_rows + 5)
    assert len(plan.bounds) == panels and plan.bounds[-1][1] == n
    assert plan.planned_bytes == 4 * data.shape[1] * sum(plan.bounds[k][1] - plan.bounds[k][0] for k in plan.reads)
    for centring in _centrings(data).values():
        reader = PanelReader(path, n, data.shape[1])
        got = out_of_core_gram(reader, plan, precision, centring=centring, chunk_bytes=8 * 2 * n * 5)
        _close(got, _reference(data, centring), precision)
        assert reader.bytes_read == plan.planned_bytes  # counted by the reader, byte for byte
    if panels > 2:  # each byte read (P + 1) / 2 times at most
        assert plan.planned_bytes <= (panels + 1) / 2 * plan.file_bytes


def test_reader_thread_overlaps_and_bytes_are_counted(tmp_path, monkeypatch):
    import threading

    data = np.random.default_rng(2).standard_normal((31, 11)).astype(np.float32)
    path = tmp_path / "layer.f32"
    data.tofile(path)
    threads = set()
    original = PanelReader.read

    def spy(self, start, stop, buffer=None):
        threads.add(threading.current_thread().name)
        return original(self, start, stop, buffer)

    monkeypatch.setattr(PanelReader, "read", spy)
    plan = plan_panels(31, 11, 3 * 4 * 11 * 4)
    reader = PanelReader(path, 31, 11)
    _close(out_of_core_gram(reader, plan), _reference(data), "float64")
    assert threads and all(name.startswith("rsa-bridge-panel-reader") for name in threads)
    # 8 panels (7 of 4 rows, 1 of 3): 1 + 8 * 7 / 2 = 29 panel reads, the short last panel 7 times (rows 0-6)
    assert reader.bytes_read == plan.planned_bytes == 4 * 11 * (29 * 4 - 7)


def test_tile_product_off_diagonal(x):
    for precision in ("float64", "float32"):
        for centring in _centrings(x).values():
            got = tile_product(x[:20], x[20:], precision, centring=centring, rows=(0, 20), chunk_bytes=8 * 53 * 3)
            want = _reference(x, centring)[:20, 20:]
            np.testing.assert_allclose(got, want, rtol=0, atol=TOL[precision] * np.abs(want).max())


def test_mirror_upper():
    g = np.triu(np.arange(49.0).reshape(7, 7))
    np.testing.assert_array_equal(mirror_upper(g.copy(), step=3), g + np.triu(g, 1).T)


@pytest.mark.parametrize("budget, message", [(0, "cannot hold 3 panels"), (3 * 4 * 37 - 1, "cannot hold 3 panels")])
def test_too_small_a_panel_budget_is_refused(budget, message):
    with pytest.raises(RSABridgeError, match=message):
        plan_panels(53, 37, budget)


def test_bad_shapes_are_refused():
    with pytest.raises(RSABridgeError, match="needs stimuli and units"):
        plan_panels(0, 5, 1e9)
    with pytest.raises(ValueError, match="C-ordered"):
        symmetric_gram(np.ones((3, 2), np.float32), out=np.zeros((3, 3)).T.copy(order="F"))


def test_short_spill_file_is_one_line(tmp_path):
    path = tmp_path / "layer.f32"
    np.ones((5, 4), np.float32).tofile(path)
    with pytest.raises(RSABridgeError, match="shorter than written"):
        PanelReader(path, 6, 4).read(0, 6)


def test_stream_rdms_out_of_core_panels_equal_in_memory(tmp_path):
    from extractors.streaming import stream_rdms

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 9)).eval()
    images = torch.rand(23, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    for metric in ("correlation", "euclidean", "cosine"):
        # the same batches in both runs: a float32 Linear's rounding can depend on the batch size (CPU kernels)
        memory = stream_rdms(net, images, ["0", "3"], RDMOptions(metric=metric, memory_budget=math.inf, batch_size=5),
                             progress=False)
        spilled = stream_rdms(net, images, ["0", "3"], RDMOptions(metric=metric, memory_budget=0, batch_size=5,
                                                                  gram_budget=2 * 4 * 23 * 62, spill_dir=tmp_path),
                              progress=False)
        np.testing.assert_allclose(spilled.values, memory.values, rtol=0, atol=1e-12)
        assert "out of core: 3 unit blocks of <= 62 units" in spilled.attrs["gram_paths"]  # conv layer: 144 units
        assert spilled.attrs["gram_io_read_bytes"] == spilled.attrs["gram_io_planned_bytes"] > 0
        assert memory.attrs["gram_io_read_bytes"] == 0 and "in memory (syrk)" in memory.attrs["gram_paths"]
    with pytest.raises(RSABridgeError, match="cannot hold 2 unit blocks"):  # refused before the forward pass
        stream_rdms(net, images, ["0"], RDMOptions(memory_budget=0, gram_budget=100), progress=False)
    assert list(tmp_path.iterdir()) == []


def test_dask_tiles_equal_serial(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    from rsa_bridge.app.gram_tiles import dask_gram, tile_bytes
    from rsa_bridge.gram_blocks import write_blocks

    data = (np.random.default_rng(3).standard_normal((29, 13)) + 1).astype(np.float32)
    path = tmp_path / "layer.f32"
    write_blocks(data, path, 5)  # as extractors.streaming writes it: unit blocks of 5, 5, 3 units
    plan = plan_panels(29, 13, 3 * 4 * 13 * 8)  # 4 panels: 8, 8, 8, 5 rows
    centring = Centring(row_means=data.astype(np.float64).mean(axis=1))
    serial = out_of_core_gram(PanelReader(path, 29, 13, 5), plan, centring=centring)
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        gram, report = dask_gram(client, path, plan, centring=centring, block_units=5)
        np.testing.assert_array_equal(gram, serial)
        _close(gram, _reference(data, centring), "float64")
        assert report.tiles == 10 and report.read_bytes == report.planned_bytes == tile_bytes(plan)
        assert report.planned_bytes == 4 * 13 * sum(
            (plan.bounds[i][1] - plan.bounds[i][0]) + (plan.bounds[j][1] - plan.bounds[j][0]) * (i != j)
            for i, j in plan.tiles)
        with pytest.raises(RSABridgeError, match="not the 1508 bytes"):
            dask_gram(client, tmp_path / "missing.f32", plan)
        _stream_with_tiles(client, tmp_path)


def _stream_with_tiles(client, tmp_path):
    """stream_rdms with each spilled layer's Gram as dask tiles equals the serial unit-block Gram."""
    from extractors.streaming import stream_rdms
    from rsa_bridge.app.gram_tiles import tile_executor

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 9)).eval()
    images = torch.rand(23, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    options = RDMOptions(metric="correlation", memory_budget=0, gram_budget=2 * 4 * 23 * 62, spill_dir=tmp_path)
    serial = stream_rdms(net, images, ["0", "3"], options, progress=False)
    tiled = stream_rdms(net, images, ["0", "3"], options, progress=False,
                        spilled_gram=tile_executor(client, 3 * 4 * 144 * 8))
    np.testing.assert_allclose(tiled.values, serial.values, rtol=0, atol=1e-12)
    assert "dask tiles: 3 panels of <= 8 stimuli" in tiled.attrs["gram_paths"]
    assert tiled.attrs["gram_io_read_bytes"] == tiled.attrs["gram_io_planned_bytes"] > 0


@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("block_budget_units, blocks", [(37, 1), (10, 4), (1, 37)])
def test_unit_block_gram_reads_each_byte_once(x, tmp_path, precision, block_budget_units, blocks):
    from rsa_bridge.gram_blocks import plan_blocks, unit_block_gram, write_blocks

    plan = plan_blocks(53, 37, budget_bytes=2 * 4 * 53 * block_budget_units + 7)
    assert len(plan.blocks) == blocks and plan.blocks[-1][1] == 37  # 10 does not divide 37: 10, 10, 10, 7
    path = tmp_path / "layer.f32"
    write_blocks(x, path, plan.block_units)
    assert path.stat().st_size == x.nbytes == plan.planned_bytes
    for centring in _centrings(x).values():
        reader = PanelReader(path, 53, 37, plan.block_units)
        out = np.full((53, 53), np.nan)
        assert unit_block_gram(reader, plan, precision, centring=centring, out=out, chunk_bytes=53 * 8 * 3) is out
        _close(out, _reference(x, centring), precision)
        assert reader.bytes_read == plan.planned_bytes  # each byte once, counted by the reader
        # the same file read as stimulus panels (one piece per unit block)
        panels = plan_panels(53, 37, 3 * 4 * 37 * 11)
        reader = PanelReader(path, 53, 37, plan.block_units)
        _close(out_of_core_gram(reader, panels, precision, centring=centring), _reference(x, centring), precision)
        assert reader.bytes_read == panels.planned_bytes
    np.testing.assert_array_equal(PanelReader(path, 53, 37, plan.block_units).read(5, 16), x[5:16])


def test_unit_block_budget_refused():
    from rsa_bridge.gram_blocks import plan_blocks

    with pytest.raises(RSABridgeError, match="cannot hold 2 unit blocks of 53 stimuli"):
        plan_blocks(53, 37, 2 * 4 * 53 - 1)


@pytest.mark.parametrize("name", ["rsa_bridge.gram_panels", "rsa_bridge.gram_blocks"])
def test_module_examples_run(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_float32_row_strips_above_strip_min(monkeypatch, tmp_path):
    import rsa_bridge.gram_panels as gp
    from rsa_bridge.gram_blocks import plan_blocks, unit_block_gram, write_blocks

    monkeypatch.setattr(gp, "STRIP_MIN", 10)  # 53 stimuli: strips of 7 rows, the last of 4
    x = (np.random.default_rng(5).standard_normal((53, 29)) + 1).astype(np.float32)
    assert gp.strip_rows(53) == 7
    for centring in _centrings(x).values():
        _close(symmetric_gram(x, "float32", centring=centring), _reference(x, centring), "float32")
        plan = plan_blocks(53, 29, 2 * 4 * 53 * 8)  # 4 unit blocks
        write_blocks(x, tmp_path / "layer.f32", plan.block_units)
        got = unit_block_gram(PanelReader(tmp_path / "layer.f32", 53, 29, plan.block_units), plan, "float32",
                              centring=centring)
        _close(got, _reference(x, centring), "float32")


def test_timing_add_counts_into_the_stage(tmp_path, monkeypatch):
    from rsa_bridge import timing

    monkeypatch.setenv(timing.ENV, str(tmp_path / "t.json"))
    monkeypatch.setattr(timing, "_state", {})
    try:
        timing.begin("gram_rdm")
        timing.add("gram_rdm", gram_flops=10, io_read_bytes=4)
        timing.add("gram_rdm", gram_flops=5, io_read_bytes=0)
        timing.end("gram_rdm")
        record = timing.recorder().stages["gram_rdm"]
        assert record["gram_flops"] == 15 and record["io_read_bytes"] == 4 and record["calls"] == 1
    finally:
        timing.recorder().stop.set()


def test_bench_scrub_and_floor():
    import importlib.util
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location("bench_large_compare", root / "benchmarks" / "bench_large_compare.py")
        bench = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(bench)
    finally:
        sys.path.remove(str(root / "benchmarks"))
    text = ('/x/.venv/bin/python -m rsa_bridge compare --dataset /tmp/rsa_bridge_large/n2500_seed0_64px_r1_noise1_v1/'
            'neural.nc --out /tmp/rsa-bridge-bench-ab12_x/out')
    assert bench.scrub(text) == "python -m rsa_bridge compare --dataset D/neural.nc --out OUT"
    row = {"precision": "float32", "stages": {"gram_rdm": {"wall_s": 30.0, "gram_flops": 2e11, "io_read_bytes": 8,
                                                           "io_planned_bytes": 8}}}
    got = bench.gram_floor(row, {"float32": 1e10})
    assert got["gram_floor_s"] == 20.0 and got["gram_over_floor"] == 1.5 and got["gram_io_read_bytes"] == 8
    assert bench.gram_floor({"precision": "float64", "stages": {}}, {"float32": 1e10}) == {}
