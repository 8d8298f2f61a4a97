"""Chunk-by-chunk comparison of stored RDMs equals compare_vectors on the dense vectors."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from rsa_bridge.chunked_compare import CHUNKED, compare_store
from rsa_bridge.compare import compare_vectors
from rsa_bridge.definitions import COMPARISONS
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.condensed import n_pairs
from rsa_bridge.rdm_store import RDMStore


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


def test_stores_made_inside_share_the_model_store_budget(rng, monkeypatch):
    import rsa_bridge.chunked_compare as cc

    n = 60
    model, brains = _data(rng, n)
    made, peak = [], [0]

    class Recording(RDMStore):
        def allocate(self, name, **coords):
            super().allocate(name, **coords)
            peak[0] = max(peak[0], store.nbytes + sum(s.nbytes for s in made))

        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            made.append(self)

    monkeypatch.setattr(cc, "RDMStore", Recording)
    monkeypatch.setattr("rsa_bridge.rdm_store.RDMStore.from_dataarray", classmethod(
        lambda cls, *a, **k: pytest.fail("not used here")))
    with RDMStore([str(i) for i in range(n)], memory_budget=2.5 * n_pairs(n) * 8) as store:
        for k, v in enumerate(model):
            store.put(f"layer{k}", v)
        assert len(store.spilled) == 2
        got = compare_store(store, {"IT": brains}, "spearman", chunk_size=500)["IT"]
    np.testing.assert_allclose(got, compare_vectors(model, brains, "spearman"), atol=1e-12, rtol=0)
    assert len(made) == 3  # the brain vectors, the model ranks, the brain ranks
    assert peak[0] <= 2.5 * n_pairs(n) * 8  # all in memory together stays within the one budget
    assert all(s.memory_budget <= 0.5 * n_pairs(n) * 8 for s in made)  # only what the model vectors left


def test_ranks_kept_from_an_earlier_call_count_against_the_budget(rng, monkeypatch):
    """The cached model ranks stay in memory between calls; a later call's brain stores get only what is
    left after them (one layer, a 5-vector budget: 6 vectors in memory without this accounting)."""
    n = 40
    model, brains = _data(rng, n)
    vec = n_pairs(n) * 8
    with RDMStore([str(i) for i in range(n)], memory_budget=5 * vec) as store:
        store.put("layer0", model[0])
        compare_store(store, {"IT": brains[:1]}, "spearman")
        (ranks,) = store.derived_stores()
        assert ranks.nbytes == vec // 2  # kept in memory for the next call (uint32 of 2 x rank: half a vector)
        seen, peak = [], [0]
        real_init, real_allocate = RDMStore.__init__, RDMStore.allocate

        def init(self, *a, **k):
            real_init(self, *a, **k)
            seen.append(self)

        def allocate(self, name, **coords):
            real_allocate(self, name, **coords)
            peak[0] = max(peak[0], store.nbytes + ranks.nbytes + sum(s.nbytes for s in seen))

        monkeypatch.setattr(RDMStore, "__init__", init)
        monkeypatch.setattr(RDMStore, "allocate", allocate)
        four = np.concatenate([brains, brains[::-1] + 1.0])
        got = compare_store(store, {"IT": four}, "spearman")["IT"]
        monkeypatch.undo()
        assert seen and peak[0] <= 5 * vec, peak[0] / vec
        np.testing.assert_allclose(got, compare_vectors(model[:1], four, "spearman"), atol=1e-12, rtol=0)
        store.drop_derived()
        assert store.derived_stores() == [] and ranks.nbytes == 0


def test_model_ranks_are_computed_once_per_store_until_it_changes(rng, monkeypatch):
    """compare_layers and the statistics' observed values call compare_store on the same store: the model
    store is ranked once (RDMStore.derived), and again after a put changes it; results stay exact."""
    import rsa_bridge.chunked_compare as cc

    n = 40
    model, brains = _data(rng, n)
    ranked = []
    real = cc.rank_store
    monkeypatch.setattr(cc, "rank_store", lambda src, **kw: ranked.append(list(src.names)) or real(src, **kw))
    ids = [f"s{i}" for i in range(n)]
    with RDMStore(ids, memory_budget=0) as store:
        for k, v in enumerate(model[:3]):
            store.put(f"layer{k}", v)
        first = compare_store(store, {"IT": brains}, "spearman", chunk_size=97)["IT"]
        second = compare_store(store, {"IT": brains}, "spearman", chunk_size=97)["IT"]
        assert ranked == [["IT_0", "IT_1"], ["layer0", "layer1", "layer2"], ["IT_0", "IT_1"]]
        np.testing.assert_array_equal(first, second)
        store.put("layer3", model[3])
        third = compare_store(store, {"IT": brains}, "spearman", chunk_size=97)["IT"]
        assert ranked[-1] == ["layer0", "layer1", "layer2", "layer3"]
        np.testing.assert_allclose(third, compare_vectors(model, brains, "spearman"), atol=1e-12, rtol=0)
        (_, held), = store._derived.values()
        spill = held.spill_path
    assert spill is None or not spill.exists()  # closed with the store
