"""Procrustes, shape metrics, CCA/SVCCA/PWCCA, mutual k-NN and CKNNA from two Grams (issue 28).

Every Gram-form function (:mod:`rsa_bridge.measures.procrustes`, :mod:`.cca`, :mod:`.knn`) is checked to 1e-8
against a feature-space implementation written here from the definitions (scipy's orthogonal Procrustes,
covariance-whitening CCA, scikit-learn's nearest neighbours), on random data with n < p and n > p, plus
hand-worked cases, invariances and the metric axioms of the angular distances.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from sklearn.neighbors import NearestNeighbors

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.measures import cca, knn, procrustes
from rsa_bridge.measures.cka import debiased_cka
from rsa_bridge.measures.spectral import gram_spectrum

TOL = 1e-8


# --- feature-space references ------------------------------------------------------------------------------

def centred(x):
    return x - x.mean(axis=0)


def padded(x, p):
    return np.hstack([x, np.zeros((x.shape[0], p - x.shape[1]))])


def ref_procrustes_similarity(x, y):
    """max over orthogonal Q of <Xc Q, Yc>_F / (|Xc| |Yc|), with scipy's orthogonal Procrustes (zero-padded)."""
    xc, yc = centred(x), centred(y)
    p = max(xc.shape[1], yc.shape[1])
    xc, yc = padded(xc, p), padded(yc, p)
    q, _ = scipy.linalg.orthogonal_procrustes(xc, yc)
    return np.sum((xc @ q) * yc) / (np.linalg.norm(xc) * np.linalg.norm(yc))


def ref_procrustes_euclidean(x, y):
    xc, yc = centred(x), centred(y)
    xc, yc = xc / np.linalg.norm(xc), yc / np.linalg.norm(yc)
    p = max(xc.shape[1], yc.shape[1])
    xc, yc = padded(xc, p), padded(yc, p)
    q, _ = scipy.linalg.orthogonal_procrustes(xc, yc)
    return np.linalg.norm(xc @ q - yc)


def ref_whiten(x, alpha):
    """Xc (alpha I + (1 - alpha) (Xc^T Xc)^{+1/2}) in feature space (pseudo-inverse on the numerical rank)."""
    xc = centred(x)
    _, s, vt = np.linalg.svd(xc, full_matrices=False)
    r = np.linalg.matrix_rank(xc)
    inv_sqrt = (vt[:r].T / s[:r]) @ vt[:r]
    return xc @ (alpha * np.eye(xc.shape[1]) + (1 - alpha) * inv_sqrt)


def ref_shape_distance(x, y, alpha):
    return np.arccos(np.clip(ref_procrustes_similarity(ref_whiten(x, alpha), ref_whiten(y, alpha)), -1, 1))


def ref_canonical(x, y):
    """Canonical correlations and the X-side canonical variates, by whitening each side's covariance."""
    qx, qy = scipy.linalg.orth(centred(x)), scipy.linalg.orth(centred(y))
    a, rho, _ = np.linalg.svd(qx.T @ qy, full_matrices=False)
    return rho, qx @ a


def ref_cov_cca(x, y):
    """Classic CCA (full-rank features): singular values of Cxx^{-1/2} Cxy Cyy^{-1/2}."""
    xc, yc = centred(x), centred(y)
    wx = np.linalg.inv(scipy.linalg.sqrtm(xc.T @ xc).real)
    wy = np.linalg.inv(scipy.linalg.sqrtm(yc.T @ yc).real)
    return np.linalg.svd(wx @ xc.T @ yc @ wy, compute_uv=False)


def ref_pca(x, keep):
    xc = centred(x)
    u, s, _ = np.linalg.svd(xc, full_matrices=False)
    share = np.cumsum(s ** 2) / np.sum(s ** 2)
    r = keep if isinstance(keep, int) else int(np.argmax(share >= keep - 1e-12) + 1)
    return u[:, :r] * s[:r]


def ref_pwcca(x, y):
    rho, h = ref_canonical(x, y)
    weights = np.linalg.norm(centred(x).T @ h, axis=0)
    return np.sum(weights * rho) / np.sum(weights)


def unit_rows(x):
    xc = centred(x)
    return xc / np.linalg.norm(xc, axis=1, keepdims=True)


