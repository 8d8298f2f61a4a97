"""RDMStore: condensed RDMs in memory or spilled to HDF5, checked against scipy and dense numpy."""
from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from scipy.spatial.distance import pdist, squareform
from scipy.stats import rankdata, spearmanr

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.rdm_store import RDMStore, n_pairs, row_offset


def _squares(rng, n=41, k=3):
    return [squareform(pdist(rng.normal(size=(n, 5)), "correlation")) for _ in range(k)]


def _ids(n):
    return [f"stim{i:03d}" for i in range(n)]


@pytest.mark.parametrize("budget", [None, 0, "one"])
def test_put_vector_square_take_match_scipy_and_numpy(rng, tmp_path, budget):
    sq = _squares(rng)
    n = sq[0].shape[0]
    one = n_pairs(n) * 8
    with RDMStore(_ids(n), memory_budget=one if budget == "one" else budget, spill_dir=tmp_path) as store:
        store.put("conv1", sq[0], module_path="features.0", n_units=10)
        store.put("conv2", torch.from_numpy(sq[1]), module_path="features.3", n_units=20)  # a torch tensor
        store.put("fc", squareform(sq[2], checks=False), module_path="classifier", n_units=30)  # condensed
        assert store.names == ["conv1", "conv2", "fc"] and store.n == n and store.storage == "float64"
        expected_spilled = {None: [], 0: ["conv1", "conv2", "fc"], "one": ["conv2", "fc"]}[budget]
        assert store.spilled == expected_spilled
        assert store.nbytes == one * (3 - len(expected_spilled))
        for name, s in zip(store.names, sq):
            assert np.array_equal(store.vector(name), squareform(s, checks=False))
            assert np.array_equal(store.square(name), s)
            got = np.concatenate([v for _, _, v in store.chunks(name, 97)])
            assert np.array_equal(got, squareform(s, checks=False))
        sets = [np.sort(rng.choice(n, k, replace=False)) for k in (2, 7, 20, n)]
        for idx, sub in zip(sets, store.take("conv2", sets)):
            assert np.array_equal(sub, sq[1][np.ix_(idx, idx)])
        assert store.coords["conv2"] == {"module_path": "features.3", "n_units": 20}


def test_condensed_order_is_triu_indices():
    n = 7
    rows, cols = np.triu_indices(n, 1)
    assert np.array_equal(row_offset(rows, n) + cols - rows - 1, np.arange(n_pairs(n)))


