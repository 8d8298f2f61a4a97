"""The extending guide's comparison-method file, executed: two methods added in one scratch module exactly as
docs/guide/extending.md shows, then run through every statistic and checked against numpy by hand.

``minus_pearson`` has only a similarity and a pool (every generic path); ``rank_cosine`` has a fast path and a
chunked form. A capability a method lacks is refused in one line before any compute.
"""
from __future__ import annotations

import importlib.util
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform
from scipy.stats import rankdata

from rsa_bridge import methods
from rsa_bridge.compare import compare_rdms, compare_vectors
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.stats import BootstrapOptions, PermutationOptions, bootstrap_similarity, noise_ceiling, permutation_test

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guide" / "extending.md"
N = 12
ROWS, COLS = np.triu_indices(N, k=1)


def _guide_block() -> str:
    text = GUIDE.read_text()
    section = text[text.index("## A comparison method"):text.index("## A model source")]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1 and blocks[0].startswith("# mylab_methods.py")
    return blocks[0]


@pytest.fixture(scope="module")
def guide(tmp_path_factory):
    """The guide's file, written as a scratch module and imported (which registers its methods)."""
    path = tmp_path_factory.mktemp("guide") / "mylab_methods.py"
    path.write_text(_guide_block())
    spec = importlib.util.spec_from_file_location("mylab_methods", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["mylab_methods"] = module
    spec.loader.exec_module(module)
    yield module
    for name in ("minus_pearson", "rank_cosine"):
        if name in methods.METHODS:
            methods.unregister(name)
    sys.modules.pop("mylab_methods", None)


def _rdms(k: int, seed: int, signal=None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(N, 6)) if signal is None else signal
    return np.stack([squareform(pdist(base + 0.8 * rng.normal(size=(N, 6)))) for _ in range(k)])


@pytest.fixture(scope="module")
def data():
    signal = np.random.default_rng(9).normal(size=(N, 6))
    return _rdms(2, 1, signal), {"IT": _rdms(3, 2, signal), "V4": _rdms(2, 3, signal)}


def _minus_pearson(a, b):
    return -np.corrcoef(a, b)[0, 1]


def _rank_cosine(a, b):
    ra, rb = rankdata(a), rankdata(b)
    return ra @ rb / np.sqrt((ra @ ra) * (rb @ rb))


HAND = {"minus_pearson": _minus_pearson, "rank_cosine": _rank_cosine}


def _stat(name, model_mat, area_mats, idx=None):
    """The statistic by hand: mean over the area's RDMs, on the stimuli ``idx`` (pairs of copies dropped)."""
    if idx is None:
        return np.mean([HAND[name](model_mat[ROWS, COLS], m[ROWS, COLS]) for m in area_mats])
    r, c = np.triu_indices(len(idx), k=1)
    a, b = idx[r], idx[c]
    keep = a != b
    return np.mean([HAND[name](model_mat[a, b][keep], m[a, b][keep]) for m in area_mats])


def test_the_guide_registers_one_object_per_method(guide):
    assert methods.get("minus_pearson") is guide.MINUS_PEARSON
    assert guide.MINUS_PEARSON.bootstrap == "masked" and not guide.MINUS_PEARSON.chunkable
    assert guide.RANK_COSINE.bootstrap == "dot" and guide.RANK_COSINE.chunkable
    from rsa_bridge.definitions import COMPARISONS, method_help

    assert "minus_pearson" in COMPARISONS and "rank_cosine" in method_help()
    assert COMPARISONS.resolve("MINUS_PEARSON") == "minus_pearson"


@pytest.mark.parametrize("name", ["minus_pearson", "rank_cosine"])
def test_compare_rdms_and_vectors_are_the_methods_own(guide, data, name):
    model, neural = data
    brain = neural["IT"][0]
    assert compare_rdms(model[0], brain, name) == pytest.approx(HAND[name](model[0][ROWS, COLS], brain[ROWS, COLS]),
                                                                abs=1e-12)
    got = compare_vectors(model[:, ROWS, COLS], neural["IT"][:, ROWS, COLS], name)
    want = [[HAND[name](m[ROWS, COLS], b[ROWS, COLS]) for b in neural["IT"]] for m in model]
    np.testing.assert_allclose(got, want, atol=1e-12)


@pytest.mark.parametrize("name", ["minus_pearson", "rank_cosine"])
def test_permutation_observed_and_null_are_the_methods_own(guide, data, name):
    model, neural = data
    perms = np.stack([np.random.default_rng(s).permutation(N) for s in range(6)])
    res = permutation_test(model, neural, method=name,
                           options=PermutationOptions(permutation_indices=perms, progress=False))
    for j, (area, mats) in enumerate(neural.items()):
        for layer in range(2):
            assert res.observed[layer, j] == pytest.approx(_stat(name, model[layer], mats), abs=1e-12)
            for s, p in enumerate(perms):
                relabelled = model[layer][p][:, p]
                assert res.null[s, layer, j] == pytest.approx(_stat(name, relabelled, mats), abs=1e-12)


def test_permutation_subset_scheme_uses_the_methods_own_statistic(guide, data, monkeypatch):
    from rsa_bridge.stats import subset

    monkeypatch.setattr(subset, "SUBSET_STIMULI", 8)
    model, neural = data
    res = permutation_test(model, neural, method="minus_pearson", n_permutations=5, seed=0,
                           options=PermutationOptions(scheme="subset", progress=False))
    idx = np.sort(np.random.default_rng(0).choice(N, size=8, replace=False))  # the subset the test draws first
    sub = {a: m[:, idx][:, :, idx] for a, m in neural.items()}
    r, c = np.triu_indices(8, k=1)
    for j, mats in enumerate(sub.values()):
        want = np.mean([_minus_pearson(model[0][idx][:, idx][r, c], m[r, c]) for m in mats])
        assert res.observed[0, j] == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("name", ["minus_pearson", "rank_cosine"])
def test_bootstrap_samples_are_the_methods_own(guide, data, name):
    model, neural = data
    idx = np.sort(np.random.default_rng(4).integers(0, N, size=(5, N)), axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = bootstrap_similarity(model, neural, method=name, ceiling=True,
                                   options=BootstrapOptions(stimulus_indices=idx, progress=False))
    assert res.backend == "numpy"
    for j, mats in enumerate(neural.values()):
        for layer in range(2):
            assert res.observed[layer, j] == pytest.approx(_stat(name, model[layer], mats), abs=1e-12)
            for s in range(5):
                assert res.samples[s, layer, j] == pytest.approx(_stat(name, model[layer], mats, idx[s]), abs=1e-10)
    assert np.isfinite(res.ceiling).all()


def test_the_fast_path_equals_the_generic_path_with_ceilings(guide, data):
    """rank_cosine's batched dot path gives what its explicit (masked) path gives, ceilings included."""
    model, neural = data
    generic = methods.Method("rank_cosine_generic", "the same, no fast path", guide.rank_cosine,
                             pool=guide.RANK_COSINE.pool, transform="ranks")
    methods.register(generic)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            kw = dict(n_samples=8, over="both", seed=3, ceiling=True, options=BootstrapOptions(progress=False))
            fast = bootstrap_similarity(model, neural, method="rank_cosine", **kw)
            slow = bootstrap_similarity(model, neural, method="rank_cosine_generic", **kw)
    finally:
        methods.unregister("rank_cosine_generic")
    np.testing.assert_allclose(fast.samples, slow.samples, atol=1e-10)
    # where a sample drew one distinct RDM of an area the explicit path leaves its ceiling NaN and the batched
    # path gives the upper bound (as for the built-in methods); every bound both paths give is equal
    both = np.isfinite(slow.ceiling)
    assert both.sum() >= slow.ceiling.size // 2
    np.testing.assert_allclose(fast.ceiling[both], slow.ceiling[both], atol=1e-10)


def test_noise_ceiling_uses_the_methods_pool_and_similarity(guide, data):
    _, neural = data
    vectors = neural["IT"][:, ROWS, COLS]

    def zpool(x):  # rsatoolbox pool_rdm for correlations, by hand
        z = (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)
        return z.mean(axis=0) - z.mean(axis=0).min()

    upper = np.mean([_minus_pearson(zpool(vectors), v) for v in vectors])
    lower = np.mean([_minus_pearson(zpool(np.delete(vectors, s, axis=0)), vectors[s]) for s in range(3)])
    c = noise_ceiling(neural["IT"], "minus_pearson")
    assert (c.lower, c.upper) == (pytest.approx(lower, abs=1e-12), pytest.approx(upper, abs=1e-12))


def test_rdm_store_runs_the_chunked_method_and_refuses_the_other_in_one_line(guide, data):
    from rsa_bridge.chunked_compare import compare_store
    from rsa_bridge.rdm_store import RDMStore

    model, neural = data
    ids = [f"s{i}" for i in range(N)]
    with RDMStore(ids, memory_budget=0) as store:
        store.put("l1", model[0])
        store.put("l2", model[1])
        got = compare_store(store, {"IT": neural["IT"]}, "rank_cosine", chunk_size=7)["IT"]
        np.testing.assert_allclose(got, compare_vectors(model[:, ROWS, COLS], neural["IT"][:, ROWS, COLS],
                                                        "rank_cosine"), atol=1e-12)
        res = permutation_test(store, neural, method="rank_cosine", n_permutations=4, seed=0,
                               options=PermutationOptions(progress=False))
        assert res.observed[0, 0] == pytest.approx(_stat("rank_cosine", model[0], neural["IT"]), abs=1e-12)
        # the exact schemes build the few stored RDMs dense: any method runs, with its own statistic
        dense = permutation_test(store, neural, method="minus_pearson", n_permutations=3, seed=0,
                                 options=PermutationOptions(progress=False))
        assert dense.observed[1, 1] == pytest.approx(_stat("minus_pearson", model[1], neural["V4"]), abs=1e-12)
        # what reads the store itself (chunk sums, the subset schemes) needs the chunked form
        for call in (lambda: compare_store(store, {"IT": neural["IT"]}, "minus_pearson"),
                     lambda: bootstrap_similarity(store, neural, method="minus_pearson", n_samples=3, seed=0,
                                                  options=BootstrapOptions(scheme="subset")),
                     lambda: permutation_test(store, neural, method="minus_pearson", n_permutations=3, seed=0,
                                              options=PermutationOptions(scheme="subset"))):
            with pytest.raises(RSABridgeError) as err:
                call()
            message = str(err.value)
            assert "\n" not in message and "minus_pearson" in message and "chunked" in message


def test_compare_precomputed_dense_and_store(guide):
    import xarray as xr

    from rsa_bridge import load_dataset
    from rsa_bridge.app.pipeline import StatsOptions, compare_precomputed
    from rsa_bridge.rdm_store import RDMStore

    ds = load_dataset("kriegeskorte2008_92images")
    ids = [str(s) for s in ds["stimulus_row"].values]
    rng = np.random.default_rng(0)
    mats = np.stack([squareform(pdist(rng.normal(size=(92, 5)))) for _ in range(2)])
    rdms = xr.DataArray(mats, dims=("layer", "stimulus_row", "stimulus_col"),
                        coords={"layer": ["l1", "l2"], "stimulus_row": ids, "stimulus_col": ids})
    brain = ds["hIT"].values.reshape(-1, 92, 92)
    r, c = np.triu_indices(92, k=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = compare_precomputed(rdms, ["hIT"], dataset="kriegeskorte2008_92images", method="minus_pearson",
                                     stats=StatsOptions(bootstrap=3, permutations=4, seed=0, progress=False))
    sim = result.results["similarity"].values[:, 0]
    want = [np.mean([_minus_pearson(m[r, c], b[r, c]) for b in brain]) for m in mats]
    np.testing.assert_allclose(sim, want, atol=1e-12)
    assert result.results.attrs["method"] == "minus_pearson"
    with RDMStore(ids) as store:
        store.put("l1", mats[0])
        store.put("l2", mats[1])
        with pytest.raises(RSABridgeError, match="no chunked form"):
            compare_precomputed(store, ["hIT"], dataset="kriegeskorte2008_92images", method="minus_pearson")
        stored = compare_precomputed(store, ["hIT"], dataset="kriegeskorte2008_92images", method="rank_cosine")
    want = [np.mean([_rank_cosine(m[r, c], b[r, c]) for b in brain]) for m in mats]
    np.testing.assert_allclose(stored.results["similarity"].values[:, 0], want, atol=1e-12)


def test_a_missing_capability_is_one_line_before_compute(guide, data):
    model, neural = data
    bare = methods.register(methods.Method("bare_dot", "a.b", lambda a, b: np.asarray(a) @ np.asarray(b).T))
    try:
        for call, needs in ((lambda: noise_ceiling(neural["IT"], "bare_dot"), "pool"),
                            (lambda: bootstrap_similarity(model, neural, method="bare_dot", n_samples=2, seed=0,
                                                          ceiling=True), "pool")):
            with pytest.raises(RSABridgeError) as err:
                call()
            assert "\n" not in str(err.value) and "'bare_dot' has no" in str(err.value) and needs in str(err.value)
        # the algonauts ceiling pools by the raw mean: it needs no pool of the method
        assert np.isfinite(noise_ceiling(neural["IT"], "bare_dot", definition="algonauts").upper)
    finally:
        methods.unregister("bare_dot")
    with pytest.raises(RSABridgeError, match="already registered"):
        methods.register(methods.Method("minus_pearson", "again", guide.minus_pearson))


def test_dask_executor_equals_serial(guide, data):
    distributed = pytest.importorskip("dask.distributed")
    from rsa_bridge.stats.dask_bootstrap import DaskExecutor

    model, neural = data
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        for name in ("minus_pearson", "rank_cosine"):
            kw = dict(method=name, seed=2)
            on_dask = DaskExecutor(client, "local:2", batch_size=2)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                serial = bootstrap_similarity(model, neural, n_samples=6, ceiling=True, **kw,
                                              options=BootstrapOptions(progress=False))
                dask = bootstrap_similarity(model, neural, n_samples=6, ceiling=True, **kw,
                                            options=BootstrapOptions(progress=False, executor=on_dask))
            np.testing.assert_array_equal(dask.samples, serial.samples)
            np.testing.assert_array_equal(dask.ceiling, serial.ceiling)
            p_serial = permutation_test(model, neural, n_permutations=6, **kw, options=PermutationOptions(progress=False))
            p_dask = permutation_test(model, neural, n_permutations=6, **kw,
                                      options=PermutationOptions(progress=False, executor=on_dask))
            np.testing.assert_array_equal(p_dask.null, p_serial.null)
            assert p_serial.observed[0, 0] == pytest.approx(_stat(name, model[0], neural["IT"]), abs=1e-12)


def test_entry_point_plugins_are_registered_and_a_broken_one_warns(monkeypatch):
    import importlib.metadata

    plugin = methods.Method("plugin_cosine", "cosine again, from a plugin", methods.get("cosine").similarity,
                            pool=methods.get("cosine").pool)

    class EntryPoint:
        def __init__(self, name, value, load):
            self.name, self.value, self.load = name, value, load

    def broken():
        raise ImportError("no module named 'gone'")

    eps = [EntryPoint("plugin_cosine", "lab:PLUGIN", lambda: plugin), EntryPoint("gone", "gone:M", broken)]
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: eps if group == "rsa_bridge.methods" else [])
    try:
        with pytest.warns(RuntimeWarning, match="'gone'.*not loaded"):
            methods._load_plugins()
        assert methods.get("PLUGIN_COSINE") is plugin
        a, b = np.random.default_rng(0).random((2, 3, 10))
        np.testing.assert_array_equal(compare_vectors(a, b, "plugin_cosine"), compare_vectors(a, b, "cosine"))
        with pytest.warns(RuntimeWarning, match="'gone'"):
            methods._load_plugins()  # loading the same object again is harmless; the broken one warns again
        assert methods.get("plugin_cosine") is plugin
    finally:
        if "plugin_cosine" in methods.METHODS:
            methods.unregister("plugin_cosine")
    assert "plugin_cosine" not in methods.METHODS