def ref_neighbours(x, k):
    """Each row's k nearest other rows (Euclidean, on unit-length centred rows), by scikit-learn."""
    nn = NearestNeighbors(n_neighbors=k + 1).fit(unit_rows(x))
    idx = nn.kneighbors(unit_rows(x), return_distance=False)
    return [set(int(j) for j in row if j != i) if i in row else set(int(j) for j in row[:k])
            for i, row in enumerate(idx)]


def ref_mutual_knn(x, y, k):
    nx, ny = ref_neighbours(x, k), ref_neighbours(y, k)
    return np.mean([len(a & b) / k for a, b in zip(nx, ny)])


def ref_hsic_u(a, b):
    """Song et al. 2012, as trace and matrix products, with explicit loops for the masked entries."""
    n = a.shape[0]
    at, bt = a.copy(), b.copy()
    for i in range(n):
        at[i, i] = bt[i, i] = 0.0
    one = np.ones(n)
    return (np.trace(at @ bt) + (one @ at @ one) * (one @ bt @ one) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * one @ at @ bt @ one) / (n * (n - 3))


def ref_cknna(x, y, k):
    kx, ky = unit_rows(x) @ unit_rows(x).T, unit_rows(y) @ unit_rows(y).T
    nx, ny = ref_neighbours(x, k), ref_neighbours(y, k)
    n = len(nx)
    mx, my = np.zeros((n, n)), np.zeros((n, n))
    for i in range(n):
        mx[i, list(nx[i])] = 1
        my[i, list(ny[i])] = 1
    m = mx * my
    return ref_hsic_u(m * kx, m * ky) / np.sqrt(ref_hsic_u(mx * kx, mx * kx) * ref_hsic_u(my * ky, my * ky))


# --- data ------------------------------------------------------------------------------------------------

def pair(n, p, q, seed, rank=None):
    """Two related random feature matrices (n x p, n x q); ``rank``: both of that rank (for n < p cases)."""
    rng = np.random.default_rng(seed)
    if rank is None:
        x = rng.normal(size=(n, p))
        y = x[:, :min(p, q)] @ rng.normal(size=(min(p, q), q)) + 2 * rng.normal(size=(n, q))
        return x, y
    z = rng.normal(size=(n, rank))
    x = z @ rng.normal(size=(rank, p))
    y = (z + rng.normal(size=(n, rank))) @ rng.normal(size=(rank, q))
    return x, y


SHAPES = {"n<p": (20, 60, 45), "n>p": (60, 12, 9)}


def grams(x, y):
    return x @ x.T, y @ y.T


# --- Procrustes and shape metrics -------------------------------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_procrustes_equals_feature_space(shape, seed):
    x, y = pair(*SHAPES[shape], seed)
    k, l = grams(x, y)
    sim = ref_procrustes_similarity(x, y)
    assert 0 < sim < 1
    assert abs(procrustes.procrustes_similarity(k, l) - sim) < TOL
    assert abs(procrustes.procrustes_angular(k, l) - np.arccos(sim)) < TOL
    assert abs(procrustes.procrustes_euclidean(k, l) - ref_procrustes_euclidean(x, y)) < TOL
    # Procrustes: the nuclear norm is sum sqrt(eig(K L)) (centred), read off the symmetric form K^1/2 L K^1/2
    kc, lc = centred(x) @ centred(x).T, centred(y) @ centred(y).T
    lam, vec = np.linalg.eigh(kc)
    root = (vec * np.sqrt(np.clip(lam, 0, None))) @ vec.T
    eig = np.clip(np.linalg.eigvalsh(root @ lc @ root), 0, None)
    # sqrt of the rounded zero eigenvalues adds ~sqrt(eps) each: this route is only good to ~1e-6
    assert abs(np.sqrt(eig).sum() / np.sqrt(np.trace(kc) * np.trace(lc)) - sim) < 1e-6