def test_take_reads_the_spilled_vector_once(rng, monkeypatch):
    sq = _squares(rng, n=60, k=1)[0]
    with RDMStore(_ids(60), memory_budget=0) as store:
        store.put("a", sq)
        store.chunk = 100  # many chunks
        calls = []
        original = store.read
        monkeypatch.setattr(store, "read", lambda name, a, b: calls.append((a, b)) or original(name, a, b))
        sets = [np.sort(rng.choice(60, 30, replace=False)) for _ in range(25)]
        out = store.take("a", sets)
        assert len(calls) == -(-n_pairs(60) // 100)  # each chunk read once for all 25 sets
        for idx, sub in zip(sets, out):
            assert np.array_equal(sub, sq[np.ix_(idx, idx)])


def test_float32_storage_error_bound_and_spearman_ties(rng):
    n = 300
    x = rng.normal(size=(n, 20))
    d = squareform(pdist(x, "euclidean")) * 1e3
    v64 = squareform(d, checks=False)
    with RDMStore(_ids(n), storage="float32", memory_budget=0) as store:
        store.put("a", d)
        v32 = store.vector("a")
        assert v32.dtype == np.float64
    err = np.abs(v32 - v64)
    assert err.max() <= np.abs(v64).max() * 2.0 ** -24  # the documented bound
    assert (err <= np.abs(v64) * 2.0 ** -24).all()
    assert err.max() > 0  # the rounding is real
    # rounding to float32 is monotone: it can merge neighbours into ties but never reorder them
    order = np.argsort(v64, kind="stable")
    assert (np.diff(v32[order]) >= 0).all()
    # hence Spearman changes only through new ties: values equal in float32 get their average rank
    tied = np.unique(v32).size < np.unique(v64).size
    rho = spearmanr(v64, v64[::-1]).statistic
    rho32 = spearmanr(v32, v64[::-1]).statistic
    assert abs(rho - rho32) < 1e-6 and (tied or rho == rho32)
    assert np.array_equal(rankdata(v32), rankdata(v32.astype(np.float32)))


def test_bad_input_is_one_clear_line(rng):
    sq = _squares(rng, n=10, k=1)[0]
    with RDMStore(_ids(10)) as store:
        bad = sq.copy()
        bad[0, 1] += 0.1
        with pytest.raises(RSABridgeError, match="not symmetric"):
            store.put("a", bad)
        bad = sq.copy()
        bad[3, 3] = 1.0
        with pytest.raises(RSABridgeError, match="non-zero diagonal"):
            store.put("a", bad)
        bad = sq.copy()
        bad[2, 5] = bad[5, 2] = np.nan
        with pytest.raises(RSABridgeError, match="NaN or inf"):
            store.put("a", bad)
        with pytest.raises(RSABridgeError, match="has shape"):
            store.put("a", sq[:5, :5])
        with pytest.raises(RSABridgeError, match="45 entries"):
            store.put("a", np.ones(44))
        store.put("a", sq)
        with pytest.raises(RSABridgeError, match="already holds"):
            store.put("a", sq)
        with pytest.raises(RSABridgeError, match="no RDM named 'b'"):
            store.vector("b")
        with pytest.raises(RSABridgeError, match="strictly increasing"):
            store.take("a", [np.array([3, 1])])
        assert store.names == ["a"]  # failed puts leave nothing behind
    with pytest.raises(RSABridgeError, match="duplicate stimulus ids"):
        RDMStore(["a", "b", "a"])
    with pytest.raises(RSABridgeError, match="unknown RDM storage"):
        RDMStore(_ids(5), storage="float16")


def test_spill_folder_is_deleted_on_close_exit_and_error(rng, tmp_path):
    sq = _squares(rng, n=20, k=1)[0]
    store = RDMStore(_ids(20), memory_budget=0, spill_dir=tmp_path)
    store.put("a", sq)
    folder = store.spill_path.parent
    assert store.spill_path.is_file()
    store.close()
    assert not folder.exists()
    with pytest.raises(RuntimeError):
        with RDMStore(_ids(20), memory_budget=0, spill_dir=tmp_path) as store:
            store.put("a", sq)
            folder = store.spill_path.parent
            raise RuntimeError("boom")
    assert not folder.exists() and list(tmp_path.iterdir()) == []


def test_dataarray_round_trip_and_refusal(rng):
    sq = _squares(rng, n=15)
    ids = _ids(15)
    with RDMStore(ids, memory_budget=0, attrs={"metric": "correlation"}) as store:
        for k, s in enumerate(sq):
            store.put(f"l{k}", s, module_path=f"m{k}", n_units=k + 1)
        da = store.to_dataarray()
        assert da.dims == ("layer", "stimulus_row", "stimulus_col")
        assert np.array_equal(da.values, np.stack(sq)) and list(da["stimulus_row"].values) == ids
        assert list(da["module_path"].values) == ["m0", "m1", "m2"] and da.attrs["metric"] == "correlation"
        with pytest.raises(RSABridgeError, match=r"need .* GiB .*keep them in the RDMStore"):
            store.to_dataarray(max_bytes=1000)
    with RDMStore.from_dataarray(da, storage="float32") as back:
        assert back.names == ["l0", "l1", "l2"] and back.coords["l2"] == {"module_path": "m2", "n_units": 3}
        assert np.allclose(back.to_dataarray().values, da.values, rtol=2 ** -24, atol=0)
        xr.testing.assert_allclose(back.to_dataarray(), da, rtol=1e-7)


def _dense_report_file(path: Path, model_rdms: dict, dtype: str | None = None):
    """model_rdms.nc exactly as the report writes it (its own function), optionally as float32."""
    from rsa_bridge.app.report import _model_rdms_dataset

    ds = _model_rdms_dataset(types.SimpleNamespace(model_rdms=model_rdms))
    encoding = {v: {"dtype": dtype} for v in ds.data_vars} if dtype else None
    ds.to_netcdf(path, engine="h5netcdf", encoding=encoding)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_to_netcdf_streams_the_report_format(rng, tmp_path, dtype):
    from rsa_bridge.model_rdms import read_model_rdms
    from rsa_bridge.rdm_netcdf import write_model_rdms

    ids = _ids(12)
    stores, dense = {}, {}
    for key in ("alexnet", "vgg16"):
        store = RDMStore(ids, memory_budget=0, attrs={"model": key, "metric": "correlation", "weights": "none"})
        for k, s in enumerate(_squares(rng, n=12)):
            store.put(f"conv{k}", s, module_path=f"features.{k}", n_units=100 * (k + 1))
        stores[key] = store
        dense[key] = store.to_dataarray()
    for chosen in (["alexnet"], ["alexnet", "vgg16"]):
        _dense_report_file(tmp_path / "dense.nc", {k: dense[k] for k in chosen}, dtype)
        write_model_rdms(tmp_path / "model_rdms.nc", {k: stores[k] for k in chosen}, dtype=dtype)
        with xr.open_dataset(tmp_path / "dense.nc") as a, xr.open_dataset(tmp_path / "model_rdms.nc") as b:
            xr.testing.assert_identical(a, b)
            assert a["rdm" if len(chosen) == 1 else "rdm_0"].dtype == np.dtype(dtype)
    stores["alexnet"].to_netcdf(tmp_path / "one.nc", dtype=dtype)
    with xr.open_dataarray(tmp_path / "one.nc") as da:
        assert "key" not in da.attrs and da.dtype == np.dtype(dtype)
        xr.testing.assert_allclose(da.astype(np.float64), dense["alexnet"], rtol=1e-7)
    back = read_model_rdms(tmp_path / "one.nc")
    assert list(back["layer"].values) == ["conv0", "conv1", "conv2"]
    for store in stores.values():
        store.close()


@pytest.mark.parametrize("module", ["rsa_bridge.rdm_store", "rsa_bridge.ranking", "rsa_bridge.chunked_compare",
                                    "rsa_bridge.rdm_netcdf"])
def test_module_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
