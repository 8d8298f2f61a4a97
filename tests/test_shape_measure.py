"""The ``shape`` measure (Williams et al. 2021 shape metric with alpha), the measures' settings in attrs, the
k-NN bootstrap refusal and the eigendecomposition memory check (issue 28, round 4).

The Gram form of the shape metric is checked to 1e-8 against a feature-space implementation written here:
whiten each centred representation with ``((1 - alpha) Xc^T Xc / n + alpha I)^{-1/2}`` (a pseudo-inverse on
the numerical rank at alpha = 0), then scipy's orthogonal Procrustes (tests/test_gram_measures.py).
"""
from __future__ import annotations

import numpy as np
import pytest

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.measures import MEASURES, check_resampling, procrustes
from rsa_bridge.measures.scoring import MeasureOptions
from tests.test_gram_measures import (
    SHAPES,
    TOL,
    centred,
    grams,
    pair,
    ref_cov_cca,
    ref_procrustes_similarity,
)


def ref_cov_whiten(x, alpha):
    """Xc ((1 - alpha) Xc^T Xc / n + alpha I)^{-1/2} in feature space (p x p matrix; pinv on the rank at 0)."""
    xc = centred(x)
    n, p = xc.shape
    c = (1 - alpha) * xc.T @ xc / n + alpha * np.eye(p)
    lam, v = np.linalg.eigh(c)
    keep = lam > lam.max() * 1e-10
    inv_sqrt = (v[:, keep] / np.sqrt(lam[keep])) @ v[:, keep].T
    return xc @ inv_sqrt


def ref_shape_similarity(x, y, alpha):
    return ref_procrustes_similarity(ref_cov_whiten(x, alpha), ref_cov_whiten(y, alpha))


@pytest.mark.parametrize("shape", [*SHAPES, "low rank n<p"])
@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_shape_measure_equals_feature_space(shape, alpha):
    x, y = pair(20, 60, 45, 7, rank=6) if shape == "low rank n<p" else pair(*SHAPES[shape], 7)
    expected = ref_shape_similarity(x, y, alpha)
    assert 0 < expected <= 1
    got = MEASURES["shape"].bound(MeasureOptions(shape_alpha=alpha)).gram_score(*grams(x, y))
    assert abs(got - expected) < TOL
    assert abs(procrustes.shape_metric_similarity(*grams(x, y), alpha) - expected) < TOL


def test_shape_endpoints_are_procrustes_and_cca():
    x, y = pair(60, 12, 9, 4)
    k, l = grams(x, y)
    assert abs(procrustes.shape_metric_similarity(k, l, 1.0) - procrustes.procrustes_similarity(k, l)) < 1e-12
    rho = ref_cov_cca(x, y)
    assert abs(procrustes.shape_metric_distance(k, l, 0.0) - np.arccos(rho.sum() / np.sqrt(12 * 9))) < TOL
    # in between it differs from netrep's interpolation of the whitening matrix (shape_similarity)
    assert abs(procrustes.shape_metric_similarity(k, l, 0.5) - procrustes.shape_similarity(k, l, 0.5)) > 1e-3


def test_shape_metric_is_a_metric_and_invariant():
    rng = np.random.default_rng(8)
    for _ in range(10):
        base = rng.normal(size=(15, 5))
        reps = [base @ rng.normal(size=(5, 5)) + s * rng.normal(size=(15, 5)) for s in rng.uniform(0.1, 2, 3)]
        g = [r @ r.T for r in reps]
        d = [[procrustes.shape_metric_distance(a, b, 0.3) for b in g] for a in g]
        assert d[0][2] <= d[0][1] + d[1][2] + 1e-12 and abs(d[0][1] - d[1][0]) < 1e-12 and d[0][1] > 0
    x, y = pair(30, 8, 8, 5)
    q = np.linalg.qr(rng.normal(size=(8, 8)))[0]
    assert abs(procrustes.shape_metric_similarity(*grams(x @ q + 3.0, y), 0.4)
               - procrustes.shape_metric_similarity(*grams(x, y), 0.4)) < 1e-10


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_bad_alpha_refused(bad):
    with pytest.raises(RSABridgeError, match="alpha must be in"):
        MeasureOptions(shape_alpha=bad)


