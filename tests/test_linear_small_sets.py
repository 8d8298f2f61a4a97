"""Issue 25 item 3: linear predictivity on small sets: a minimum of held-out stimuli per fold, and pooled scoring
checked against scikit-learn (cross_val_predict + per-neuroid Pearson r)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr
from sklearn.cross_decomposition import PLSRegression
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold, ShuffleSplit, cross_val_predict
from torch import nn

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.measures import MEASURES
from rsa_bridge.measures.folds import MIN_TEST_STIMULI, check_test_sizes, largest_folds, make_folds
from rsa_bridge.measures.predictivity import CV_SCORES, PredictivityOptions, linear_predictivity
from rsa_bridge.measures.ridge import DEFAULT_ALPHAS
from rsa_bridge.measures.scoring import MeasureOptions, check_linear_design


def _features(seed, n=20, p=30, q=6):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p))
    y = x @ rng.normal(size=(p, q)) / np.sqrt(p) + 0.8 * rng.normal(size=(n, q))
    return x, y


def _pooled_reference(estimator, x, y, folds):
    pred = cross_val_predict(estimator, x, y, cv=folds)
    return np.array([pearsonr(pred[:, j], y[:, j])[0] for j in range(y.shape[1])])


@pytest.mark.parametrize("n, k", [(20, 10), (12, 4), (30, 5)])
def test_pooled_ridge_equals_sklearn_cross_val_predict(n, k):
    x, y = _features(n, n=n)
    got = linear_predictivity(x @ x.T, y, n_splits=k, seed=3, cv_score="pooled")
    ref = _pooled_reference(RidgeCV(alphas=DEFAULT_ALPHAS), x, y, make_folds(n, k, seed=3))
    np.testing.assert_allclose(got.per_neuroid, ref, rtol=0, atol=1e-8)
    assert got.median == pytest.approx(np.median(ref), abs=1e-8) and got.mean == pytest.approx(ref.mean(), abs=1e-8)
    assert got.cv_score == "pooled" and got.per_fold.shape == (1, y.shape[1])


def test_pooled_with_sklearn_splitter_and_per_neuroid_alpha():
    x, y = _features(4, n=24)
    splitter = KFold(6, shuffle=True, random_state=1)
    got = linear_predictivity(x @ x.T, y, cv_score="pooled",
                              options=PredictivityOptions(folds=splitter, per_neuroid_alpha=True))
    ref = _pooled_reference(RidgeCV(alphas=DEFAULT_ALPHAS, alpha_per_target=True), x, y, splitter)
    np.testing.assert_allclose(got.per_neuroid, ref, rtol=0, atol=1e-8)


def test_pooled_pls_equals_sklearn():
    x, y = _features(5, n=20, p=15)
    got = linear_predictivity(x @ x.T, y, estimator="pls", n_splits=10, seed=0, cv_score="pooled",
                              options=PredictivityOptions(n_components=3))
    ref = _pooled_reference(PLSRegression(n_components=3, scale=False), x, y, make_folds(20, 10, seed=0))
    np.testing.assert_allclose(got.per_neuroid, ref, rtol=0, atol=1e-8)


def test_per_fold_at_the_minimum_equals_sklearn_and_one_below_is_refused():
    x, y = _features(6, n=20)
    folds = make_folds(20, 4, seed=0)
    assert min(len(t) for _, t in folds) == MIN_TEST_STIMULI == 5
    got = linear_predictivity(x @ x.T, y, n_splits=4, seed=0)
    ref = [[pearsonr(p[:, j], y[test, j])[0] for j in range(y.shape[1])]
           for p, (_, test) in ((RidgeCV(alphas=DEFAULT_ALPHAS).fit(x[tr], y[tr]).predict(x[te]), (tr, te))
                                for tr, te in folds)]
    np.testing.assert_allclose(got.per_neuroid, np.mean(ref, axis=0), rtol=0, atol=1e-8)
    assert got.cv_score == "per-fold"
    with pytest.raises(RSABridgeError) as err:  # the case: 20 stimuli, 10 folds, r is +-1 or NaN
        linear_predictivity(x @ x.T, y, n_splits=10)
    message = str(err.value)
    assert "\n" not in message and "leave 2 held-out stimuli" in message
    assert "--folds 4 or fewer, or --cv-score pooled" in message
    with pytest.raises(RSABridgeError, match="leave 4 held-out .*--folds 3"):  # 16 stimuli in 4 folds: 4 each
        linear_predictivity(x[:16] @ x[:16].T, y[:16], n_splits=4)


def test_why_five_two_points_give_plus_minus_one():
    """With 2 held-out stimuli any prediction's r is +-1: the numbers the issue saw (multiples of 0.2)."""
    rng = np.random.default_rng(0)
    rs = [pearsonr(rng.normal(size=2), rng.normal(size=2))[0] for _ in range(20)]
    assert np.allclose(np.abs(rs), 1.0)


