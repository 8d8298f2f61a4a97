"""Bootstrap of layer x area similarities: equal to rsatoolbox on the same index sets, seeded, robust."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from rsa_bridge.compare import METHODS, compare_vectors
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.stats import bootstrap_rdms, bootstrap_similarity, bootstrap_stimuli, pair_weights, percentile_ci
from rsa_bridge.stats.weighted import sort_order, weighted_ranks

from _stats_reference import model_like, real_rdms, rsatoolbox_bootstrap, vectors
from rsa_bridge.stats import BootstrapOptions

N_SMALL = 16  # stimuli for the all-methods comparison (rsatoolbox's whitening of a resampled RDM is slow)


@pytest.mark.parametrize("over", ["stimuli", "rdms", "both"])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_samples_and_ceilings_equal_rsatoolbox_for_the_same_index_sets(method, over, monkeypatch):
    it, hit = real_rdms(N_SMALL)
    models = model_like(it[0], 3, seed=1)
    models[2] = np.round(models[2] * 3) / 3  # ties
    b = 4
    stim = bootstrap_stimuli(N_SMALL, b, np.random.default_rng(10))
    rdm_idx = bootstrap_rdms(hit.shape[0], b, np.random.default_rng(11))
    ours = bootstrap_similarity(models, {"hIT": hit}, method=method, over=over, ceiling=True, n_samples=b,
                                options=BootstrapOptions(stimulus_indices=stim, rdm_indices={"hIT": rdm_idx}))
    evaluations, ceilings = rsatoolbox_bootstrap(models, hit, method, over, stim, rdm_idx, monkeypatch=monkeypatch)
    np.testing.assert_allclose(ours.samples[:, :, 0], evaluations, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ours.ceiling[:, 0, :], ceilings, rtol=0, atol=1e-10)


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_full_92_stimulus_bootstrap_equals_rsatoolbox(method, monkeypatch):
    it, hit = real_rdms()
    models = model_like(it[0], 4, seed=2)
    stim = bootstrap_stimuli(92, 3, np.random.default_rng(5))
    with pytest.warns(RuntimeWarning, match="no noise ceiling for area"):  # IT has one RDM
        ours = bootstrap_similarity(models, {"IT": it, "hIT": hit}, method=method, ceiling=True,
                                    options=BootstrapOptions(stimulus_indices=stim))
    for j, data in enumerate((it, hit)):
        evaluations, ceilings = rsatoolbox_bootstrap(models, data, method, "stimuli", stim, ceiling=j == 1,
                                                     monkeypatch=monkeypatch)
        np.testing.assert_allclose(ours.samples[:, :, j], evaluations, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ours.ceiling[:, 1, :], ceilings, rtol=0, atol=1e-10)
    assert np.isnan(ours.ceiling[:, 0]).all()  # one RDM: no ceiling


def test_observed_is_what_compare_reports():
    it, hit = real_rdms()
    models = model_like(it[0], 3, seed=3)
    res = bootstrap_similarity(models, {"hIT": hit}, n_samples=2, seed=0)
    expected = compare_vectors(vectors(models), vectors(hit), "spearman").mean(axis=1)
    np.testing.assert_allclose(res.observed[:, 0], expected, rtol=0, atol=1e-15)


def test_weighted_ranks_equal_scipy_ranks_of_the_expanded_sample():
    rng = np.random.default_rng(0)
    x = np.round(rng.random((3, 28)) * 5)  # many ties
    stim = bootstrap_stimuli(8, 5, rng)
    w = pair_weights(stim, 8)
    ranks = weighted_ranks(x, w, sort_order(x))
    ranks_3d = weighted_ranks(np.broadcast_to(x, (5, 3, 28)).copy(), w)
    for b in range(5):
        keep = w[b] > 0
        for k in range(3):
            expanded = np.repeat(x[k][keep], w[b][keep].astype(int))
            got = np.repeat(ranks[b, k][keep], w[b][keep].astype(int))
            np.testing.assert_array_equal(got, stats.rankdata(expanded))
            np.testing.assert_array_equal(ranks_3d[b, k][keep], ranks[b, k][keep])


def test_pair_weights_drop_the_pairs_of_a_stimulus_with_its_copy():
    w = pair_weights(np.array([[0, 0, 1, 2, 2, 2]]), 4)
    # pairs in triu order: (0,1) (0,2) (0,3) (1,2) (1,3) (2,3); counts c = [2, 1, 3, 0]
    np.testing.assert_array_equal(w[0], [2, 6, 0, 3, 0, 0])
    assert w.sum() == 6 * 5 / 2 - (1 + 3)  # all pairs of the 6 drawn minus the copies' own pairs


def test_same_seed_is_bit_identical_and_another_seed_differs():
    it, hit = real_rdms(30)
    models = model_like(it[0], 2, seed=4)
    a = bootstrap_similarity(models, {"hIT": hit}, n_samples=50, over="both", seed=7)
    b = bootstrap_similarity(models, {"hIT": hit}, n_samples=50, over="both", seed=7)
    c = bootstrap_similarity(models, {"hIT": hit}, n_samples=50, over="both", seed=8)
    assert a.samples.tobytes() == b.samples.tobytes()
    assert np.array_equal(a.stimulus_indices, b.stimulus_indices)
    assert not np.array_equal(a.samples, c.samples)
    assert a.attrs()["bootstrap_seed"] == 7 and a.to_dataarray().attrs["bootstrap_over"] == "both"


def test_percentile_ci_is_numpy_quantile_and_framed_is_rsatoolbox_get_ci():
    from rsatoolbox.inference.result import Result
    from rsatoolbox.model import ModelFixed

    samples = np.random.default_rng(1).normal(size=(200, 3))
    low, high = percentile_ci(samples, 0.9)
    np.testing.assert_array_equal(low, np.quantile(samples, (1 - 0.9) / 2, axis=0))
    np.testing.assert_array_equal(high, np.quantile(samples, 1 - (1 - 0.9) / 2, axis=0))
    models = [ModelFixed(f"m{k}", np.ones(3)) for k in range(3)]
    ref = Result(models, samples, "spearman", "bootstrap", np.zeros((2, 200))).get_ci(0.9, test_type="bootstrap")
    framed = percentile_ci(samples, 0.9, framed=True)
    np.testing.assert_array_equal(framed[0], ref[0])
    np.testing.assert_array_equal(framed[1], ref[1])


def test_ci_covers_the_observed_value_and_shrinks_with_more_stimuli():
    it, hit = real_rdms()
    models = model_like(it[0], 1, seed=6, noise=(0.5,))
    wide = bootstrap_similarity(models[:, :30, :30], {"IT": it[:, :30, :30]}, n_samples=300, seed=1)
    narrow = bootstrap_similarity(models, {"IT": it}, n_samples=300, seed=1)
    for res in (wide, narrow):
        low, high = res.ci()
        assert low[0, 0] < res.observed[0, 0] < high[0, 0]
    assert np.diff(narrow.ci(), axis=0)[0, 0, 0] < np.diff(wide.ci(), axis=0)[0, 0, 0]


def test_dataarrays_are_matched_by_stimulus_id():
    it, hit = real_rdms(12)
    ids = [f"s{k}" for k in range(12)]
    models = model_like(it[0], 2, seed=3)
    model_da = xr.DataArray(models, dims=("layer", "stimulus_row", "stimulus_col"),
                            coords={"layer": ["a", "b"], "stimulus_row": ids, "stimulus_col": ids})
    order = np.random.default_rng(0).permutation(12)
    shuffled = xr.DataArray(hit[:, order][:, :, order], dims=("replicate", "stimulus_row", "stimulus_col"),
                            coords={"stimulus_row": [ids[i] for i in order], "stimulus_col": [ids[i] for i in order]})
    a = bootstrap_similarity(model_da, {"hIT": shuffled}, n_samples=5, seed=3)
    b = bootstrap_similarity(models, {"hIT": hit}, n_samples=5, seed=3)
    assert a.labels == ["a", "b"]
    np.testing.assert_allclose(a.samples, b.samples, rtol=0, atol=1e-12)


def test_bad_inputs_give_clear_errors():
    it, hit = real_rdms(10)
    models = model_like(it[0], 2, seed=0)
    with pytest.raises(RSABridgeError, match="NaN"):
        bad = hit.copy()
        bad[0, 1, 2] = np.nan
        bootstrap_similarity(models, {"hIT": bad}, n_samples=3, seed=0)
    with pytest.raises(RSABridgeError, match="constant"):
        bootstrap_similarity(np.ones((1, 10, 10)) - np.eye(10), {"hIT": hit}, n_samples=3, seed=0)
    with pytest.raises(RSABridgeError, match="at least 3"):
        bootstrap_similarity(models[:, :2, :2], {"hIT": hit[:, :2, :2]}, n_samples=3, seed=0)
    with pytest.raises(RSABridgeError, match="over must be"):
        bootstrap_similarity(models, {"hIT": hit}, n_samples=3, over="subjects")
    with pytest.raises(RSABridgeError, match="seed"):
        bootstrap_similarity(models, {"hIT": hit}, n_samples=3, seed=-1)
    with pytest.raises(RSABridgeError, match="bootstrap samples"):
        bootstrap_similarity(models, {"hIT": hit}, n_samples=0, seed=0)


def test_degenerate_samples_are_nan_with_a_warning():
    it, hit = real_rdms(6)
    models = model_like(it[0], 2, seed=0)
    stim = np.array([[0, 0, 0, 1, 1, 1], [0, 1, 2, 3, 4, 5]])  # the first has 2 distinct stimuli
    with pytest.warns(RuntimeWarning, match="NaN"):
        res = bootstrap_similarity(models, {"hIT": hit}, options=BootstrapOptions(stimulus_indices=stim))
    assert np.isnan(res.samples[0]).all() and np.isfinite(res.samples[1]).all()


@pytest.mark.parametrize("method", ["spearman", "rho_a"])
def test_fast_rank_path_equals_the_general_weighted_ranks_and_ignores_the_thread_count(method, monkeypatch):
    """The sorted-order, per-sample path for fixed RDMs (used by the bootstrap) against weighted_ranks."""
    from rsa_bridge.stats import weighted

    rng = np.random.default_rng(3)
    x = rng.random((4, 120))
    x[1] = np.round(x[1] * 4)  # ties
    x[2, :] = 1.0
    x[2, :15] = 0.0  # the pairs (0, j) come first: constant wherever stimulus 0 is absent
    stim = bootstrap_stimuli(16, 6, rng)
    stim[0] = np.r_[np.zeros(8, dtype=int), np.arange(8, 16)]  # stimulus 0 drawn 8 times
    stim[1] = np.r_[np.arange(1, 16), 1]  # stimulus 0 missing: row 2 is constant in this sample
    w = pair_weights(stim, 16)
    general = weighted.PREPARE[method](x, w, sort_order(x))
    monkeypatch.setattr(weighted, "THREADS", 1)
    one = weighted.prepare(method, x, w)
    monkeypatch.setattr(weighted, "THREADS", 3)
    monkeypatch.setattr(weighted, "THREAD_MIN_VALUES", 0)
    three = weighted.prepare(method, x, w)
    np.testing.assert_allclose(one, general, rtol=0, atol=1e-14)
    assert np.isnan(one[1, 2]).all() and np.isnan(general[1, 2]).all() and np.isfinite(one[0]).all()
    assert one.tobytes() == three.tobytes()


def test_rdm_bootstrap_of_a_single_rdm_area_is_nan_with_a_warning_not_a_zero_width_interval():
    it, hit = real_rdms(20)
    models = model_like(it[0], 2, seed=1)
    with pytest.warns(RuntimeWarning, match="single RDM"):
        res = bootstrap_similarity(models, {"IT": it, "hIT": hit}, n_samples=20, over="rdms", seed=0)
    assert np.isnan(res.samples[:, :, 0]).all() and np.isfinite(res.samples[:, :, 1]).all()
    low, high = res.ci()
    assert np.isnan(low[:, 0]).all() and (high[:, 1] > low[:, 1]).all()
    with pytest.warns(RuntimeWarning, match="no noise ceiling for area"):
        res = bootstrap_similarity(models, {"IT": it, "hIT": hit}, n_samples=5, seed=0, ceiling=True)
    assert np.isnan(res.ceiling[:, 0]).all() and np.isfinite(res.ceiling[:, 1]).all()
