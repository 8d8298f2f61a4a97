"""``compare --model-rdms FILE`` through an RDM store: the file read one layer at a time, the same numbers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.stats import spearmanr

from rsa_bridge.app.cli import main
from rsa_bridge.datasets import area_rdms, load_dataset
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.rdm import COL, ROW
from rsa_bridge.rdm_netcdf import read_model_rdm_store
from rsa_bridge.rdm_store import RDMStore


@pytest.fixture(scope="module")
def layers_file(tmp_path_factory):
    ds = load_dataset("kriegeskorte2008_92images")
    ids = [str(s) for s in ds[ROW].values]
    rng = np.random.default_rng(11)
    it = area_rdms(ds, "IT").values[0]
    values = []
    for k in range(3):
        noise = rng.random((92, 92))
        m = it + k * (noise + noise.T)
        np.fill_diagonal(m, 0.0)
        values.append(m)
    rdms = xr.DataArray(np.stack(values), dims=("layer", ROW, COL),
                        coords={"layer": ["l1", "l2", "l3"], ROW: ids, COL: ids,
                                "module_path": ("layer", ["a.0", "a.1", "a.2"])}, attrs={"metric": "test"})
    path = tmp_path_factory.mktemp("pre") / "layers.nc"
    xr.Dataset({"rdm": rdms}).to_netcdf(path, engine="h5netcdf")
    return path, rdms


def test_store_reader_equals_the_file(layers_file, tmp_path):
    path, rdms = layers_file
    with read_model_rdm_store(path, ["l3", "l1"], memory_budget=0, spill_dir=tmp_path) as store:
        assert store.names == ["l3", "l1"] and store.ids == [str(s) for s in rdms[ROW].values]
        assert store.coords["l3"] == {"module_path": "a.2"} and store.attrs["metric"] == "test"
        assert store.spilled == ["l3", "l1"]
        np.testing.assert_array_equal(store.square("l3"), rdms.sel(layer="l3").values)
    with pytest.raises(RSABridgeError, match="no layer 'fc9'"):
        read_model_rdm_store(path, ["fc9"])


def test_an_asymmetric_layer_names_file_and_layer(layers_file, tmp_path):
    path, rdms = layers_file
    bad = rdms.copy()
    bad.values[1, 0, 5] += 1.0
    target = tmp_path / "bad.nc"
    xr.Dataset({"rdm": bad}).to_netcdf(target, engine="h5netcdf")
    spill = tmp_path / "spill"
    spill.mkdir()
    with pytest.raises(RSABridgeError, match=r"bad\.nc.*l2 RDM is not symmetric"):
        read_model_rdm_store(target, memory_budget=0, spill_dir=spill)
    assert list(spill.iterdir()) == []  # the half-filled store is closed: no spill file left


@pytest.mark.parametrize("store_args", [["--rdm-store", "disk"], ["--rdm-storage", "float32"]])
def test_cli_store_path_equals_dense_and_scipy(layers_file, tmp_path, capsys, store_args):
    path, rdms = layers_file
    common = ["compare", "--model-rdms", str(path), "--area", "IT", "--bootstrap", "20", "--seed", "3"]
    assert main([*common, "--out", str(tmp_path / "dense")]) == 0
    assert main([*common, *store_args, "--out", str(tmp_path / "store")]) == 0
    capsys.readouterr()
    dense = pd.read_csv(tmp_path / "dense" / "results.csv")
    store = pd.read_csv(tmp_path / "store" / "results.csv")
    tol = 1e-12 if "disk" in store_args else 1e-6  # float32 storage: entries within |d| 2^-24
    np.testing.assert_allclose(store["similarity"], dense["similarity"], atol=tol)
    np.testing.assert_allclose(store["ci_low"], dense["ci_low"], atol=max(tol, 1e-6))
    it = area_rdms(load_dataset("kriegeskorte2008_92images"), "IT").values[0]
    iu = np.triu_indices(92, 1)
    expected = [spearmanr(rdms.values[k][iu], it[iu])[0] for k in range(3)]
    np.testing.assert_allclose(store["similarity"], expected, atol=max(tol, 1e-12))
    attrs = xr.open_dataset(tmp_path / "store" / "results.nc", engine="h5netcdf").attrs
    assert attrs["rdm_store"] == ("disk" if "disk" in store_args else "memory")
    assert attrs["rdm_storage"] == ("float64" if "disk" in store_args else "float32")
    dense_attrs = xr.open_dataset(tmp_path / "dense" / "results.nc", engine="h5netcdf").attrs
    assert dense_attrs["rdm_store"] == "none (dense arrays)"
    again = xr.open_dataarray(tmp_path / "store" / "model_rdms.nc", engine="h5netcdf")
    np.testing.assert_allclose(again.values, rdms.values, atol=1e-6 * rdms.values.max())


def test_cli_store_path_refuses_a_method_it_cannot_chunk(layers_file, capsys):
    path, _ = layers_file
    code = main(["compare", "--model-rdms", str(path), "--area", "IT", "--rdm-store", "disk",
                 "--method", "kendall_tau_a"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "not available when the model RDMs live in a store" in err[0], err
