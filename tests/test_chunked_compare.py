"""Chunk-by-chunk comparison of stored RDMs equals compare_vectors on the dense vectors."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from rsa_bridge.chunked_compare import CHUNKED, compare_store
from rsa_bridge.compare import compare_vectors
from rsa_bridge.definitions import COMPARISONS
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.rdm_store import RDMStore, n_pairs


def _data(rng, n):
    m = n_pairs(n)
    latent = rng.normal(size=m)
    model = np.stack([latent * k + rng.normal(size=m) + 50.0 for k in range(4)])   # large mean: cancellation risk
    model[1] = np.round(model[1])                                                   # ties
    brains = np.stack([latent + rng.normal(size=m) + 3.0, np.round(rng.standard_exponential(m), 1)])
    return model, brains


@pytest.mark.parametrize("method", sorted(CHUNKED))
@pytest.mark.parametrize("budget", [None, 0])
def test_equal_to_compare_vectors_with_many_chunks(rng, method, budget):
    n = 90
    model, brains = _data(rng, n)
    ids = [f"s{i}" for i in range(n)]
    with RDMStore(ids, memory_budget=budget) as store, RDMStore(ids, memory_budget=budget) as area:
        for k, v in enumerate(model):
            store.put(f"layer{k}", v)
        for k, v in enumerate(brains):
            area.put(f"subject{k}", v)
        got = compare_store(store, {"IT": area, "V4": brains[:1]}, method, chunk_size=333, rank_budget=0)
    expected = compare_vectors(model, brains, method)
    assert got["IT"].shape == (4, 2)
    np.testing.assert_allclose(got["IT"], expected, atol=1e-12, rtol=0)
    np.testing.assert_allclose(got["V4"], expected[:, :1], atol=1e-12, rtol=0)


def test_brain_dataarray_is_aligned_by_id(rng):
    from scipy.spatial.distance import squareform

    n = 30
    model, brains = _data(rng, n)
    ids = [f"s{i}" for i in range(n)]
    square = squareform(brains[0])
    order = rng.permutation(n)
    shuffled = xr.DataArray(square[np.ix_(order, order)], dims=("stimulus_row", "stimulus_col"),
                            coords={"stimulus_row": [ids[i] for i in order], "stimulus_col": [ids[i] for i in order]})
    with RDMStore(ids) as store:
        store.put("a", model[0])
        got = compare_store(store, {"IT": shuffled}, "spearman", chunk_size=50)["IT"]
        assert got[0, 0] == pytest.approx(compare_vectors(model[0], brains[0], "spearman")[0, 0], abs=1e-12)
        with pytest.raises(RSABridgeError, match="other stimuli"):
            compare_store(store, {"IT": shuffled.isel(stimulus_row=slice(1, None), stimulus_col=slice(1, None))})


def test_capability_is_on_the_record_and_others_are_refused(rng):
    assert {name for name, c in COMPARISONS.items() if c.chunkable} == set(CHUNKED) == \
        {"pearson", "spearman", "rho_a", "cosine"}
    with RDMStore([str(i) for i in range(5)]) as store:
        store.put("a", rng.random(10))
        for method in ("kendall_tau_a", "tau-a", "whitened_cosine"):
            with pytest.raises(RSABridgeError) as err:
                compare_store(store, {"IT": rng.random(10)}, method)
            assert "spearman, pearson, rho_a, cosine" in str(err.value) and "\n" not in str(err.value)
        store.put("flat", np.full(10, 2.0))
        with pytest.raises(RSABridgeError, match="constant"):
            compare_store(store, {"IT": rng.random(10)}, "pearson")
