"""Permutation p-values (+1 corrected), Holm and Benjamini–Hochberg corrections, calibration under H0."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from rsa_bridge.compare import METHODS, compare_vectors
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.stats import PermutationOptions, fdr_bh, holm, permutation_test, permutations
from rsa_bridge.stats.permutation import correct

from _stats_reference import model_like, real_rdms, vectors


def test_p_values_equal_a_scipy_loop_over_the_same_permutations():
    it, hit = real_rdms(12)
    models = model_like(it[0], 2, seed=0)
    perms = permutations(12, 60, np.random.default_rng(4))
    res = permutation_test(models, {"hIT": hit[:3]}, options=PermutationOptions(permutation_indices=perms))
    rows, cols = np.triu_indices(12, k=1)
    for layer in range(2):
        def statistic(p):
            m = models[layer][np.ix_(p, p)][rows, cols]
            return np.mean([stats.spearmanr(m, vectors(h))[0] for h in hit[:3]])
        observed = statistic(np.arange(12))
        null = np.array([statistic(p) for p in perms])
        assert res.observed[layer, 0] == pytest.approx(observed, abs=1e-12)
        np.testing.assert_allclose(res.null[:, layer, 0], null, rtol=0, atol=1e-12)
        assert res.p_value[layer, 0] == (1 + np.sum(null >= observed - 1e-12)) / 61


@pytest.mark.parametrize("method", sorted(METHODS))
def test_null_statistics_equal_comparing_the_permuted_rdm(method):
    it, hit = real_rdms(10)
    models = model_like(it[0], 2, seed=1)
    perms = permutations(10, 4, np.random.default_rng(2))
    res = permutation_test(models, {"hIT": hit[:2]}, method=method,
                           options=PermutationOptions(permutation_indices=perms))
    for s, p in enumerate(perms):
        permuted = vectors(models[:, p][:, :, p])
        expected = compare_vectors(permuted, vectors(hit[:2]), method).mean(axis=1)
        np.testing.assert_allclose(res.null[s, :, 0], expected, rtol=0, atol=1e-10)


def test_planted_signal_is_significant_after_correction():
    it, hit = real_rdms(40)
    models = np.concatenate([model_like(it[0], 1, seed=2, noise=(0.3,)), model_like(np.zeros_like(it[0]), 3, seed=3)])
    res = permutation_test(models, {"IT": it}, n_permutations=199, seed=0)
    assert res.p_value[0, 0] == pytest.approx(1 / 200)
    assert res.corrected("holm")[0, 0] < 0.05 and res.corrected("fdr_bh")[0, 0] < 0.05
    assert (res.p_value[1:, 0] > 0.01).all()


def test_false_positive_rate_under_the_null_is_near_alpha():
    """300 independent null data sets: P(p <= 0.05) ~ 0.05 (exact test), Holm's family-wise rate <= ~0.05."""
    n, rejections, family_rejections, trials = 10, 0, 0, 300
    for seed in range(trials):
        rng = np.random.default_rng(seed)
        brain = np.abs(rng.normal(size=(n, n)))
        layers = np.abs(rng.normal(size=(4, n, n)))
        res = permutation_test(layers + layers.transpose(0, 2, 1), {"area": brain + brain.T}, n_permutations=99,
                               seed=seed, options=PermutationOptions(keep_null=False))
        rejections += int(res.p_value[0, 0] <= 0.05)
        family_rejections += int((res.corrected("holm") <= 0.05).any())
    assert 0.02 <= rejections / trials <= 0.09
    assert family_rejections / trials <= 0.09


def test_same_seed_same_p_values_and_alternatives():
    it, hit = real_rdms(15)
    models = model_like(it[0], 2, seed=5)
    a = permutation_test(models, {"IT": it}, n_permutations=50, seed=11)
    b = permutation_test(models, {"IT": it}, n_permutations=50, seed=11)
    assert a.null.tobytes() == b.null.tobytes() and a.attrs()["permutation_seed"] == 11
    less = permutation_test(models, {"IT": it}, n_permutations=50, seed=11, alternative="less")
    both = permutation_test(models, {"IT": it}, n_permutations=50, seed=11, alternative="two-sided")
    assert less.p_value[0, 0] == (1 + np.sum(a.null[:, 0, 0] <= a.observed[0, 0] + 1e-12)) / 51
    assert both.p_value[0, 0] == (1 + np.sum(np.abs(a.null[:, 0, 0]) >= abs(a.observed[0, 0]) - 1e-12)) / 51


def test_bh_equals_scipy_and_holm_equals_its_definition():
    rng = np.random.default_rng(0)
    for _ in range(20):
        p = rng.random(9) ** 3
        np.testing.assert_allclose(fdr_bh(p), stats.false_discovery_control(p, method="bh"), rtol=0, atol=1e-14)
        # Holm by its definition: step down through the sorted p, stop at the first non-rejection
        order = np.argsort(p)
        for alpha in (0.01, 0.05, 0.2):
            rejected = np.zeros(9, dtype=bool)
            for rank, i in enumerate(order):
                if p[i] > alpha / (9 - rank):
                    break
                rejected[i] = True
            np.testing.assert_array_equal(holm(p) <= alpha, rejected)


def test_corrections_keep_nans_and_families():
    p = np.array([[0.01, 0.04], [0.02, np.nan], [0.03, 0.5]])
    by_area = correct(p, "holm")
    np.testing.assert_allclose(by_area[:, 0], holm(p[:, 0]))
    assert np.isnan(by_area[1, 1])
    np.testing.assert_allclose(correct(p, "fdr_bh", family="all").ravel(), fdr_bh(p.ravel()))
    with pytest.raises(RSABridgeError, match="correction"):
        correct(p, "bonferroni")


def test_bad_permutation_inputs():
    it, hit = real_rdms(8)
    models = model_like(it[0], 1, seed=0)
    with pytest.raises(RSABridgeError, match="permutations of"):
        permutation_test(models, {"IT": it},
                         options=PermutationOptions(permutation_indices=np.zeros((3, 8), dtype=int)))
    with pytest.raises(RSABridgeError, match="alternative"):
        permutation_test(models, {"IT": it}, n_permutations=3, alternative="bigger")
    with pytest.raises(RSABridgeError, match="constant"):
        permutation_test(np.ones((1, 8, 8)) - np.eye(8), {"IT": it}, n_permutations=3)


def test_nan_and_too_few_stimuli_are_clear_errors():
    it, _ = real_rdms(8)
    models = model_like(it[0], 1, seed=0)
    bad = it.copy()
    bad[0, 2, 5] = bad[0, 5, 2] = np.nan
    with pytest.raises(RSABridgeError, match="NaN"):
        permutation_test(models, {"IT": bad}, n_permutations=3, seed=0)
    with pytest.raises(RSABridgeError, match="at least 3"):
        permutation_test(models[:, :2, :2], {"IT": it[:, :2, :2]}, n_permutations=3, seed=0)
    with pytest.raises(RSABridgeError, match="constant"):
        permutation_test(models, {"IT": np.ones((1, 8, 8)) - np.eye(8)}, n_permutations=3, seed=0)
