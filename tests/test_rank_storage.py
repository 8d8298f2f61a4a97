"""Ranks stored as uint32 of 2 x rank: exact against scipy's rankdata and against the float64 rank store."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
from scipy.stats import rankdata, spearmanr

import rsa_bridge.chunked_compare as chunked_compare
from rsa_bridge.budget import store_vector_bytes
from rsa_bridge.chunked_compare import compare_store
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.rank_storage import HALF_RANKS, rank_storage
from rsa_bridge.ranking import rank_store
from rsa_bridge.rdm_store import RDMStore


def _tied_rdms(n=40, layers=3, seed=0):
    """Condensed RDMs rounded to 1 decimal: many ties, so many half ranks."""
    rng = np.random.default_rng(seed)
    m = n * (n - 1) // 2
    return [f"s{i}" for i in range(n)], np.round(rng.random((layers, m)), 1)


@pytest.mark.parametrize("rank_budget", [None, 0])  # in memory, and out of core (ranges of at most 256 values)
@pytest.mark.parametrize("keep", [None, 0])  # the rank vectors in memory, or in the HDF5 spill file
def test_half_ranks_equal_scipy(rank_budget, keep, tmp_path):
    ids, vectors = _tied_rdms()
    with RDMStore(ids, memory_budget=keep, spill_dir=tmp_path) as store:
        for k, v in enumerate(vectors):
            store.put(f"l{k}", v)
        with rank_store(store, memory_budget=rank_budget) as ranks:
            assert ranks.storage == HALF_RANKS and ranks.dtype == np.uint32
            assert ranks.vector_bytes == 4 * store.m  # half a float64 rank vector
            for k, v in enumerate(vectors):
                expected = rankdata(v, method="average")
                assert np.any(expected % 1 == 0.5)  # the data have ties: half ranks occur
                np.testing.assert_array_equal(ranks.vector(f"l{k}"), expected)  # exact
                full = np.zeros((40, 40))
                full[np.triu_indices(40, 1)] = expected
                full = full + full.T
                idx = [np.array([0, 3, 7, 39]), np.arange(0, 40, 3)]
                for got, index in zip(ranks.take(f"l{k}", idx), idx):
                    np.testing.assert_array_equal(got, full[np.ix_(index, index)])
            if keep == 0:  # the file records what its values are
                with h5py.File(ranks.spill_path, "r") as f:
                    assert {f[key].attrs["encoding"] for key in f} == {HALF_RANKS}
                    assert {f[key].dtype for key in f} == {np.dtype(np.uint32)}


def test_comparison_from_half_ranks_equals_float64_ranks(monkeypatch):
    ids, vectors = _tied_rdms(n=30, layers=2, seed=1)
    _, brain = _tied_rdms(n=30, layers=3, seed=2)
    with RDMStore(ids) as store:
        for k, v in enumerate(vectors):
            store.put(f"l{k}", v)
        new = compare_store(store, {"IT": brain}, "spearman", chunk_size=97)["IT"]
        assert store.derived_stores()[0].storage == HALF_RANKS
        store.drop_derived()
        monkeypatch.setattr(chunked_compare, "rank_storage", lambda m: "float64")  # the stores of before
        old = compare_store(store, {"IT": brain}, "spearman", chunk_size=97)["IT"]
        assert store.derived_stores()[0].storage == "float64"
    np.testing.assert_allclose(new, old, rtol=0, atol=1e-12)
    for k in range(2):
        for r in range(3):
            assert new[k, r] == pytest.approx(spearmanr(vectors[k], brain[r])[0], abs=1e-12)


def test_half_rank_store_writes_float64_netcdf(tmp_path):
    import xarray as xr

    ranks = rankdata(np.round(np.random.default_rng(4).random(10), 1))
    with RDMStore(list("abcde"), storage=HALF_RANKS) as store:
        store.put("conv1", ranks)
        store.to_netcdf(tmp_path / "ranks.nc")
    with xr.open_dataset(tmp_path / "ranks.nc") as ds:
        assert ds["rdm"].dtype == np.float64
        np.testing.assert_array_equal(ds["rdm"].values[0][np.triu_indices(5, 1)], ranks)


def test_half_ranks_refusals_and_sizes():
    with RDMStore(list("abcd"), storage=HALF_RANKS) as store:
        for bad in ([1.25, 1, 2, 3, 4, 5], [-0.5, 1, 2, 3, 4, 5]):
            with pytest.raises(RSABridgeError, match="uint32 rank store holds average ranks"):
                store.put("x", np.array(bad))
    with pytest.raises(RSABridgeError, match="exceed uint32; store ranks of 65537 stimuli as float64"):
        RDMStore([str(i) for i in range(65537)], storage=HALF_RANKS)
    assert rank_storage(65536 * 65535 // 2) == HALF_RANKS and rank_storage(65537 * 65536 // 2) == "float64"
    m = 22000 * 21999 // 2  # 8 layers at 22,000 stimuli: float32 RDMs + uint32 ranks, 15.5 GB (was 23.2 GB)
    assert store_vector_bytes(22000, 8, "float32") == 8 * m * (4 + 4) == 15_487_296_000
    m = 70000 * 69999 // 2  # beyond 2m < 2**32 the ranks stay float64
    assert store_vector_bytes(70000, 1, "float32") == m * (4 + 8)