@pytest.mark.parametrize("field, bad", [("knn_k", 0), ("knn_k", 2.5), ("knn_k", True), ("svcca_keep", 0.0),
                                        ("svcca_keep", 1.5), ("svcca_keep", 0)])
def test_bad_settings_refused(field, bad):
    with pytest.raises(RSABridgeError, match=field):
        MeasureOptions(**{field: bad})


def test_settings_recorded_in_attrs():
    attrs = MeasureOptions(shape_alpha=0.25, knn_k=7, svcca_keep=0.9).attrs()
    assert attrs["measure_shape_alpha"] == 0.25
    assert attrs["measure_mutual_knn_topk"] == attrs["measure_cknna_topk"] == 7
    assert attrs["measure_svcca_keep"] == 0.9


def test_knn_k_is_used_and_checked():
    from rsa_bridge.measures import knn

    x, y = pair(30, 6, 5, 2)
    got = MEASURES["mutual_knn"].bound(MeasureOptions(knn_k=4)).gram_score(*grams(x, y))
    assert got == knn.mutual_knn(*grams(x, y), topk=4) != knn.mutual_knn(*grams(x, y), topk=10)
    with pytest.raises(RSABridgeError, match="at least 22 stimuli"):
        MEASURES["cknna"].check(21, MeasureOptions(knn_k=20), None)


@pytest.mark.parametrize("name", ["mutual_knn", "cknna"])
def test_knn_bootstrap_refused_before_compute(name):
    with pytest.raises(RSABridgeError, match=f"--measure {name} cannot be bootstrapped over stimuli: a stimulus "
                                             "drawn twice is its own nearest neighbour"):
        check_resampling(["rsa", name], 10)
    check_resampling([name], 0)
    from rsa_bridge.measures.gram_scoring import gram_stats

    x, r = pair(15, 6, 4, 1)
    with pytest.raises(RSABridgeError, match="cannot be bootstrapped"):
        gram_stats(MEASURES[name], np.stack([x @ x.T]), r @ r.T, np.zeros(1), n_bootstrap=3, n_permutations=0,
                   rng=np.random.default_rng(0))


def test_cli_refuses_knn_bootstrap_and_bad_alpha(capsys):
    from rsa_bridge.app.cli import main

    for argv, message in [(["--measure", "cknna", "--bootstrap", "10"], "cannot be bootstrapped over stimuli"),
                          (["--measure", "shape", "--shape-alpha", "1.5"], "--shape-alpha"),
                          (["--measure", "mutual_knn", "--knn-k", "0"], "--knn-k")]:
        try:
            code = main(["compare", "--model", "alexnet", "--area", "V4", *argv])
        except SystemExit as exit_:     # argparse's own refusals
            code = exit_.code
        assert code == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) <= 3, err


def test_bootstrap_replicate_is_the_measure_on_resampled_grams():
    from rsa_bridge.measures.gram_scoring import gram_stats
    from rsa_bridge.stats.resample import bootstrap_stimuli

    rng_data = np.random.default_rng(3)
    xs = [rng_data.normal(size=(14, p)) for p in (5, 20)]
    r = rng_data.normal(size=(14, 6))
    kernels, neural = np.stack([x @ x.T for x in xs]), r @ r.T
    record = MEASURES["shape"].bound(MeasureOptions(shape_alpha=0.3))
    st = gram_stats(record, kernels, neural, np.zeros(2), n_bootstrap=6, n_permutations=0,
                    rng=np.random.default_rng(11))
    for s, idx in enumerate(bootstrap_stimuli(14, 6, np.random.default_rng(11))):
        for j, x in enumerate(xs):      # the drawn rows of both feature matrices, repeats included
            assert abs(st.samples[s, j] - ref_shape_similarity(x[idx], r[idx], 0.3)) < TOL


