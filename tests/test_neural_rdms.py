"""Rates -> RDMs: repeat-averaged metrics, cross-validated distances (all folds), unequal repeats, missing data."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.neural import schema as S
from rsa_bridge.neural.importers import from_array
from rsa_bridge.neural.rdms import rates_to_rdm, rates_to_rdm_dataset, repeat_average
from rsa_bridge.neural.rsatoolbox_io import to_rsatoolbox_dataset
from rsa_bridge.neural.schema import RatesOptions

# rsatoolbox's _build_rdms casts a NaN fill value to int internally; not ours
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")


def hand_case():
    """1 neuron, 3 stimuli (A, B, C), 2 repetitions: A = [1, 3], B = [2, 2], C = [4, 1]."""
    array = np.array([[[1.0, 3.0], [2.0, 2.0], [4.0, 1.0]]])
    return from_array(array, stimulus_ids=["A", "B", "C"], region="V1", units="spike count")


def test_cross_validated_squared_euclidean_by_hand():
    # fold 0 trains on repetition 1 (a = 3, 2, 1) and tests repetition 0 (b = 1, 2, 4); fold 1 the reverse.
    # d_AB = mean[(3-2)(1-2), (1-2)(3-2)] = -1; d_AC = mean[(3-1)(1-4), (1-4)(3-1)] = -6; d_BC = mean[-2, -2] = -2
    rdm = rates_to_rdm(hand_case(), "sqeuclidean_cv")
    np.testing.assert_allclose(rdm.values, [[0, -1, -6], [-1, 0, -2], [-6, -2, 0]], atol=1e-12)
    assert rdm.attrs["n_folds"] == 2 and "all folds" in rdm.attrs["cross_validation"]


def test_cross_validated_poisson_kl_by_hand_averages_all_folds():
    # prior_weight 0 leaves counts unchanged: d = (a_i - a_j)(log b_i - log b_j), averaged over both folds.
    # AB: fold 0 (3-2)(log 1 - log 2) = -log 2, fold 1 (1-2)(log 3 - log 2) = -log 1.5 -> -log(3) / 2
    # AC: fold 0 (3-1)(log 1 - log 4) = -2 log 4, fold 1 (1-4)(log 3 - log 1) = -3 log 3
    # BC: fold 0 (2-1)(log 2 - log 4) = -log 2, fold 1 (2-4)(log 2 - log 1) = -2 log 2
    rdm = rates_to_rdm(hand_case(), "poisson_kl_cv", prior_weight=0.0)
    expected = {("A", "B"): -np.log(3) / 2, ("A", "C"): -(2 * np.log(4) + 3 * np.log(3)) / 2,
                ("B", "C"): -1.5 * np.log(2)}
    for (i, j), value in expected.items():
        assert rdm.sel(stimulus_row=i, stimulus_col=j).item() == pytest.approx(value, abs=1e-12)
    # rsatoolbox's poisson_cv returns only its last fold: -log 1.5 for AB, which is not the average
    from rsatoolbox.rdm import calc_rdm

    last = calc_rdm(to_rsatoolbox_dataset(hand_case()), method="poisson_cv", descriptor="stimulus_id",
                    cv_descriptor="repetition", prior_weight=0.0).get_matrices()[0]
    assert last[0, 1] == pytest.approx(-np.log(1.5)) and rdm.values[0, 1] != pytest.approx(last[0, 1])


def balanced(rng, n_stim=7, n_neur=5, n_rep=4):
    means = rng.gamma(2.0, 2.0, size=(n_neur, n_stim, 1))
    return from_array(rng.poisson(np.broadcast_to(means, (n_neur, n_stim, n_rep))).astype(float),
                      stimulus_ids=[f"s{k}" for k in range(n_stim)], region="V4", units="spike count")


def test_crossnobis_equals_rsatoolbox_balanced(rng):
    from rsatoolbox.rdm import calc_rdm

    rates = balanced(rng)
    ours = rates_to_rdm(rates, "crossnobis")
    theirs = calc_rdm(to_rsatoolbox_dataset(rates), method="crossnobis", descriptor="stimulus_id",
                      cv_descriptor="repetition").get_matrices()[0]
    np.testing.assert_allclose(ours.values, theirs, atol=1e-12)
    np.testing.assert_allclose(rates_to_rdm(rates, "sqeuclidean_cv").values, theirs * 5, atol=1e-10)


def test_poisson_kl_cv_is_the_mean_of_rsatoolbox_folds(rng):
    """Relabel folds so each one in turn is rsatoolbox's last fold; our value is the mean of all of them."""
    from rsatoolbox.rdm import calc_rdm

    rates = balanced(rng)
    n_rep = 4
    per_fold = []
    for k in range(n_rep):
        ds = to_rsatoolbox_dataset(rates)
        ds.obs_descriptors["fold"] = (np.asarray(ds.obs_descriptors["repetition"]) - k - 1) % n_rep
        per_fold.append(calc_rdm(ds, method="poisson_cv", descriptor="stimulus_id", cv_descriptor="fold")
                        .get_matrices()[0])
    np.testing.assert_allclose(rates_to_rdm(rates, "poisson_kl_cv").values, np.mean(per_fold, axis=0), atol=1e-12)
    assert np.abs(per_fold[-1] - np.mean(per_fold, axis=0)).max() > 1e-3


