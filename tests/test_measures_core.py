"""CKA, dual ridge, dual PLS, folds, predictivity and ceilings against independent references."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
from scipy.spatial.distance import cdist
from scipy.stats import pearsonr
from sklearn.cross_decomposition import PLSRegression
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.model_selection import KFold, StratifiedKFold

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.measures import MEASURES, check_measures
from rsa_bridge.measures.ceilings import cka_ceiling, mean_responses, neuroid_ceiling
from rsa_bridge.measures.cka import cka, debiased_cka, linear_cka, rbf_cka
from rsa_bridge.measures.folds import make_folds
from rsa_bridge.measures.pls import pls_fold
from rsa_bridge.measures.predictivity import linear_predictivity
from rsa_bridge.measures.ridge import DEFAULT_ALPHAS, ridge_cv_fold, ridge_path
from rsa_bridge.stats.resample import as_generator, split_halves


def _features(seed=0, n=60, p=40, q=25):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p)) + 3.0
    y = np.tanh(x[:, :q] @ rng.normal(size=(q, q)) / 5) + 0.5 * rng.normal(size=(n, q))
    return x, y


# ---------------------------------------------------------------- CKA

def _feature_linear_cka(x, y):
    x, y = x - x.mean(0), y - y.mean(0)
    return np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


def _song_hsic(k, l):
    n = k.shape[0]
    k, l = k.copy(), l.copy()
    np.fill_diagonal(k, 0)
    np.fill_diagonal(l, 0)
    one = np.ones(n)
    return (np.trace(k @ l) + (one @ k @ one) * (one @ l @ one) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * one @ k @ l @ one) / (n * (n - 3))


@pytest.mark.parametrize("seed", [0, 1])
def test_linear_and_debiased_cka_equal_feature_space(seed):
    x, y = _features(seed)
    xc, yc = x - x.mean(0), y - y.mean(0)
    assert linear_cka(x @ x.T, y @ y.T) == pytest.approx(_feature_linear_cka(x, y), abs=1e-10)
    k, l = xc @ xc.T, yc @ yc.T
    ref = _song_hsic(k, l) / np.sqrt(_song_hsic(k, k) * _song_hsic(l, l))
    assert debiased_cka(x @ x.T, y @ y.T) == pytest.approx(ref, abs=1e-10)
    assert abs(debiased_cka(k, l) - linear_cka(k, l)) > 1e-4  # the two estimators really differ


def test_rbf_cka_equals_direct_kernel():
    x, y = _features(3)
    def direct(f, frac):
        d = cdist(f, f)
        sigma = frac * np.median(d[np.triu_indices(len(f), 1)])
        return np.exp(-d ** 2 / (2 * sigma ** 2))
    for frac in (0.5, 1.0, 2.0):
        kx, ky = direct(x, frac), direct(y, frac)
        h = np.eye(len(x)) - 1 / len(x)
        a, b = h @ kx @ h, h @ ky @ h
        ref = (a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum())
        assert rbf_cka(x @ x.T, y @ y.T, frac) == pytest.approx(ref, abs=1e-10)


def test_cka_aligns_dataarrays_by_stimulus_id():
    x, y = _features(4)
    ids = [f"s{i}" for i in range(len(x))]
    perm = np.random.default_rng(0).permutation(len(x))
    def da(g, order):
        return xr.DataArray(g[np.ix_(order, order)], dims=("stimulus_row", "stimulus_col"),
                            coords={"stimulus_row": [ids[i] for i in order], "stimulus_col": [ids[i] for i in order]})
    ref = linear_cka(x @ x.T, y @ y.T)
    assert cka(da(x @ x.T, np.arange(len(x))), da(y @ y.T, perm)) == pytest.approx(ref, abs=1e-12)
    other = da(y @ y.T, perm).assign_coords(stimulus_row=["z"] + ids[1:], stimulus_col=["z"] + ids[1:])
    with pytest.raises(RSABridgeError, match="differ"):
        cka(da(x @ x.T, np.arange(len(x))), other)


def test_cka_bad_input():
    with pytest.raises(RSABridgeError, match="square"):
        linear_cka(np.ones((3, 4)), np.ones((3, 4)))
    with pytest.raises(RSABridgeError, match="NaN"):
        linear_cka(np.full((3, 3), np.nan), np.eye(3))
    with pytest.raises(RSABridgeError, match="4 stimuli"):
        debiased_cka(np.eye(3), np.eye(3))
    with pytest.warns(RuntimeWarning, match="not positive"):
        assert np.isnan(linear_cka(np.ones((5, 5)), np.eye(5)))
    with pytest.raises(RSABridgeError, match="unknown CKA"):
        cka(np.eye(5), np.eye(5), "cubic")


# ---------------------------------------------------------------- ridge and PLS

@pytest.mark.parametrize("p", [200, 30])  # more and fewer units than training stimuli
def test_ridge_equals_sklearn_per_fold_and_alpha(p):
    x, y = _features(5, n=70, p=p, q=8)
    for train, test in make_folds(70, 5, seed=1):
        pred = ridge_path(x @ x.T, y, train, test, DEFAULT_ALPHAS)
        for k, alpha in enumerate(DEFAULT_ALPHAS):
            ref = Ridge(alpha=alpha).fit(x[train], y[train]).predict(x[test])
            assert np.abs(pred[k] - ref).max() < 1e-8 * max(1.0, np.abs(ref).max())


@pytest.mark.parametrize("per_target", [False, True])
@pytest.mark.parametrize("p", [200, 30])
def test_ridge_cv_alpha_equals_ridgecv(per_target, p):
    x, y = _features(6, n=70, p=p, q=8)
    alphas = np.logspace(-2, 4, 11)
    for train, test in make_folds(70, 5, seed=2):
        pred, alpha = ridge_cv_fold(x @ x.T, y, train, test, alphas, per_target)
        ref = RidgeCV(alphas=alphas, alpha_per_target=per_target).fit(x[train], y[train])
        np.testing.assert_array_equal(np.asarray(alpha), np.asarray(ref.alpha_))
        assert np.abs(pred - ref.predict(x[test])).max() < 1e-8


def test_ridge_gram_centring_does_not_matter():
    x, y = _features(7, n=50, p=100, q=3)
    xc = x - x.mean(0)
    train, test = np.arange(40), np.arange(40, 50)
    a = ridge_path(x @ x.T, y, train, test, [1.0])
    b = ridge_path(xc @ xc.T, y, train, test, [1.0])
    assert np.abs(a - b).max() < 1e-9


@pytest.mark.parametrize("p", [300, 40])
def test_pls_equals_sklearn(p):
    x, y = _features(8, n=80, p=p, q=6)
    for train, test in make_folds(80, 4, seed=3):
        pred = pls_fold(x @ x.T, y, train, test, 25)
        ref = PLSRegression(n_components=25, scale=False).fit(x[train], y[train]).predict(x[test])
        assert np.abs(pred - ref).max() < 1e-6


def test_pls_single_target_and_too_few_stimuli():
    x, y = _features(9, n=40, p=60, q=1)
    train, test = np.arange(30), np.arange(30, 40)
    ref = PLSRegression(n_components=5, scale=False).fit(x[train], y[train]).predict(x[test])
    assert np.abs(pls_fold(x @ x.T, y, train, test, 5) - ref.reshape(-1, 1)).max() < 1e-6
    with pytest.raises(RSABridgeError, match="training stimuli"):
        pls_fold(x @ x.T, y, train, test, 31)


# ---------------------------------------------------------------- folds

def test_folds_partition_and_seed():
    folds = make_folds(103, 10, seed=4)
    tests = np.concatenate([t for _, t in folds])
    assert sorted(tests) == list(range(103))
    assert {len(t) for _, t in folds} <= {10, 11}
    assert all(np.intersect1d(a, b).size == 0 for a, b in folds)
    again = make_folds(103, 10, seed=4)
    assert all((a[1] == b[1]).all() for a, b in zip(folds, again))
    assert any((a[1] != b[1]).any() for a, b in zip(folds, make_folds(103, 10, seed=5)))


def test_stratified_folds_keep_class_proportions():
    labels = np.repeat(["a", "b", "c"], [30, 20, 50])
    for _, test in make_folds(100, 10, seed=0, labels=labels):
        counts = {c: int((labels[test] == c).sum()) for c in "abc"}
        assert counts == {"a": 3, "b": 2, "c": 5}


def test_user_folds_and_splitters():
    labels = np.repeat([0, 1], 20)
    splitter = StratifiedKFold(5, shuffle=True, random_state=0)
    ours = make_folds(40, folds=splitter, labels=labels)
    ref = list(splitter.split(np.zeros((40, 1)), labels))
    assert all((a[0] == b[0]).all() and (a[1] == b[1]).all() for a, b in zip(ours, ref))
    given = [(np.arange(10, 40), np.arange(10)), (np.arange(30), np.arange(30, 40))]
    assert len(make_folds(40, folds=given)) == 2
    assert len(make_folds(40, folds=KFold(4))) == 4


def test_fold_errors():
    with pytest.raises(RSABridgeError, match="cannot be split into 10 folds"):
        make_folds(7, 10)
    with pytest.raises(RSABridgeError, match="fewer members than the 10 folds"):
        make_folds(40, 10, labels=np.repeat(["x", "y"], [35, 5]))
    with pytest.raises(RSABridgeError, match="leaks stimuli into both train and test: 's3'"):
        make_folds(10, folds=[(np.arange(0, 8), np.arange(3, 10))], ids=[f"s{i}" for i in range(10)])
    with pytest.raises(RSABridgeError, match="outside"):
        make_folds(10, folds=[(np.arange(0, 5), np.arange(5, 11))])
    with pytest.raises(RSABridgeError, match="at least 2 folds"):
        make_folds(10, 1)


# ---------------------------------------------------------------- predictivity and ceilings

def _planted(seed=0, n=200, p=60, t=12, reps=6, noise=1.0, shuffle=False):
    """A layer X, neurons = X w (a planted linear readout) + repetition noise; presentation x neuroid rates."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p))
    signal = x @ rng.normal(size=(p, t)) / np.sqrt(p)
    ids = [f"im{i:03d}" for i in range(n)]
    vals = np.concatenate([signal + noise * rng.normal(size=signal.shape) for _ in range(reps)])
    rates = xr.DataArray(vals, dims=("presentation", "neuroid"),
                         coords={"stimulus_id": ("presentation", ids * reps),
                                 "repetition": ("presentation", np.repeat(np.arange(reps), n)),
                                 "neuroid_id": ("neuroid", [f"n{j}" for j in range(t)]),
                                 "region": ("neuroid", ["V4"] * t)}, attrs={"rsa_bridge_kind": "firing_rates"})
    if shuffle:
        x = x[rng.permutation(n)]
    gram = xr.DataArray(x @ x.T, dims=("stimulus_row", "stimulus_col"),
                        coords={"stimulus_row": ids, "stimulus_col": ids})
    return gram, rates


