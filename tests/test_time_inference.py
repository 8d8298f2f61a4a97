"""Cluster permutation over time bins (against MNE and a scipy hand loop), per-bin ceilings, cross-temporal RSA."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import ndimage
from scipy.stats import rankdata, spearmanr
from scipy.stats import t as t_dist

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.stats.clusters import (
    ClusterOptions,
    cluster_labels,
    max_cluster_mass,
    permutation_cluster_test,
    sign_flip_cluster_test,
)
from rsa_bridge.stats.time_inference import TimeInferenceOptions, time_inference

N, T, S = 12, 10, 6


def _rdm(x):
    d = 1.0 - np.corrcoef(x)
    np.fill_diagonal(d, 0.0)
    return d


@pytest.fixture(scope="module")
def timed():
    """6 subjects x 10 bins of RDMs of 12 stimuli; the model's structure peaks in bins 4-6."""
    rng = np.random.default_rng(5)
    z = rng.normal(size=(N, 4))
    gain = np.exp(-((np.arange(T) - 5.0) ** 2) / 3.0)
    rdms = np.stack([[_rdm(2 * gain[t] * z @ rng.normal(size=(4, 20)) + rng.normal(size=(N, 20))) for t in range(T)]
                     for _ in range(S)])
    ids = [f"s{k:02d}" for k in range(N)]
    ds = xr.Dataset({"IT": (("subject", "time_bin", "stimulus_row", "stimulus_col"), rdms)},
                    coords={"subject": [f"S{k}" for k in range(S)], "time_bin": np.arange(T),
                            "time_bin_center": ("time_bin", 10.0 * np.arange(T) + 5), "stimulus_row": ids,
                            "stimulus_col": ids})
    model = xr.DataArray(_rdm(z)[None], dims=("model_layer", "stimulus_row", "stimulus_col"),
                         coords={"model_layer": ["features"], "stimulus_row": ids, "stimulus_col": ids})
    return ds, model


def _mne_orders(n):
    from mne.stats.cluster_level import bin_perm_rep
    return 2.0 * bin_perm_rep(n)[1:] - 1.0  # MNE's exact orders: all but the all-negative flip


def test_cluster_labels_and_max_mass_by_hand():
    above = np.array([[True, True, False, True, False], [False] * 5])
    stat = np.array([[1.0, 2.0, 0.0, 5.0, 0.0], [1.0] * 5])
    assert cluster_labels(above).tolist() == [[1, 1, 0, 2, 0], [0] * 5]
    assert max_cluster_mass(stat, above).tolist() == [5.0, 0.0]


@pytest.mark.parametrize("p", [0.05, 0.01])
def test_sign_flip_equals_mne_on_the_same_flips(p):
    mne_stats = pytest.importorskip("mne.stats")
    rng = np.random.default_rng(1)
    n = 7
    x = rng.normal(size=(n, 30)) + np.r_[np.zeros(10), np.full(8, 1.2), np.zeros(12)]
    threshold = t_dist.ppf(1 - p, n - 1)
    t_obs, clusters, pv, h0 = mne_stats.permutation_cluster_1samp_test(
        x, threshold=threshold, tail=1, n_permutations=2 ** n, out_type="indices", verbose=False)
    res = sign_flip_cluster_test(x, ClusterOptions(threshold_p=p), signs=_mne_orders(n))
    np.testing.assert_allclose(res.statistic, t_obs, atol=1e-12)
    np.testing.assert_allclose(np.sort(res.null_max), np.sort(h0), atol=1e-10)  # the same null, member by member
    mine = [np.flatnonzero(res.labels == k + 1).tolist() for k in range(res.masses.size)]
    assert mine == [c[0].tolist() for c in clusters]
    # MNE's flips hold the identity, whose mass ties the observed maximum up to rounding; counted as a tie here:
    tie_rule = [np.mean(h0 >= m - 1e-9 * max(1, abs(m))) for m in res.masses]
    np.testing.assert_allclose(res.p_values, tie_rule, atol=1e-12)
    assert np.all(np.abs(res.p_values - pv) <= 1.0 / h0.size + 1e-12)


