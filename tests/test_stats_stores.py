"""Statistics of model RDMs in a store (rsa_bridge.stats.stores) equal the dense path for the same seed."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy.spatial.distance import pdist, squareform

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.rdm import COL, ROW
from rsa_bridge.stats import BootstrapOptions, bootstrap_similarity, permutation_test, stores, subset
from rsa_bridge.stats.stores import StoreStack, is_store
from rsa_bridge.stats import PermutationOptions

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


class VectorStore:
    """An independent minimal store: condensed upper triangles (scipy squareform), counting its reads."""

    def __init__(self, ids, rdms: dict[str, np.ndarray]):
        self.ids = list(ids)
        self.n = len(self.ids)
        self._vec = {name: squareform(r, checks=False) for name, r in rdms.items()}
        self.reads = 0

    @property
    def names(self):
        return list(self._vec)

    def vector(self, name):
        self.reads += 1
        return self._vec[name].copy()

    def take(self, name, index_sets):
        self.reads += 1
        full = squareform(self._vec[name])
        return [full[np.ix_(i, i)] for i in index_sets]


def _stores():
    """The classes under test: the minimal one above, and rsa_bridge.rdm_store.RDMStore once it exists."""
    out = [lambda ids, rdms: VectorStore(ids, rdms)]
    try:
        from rsa_bridge.rdm_store import RDMStore
    except ImportError:
        return out

    def make(ids, rdms):
        s = RDMStore(ids)
        for name, r in rdms.items():
            s.put(name, r)
        return s
    return out + [make]


def _data(n: int, seed: int = 0):
    """Three model RDMs and one area (2 RDMs) sharing a latent structure; DataArrays with shuffled area order."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 4))

    def rdm(noise):
        return squareform(pdist(np.hstack([z, noise * rng.normal(size=(n, 20))]), "correlation"))

    ids = [f"s{k}" for k in range(n)]
    model = {"conv1": rdm(0.3), "conv2": rdm(1.0), "fc": rdm(2.0)}
    area = np.stack([rdm(0.6), rdm(0.8)])
    order = rng.permutation(n)  # the area lists its stimuli in another order: matched by stimulus_id
    neural = xr.DataArray(area[:, order][:, :, order], dims=("subject", ROW, COL),
                          coords={"subject": ["a", "b"], ROW: [ids[k] for k in order], COL: [ids[k] for k in order]})
    dense = xr.DataArray(np.stack(list(model.values())), dims=("model_layer", ROW, COL),
                         coords={"model_layer": list(model), ROW: ids, COL: ids})
    return ids, model, dense, {"IT": neural}


@pytest.fixture(scope="module")
def large():
    return _data(2500)


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_subset_bootstrap_from_a_store_equals_the_dense_path(large, method, monkeypatch):
    monkeypatch.setattr(subset, "SUBSET_STIMULI", 300)
    ids, model, dense, neural = large
    ref = bootstrap_similarity(dense, neural, method=method, n_samples=50, seed=4,
                               options=BootstrapOptions(scheme="subset"))
    for make in _stores() if method == "pearson" else _stores()[-1:]:  # spearman: the RDMStore only (time)
        got = bootstrap_similarity(make(ids, model), neural, method=method, n_samples=50, seed=4,
                                   options=BootstrapOptions(scheme="subset"))
        assert got.labels == ref.labels == list(model) and got.areas == ["IT"]
        np.testing.assert_allclose(got.observed, ref.observed, rtol=0, atol=1e-12)
        np.testing.assert_allclose(got.samples, ref.samples, rtol=0, atol=1e-12)
        for a, b in zip(got.ci(0.95), ref.ci(0.95)):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
        assert got.attrs()["bootstrap_scheme"] == ref.attrs()["bootstrap_scheme"]
    # the observed statistic is scipy's on the full vectors (independent of both paths)
    from scipy.stats import pearsonr, spearmanr
    fn = spearmanr if method == "spearman" else pearsonr
    area = neural["IT"].sel({ROW: ids, COL: ids}).values
    want = np.mean([fn(squareform(model["conv2"]), squareform(r, checks=False))[0] for r in area])
    assert abs(got.observed[1, 0] - want) < 1e-12


def test_one_take_per_stored_rdm_for_all_subsets(monkeypatch):
    monkeypatch.setattr(subset, "SUBSET_STIMULI", 50)
    ids, model, dense, neural = _data(200)
    store = VectorStore(ids, model)
    bootstrap_similarity(store, neural, n_samples=40, seed=1, options=BootstrapOptions(scheme="subset"))
    # one vector read (the full-N statistic) and one take (all 25 subsets) per RDM
    assert store.reads == 2 * len(model)


