"""The comparison methods added for issue 4 (rho_a, cosine, whitened_*) against rsatoolbox's compare."""
from __future__ import annotations

import numpy as np
import pytest
from rsatoolbox.rdm import RDMs, compare

from rsa_bridge.compare import METHODS, RSATOOLBOX_NAMES, compare_rdms, compare_vectors, whitening_transform
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.stats.masked import compare_masked, gather

from _stats_reference import model_like, real_rdms, vectors


def test_every_method_has_an_rsatoolbox_name():
    assert set(RSATOOLBOX_NAMES) == set(METHODS)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_methods_equal_rsatoolbox_on_real_rdms_with_ties(method):
    it, hit = real_rdms()
    models = vectors(model_like(it[0], 3, seed=4))
    models[2] = np.round(models[2] * 4) / 4  # many ties
    data = vectors(hit)
    ours = compare_vectors(models, data, method)
    ref = compare(RDMs(models), RDMs(data), RSATOOLBOX_NAMES[method])
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-10)


def test_rho_a_is_spearman_without_ties_and_smaller_with_ties():
    rng = np.random.default_rng(0)
    a, b = rng.random((2, 45))
    assert compare_vectors(a, b, "rho_a")[0, 0] == pytest.approx(compare_vectors(a, b, "spearman")[0, 0], abs=1e-12)
    tied = np.round(a * 2)
    assert abs(compare_vectors(tied, b, "rho_a")[0, 0]) < abs(compare_vectors(tied, b, "spearman")[0, 0])


def test_whitened_cosine_is_cosine_of_double_centred_second_moments():
    """Hand-worked: G = -H D H / 2, similarity = <G1, G2>_F / (|G1|_F |G2|_F)."""
    rng = np.random.default_rng(1)
    n = 7
    base = rng.random((n, n))
    mats = model_like(base + base.T, 2, seed=2)  # symmetric, zero diagonal
    h = np.eye(n) - np.ones((n, n)) / n
    g = [-h @ d @ h / 2 for d in mats]
    expected = (g[0] * g[1]).sum() / np.sqrt((g[0] ** 2).sum() * (g[1] ** 2).sum())
    assert compare_rdms(mats[0], mats[1], "whitened_cosine") == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("method", ["whitened_pearson", "whitened_cosine", "spearman", "kendall_tau_a"])
def test_masked_comparison_of_a_resampled_rdm_equals_rsatoolbox(method):
    """Pairs of a stimulus with its own copy are missing; rsatoolbox switches the whitening to a projection."""
    it, hit = real_rdms(n_stimuli=14)
    models = model_like(it[0], 2, seed=5)
    idx = np.sort(np.random.default_rng(3).integers(0, 14, 14))
    mv, valid = gather(models, idx)
    nv, _ = gather(hit, idx)
    assert (~valid).sum() > 0
    ours = compare_masked(mv[:, valid], nv[:, valid], method, valid)
    ref = compare(RDMs(vectors(models)).subsample_pattern("index", idx),
                  RDMs(vectors(hit)).subsample_pattern("index", idx), RSATOOLBOX_NAMES[method])
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-10)


def test_whitening_transform_rejects_a_non_triangular_length():
    with pytest.raises(RSABridgeError, match="upper triangle"):
        whitening_transform(np.ones((1, 7)))


@pytest.mark.parametrize("method,vector", [("rho_a", np.ones(10)), ("cosine", np.zeros(10)),
                                           ("whitened_pearson", np.ones(10)), ("whitened_cosine", np.zeros(10))])
def test_undefined_similarity_is_a_clear_error(method, vector):
    other = np.arange(10, dtype=float)
    with pytest.raises(RSABridgeError, match="undefined"):
        compare_vectors(vector, other, method)


def test_nan_rdm_and_too_few_stimuli_are_errors():
    with pytest.raises(RSABridgeError, match="NaN"):
        compare_vectors(np.array([1.0, np.nan, 2.0]), np.arange(3.0), "cosine")
    with pytest.raises(RSABridgeError, match="at least 3"):
        compare_vectors(np.array([1.0, 2.0]), np.array([2.0, 1.0]), "rho_a")


def test_whitened_cosine_of_squared_euclidean_rdms_is_linear_cka_of_the_features():
    """The README's Brain-Score correspondence: linear CKA (Kornblith et al. 2019) computed on features."""
    from scipy.spatial.distance import pdist

    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 7))
    y = x @ rng.normal(size=(7, 5)) + rng.normal(size=(20, 5))
    xc, yc = x - x.mean(0), y - y.mean(0)
    cka = np.linalg.norm(yc.T @ xc) ** 2 / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc))
    ours = compare_vectors(pdist(x, "sqeuclidean"), pdist(y, "sqeuclidean"), "whitened_cosine")[0, 0]
    assert ours == pytest.approx(cka, abs=1e-12)