def brute_cv(rates, feature_transform=lambda x: x):
    """Independent loop: per pair, folds = shared repetition ranks, per feature only observed folds."""
    values = np.asarray(rates.values, dtype=float)
    stim = np.asarray([str(s) for s in rates[S.STIMULUS_ID].values])
    reps = np.asarray(rates[S.REPETITION].values)
    ids = list(dict.fromkeys(stim))
    groups = {s: values[np.flatnonzero(stim == s)[np.argsort(reps[stim == s])]] for s in ids}
    out = np.zeros((len(ids), len(ids)))
    for i, si in enumerate(ids):
        for j, sj in enumerate(ids):
            if i == j:
                continue
            total = 0.0
            for f in range(values.shape[1]):
                terms = []
                for k in range(min(len(groups[si]), len(groups[sj]))):
                    xi, xj = groups[si][:, f], groups[sj][:, f]
                    if np.isnan(xi[k]) or np.isnan(xj[k]):
                        continue
                    ai = np.nanmean(np.delete(xi, k))
                    aj = np.nanmean(np.delete(xj, k))
                    terms.append((ai - aj) * (xi[k] - xj[k]))
                total += np.mean(terms)
            out[i, j] = total
    return out


def test_unequal_repetitions_match_brute_force(rng):
    array = rng.poisson(3.0, size=(3, 5, 6)).astype(float)
    for j, r in enumerate([2, 6, 3, 4, 5]):
        array[:, j, r:] = np.nan
    rates = from_array(array, stimulus_ids="s{i}", region="V4")
    np.testing.assert_allclose(rates_to_rdm(rates, "sqeuclidean_cv").values, brute_cv(rates), atol=1e-10)


def test_missing_observations_match_brute_force(rng):
    array = rng.poisson(3.0, size=(3, 5, 6)).astype(float)
    array[0, :, 4:] = np.nan  # neuroid 0 lost for the last two repetitions
    array[2, 1, 0] = np.nan
    rates = from_array(array, stimulus_ids="s{i}", region="V4", options=RatesOptions(allow_missing=True))
    np.testing.assert_allclose(rates_to_rdm(rates, "sqeuclidean_cv").values, brute_cv(rates), atol=1e-10)
    mean, _ = repeat_average(rates)
    np.testing.assert_allclose(mean, np.nanmean(array, axis=2).T)
    np.testing.assert_allclose(rates_to_rdm(rates, "correlation").values,
                               squareform(pdist(np.nanmean(array, axis=2).T, "correlation")), atol=1e-12)


def test_cross_validation_removes_the_noise_bias(rng):
    """Two stimuli with the same true rates: averaged distance is biased up, the cross-validated one is not."""
    true = rng.gamma(2.0, 2.0, size=(40, 4, 1))
    true[:, 1] = true[:, 0]
    cv, plain = [], []
    for seed in range(20):
        counts = np.random.default_rng(seed).poisson(np.broadcast_to(true, (40, 4, 6))).astype(float)
        rates = from_array(counts, stimulus_ids="s{i}", region="V4")
        cv.append(rates_to_rdm(rates, "sqeuclidean_cv").values[0, 1])
        plain.append(rates_to_rdm(rates, "sqeuclidean").values[0, 1])
    expected_bias = 2 * true[:, 0, 0].sum() / 6  # Poisson variance = mean, averaged over 6 repeats, 2 stimuli
    assert abs(np.mean(cv)) < 4 * np.std(cv) / np.sqrt(20)
    assert np.mean(plain) == pytest.approx(expected_bias, rel=0.2)