@pytest.mark.parametrize("make", _stores())
def test_subset_permutation_from_a_store_equals_the_dense_path(make, monkeypatch):
    monkeypatch.setattr(subset, "SUBSET_STIMULI", 80)
    ids, model, dense, neural = _data(300)
    ref = permutation_test(dense, neural, n_permutations=99, seed=3, options=PermutationOptions(scheme="subset"))
    got = permutation_test(make(ids, model), neural, n_permutations=99, seed=3,
                           options=PermutationOptions(scheme="subset"))
    np.testing.assert_allclose(got.null, ref.null, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(got.p_value, ref.p_value)
    assert got.attrs()["permutation_scheme"] == ref.attrs()["permutation_scheme"] and got.labels == list(model)


def test_exact_scheme_builds_small_stores_dense_and_refuses_large_ones(monkeypatch):
    ids, model, dense, neural = _data(60)
    store = VectorStore(ids, model)
    ref = bootstrap_similarity(dense, neural, n_samples=30, seed=2, over="both")
    got = bootstrap_similarity(store, neural, n_samples=30, seed=2, over="both")
    np.testing.assert_array_equal(got.samples, ref.samples)
    perm = permutation_test(store, neural, n_permutations=20, seed=2)
    np.testing.assert_array_equal(perm.p_value, permutation_test(dense, neural, n_permutations=20, seed=2).p_value)
    monkeypatch.setattr(stores, "DENSE_LIMIT_BYTES", 1000.0)
    with pytest.raises(RSABridgeError, match=r"exact bootstrap .* dense .*subset scheme") as err:
        bootstrap_similarity(store, neural, n_samples=5, seed=0, options=BootstrapOptions(scheme="exact"))
    assert "\n" not in str(err.value)
    with pytest.raises(RSABridgeError, match="exact permutation test"):
        permutation_test(store, neural, n_permutations=5, seed=0)


def test_store_stack_labels_without_copies(monkeypatch):
    monkeypatch.setattr(subset, "SUBSET_STIMULI", 40)
    ids, model, dense, neural = _data(120)
    a, b = VectorStore(ids, {"conv1": model["conv1"]}), VectorStore(ids, {"conv2": model["conv2"], "fc": model["fc"]})
    stack = StoreStack([("alex", a), ("vgg", b)])
    assert is_store(stack) and stack.names == ["alex:conv1", "vgg:conv2", "vgg:fc"] and stack.n == 120
    assert stack.vector("vgg:fc") is not model["fc"] and b.reads == 1
    stacked = dense.assign_coords(model_layer=stack.names)
    ref = bootstrap_similarity(stacked, neural, n_samples=30, seed=9, options=BootstrapOptions(scheme="subset"))
    got = bootstrap_similarity(stack, neural, n_samples=30, seed=9, options=BootstrapOptions(scheme="subset"))
    assert got.labels == stack.names
    np.testing.assert_allclose(got.samples, ref.samples, rtol=0, atol=1e-12)
    other = VectorStore(ids[::-1], {"x": model["fc"][::-1, ::-1]})
    with pytest.raises(RSABridgeError, match="same|another order|one stimulus set"):
        StoreStack([("alex", a), ("other", other)])


def test_unsupported_method_and_mismatched_ids_are_one_line_errors():
    ids, model, dense, neural = _data(40)
    store = VectorStore(ids, model)
    with pytest.raises(RSABridgeError, match="whitened_pearson.*not available .*store") as err:
        bootstrap_similarity(store, neural, method="whitened_pearson", n_samples=5, seed=0,
                             options=BootstrapOptions(scheme="subset"))
    assert "\n" not in str(err.value)
    bad = {"IT": neural["IT"].assign_coords({ROW: [f"x{k}" for k in range(40)], COL: [f"x{k}" for k in range(40)]})}
    with pytest.raises(RSABridgeError):
        bootstrap_similarity(store, bad, n_samples=5, seed=0, options=BootstrapOptions(scheme="subset"))


@pytest.mark.parametrize("make", _stores())
def test_compare_layers_from_a_store_equals_the_dense_path(make):
    from rsa_bridge.layer_scores import compare_layers

    ids, model, dense, neural = _data(50)
    ds = xr.Dataset({"IT": neural["IT"]}, attrs={"name": "toy"})
    ref_dense = dense.rename(model_layer="layer")
    for method in ("spearman", "rho_a", "pearson", "cosine"):
        a = compare_layers(ref_dense, ds, ["IT"], method, "none")
        b = compare_layers(make(ids, model), ds, ["IT"], method, "none")
        for x, y in zip(a[:2], b[:2]):
            np.testing.assert_allclose(y.values, x.values, rtol=0, atol=1e-12)
            assert list(y["layer"].values) == list(model)
        np.testing.assert_allclose(b[2]["IT"].values, a[2]["IT"].values, rtol=0, atol=1e-12)
    with pytest.raises(RSABridgeError, match="not available"):
        compare_layers(make(ids, model), ds, ["IT"], "whitened_cosine", "none")


def test_bootstrap_over_rdms_from_a_store_is_exact_without_dense_rdms(monkeypatch):
    ids, model, dense, neural = _data(80)
    store = VectorStore(ids, model)
    monkeypatch.setattr(stores, "DENSE_LIMIT_BYTES", 1000.0)  # nothing may be made dense
    for method in ("spearman", "pearson"):
        ref = bootstrap_similarity(dense, neural, method=method, n_samples=40, seed=6, over="rdms", ceiling=True)
        got = bootstrap_similarity(store, neural, method=method, n_samples=40, seed=6, over="rdms", ceiling=True)
        np.testing.assert_allclose(got.observed, ref.observed, rtol=0, atol=1e-12)
        np.testing.assert_allclose(got.samples, ref.samples, rtol=0, atol=1e-10)
        np.testing.assert_allclose(got.ceiling, ref.ceiling, rtol=0, atol=1e-10)
        np.testing.assert_array_equal(got.rdm_indices["IT"], ref.rdm_indices["IT"])