def test_random_sign_flips_agree_with_mne_within_monte_carlo_error():
    mne_stats = pytest.importorskip("mne.stats")
    rng = np.random.default_rng(2)
    n, n_perm = 12, 2000  # 2^12 > 2000: random flips on both sides
    x = rng.normal(size=(n, 20)) + np.r_[np.zeros(5), np.full(4, 0.9), np.zeros(5), np.full(3, 0.6), np.zeros(3)]
    thr = t_dist.ppf(0.95, n - 1)
    _, _, pv, _ = mne_stats.permutation_cluster_1samp_test(x, threshold=thr, tail=1, n_permutations=n_perm,
                                                           out_type="mask", verbose=False, seed=0)
    res = sign_flip_cluster_test(x, ClusterOptions(0.05, n_perm, seed=0))
    assert "random" in res.scheme and res.p_values.size == pv.size
    se = np.sqrt(np.maximum(pv * (1 - pv), 1e-4) / n_perm)
    assert np.all(np.abs(res.p_values - pv) <= 4 * se * np.sqrt(2) + 2 / n_perm)  # two independent MC estimates


def test_exact_sign_flip_enumerates_all_vectors():
    x = np.array([[0.1, 0.5, 0.6, 0.0], [0.2, 0.4, 0.7, -0.1], [0.0, 0.6, 0.5, 0.1]])
    res = sign_flip_cluster_test(x, ClusterOptions(threshold_p=0.05))
    assert res.null_max.size == 8 and "exact" in res.scheme
    assert res.p_values.tolist() == [0.125]


def test_stimulus_permutation_equals_a_scipy_hand_loop(timed):
    ds, model = timed
    rng = np.random.default_rng(9)
    perms = np.stack([rng.permutation(N) for _ in range(40)])
    iu = np.triu_indices(N, 1)
    vecs = ds["IT"].values[:, :, iu[0], iu[1]]  # (S, T, m)
    res = permutation_cluster_test(model.values[0][iu], vecs, N, "spearman", ClusterOptions(0.1), perms=perms)

    def course(m):
        return np.array([np.mean([spearmanr(m, vecs[s, t])[0] for s in range(S)]) for t in range(T)])

    obs = course(model.values[0][iu])
    null = np.stack([course(model.values[0][np.ix_(p, p)][iu]) for p in perms])
    thr = np.quantile(null, 0.9, axis=0)

    def max_mass(c):
        lab, k = ndimage.label(c > thr)
        return max([c[lab == j].sum() for j in range(1, k + 1)], default=0.0)

    np.testing.assert_allclose(res.statistic, obs, atol=1e-12)
    np.testing.assert_allclose(res.threshold, thr, atol=1e-12)
    lab, k = ndimage.label(obs > thr)
    masses = [obs[lab == j].sum() for j in range(1, k + 1)]
    h0 = np.array([max_mass(obs)] + [max_mass(c) for c in null])
    np.testing.assert_allclose(res.masses, masses, atol=1e-12)
    np.testing.assert_allclose(res.p_values, [np.mean(h0 >= m - 1e-9) for m in masses], atol=1e-12)


def test_time_inference_sign_flip_ceiling_and_cross_temporal(timed):
    ds, model = timed
    out = time_inference(model, ds, None, "spearman",
                         TimeInferenceOptions(cluster=ClusterOptions(0.05, 100, seed=0), cross_temporal=True))
    assert out.attrs["cluster_test_IT"] == "sign-flip over subjects (exact, all 2^6)"
    iu = np.triu_indices(N, 1)
    vecs = ds["IT"].values[:, :, iu[0], iu[1]]
    per_subject = np.array([[spearmanr(model.values[0][iu], vecs[s, t])[0] for t in range(T)] for s in range(S)])
    ref = sign_flip_cluster_test(per_subject, ClusterOptions(0.05, 100, seed=0))
    np.testing.assert_allclose(out["cluster_p"].values[0, 0], ref.bin_p(), atol=1e-12, equal_nan=True)
    assert np.isfinite(out["cluster_p"].values[0, 0, 4:7]).all() and out["cluster_p"].values[0, 0, 4] < 0.05
    # Nili bounds per bin by hand (mean-of-ranks pool, leave one subject out)
    ranks = np.apply_along_axis(rankdata, -1, vecs)
    for t in (0, 5):
        lower = np.mean([spearmanr(np.delete(ranks[:, t], s, 0).mean(0), vecs[s, t])[0] for s in range(S)])
        upper = np.mean([spearmanr(ranks[:, t].mean(0), vecs[s, t])[0] for s in range(S)])
        assert float(out["ceiling_time_lower"][0, t]) == pytest.approx(lower, abs=1e-12)
        assert float(out["ceiling_time_upper"][0, t]) == pytest.approx(upper, abs=1e-12)
    # cross-temporal: mean over pairs of different subjects
    for t1, t2 in ((2, 5), (5, 5), (6, 4)):
        want = np.mean([spearmanr(vecs[u, t1], vecs[v, t2])[0] for u in range(S) for v in range(S) if u != v])
        assert float(out["cross_temporal"][0, t1, t2]) == pytest.approx(want, abs=1e-12)