@pytest.mark.parametrize("estimator", ["ridge", "pls"])
def test_planted_readout_reaches_ceiling_and_shuffle_gives_zero(estimator):
    gram, rates = _planted()
    resp = mean_responses(rates)
    ceiling = neuroid_ceiling(rates, n_splits=20).values
    got = linear_predictivity(gram, resp, estimator=estimator, ceiling=ceiling)
    # the best possible r with the repeat-averaged data is corr(signal, mean) = sqrt(reliability)
    per = got.per_neuroid / np.sqrt(ceiling)
    assert 0.9 < np.median(per) < 1.02
    assert 0.9 < got.normalized < 1.1 / np.sqrt(got.ceiling)
    shuffled, _ = _planted(shuffle=True)
    null = linear_predictivity(shuffled, resp, estimator=estimator)
    assert abs(null.median) < 0.1


def test_predictivity_matches_sklearn_pipeline():
    x, y = _features(10, n=60, p=80, q=5)
    got = linear_predictivity(x @ x.T, y, n_splits=5, seed=0)
    per_fold = []
    for train, test in make_folds(60, 5, 0):
        pred = RidgeCV(alphas=DEFAULT_ALPHAS).fit(x[train], y[train]).predict(x[test])
        per_fold.append([pearsonr(pred[:, j], y[test, j])[0] for j in range(5)])
    ref = np.mean(per_fold, axis=0)
    np.testing.assert_allclose(got.per_neuroid, ref, atol=1e-8)
    assert got.median == pytest.approx(np.median(ref), abs=1e-8)