def test_repeat_averaged_metrics_equal_scipy(rng):
    rates = balanced(rng)
    mean = np.asarray(rates.values).reshape(7, 4, 5).mean(axis=1)
    for metric in ("correlation", "euclidean", "sqeuclidean", "cosine"):
        np.testing.assert_allclose(rates_to_rdm(rates, metric).values, squareform(pdist(mean, metric)), atol=1e-10)


def test_reliable_neuroid_selection_is_recorded(rng):
    n_stim, n_rep = 20, 6
    signal = rng.gamma(2.0, 3.0, size=(3, n_stim, 1))
    good = rng.poisson(np.broadcast_to(signal, (3, n_stim, n_rep)))
    noise = rng.poisson(3.0, size=(2, n_stim, n_rep))  # no stimulus signal
    rates = from_array(np.concatenate([good, noise]).astype(float), stimulus_ids="s{i}", region="IT")
    rdm = rates_to_rdm(rates, "correlation", reliability_threshold=0.5, n_splits=20, seed=3)
    assert rdm.attrs["n_neuroids_selected"] == 3 and rdm.attrs["n_neuroids_total"] == 5
    assert rdm.attrs["excluded_neuroids"] == "IT_n003,IT_n004" and rdm.attrs["selection_seed"] == 3
    assert "split-half reliability >= 0.5" in rdm.attrs["neuroid_selection"]
    with pytest.raises(RSABridgeError, match="no neuroid reaches"):
        rates_to_rdm(rates, reliability_threshold=1.01, n_splits=5)


def test_rdm_dataset_per_session_and_errors(rng):
    a = from_array(rng.poisson(3.0, size=(3, 6, 4)).astype(float), stimulus_ids="s{i}", region="V4", session="d1")
    b = from_array(rng.poisson(3.0, size=(4, 6, 4)).astype(float), stimulus_ids="s{i}", region="V4", session="d2",
                   neuroid_ids="d2_{i}")
    both = S.make_rates(np.concatenate([a.values, b.values], axis=1), stimulus_ids=a[S.STIMULUS_ID].values,
                        repetitions=a[S.REPETITION].values,
                        neuroid_ids=[*a[S.NEUROID_ID].values, *b[S.NEUROID_ID].values], region="V4",
                        session=["d1"] * 3 + ["d2"] * 4)
    ds = rates_to_rdm_dataset(both, "crossnobis", by="session")
    assert ds["V4"].dims == ("session", "stimulus_row", "stimulus_col")
    np.testing.assert_allclose(ds["V4"].sel(session="d2").values, rates_to_rdm(b, "crossnobis").values)
    with pytest.raises(RSABridgeError, match="unknown RDM metric"):
        rates_to_rdm(a, "manhattan")
    with pytest.raises(RSABridgeError, match="no neuroids in region 'IT'"):
        rates_to_rdm(a, region="IT")
    one_rep = from_array(rng.poisson(3.0, size=(3, 6)).astype(float), layout="neuroid,stimulus",
                         stimulus_ids="s{i}", region="V4")
    with pytest.raises(RSABridgeError, match="at least 2 repetitions"):
        rates_to_rdm(one_rep, "crossnobis")
    with pytest.raises(RSABridgeError, match="non-negative"):
        rates_to_rdm(S.make_rates(-np.abs(a.values) - 1, stimulus_ids=a[S.STIMULUS_ID].values,
                                  repetitions=a[S.REPETITION].values, neuroid_ids=["x", "y", "z"], region="V4"),
                     "poisson_kl_cv")


def test_time_bins_flatten_or_mean(rng):
    values = rng.normal(size=(12, 3, 2))
    rates = S.make_rates(values, stimulus_ids=np.repeat([f"s{k}" for k in range(4)], 3), repetitions=[0, 1, 2] * 4,
                         neuroid_ids=["a", "b", "c"], region="V1",
                         options=S.RatesOptions(time_bins=[(0, 50), (50, 100)]))
    mean = values.reshape(4, 3, 3, 2).mean(axis=1)
    np.testing.assert_allclose(rates_to_rdm(rates, "euclidean").values,
                               squareform(pdist(mean.reshape(4, 6), "euclidean")), atol=1e-12)
    np.testing.assert_allclose(rates_to_rdm(rates, "euclidean", time="mean").values,
                               squareform(pdist(mean.mean(axis=2), "euclidean")), atol=1e-12)
