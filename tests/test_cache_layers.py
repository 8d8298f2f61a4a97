"""The model-RDM cache on the RDM-store path: one entry per layer; a hit equals a fresh run bit for bit."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import extractors
from rsa_bridge.app.cache import RDMCache
from rsa_bridge.app.cache_layers import layer_key
from rsa_bridge.app.network import NetworkOptions
from rsa_bridge.app.pipeline import compare_models
from rsa_bridge.options import RDMOptions, StatsOptions
from tests.helpers import make_rdm_dataset, make_stimuli

LAYERS = ["conv1", "fc8"]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache_layers")
    ids = make_stimuli(root / "stimuli", n=12, size=32)
    make_rdm_dataset(root / "toy.nc", ids)
    return root


def _run(toy, net, cache, storage="float64"):
    return compare_models(["alexnet"], dataset=str(toy / "toy.nc"), progress=False,
                          network=NetworkOptions(models=[net], layers=LAYERS, cache=cache),
                          rdm=RDMOptions(batch_size=6, store="disk", storage=storage),
                          stats=StatsOptions(bootstrap=10, seed=1))


def _store_squares(result):
    (store,) = result.model_rdms.values()
    return store, {name: store.square(name) for name in store.names}


def test_store_path_cache_hit_equals_fresh(toy, tmp_path, capsys):
    net = extractors.load_model("alexnet", weights="none")
    cache = RDMCache(tmp_path / "cache")
    fresh = _run(toy, net, False)
    first = _run(toy, net, cache)  # a miss: computes into the store, then one entry per layer
    assert "read from" not in capsys.readouterr().err
    entries = cache.entries()
    assert len(entries) == 2 and sorted(e.layers for e in entries) == sorted(LAYERS)
    second = _run(toy, net, cache)  # a hit: every layer read from its entry
    assert "(2 layers, one entry each)" in capsys.readouterr().err
    # the hit holds exactly what the run that wrote the entries computed (store, coords, attrs, table)
    pd.testing.assert_frame_equal(second.table, first.table)
    (hit, wrote), (squares, ref) = zip(_store_squares(second), _store_squares(first))
    assert hit.names == wrote.names == LAYERS and hit.coords == wrote.coords and hit.attrs == wrote.attrs
    for name in ref:
        np.testing.assert_array_equal(squares[name], ref[name])
    # and equals a run without any cache (two forward passes of fc8 differ by ~2e-9 on this CPU: not bit for bit)
    for name, square in _store_squares(fresh)[1].items():
        np.testing.assert_allclose(ref[name], square, rtol=0, atol=1e-8)
    np.testing.assert_allclose(first.table["similarity"], fresh.table["similarity"], rtol=0, atol=1e-6)
    # the storage dtype is in the key: a float32 store neither reads nor overwrites the float64 entries
    _run(toy, net, cache, storage="float32")
    assert "read from" not in capsys.readouterr().err and len(cache.entries()) == 4
    # a corrupted layer entry is removed and that run recomputes (equal again)
    key = entries[0].key
    path = cache.path_for(key)
    path.write_bytes(b"not a netcdf")
    with pytest.warns(RuntimeWarning, match="unreadable"):
        again = _run(toy, net, cache)
    pd.testing.assert_frame_equal(again.table[["model", "layer"]], first.table[["model", "layer"]])
    assert layer_key("k", "conv1", "float64") != layer_key("k", "conv1", "float32")