def test_predictivity_bad_input():
    x, y = _features(11, n=40, p=30, q=3)
    bad = y.copy()
    bad[3, 1] = np.nan
    with pytest.raises(RSABridgeError, match="NaN"):
        linear_predictivity(x @ x.T, bad, n_splits=4)
    const = y.copy()
    const[:, 2] = 5.0
    with pytest.warns(RuntimeWarning, match="undefined .* neuroids '2'"):
        got = linear_predictivity(x @ x.T, const, n_splits=4)
    assert np.isnan(got.per_neuroid[2]) and np.isfinite(got.median) and got.excluded == ["2"]
    with pytest.raises(RSABridgeError, match="unknown estimator"):
        linear_predictivity(x @ x.T, y, estimator="lasso")
    with pytest.raises(RSABridgeError, match="cannot be split"):
        linear_predictivity(x[:5] @ x[:5].T, y[:5], n_splits=10)


def test_neuroids_without_positive_ceiling_are_excluded_by_name():
    x, y = _features(12, n=50, p=30, q=4)
    with pytest.warns(RuntimeWarning, match="excluded.*'1', '3'"):
        got = linear_predictivity(x @ x.T, y, n_splits=5, ceiling=np.array([0.8, -0.1, 0.6, np.nan]))
    assert got.excluded == ["1", "3"]
    assert got.ceiling == pytest.approx(0.7)
    assert got.median == pytest.approx(np.median(got.per_neuroid[[0, 2]]))
    assert got.normalized == pytest.approx(got.median / 0.7)