@pytest.mark.parametrize("shape", [*SHAPES, "low rank n<p"])
@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.7, 1.0])
def test_shape_metric_equals_feature_space(shape, alpha):
    x, y = pair(20, 60, 45, 3, rank=6) if shape == "low rank n<p" else pair(*SHAPES[shape], 3)
    k, l = grams(x, y)
    expected = ref_shape_distance(x, y, alpha)
    assert abs(procrustes.shape_similarity(k, l, alpha) - np.cos(expected)) < TOL
    if expected > 1e-4:   # arccos(1 - e) ~ sqrt(2 e): a distance of 0 is only good to ~1e-8 in either form
        assert abs(procrustes.shape_distance(k, l, alpha) - expected) < TOL
    if alpha == 1.0:
        assert abs(procrustes.shape_distance(k, l, 1.0) - procrustes.procrustes_angular(k, l)) < 1e-12


def test_shape_metric_alpha_zero_is_cca():
    x, y = pair(60, 12, 9, 4)
    rho = ref_cov_cca(x, y)
    expected = np.arccos(rho.sum() / np.sqrt(12 * 9))
    assert abs(procrustes.shape_distance(*grams(x, y), 0.0) - expected) < TOL


def test_procrustes_hand_worked():
    x = np.array([[1.0], [-1.0], [0.0]])
    y = np.array([[1.0], [0.0], [-1.0]])
    k, l = grams(x, y)
    # one centred direction each: ||x^T y||_* = |x.y| = 1, norms sqrt 2: similarity 1/2, angle pi/3
    assert procrustes.procrustes_similarity(k, l) == pytest.approx(0.5, abs=1e-14)
    assert procrustes.procrustes_angular(k, l) == pytest.approx(np.pi / 3, abs=1e-12)
    assert procrustes.procrustes_euclidean(k, l) == pytest.approx(1.0, abs=1e-12)   # sqrt(2 - 2 * 0.5)
    # two orthogonal directions vs one: X = [[1,0],[0,1],[-1,0],[0,-1]], Y = its first column
    x2 = np.array([[1.0, 0], [0, 1], [-1, 0], [0, -1]])
    y2 = x2[:, :1]
    # X^T Y = [2, 0]^T: nuclear norm 2; |X| = 2, |Y| = sqrt 2: similarity 1/sqrt 2
    assert procrustes.procrustes_similarity(*grams(x2, y2)) == pytest.approx(1 / np.sqrt(2), abs=1e-14)


def test_procrustes_invariances():
    rng = np.random.default_rng(5)
    x, y = pair(30, 8, 8, 5)
    q = np.linalg.qr(rng.normal(size=(8, 8)))[0]
    base = procrustes.procrustes_similarity(*grams(x, y))
    moved = 4.5 * x @ q + rng.normal(size=8)      # rotation, isotropic scaling, translation
    assert abs(procrustes.procrustes_similarity(*grams(moved, y)) - base) < 1e-10
    assert procrustes.procrustes_angular(*grams(x, moved)) < 1e-6      # arccos(1 - eps) ~ sqrt(eps)
    for alpha in (0.0, 0.5):
        assert abs(procrustes.shape_distance(*grams(x @ q + 1.0, y), alpha)
                   - procrustes.shape_distance(*grams(x, y), alpha)) < 1e-10


@pytest.mark.parametrize("distance", ["angular", "euclidean", "shape0", "shape05"])
def test_distances_are_metrics(distance):
    fn = {"angular": procrustes.procrustes_angular, "euclidean": procrustes.procrustes_euclidean,
          "shape0": lambda k, l: procrustes.shape_distance(k, l, 0.0),
          "shape05": lambda k, l: procrustes.shape_distance(k, l, 0.5)}[distance]
    rng = np.random.default_rng(6)
    for _ in range(20):
        base = rng.normal(size=(15, 5))
        reps = [base @ rng.normal(size=(5, 5)) + s * rng.normal(size=(15, 5)) for s in rng.uniform(0.1, 2, 3)]
        g = [r @ r.T for r in reps]
        d_ab, d_bc, d_ac = fn(g[0], g[1]), fn(g[1], g[2]), fn(g[0], g[2])
        assert d_ac <= d_ab + d_bc + 1e-12
        assert abs(fn(g[1], g[0]) - d_ab) < 1e-12           # symmetric
        assert d_ab > 0