def test_eigen_memory_refused_with_the_alternative():
    from rsa_bridge.budget import check_eigen_memory, eigen_bytes

    assert [n for n, m in MEASURES.items() if m.eigen] == ["procrustes", "shape", "shape_cv", "cca", "svcca", "pwcca"]
    assert eigen_bytes(1000) == 6 * 8 * 1000 ** 2
    check_eigen_memory(1000, ["shape"], budget=eigen_bytes(1000))
    check_eigen_memory(10 ** 6, [], budget=1)               # no eigendecomposing measure: nothing to check
    with pytest.raises(RSABridgeError, match="use --measure cka"):
        check_eigen_memory(1001, ["shape", "cca"], budget=eigen_bytes(1000))


def test_spectral_measures_share_one_eigendecomposition_and_the_draws(monkeypatch):
    """Five spectral measures scored together: one gram_spectrum per Gram per sample, and each measure's
    statistics equal to its own run on the same seed."""
    from rsa_bridge.measures import spectral
    from rsa_bridge.measures.gram_scoring import (
        gram_stats,
        gram_stats_many,
        layer_scores_many,
    )

    rng_data = np.random.default_rng(4)
    xs = [rng_data.normal(size=(12, p)) for p in (3, 4)]
    r = rng_data.normal(size=(12, 5))
    kernels, neural = np.stack([x @ x.T for x in xs]), r @ r.T
    records = [MEASURES[n].bound(MeasureOptions()) for n in ("procrustes", "shape", "cca", "svcca", "pwcca")]
    calls = []
    real, real_resampled = spectral.gram_spectrum, spectral.resampled_spectrum
    monkeypatch.setattr(spectral, "gram_spectrum", lambda k, **kw: calls.append(1) or real(k, **kw))
    monkeypatch.setattr(spectral, "resampled_spectrum", lambda k, i, **kw: calls.append(1) or real_resampled(k, i, **kw))
    observed = layer_scores_many(records, kernels, neural)
    assert len(calls) == 3                                   # 2 layers + the neural Gram, not 5 x 3
    calls.clear()
    together = gram_stats_many(records, kernels, neural, observed, n_bootstrap=4, n_permutations=3,
                               rng=np.random.default_rng(2))
    assert len(calls) == 4 * 3 + 2 + 1      # per sample 3; the layers and the neural Gram once (a permutation relabels it)


    for record, st, obs in zip(records, together, observed):
        alone = gram_stats(record, kernels, neural, obs, n_bootstrap=4, n_permutations=3,
                           rng=np.random.default_rng(2))
        np.testing.assert_array_equal(st.samples, alone.samples)
        np.testing.assert_array_equal(st.p_value, alone.p_value)


# --- cross-validated shape metric ----------------------------------------------------------------------------

def ref_shape_cv_fold(x, y, train, test, alpha):
    """Feature space: training-mean centring, whitening by the training covariance shrunk to I (pinv on its
    rank), orthogonal Procrustes fitted on the training rows (thin SVD, min of the two training ranks), then
    the Frobenius cosine of the held-out rows."""
    def side(z):
        m = z[train].mean(0)
        ztr, zte = z[train] - m, z[test] - m
        c = (1 - alpha) * ztr.T @ ztr / len(train) + alpha * np.eye(z.shape[1])
        lam, v = np.linalg.eigh(c)
        keep = lam > lam.max() * 1e-10
        w = (v[:, keep] / np.sqrt(lam[keep])) @ v[:, keep].T
        return ztr @ w, zte @ w, np.linalg.matrix_rank(ztr)

    xtr, xte, rx = side(x)
    ytr, yte, ry = side(y)
    p, _, rt = np.linalg.svd(xtr.T @ ytr, full_matrices=False)
    r = min(rx, ry)
    q = p[:, :r] @ rt[:r]
    return np.sum((xte @ q) * yte) / (np.linalg.norm(xte) * np.linalg.norm(yte))