def test_fold_size_errors_and_fixes():
    assert largest_folds(20) == 4 and largest_folds(9) == 0 and largest_folds(10) == 2
    with pytest.raises(RSABridgeError, match="cannot fill 2 folds.*pooled|pooled.*cannot fill 2 folds"):
        check_test_sizes(make_folds(9, 2), 9)
    check_test_sizes(make_folds(9, 3), 9, pooled=True)  # pooled: any partition
    with pytest.raises(RSABridgeError, match="exactly once"):
        check_test_sizes(make_folds(40, folds=ShuffleSplit(3, test_size=0.25, random_state=0)), 40, pooled=True)
    with pytest.raises(RSABridgeError, match="too few"):
        check_test_sizes(make_folds(4, 2), 4, pooled=True)
    with pytest.raises(RSABridgeError, match="unknown cv_score"):
        linear_predictivity(np.eye(20), np.random.default_rng(0).normal(size=(20, 2)), cv_score="median")


def test_registry_check_runs_the_same_folds():
    assert MEASURES["linear"].check is not None and MEASURES["cka"].check is None
    assert set(CV_SCORES) == {"per-fold", "pooled"}
    with pytest.raises(RSABridgeError, match="leave 2 held-out"):
        MEASURES["linear"].check(20, MeasureOptions(), None)
    MEASURES["linear"].check(20, MeasureOptions(cv_score="pooled"), None)
    with pytest.raises(RSABridgeError, match="fewer members"):  # stratified: the same folds as the score
        check_linear_design(40, MeasureOptions(n_splits=5), np.repeat(["a", "b"], [36, 4]))


def test_pooled_choice_in_results_attrs_and_table(tmp_path):
    from rsa_bridge.app.pipeline import RDMOptions, StatsOptions, compare_model
    from rsa_bridge.app.report import format_table
    from rsa_bridge.measures.ceilings import mean_responses, neuroid_ceiling
    from tests.helpers import make_rdm_dataset, make_stimuli
    from tests.test_preflight import _rates, _transform

    ids = make_stimuli(tmp_path / "stimuli", n=20, size=8)
    make_rdm_dataset(tmp_path / "toy.nc", ids)
    rates = _rates(ids)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))
    result = compare_model("toy", ["V1"], dataset=str(tmp_path / "toy.nc"), model=net, transform=_transform,
                           layers=["1"], progress=False, cache=False, rdm=RDMOptions(batch_size=10),
                           measures=["linear"], stats=StatsOptions(seed=0),
                           measure_options=MeasureOptions(responses=rates, cv_score="pooled"))
    attrs = result.results.attrs
    assert attrs["measure_linear_cv_score"] == "pooled" and "pooled" in attrs["measure_linear"]
    row = result.table[result.table["measure"] == "linear"].iloc[0]
    assert row["method"] == "ridge, pooled r"
    assert "MEASURE linear: cross-validated linear predictivity (ridge, pooled r)" in format_table(result)
    assert "rsa noise ceiling (lower, upper)" in format_table(result)
    from extractors import extract
    from PIL import Image

    images = torch.stack([_transform(Image.open(tmp_path / "stimuli" / f"{s}.png").convert("RGB")) for s in ids])
    x = extract(net, images, ["1"], stimulus_ids=ids, batch_size=10)["1"].values.astype(np.float64)
    resp = mean_responses(rates).sel(stimulus_id=ids)
    ref = linear_predictivity(x @ x.T, resp, cv_score="pooled", ceiling=neuroid_ceiling(rates, 10, 0).values)
    assert row["similarity"] == pytest.approx(ref.median, abs=1e-6)
