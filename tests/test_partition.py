"""Variance partitioning equals scikit-learn's LinearRegression().score on every subset and the
inclusion-exclusion sums written out by hand (Net2Brain's VPA formulas for 2, 3 and 4 predictors)."""
from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform
from scipy.stats import rankdata
from sklearn.linear_model import LinearRegression

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.fitting.partition import PartitionOptions, partition_variance

N = 18


def rdms(p, seed=0):
    rng = np.random.default_rng(seed)
    feats = rng.normal(size=(p, N, 3))
    preds = np.stack([squareform(pdist(f)) for f in feats])
    brain = squareform(pdist(np.concatenate(list(feats[:2]) + [rng.normal(size=(N, 3))], 1)))
    return brain, preds


def sk_r2(y, X, subset):
    A = X[list(subset)].T
    return LinearRegression().fit(A, y).score(A, y)


def hand_components(R, p):
    """Net2Brain-style explicit sums (keys: tuples of 1-based predictor numbers)."""
    if p == 2:
        y12 = R[1] + R[2] - R[1, 2]
        return {(1,): R[1] - y12, (2,): R[2] - y12, (1, 2): y12}
    if p == 3:
        y123 = R[1] + R[2] + R[3] - R[1, 2] - R[1, 3] - R[2, 3] + R[1, 2, 3]
        y12 = R[1] + R[2] - R[1, 2] - y123
        y13 = R[1] + R[3] - R[1, 3] - y123
        y23 = R[2] + R[3] - R[2, 3] - y123
        return {(1,): R[1] - y12 - y13 - y123, (2,): R[2] - y12 - y23 - y123, (3,): R[3] - y13 - y23 - y123,
                (1, 2): y12, (1, 3): y13, (2, 3): y23, (1, 2, 3): y123}
    y1234 = (R[1] + R[2] + R[3] + R[4] - R[1, 2] - R[1, 3] - R[1, 4] - R[2, 3] - R[2, 4] - R[3, 4]
             + R[1, 2, 3] + R[1, 3, 4] + R[1, 2, 4] + R[2, 3, 4] - R[1, 2, 3, 4])
    out = {(1, 2, 3, 4): y1234}
    for t in combinations(range(1, 5), 3):
        out[t] = sum(R[i] for i in t) - sum(R[a, b] for a, b in combinations(t, 2)) + R[t] - y1234
    for a, b in combinations(range(1, 5), 2):
        out[a, b] = R[a] + R[b] - R[a, b] - sum(out[t] for t in out if len(t) == 3 and {a, b} <= set(t)) - y1234
    for i in range(1, 5):
        out[(i,)] = R[i] - sum(v for t, v in out.items() if len(t) >= 2 and i in t)
    return out


@pytest.mark.parametrize("p", [2, 3, 4])
@pytest.mark.parametrize("transform", ["none", "ranks"])
def test_equals_sklearn_and_inclusion_exclusion(p, transform):
    brain, preds = rdms(p)
    names = [f"m{i}" for i in range(1, p + 1)]
    ds = partition_variance(brain, preds, names, PartitionOptions(transform=transform))
    iu = np.triu_indices(N, 1)
    y, X = brain[iu], preds[:, iu[0], iu[1]]
    if transform == "ranks":
        y, X = rankdata(y), np.stack([rankdata(x) for x in X])
    R = {}
    for k in range(1, p + 1):
        for s in combinations(range(p), k):
            key = tuple(i + 1 for i in s)
            R[key if len(key) > 1 else key[0]] = sk_r2(y, X, s)
            assert ds["r2"].sel(subset="+".join(names[i] for i in s)) == pytest.approx(sk_r2(y, X, s), abs=1e-10)
    hand = hand_components({(k if isinstance(k, int) else tuple(k)): v for k, v in R.items()}, p)
    for key, value in hand.items():
        lab = f"unique:m{key[0]}" if len(key) == 1 else "shared:" + "&".join(f"m{i}" for i in key)
        assert float(ds["component"].sel(component_name=lab)) == pytest.approx(value, abs=1e-10)
    full = tuple(range(p))
    assert float(ds["component"].sel(component_name="total")) == pytest.approx(sk_r2(y, X, full), abs=1e-10)
    assert ds.attrs["measure"] == "r2_ols_intercept"


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    brain, preds = rdms(2)
    a = partition_variance(brain, preds, ["a", "b"], PartitionOptions(n_boot=40, seed=3))
    b = partition_variance(brain, preds, ["a", "b"], PartitionOptions(n_boot=40, seed=3))
    c = partition_variance(brain, preds, ["a", "b"], PartitionOptions(n_boot=40, seed=4))
    np.testing.assert_array_equal(a["draws"], b["draws"])
    assert not np.array_equal(a["draws"], c["draws"])
    assert (a["ci_low"] <= a["ci_high"]).all()
    # one draw by hand: the pairs of distinct drawn stimuli, sklearn's R^2 of both predictors
    pos = np.sort(np.random.default_rng(3).integers(0, N, N))
    i, j = np.triu_indices(N, 1)
    keep = pos[i] != pos[j]
    pa, pb = pos[i][keep], pos[j][keep]
    total = sk_r2(brain[pa, pb], preds[:, pa, pb], (0, 1))
    assert float(a["draws"][0, -1]) == pytest.approx(total, abs=1e-10)


@pytest.mark.parametrize("case, match", [
    ("five", "2 to 4 predictor"), ("one", "2 to 4 predictor"), ("nan", "NaN"), ("constant", "constant"),
    ("names", "repeat"),
])
def test_hostile_rows(case, match):
    brain, preds = rdms(4)
    names = ["a", "b", "c", "d"]
    if case == "five":
        preds, names = np.concatenate([preds, preds[:1] * 2]), names + ["e"]
    elif case == "one":
        preds, names = preds[:1], names[:1]
    elif case == "nan":
        brain = brain.copy()
        brain[0, 1] = brain[1, 0] = np.nan
    elif case == "constant":
        preds = preds.copy()
        preds[1] = 1 - np.eye(N)
    elif case == "names":
        names = ["a", "a", "c", "d"]
    with pytest.raises(RSABridgeError, match=match):
        partition_variance(brain, preds, names)