def ref_shape_cv(x, y, alpha, n_splits, seed=0):
    from rsa_bridge.measures.folds import make_folds

    return np.mean([ref_shape_cv_fold(x, y, tr, te, alpha) for tr, te in make_folds(len(x), n_splits, seed)])


@pytest.mark.parametrize("shape", [*SHAPES, "low rank n<p"])
@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_shape_cv_equals_feature_space(shape, alpha):
    from rsa_bridge.measures.shape_cv import shape_cv_similarity

    x, y = pair(20, 60, 45, 9, rank=6) if shape == "low rank n<p" else pair(*SHAPES[shape], 9)
    expected = ref_shape_cv(x, y, alpha, 4, seed=3)
    assert abs(shape_cv_similarity(*grams(x, y), alpha, 4, 3) - expected) < TOL
    got = MEASURES["shape_cv"].bound(MeasureOptions(shape_alpha=alpha, n_splits=4, fold_seed=3)).gram_score(*grams(x, y))
    assert abs(got - expected) < TOL


def test_shape_cv_is_not_saturated_where_the_in_sample_fit_is():
    """n < p: the in-sample whitened fit (alpha 0) aligns anything perfectly; held out, unrelated data is ~0."""
    from rsa_bridge.measures.shape_cv import shape_cv_similarity

    rng = np.random.default_rng(12)
    x, y = rng.normal(size=(30, 80)), rng.normal(size=(30, 70))
    assert procrustes.shape_metric_similarity(*grams(x, y), 0.0) == pytest.approx(1.0, abs=1e-8)
    assert abs(shape_cv_similarity(*grams(x, y), 0.0, 5)) < 0.2
    z = rng.normal(size=(30, 5))                         # n > p: a rotation is recovered from the training folds
    assert shape_cv_similarity(*grams(z, 2 * z @ np.linalg.qr(rng.normal(size=(5, 5)))[0] + 1), 1.0, 5) \
        == pytest.approx(1.0, abs=1e-10)


def test_shape_cv_refusals():
    with pytest.raises(RSABridgeError, match="fewer than 2 per fold"):
        MEASURES["shape_cv"].check(19, MeasureOptions(n_splits=10), None)
    MEASURES["shape_cv"].check(20, MeasureOptions(n_splits=10), None)
    with pytest.raises(RSABridgeError, match="shape_cv cannot be bootstrapped over stimuli: a stimulus drawn twice"):
        check_resampling(["shape_cv"], 5)
    attrs = MeasureOptions(n_splits=4, fold_seed=7, shape_alpha=0.1).attrs()
    assert (attrs["measure_shape_cv_n_splits"], attrs["measure_shape_cv_seed"], attrs["measure_shape_cv_alpha"]) \
        == (4, 7, 0.1)


@pytest.mark.parametrize("n, p", [(12, 3), (30, 80), (25, 1)])
def test_resampled_spectrum_equals_the_spectrum_of_the_cut_gram(n, p):
    from rsa_bridge.measures.spectral import gram_spectrum, resampled_spectrum
    from rsa_bridge.stats.resample import bootstrap_stimuli

    x = np.random.default_rng(n).normal(size=(n, p)) + 2.0
    k = x @ x.T
    for idx in bootstrap_stimuli(n, 5, np.random.default_rng(1)):
        a, b = resampled_spectrum(k, idx), gram_spectrum(k[np.ix_(idx, idx)])
        # rank: the distinct stimuli drawn minus 1 (or p); the n x n route may keep a rounding-level extra one
        assert a.rank == min(len(set(idx)) - 1, p) and np.all(b.values[a.rank:] < 1e-10 * b.values[0])
        np.testing.assert_allclose(a.values, b.values[:a.rank], rtol=1e-10, atol=1e-10 * b.values[0])
        np.testing.assert_allclose(a.vectors @ a.vectors.T, b.vectors[:, :a.rank] @ b.vectors[:, :a.rank].T,
                                   atol=1e-9)
        np.testing.assert_allclose(a.vectors.T @ a.vectors, np.eye(a.rank), atol=1e-10)
