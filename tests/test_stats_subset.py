"""Large-N schemes: subset m-out-of-n bootstrap and subset permutation test, validated against the exact ones."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform
from scipy.stats import norm

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.stats import BootstrapOptions, PermutationOptions, bootstrap_similarity, permutation_test, subset

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _data(n: int, seed: int = 0):
    """Two model RDMs and one area RDM sharing a 4-d latent structure (similarities ~0.7 and ~0.3)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 4))

    def rdm(noise):
        return squareform(pdist(np.hstack([z, noise * rng.normal(size=(n, 20))]), "correlation"))

    return np.stack([rdm(0.3), rdm(1.0)]), {"a": rdm(0.6)[None]}


def test_subset_bootstrap_interval_matches_exact_within_monte_carlo_error(monkeypatch):
    monkeypatch.setattr(subset, "SUBSET_STIMULI", 200)
    n, b, level = 600, 1000, 0.95
    model, neural = _data(n)
    exact = bootstrap_similarity(model, neural, n_samples=b, seed=1, options=BootstrapOptions(scheme="exact"))
    sub = bootstrap_similarity(model, neural, n_samples=b, seed=2, options=BootstrapOptions(scheme="subset"))
    assert sub.attrs()["bootstrap_scheme"].startswith("subset m-out-of-n: random subsets of 200 of 600")
    assert exact.attrs()["bootstrap_scheme"] == "exact"
    np.testing.assert_allclose(sub.observed, exact.observed, atol=1e-12)
    # Monte-Carlo SE of a percentile endpoint: sd * sqrt(p (1 - p) / B) / phi(z_p); both estimates carry one
    p = (1 - level) / 2
    se = exact.samples.std(axis=0) * np.sqrt(p * (1 - p) / b) / norm.pdf(norm.ppf(p))
    for ours, ref in zip(sub.ci(level), exact.ci(level)):
        assert (np.abs(ours - ref) <= 4 * np.sqrt(2) * se).all(), (ours, ref, se)
    ratio = sub.samples.std(axis=0) / exact.samples.std(axis=0)
    assert ((ratio > 0.85) & (ratio < 1.2)).all()


def test_auto_switches_above_the_exact_size(monkeypatch):
    monkeypatch.setattr(subset, "EXACT_MAX_STIMULI", 100)
    monkeypatch.setattr(subset, "SUBSET_STIMULI", 60)
    model, neural = _data(150)
    auto = bootstrap_similarity(model, neural, n_samples=50, seed=3)
    assert "subset" in auto.attrs()["bootstrap_scheme"] and auto.attrs()["bootstrap_subset_stimuli"] == 60
    assert auto.stimulus_indices is None and np.isfinite(auto.samples).all()
    small = bootstrap_similarity(model[:, :90, :90], {"a": neural["a"][:, :90, :90]}, n_samples=20, seed=3)
    assert small.attrs()["bootstrap_scheme"] == "exact"
    # given index sets and bootstraps over RDMs never switch
    given = bootstrap_similarity(model, neural, seed=3,
                                 options=BootstrapOptions(stimulus_indices=np.tile(np.arange(150), (5, 1))))
    assert given.attrs()["bootstrap_scheme"] == "exact"
    with pytest.raises(RSABridgeError, match="scheme"):
        bootstrap_similarity(model, neural, n_samples=5, options=BootstrapOptions(scheme="fast"))


def test_subset_bootstrap_is_seeded():
    model, neural = _data(120)
    a = bootstrap_similarity(model, neural, n_samples=30, seed=5, options=BootstrapOptions(scheme="subset"))
    b = bootstrap_similarity(model, neural, n_samples=30, seed=5, options=BootstrapOptions(scheme="subset"))
    np.testing.assert_array_equal(a.samples, b.samples)


def test_subset_permutation_test(monkeypatch):
    monkeypatch.setattr(subset, "SUBSET_STIMULI", 80)
    model, neural = _data(300)
    exact = permutation_test(model, neural, n_permutations=200, seed=0, options=PermutationOptions(scheme="exact"))
    sub = permutation_test(model, neural, n_permutations=200, seed=0, options=PermutationOptions(scheme="subset"))
    assert exact.attrs()["permutation_scheme"] == "exact"
    assert "one subset" in sub.attrs()["permutation_scheme"] and sub.attrs()["permutation_subset_stimuli"] == 80
    # strong structure: both tests reject with the smallest p-value possible
    np.testing.assert_array_equal(exact.p_value, 1 / 201)
    np.testing.assert_array_equal(sub.p_value, 1 / 201)
    # the subset test is the exact test of the seeded subset's sub-RDMs
    idx = np.sort(np.random.default_rng(0).choice(300, size=80, replace=False))
    direct = permutation_test(model[:, idx][:, :, idx], {"a": neural["a"][:, idx][:, :, idx]}, n_permutations=200,
                              seed=_after_choice(300, 80, 0))
    np.testing.assert_allclose(sub.p_value, direct.p_value)


def _after_choice(n: int, k: int, seed: int) -> np.random.Generator:
    rng = np.random.default_rng(seed)
    rng.choice(n, size=k, replace=False)
    return rng


def test_subset_permutation_p_values_are_valid_under_the_null(monkeypatch):
    """Unrelated RDMs: the subset test's p-values are not concentrated near 0."""
    monkeypatch.setattr(subset, "SUBSET_STIMULI", 40)
    rng = np.random.default_rng(7)
    ps = []
    for _ in range(20):
        model = squareform(pdist(rng.normal(size=(100, 5))))[None]
        area = squareform(pdist(rng.normal(size=(100, 5))))[None]
        ps.append(permutation_test(model, area, n_permutations=99, seed=rng,
                                   options=PermutationOptions(scheme="subset")).p_value[0, 0])
    assert np.mean(np.array(ps) <= 0.05) <= 0.2


def test_compare_table_and_results_say_which_scheme_ran(monkeypatch):
    import xarray as xr

    from rsa_bridge import load_dataset
    from rsa_bridge.app.pipeline import StatsOptions, compare_precomputed
    from rsa_bridge.app.report import format_table

    monkeypatch.setattr(subset, "EXACT_MAX_STIMULI", 50)
    monkeypatch.setattr(subset, "SUBSET_STIMULI", 40)
    ds = load_dataset("kriegeskorte2008_92images")
    ids = [str(s) for s in ds["stimulus_row"].values]
    rng = np.random.default_rng(0)
    mats = np.stack([squareform(pdist(rng.normal(size=(92, 5)))) for _ in range(2)])
    rdms = xr.DataArray(mats, dims=("layer", "stimulus_row", "stimulus_col"),
                        coords={"layer": ["l1", "l2"], "stimulus_row": ids, "stimulus_col": ids})
    result = compare_precomputed(rdms, ["IT"], dataset="kriegeskorte2008_92images",
                                 stats=StatsOptions(bootstrap=30, seed=0, progress=False))
    attrs = result.results["similarity_bootstrap"].attrs
    assert attrs["bootstrap_scheme"].startswith("subset m-out-of-n: random subsets of 40 of 92")
    assert "bootstrap scheme: subset m-out-of-n" in format_table(result)