# --- CCA ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", ["n>p", "low rank n<p"])
def test_cca_family_equals_feature_space(shape):
    x, y = pair(20, 60, 45, 7, rank=6) if shape == "low rank n<p" else pair(*SHAPES[shape], 7)
    k, l = grams(x, y)
    rho, _ = ref_canonical(x, y)
    assert np.abs(cca.canonical_correlations(k, l) - rho).max() < TOL
    assert abs(cca.mean_cca(k, l) - rho.mean()) < TOL
    assert abs(cca.pwcca(k, l) - ref_pwcca(x, y)) < TOL
    assert abs(cca.pwcca(l, k) - ref_pwcca(y, x)) < TOL
    assert abs(cca.pwcca(k, l) - cca.mean_cca(k, l)) > 1e-4       # the weights matter on this data
    if shape == "n>p":
        assert np.abs(ref_cov_cca(x, y) - rho).max() < 1e-8     # the two references agree


@pytest.mark.filterwarnings("ignore:CCA. a representation spans")   # 99 % of random n < p data: all 19
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("keep", [0.99, 0.6, 4])
def test_svcca_equals_feature_space(shape, keep):
    x, y = pair(*SHAPES[shape], 8)
    expected = ref_cov_cca(ref_pca(x, keep), ref_pca(y, keep)).mean()
    assert abs(cca.svcca(*grams(x, y), keep=keep) - expected) < TOL


def test_cca_n_less_than_p_full_rank_is_all_ones():
    x, y = pair(20, 60, 45, 9)              # both span the whole centred space: every rho is 1
    with pytest.warns(RuntimeWarning, match="every canonical correlation is 1"):
        assert abs(cca.mean_cca(*grams(x, y)) - 1.0) < 1e-10
    with pytest.warns(RuntimeWarning, match="every canonical correlation is 1"):
        assert abs(cca.pwcca(*grams(x, y)) - 1.0) < 1e-10
    # one side of full rank n - 1 is enough: a 3-unit Y lies inside X's column space
    z = np.random.default_rng(9).normal(size=(20, 3))
    with pytest.warns(RuntimeWarning, match="spans all 19 centred directions"):
        assert abs(cca.mean_cca(*grams(x, z)) - 1.0) < 1e-10
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cca.mean_cca(*grams(*pair(20, 60, 45, 9, rank=6)))       # no warning below full rank


def test_cca_hand_worked_and_invariances():
    x = np.array([[1.0], [-1.0], [0.0]])
    y = np.array([[1.0], [0.0], [-1.0]])
    assert cca.mean_cca(*grams(x, y)) == pytest.approx(0.5, abs=1e-14)
    assert cca.pwcca(*grams(x, y)) == pytest.approx(0.5, abs=1e-14)
    rng = np.random.default_rng(10)
    x, y = pair(40, 6, 5, 10)
    a = rng.normal(size=(6, 6))                  # CCA: invariant to any invertible map, PWCCA to rotation/scale
    q = np.linalg.qr(a)[0]
    assert abs(cca.mean_cca(*grams(x @ a + 3.0, y)) - cca.mean_cca(*grams(x, y))) < 1e-10
    assert abs(cca.pwcca(*grams(2.0 * x @ q, y)) - cca.pwcca(*grams(x, y))) < 1e-10
    assert abs(cca.svcca(*grams(2.0 * x @ q, y)) - cca.svcca(*grams(x, y))) < 1e-10


def test_spectrum_rank_and_keep():
    x, _ = pair(20, 60, 45, 11, rank=6)
    s = gram_spectrum(x @ x.T)
    assert s.rank == 6
    assert s.top(3).rank == 3 and s.top(1.0).rank == 6 and s.top(100).rank == 6
    for bad in (0, 1.5, -0.2):
        with pytest.raises(RSABridgeError, match="keep"):
            s.top(bad)


# --- nearest neighbours -------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("topk", [1, 5, 10])
def test_knn_measures_equal_feature_space(shape, topk):
    x, y = pair(*SHAPES[shape], 12)
    k, l = grams(x, y)
    m = ref_mutual_knn(x, y, topk)
    assert 0 < m < 1
    assert abs(knn.mutual_knn(k, l, topk) - m) < 1e-12
    if topk > 1:
        assert abs(knn.cknna(k, l, topk) - ref_cknna(x, y, topk)) < TOL


def test_cknna_with_every_neighbour_is_debiased_cka():
    x, y = pair(25, 7, 6, 13)
    kn, ln = unit_rows(x) @ unit_rows(x).T, unit_rows(y) @ unit_rows(y).T
    assert abs(knn.cknna(*grams(x, y), topk=24) - debiased_cka(kn, ln)) < 1e-10