def test_split_half_ceilings_equal_hand_computation():
    _, rates = _planted(seed=3, n=40, t=5, reps=5)
    ids = [f"im{i:03d}" for i in range(40)]
    codes = np.array([int(s[2:]) for s in rates["stimulus_id"].values])
    halves = split_halves(codes, 7, as_generator(11))
    vals = rates.values
    r_sb, ckas = [], []
    for half in halves:
        a = np.array([vals[(codes == i) & (half == 0)].mean(0) for i in range(40)])
        b = np.array([vals[(codes == i) & (half == 1)].mean(0) for i in range(40)])
        r = np.array([pearsonr(a[:, j], b[:, j])[0] for j in range(5)])
        r_sb.append(2 * r / (1 + r))
        ckas.append(_feature_linear_cka(a, b))
    np.testing.assert_allclose(neuroid_ceiling(rates, n_splits=7, seed=11).values, np.mean(r_sb, 0), atol=1e-12)
    assert cka_ceiling(rates, n_splits=7, seed=11, stimulus_ids=ids) == pytest.approx(np.mean(ckas), abs=1e-12)


def test_measure_registry():
    assert {"rsa", "cka", "linear"} <= set(MEASURES)
    assert check_measures(None) == ["rsa"]
    assert check_measures(["cka", "rsa", "cka"]) == ["cka", "rsa"]
    with pytest.raises(RSABridgeError, match="unknown measure"):
        check_measures(["no_such_measure"])


def test_shipped_v4_ceilings():
    from rsa_bridge.neural.load import read_neural

    rates = read_neural("cowley2023_v4_210325_rates").data
    ceiling = neuroid_ceiling(rates, n_splits=10, seed=0)
    assert ceiling.sizes["neuroid"] == 50 and 0.5 < float(ceiling.median()) < 0.95
    assert 0.3 < cka_ceiling(rates, n_splits=3, seed=0) < 0.95


def test_agreement_table_by_hand():
    import pandas as pd

    from rsa_bridge.measures.agreement import agreement_lines, agreement_table, layer_ranks

    rows = []
    for measure, scores, pb in (("rsa", [0.1, 0.3, 0.2], [0.1, 0.7, 0.2]), ("cka", [0.2, 0.5, 0.4], [0, .9, .1]),
                                ("linear", [0.3, 0.4, 0.6], [0, .2, .8])):
        for layer, s, p in zip(["a", "b", "c"], scores, pb):
            rows.append({"dataset": "d", "model": "m", "area": "V4", "layer": layer, "measure": measure,
                         "similarity": s, "p_best": p})
    table = pd.DataFrame(rows)
    agree = agreement_table(table).set_index("measure")
    assert list(agree["best_layer"]) == ["b", "b", "c"] and not agree["agree"].any()
    assert agree.loc["cka", "p_best"] == 0.9
    assert agree.loc["cka", "profile_spearman_with_rsa"] == pytest.approx(1.0)
    assert agree.loc["linear", "profile_spearman_with_rsa"] == pytest.approx(0.5)
    assert "DISAGREE" in agreement_lines(agreement_table(table))[1]
    ranks = layer_ranks(table)
    assert list(ranks[ranks["measure"] == "linear"]["rank"]) == [3, 2, 1]
    same = table[table["measure"] != "linear"]
    assert agreement_table(same)["agree"].all()
    assert agreement_table(table[table["measure"] == "rsa"]) is None
    flat = pd.concat([same, pd.DataFrame([{"dataset": "d", "model": "m", "area": "V4", "layer": layer, "measure": "cca",
                                           "similarity": 1.0, "p_best": 1 / 3} for layer in "abc"])])
    with pytest.warns(RuntimeWarning, match="cca gives every layer of m the same score"):
        tied = agreement_table(flat).set_index("measure")
    assert tied.loc["cca", "best_layer"] == "(all layers tie)" and np.isnan(tied.loc["cca", "p_best"])
    assert np.isnan(tied.loc["cca", "profile_spearman_with_rsa"]) and tied["agree"].all()   # rsa and cka pick b


def test_p_best_splits_ties():
    from rsa_bridge.measures.stats import p_best

    assert p_best(np.ones((5, 4))).tolist() == [0.25] * 4
    samples = np.array([[0.1, 0.3, 0.3], [0.5, 0.1, 0.2], [np.nan, 1.0, 0.0]])
    np.testing.assert_allclose(p_best(samples), [0.5, 0.25, 0.25])
    assert np.isnan(p_best(np.full((2, 3), np.nan))).all()