def test_one_rdm_per_bin_uses_stimulus_permutation_and_cross_temporal_within(timed):
    ds, model = timed
    one = ds.isel(subject=0)
    out = time_inference(model, one, ["IT"], "spearman",
                         TimeInferenceOptions(cluster=ClusterOptions(0.05, 50, seed=1), cross_temporal=True))
    assert out.attrs["cluster_test_IT"].startswith("stimulus-label permutation")
    assert np.isnan(out["ceiling_time_lower"].values).all()
    np.testing.assert_allclose(np.diag(out["cross_temporal"].values[0]), 1.0)
    assert out.attrs["cross_temporal_IT"].startswith("within the single RDM")


@pytest.mark.parametrize("make, options, message", [
    (lambda ds: ds.isel(subject=0), TimeInferenceOptions(cluster=ClusterOptions(), test="sign-flip"),
     "at least 2 subjects"),
    (lambda ds: ds.isel(time_bin=[0, 1]), TimeInferenceOptions(cluster=ClusterOptions()), "at least 3"),
    (lambda ds: ds.assign(IT=ds["IT"].where(ds["time_bin"] != 3)), TimeInferenceOptions(cluster=ClusterOptions()),
     r"time bin\(s\) \[3\] hold NaN"),
    (lambda ds: ds.assign(IT=ds["IT"].where(ds["time_bin"] != 2, 1.0 - np.eye(N))),
     TimeInferenceOptions(cluster=ClusterOptions()), r"time bin\(s\) \[2\] is constant"),
    (lambda ds: ds.drop_dims("time_bin").assign(IT=ds["IT"].isel(time_bin=0, drop=True)),
     TimeInferenceOptions(cluster=ClusterOptions()), "time_bin"),
])
def test_hostile_time_inputs_are_refused(timed, make, options, message):
    ds, model = timed
    with pytest.raises(RSABridgeError, match=message):
        time_inference(model, make(ds), None, "spearman", options)


@pytest.mark.parametrize("kwargs, message", [({"threshold_p": 0.7}, "between 0 and 0.5"),
                                             ({"threshold_p": 0.0}, "between 0 and 0.5"),
                                             ({"n_permutations": 0}, "permutations >= 1"),
                                             ({"seed": -1}, "seed")])
def test_bad_cluster_options_are_refused(kwargs, message):
    with pytest.raises(RSABridgeError, match=message):
        ClusterOptions(**kwargs)


def test_constant_units_make_t_undefined():
    with pytest.raises(RSABridgeError, match="do not vary"):
        sign_flip_cluster_test(np.ones((4, 5)), ClusterOptions())


def test_planted_latency_cluster_covers_the_peak():
    from rsa_bridge.neural.synthetic_time import LatencyDesign, planted_latency_rates
    from rsa_bridge.neural.time_resolved import time_resolved_dataset

    rates, model = planted_latency_rates({"IT": 135.0}, seed=0, design=LatencyDesign(n_stimuli=16, n_neuroids=20))
    ds = time_resolved_dataset(rates)
    out = time_inference(model.expand_dims(model_layer=["features"]), ds, ["IT"], "spearman",
                         TimeInferenceOptions(cluster=ClusterOptions(0.05, 200, seed=0)))
    centers = ds["time_bin_center"].values
    inside = out["cluster_p"].values[0, 0] < 0.05
    assert inside[np.flatnonzero(centers == 135.0)[0]]
    assert not inside[centers < 60].any() and not inside[centers > 240].any()