def test_knn_hand_worked():
    # four points on a line at 0, 1, 3, 7 vs 0, 1, 7, 3: with k = 1 (Euclidean, no normalising)
    x = np.array([[0.0], [1.0], [3.0], [7.0]])
    y = np.array([[0.0], [1.0], [7.0], [3.0]])
    k, l = grams(x, y)
    # centred 1-d rows: cosines are +-1, so use the raw inner products on centred values... simpler: mutual
    # neighbours by largest centred inner product: x centred = [-2.75, -1.75, 0.25, 4.25]
    # row 0: largest x0*xj (j != 0) is with 1 (4.8125); y centred = [-2.75, -1.75, 4.25, 0.25]: also 1
    # row 1: x: j=0 (4.8125); y: j=0. row 2: x: j=3 (1.0625); y: j=3 (1.0625). row 3: x: j=2; y: j=2
    assert knn.mutual_knn(k, l, 1, normalize=False) == 1.0
    # y swaps which points are far: permute y's labels 2 <-> 0 and the neighbours of rows 0, 1, 2 change
    y2 = y[[2, 1, 0, 3]]
    # y2 centred = [4.25, -1.75, -2.75, 0.25]: row 0 -> 3 (1.0625) vs x: 1; row 1 -> 2 vs x: 0;
    # row 2 -> 1 vs x: 3; row 3 -> 0 vs x: 2: no common neighbour
    assert knn.mutual_knn(k, y2 @ y2.T, 1, normalize=False) == 0.0


def test_knn_invariances():
    rng = np.random.default_rng(14)
    x, y = pair(40, 6, 5, 14)
    q = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    moved = 3.0 * x @ q + 2.0
    assert knn.mutual_knn(*grams(moved, y)) == knn.mutual_knn(*grams(x, y))
    assert abs(knn.cknna(*grams(moved, y)) - knn.cknna(*grams(x, y))) < 1e-10
    assert knn.mutual_knn(*grams(x, x)) == 1.0 and abs(knn.cknna(*grams(x, x)) - 1.0) < 1e-12


def test_uncentred_matches_platonic_rep_convention():
    """center=False: neighbours and kernel from the raw rows normalised, as platonic-rep on raw features."""
    x, y = pair(30, 8, 7, 15)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    yn = y / np.linalg.norm(y, axis=1, keepdims=True)
    sx, sy = xn @ xn.T, yn @ yn.T
    np.fill_diagonal(sx, -np.inf)
    np.fill_diagonal(sy, -np.inf)
    nx, ny = np.argsort(-sx, axis=1)[:, :5], np.argsort(-sy, axis=1)[:, :5]
    expected = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(nx, ny)])
    assert abs(knn.mutual_knn(*grams(x, y), 5, center=False) - expected) < 1e-12


# --- bad input ----------------------------------------------------------------------------------------------

def test_bad_input_is_one_line_error():
    x, y = pair(20, 5, 5, 16)
    k, l = grams(x, y)
    cases = [(lambda: procrustes.procrustes_similarity(k, l[:10, :10]), "different numbers"),
             (lambda: procrustes.shape_distance(k, l, 1.5), "alpha"),
             (lambda: cca.mean_cca(np.ones((20, 20)), l), "constant"),
             (lambda: procrustes.procrustes_similarity(k[:2], l), "square"),
             (lambda: knn.mutual_knn(k, l, 20), "neighbours"),
             (lambda: knn.mutual_knn(k, l, 0), "neighbours"),
             (lambda: cca.svcca(k, np.where(np.eye(20) > 0, np.nan, l)), "NaN")]
    for call, words in cases:
        with pytest.raises(RSABridgeError, match=words) as info:
            call()
        assert "\n" not in str(info.value)


def test_module_examples_run():
    import doctest
    import importlib

    for name in ("spectral", "procrustes", "cca", "knn"):
        module = importlib.import_module(f"rsa_bridge.measures.{name}")
        result = doctest.testmod(module, extraglobs={"np": np}, optionflags=doctest.ELLIPSIS)
        assert result.attempted > 0 and result.failed == 0, name
