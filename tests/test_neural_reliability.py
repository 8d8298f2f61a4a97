"""Split-half reliability of neuroids and RDMs, checked against an independent scipy/pandas computation."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import pdist

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.neural import schema as S
from rsa_bridge.neural.importers import from_array
from rsa_bridge.neural.rdms import grouped
from rsa_bridge.neural.reliability import (neuroid_reliability, rdm_reliability, spearman_brown, split_halves)


@pytest.fixture
def rates(rng):
    n_stim, n_rep = 15, 7
    signal = rng.gamma(2.0, 2.0, size=(6, n_stim, 1)) * np.array([1, 1, 1, 1, 0, 0])[:, None, None] + 2.0
    array = rng.poisson(np.broadcast_to(signal, (6, n_stim, n_rep))).astype(float)
    for j in range(0, n_stim, 3):
        array[:, j, 5:] = np.nan  # unequal repetitions: 5 or 7
    return from_array(array, stimulus_ids="s{i:02d}", region="V4")


def test_split_halves_are_balanced_and_seeded(rates):
    _, codes, _, _ = grouped(rates)
    halves = split_halves(codes, 30, seed=4)
    counts = np.bincount(codes)
    for half in halves:
        for side in (0, 1):
            assert (np.bincount(codes[half == side], minlength=counts.size) == counts // 2).all()
        assert (np.bincount(codes[half == -1], minlength=counts.size) == counts % 2).all()
    np.testing.assert_array_equal(halves, split_halves(codes, 30, seed=4))
    assert not np.array_equal(halves, split_halves(codes, 30, seed=5))


def half_means(rates, mask):
    frame = pd.DataFrame(np.asarray(rates.values)[mask])
    frame["stim"] = np.asarray([str(s) for s in rates[S.STIMULUS_ID].values])[mask]
    return frame.groupby("stim", sort=True).mean().to_numpy()


def test_neuroid_reliability_equals_scipy_on_the_same_splits(rates):
    raw = neuroid_reliability(rates, n_splits=8, seed=1, return_splits=True)
    _, codes, _, _ = grouped(rates)
    for s, half in enumerate(split_halves(codes, 8, seed=1)):
        a, b = half_means(rates, half == 0), half_means(rates, half == 1)
        expected = [stats.pearsonr(a[:, f], b[:, f])[0] for f in range(a.shape[1])]
        np.testing.assert_allclose(raw.values[s], expected, atol=1e-12)
    corrected = neuroid_reliability(rates, n_splits=8, seed=1)
    np.testing.assert_allclose(corrected.values, np.mean(2 * raw.values / (1 + raw.values), axis=0))
    assert corrected.values[:4].min() > corrected.values[4:].max()  # signal neuroids beat pure-noise ones


def test_rdm_reliability_equals_scipy_on_the_same_splits(rates):
    rel = rdm_reliability(rates, "correlation", n_splits=6, seed=2)
    _, codes, _, _ = grouped(rates)
    for s, half in enumerate(split_halves(codes, 6, seed=2)):
        a = pdist(half_means(rates, half == 0), "correlation")
        b = pdist(half_means(rates, half == 1), "correlation")
        assert rel.raw[s] == pytest.approx(stats.spearmanr(a, b)[0], abs=1e-12)
    np.testing.assert_allclose(rel.corrected, spearman_brown(rel.raw))
    low, high = rel.interval
    assert low <= rel.mean <= high and rel.sd >= 0
    da = rel.to_dataarray()
    assert da.attrs["seed"] == 2 and da.attrs["n_splits"] == 6 and da.attrs["mean"] == pytest.approx(rel.mean)
    again = rdm_reliability(rates, "correlation", n_splits=6, seed=2)
    np.testing.assert_array_equal(again.raw, rel.raw)


def test_spearman_brown():
    assert spearman_brown(0.5) == pytest.approx(2 / 3)
    assert spearman_brown(0.25, factor=4) == pytest.approx(1 / 1.75)  # 4 * 0.25 / (1 + 3 * 0.25)


def test_reliability_bad_input(rng):
    single = from_array(rng.poisson(3.0, size=(3, 5)).astype(float), layout="neuroid,stimulus", stimulus_ids="s{i}",
                        region="V4")
    with pytest.raises(RSABridgeError, match="at least 2 repetitions"):
        neuroid_reliability(single, n_splits=2)
    with pytest.raises(RSABridgeError, match="n_splits"):
        rdm_reliability(single, n_splits=0)
