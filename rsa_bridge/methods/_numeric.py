"""The array code the built-in comparison methods share (numpy / scipy; imported when a method is called).

Shapes: ``a`` (L, m), ``b`` (R, m) upper-triangle dissimilarity vectors (scipy ``squareform`` order) -> (L, R).
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from rsa_bridge.errors import RSABridgeError


#: a vector whose range (max - min) is at most this times its largest |value| counts as constant
CONSTANT_RTOL = 8 * float(np.finfo(np.float64).eps)


def scaled(x: np.ndarray) -> np.ndarray:
    """Rows (last axis) multiplied by a power of two that brings their largest |value| into [0.5, 1).

    Exact (a power of two changes only the exponent), so every scale-invariant result is bit-identical to the
    unscaled one, and the products that follow can neither overflow (1e300) nor underflow (1e-300). A zero row
    stays zero; NaN stays NaN (a row of NaN is left as it is).

    Example:
        >>> scaled(np.array([[3e300, -1e300], [0.0, 0.0]])).tolist()[1]
        [0.0, 0.0]
    """
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        top = np.max(np.abs(x), axis=-1, keepdims=True, initial=0.0)
    exponent = np.frexp(np.where(np.isfinite(top), top, 0.0))[1]
    return np.ldexp(x, -exponent)


def constant_rows(x: np.ndarray) -> np.ndarray:
    """Rows (last axis) whose range is at most :data:`CONSTANT_RTOL` times their largest |value| (relative, so
    an RDM scaled by 1e-300 is not called constant and one scaled by 1e300 does not overflow)."""
    x = scaled(x)
    spread = np.max(x, axis=-1, initial=-np.inf) - np.min(x, axis=-1, initial=np.inf)
    return spread <= CONSTANT_RTOL * np.max(np.abs(x), axis=-1, initial=0.0)


def standardize(x: np.ndarray, what: str) -> np.ndarray:
    """Rows centred and scaled to unit norm (after :func:`scaled`); a constant row is an error."""
    if constant_rows(x).any():
        raise RSABridgeError(
            f"{what} RDM is constant (all dissimilarities equal), so its correlation with another RDM is undefined"
        )
    x = scaled(x)
    x = x - x.mean(axis=-1, keepdims=True)
    norm = np.sqrt((x * x).sum(axis=-1, keepdims=True))
    return x / norm


def pearson_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r of every row of a with every row of b, (L, R)."""
    return np.clip(standardize(a, "a model") @ standardize(b, "a neural").T, -1.0, 1.0)


def rank(x: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis (ties share their mean rank), from 1."""
    return stats.rankdata(x, axis=-1, method="average")


def kendall_tau_a(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-a of two vectors in O(m log m).

    scipy's ``kendalltau`` gives tau-b = (C - D) / sqrt((n0 - n1)(n0 - n2)); tau-a is (C - D) / n0,
    with n0 = m(m-1)/2 and n1, n2 the numbers of pairs tied in a and in b.
    """
    m = a.shape[0]
    n0 = m * (m - 1) / 2.0

    def tied_pairs(x: np.ndarray) -> float:
        counts = np.unique(x, return_counts=True)[1].astype(np.float64)
        return float((counts * (counts - 1) / 2.0).sum())

    n1, n2 = tied_pairs(a), tied_pairs(b)
    if n1 == n0 or n2 == n0:
        raise RSABridgeError("an RDM is constant (all dissimilarities equal): Kendall's tau-a is undefined")
    tau_b = stats.kendalltau(a, b, variant="b").statistic
    return float(tau_b * np.sqrt((n0 - n1) * (n0 - n2)) / n0)


def unit_rows(x: np.ndarray, what: str, why: str) -> np.ndarray:
    """Rows scaled to unit norm; a zero row is an error (``why`` says what makes it zero)."""
    x = scaled(x)
    norm = np.sqrt((x * x).sum(axis=-1, keepdims=True))
    if (norm == 0).any():
        raise RSABridgeError(f"{what} RDM {why}, so its cosine with another RDM is undefined")
    return x / norm


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a.b / (|a| |b|) of every pair of rows, (L, R)."""
    why = "is all zeros"
    return np.clip(unit_rows(a, "a model", why) @ unit_rows(b, "a neural", why).T, -1.0, 1.0)


def n_stimuli_from_pairs(m: int) -> int:
    """The number of stimuli n of an RDM vector with m = n(n-1)/2 entries."""
    n = int(round((1.0 + np.sqrt(1.0 + 8.0 * m)) / 2.0))
    if n * (n - 1) // 2 != m:
        raise RSABridgeError(f"{m} dissimilarities are not the upper triangle of a square RDM")
    return n


def whitening_transform(vectors: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """RDM vectors in the whitened space of ``whitened_cosine`` (rsatoolbox ``_cov_weighting``, sigma_k=None).

    The RDM D becomes G = -D/2 (zero diagonal); G is double-centred and returned as its strict upper
    triangle times sqrt(2) followed by its diagonal, so the dot product of two transformed vectors is
    the Frobenius inner product of their centred matrices.

    With missing pairs (``valid`` not all True: the pairs of a stimulus with its own bootstrap copy)
    rsatoolbox replaces the double centring by the projection
    ``v - W S (S' W S)^-1 S' v`` where S maps row/column effects onto the entries (pair rows
    e_i + e_j with weight 1/2, diagonal rows e_k with weight 1); this reproduces it.

    Args:
        vectors: (K, m_valid) dissimilarities of the valid pairs.
        valid: (m,) bool over the n(n-1)/2 upper-triangle pairs (scipy ``squareform`` order), or None
            when every pair is present.

    Returns:
        (K, m + n) float64; entries of missing pairs are 0.
    """
    vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    k = vectors.shape[0]
    if valid is None or bool(np.all(valid)):
        m = vectors.shape[1]
        valid_mask = np.ones(m, dtype=bool)
    else:
        valid_mask = np.asarray(valid, dtype=bool)
        m = valid_mask.shape[0]
    n = n_stimuli_from_pairs(m)
    rows, cols = np.triu_indices(n, k=1)
    g = np.zeros((k, n, n))
    g[:, rows[valid_mask], cols[valid_mask]] = -0.5 * vectors
    g = g + g.transpose(0, 2, 1)
    if valid_mask.all():
        row_mean = g.sum(axis=-1) / n
        grand = g.sum(axis=(-1, -2)) / (n * n)
        centred = g - row_mean[:, :, None] - row_mean[:, None, :] + grand[:, None, None]
        pairs, diag = centred[:, rows, cols], np.diagonal(centred, axis1=1, axis2=2)
    else:
        adjacency = np.zeros((n, n))
        adjacency[rows[valid_mask], cols[valid_mask]] = 1.0
        adjacency = adjacency + adjacency.T
        system = 0.5 * (np.diag(adjacency.sum(axis=1)) + adjacency) + np.eye(n)
        coef = np.linalg.solve(system, g.sum(axis=-1).T).T  # (K, n)
        pairs = g[:, rows, cols] - 0.5 * (coef[:, rows] + coef[:, cols])
        pairs[:, ~valid_mask] = 0.0
        diag = -coef
    return np.concatenate([pairs * np.sqrt(2.0), diag], axis=1)


def whitened_unit(x: np.ndarray, valid: np.ndarray | None, centre: bool, what: str, why: str) -> np.ndarray:
    """Unit rows of the whitening transform of x (mean-centred first when ``centre``)."""
    x = scaled(np.atleast_2d(x))
    if centre:
        if constant_rows(x).any():
            raise RSABridgeError(f"{what} RDM {why}, so its cosine with another RDM is undefined")
        x = x - x.mean(axis=-1, keepdims=True)
    return unit_rows(whitening_transform(x, valid), what, why)


# pools for the Nili noise ceiling (rsatoolbox ``pool_rdm``): (R, m) -> (m,)

def pool_ranks(x: np.ndarray) -> np.ndarray:
    return np.mean(stats.rankdata(x, axis=-1), axis=0)


def pool_zscores(x: np.ndarray) -> np.ndarray:
    x = scaled(x)
    z = x - np.mean(x, axis=1, keepdims=True)
    z = z / np.std(z, axis=1, keepdims=True)
    pooled = np.mean(z, axis=0)
    return pooled - pooled.min()


def pool_rms(x: np.ndarray) -> np.ndarray:
    x = scaled(x)
    return np.mean(x / np.sqrt(np.mean(x ** 2, axis=1, keepdims=True)), axis=0)


def pool_mean(x: np.ndarray) -> np.ndarray:
    return np.mean(x, axis=0)


# finishing steps of the chunked methods (rsa_bridge.chunked_compare.Moments -> (L, R))

def _check_constant(mo, what: str) -> None:
    _check_finite(mo)
    for who, constant in (("a model", mo.constant_x), ("a neural", mo.constant_y)):
        if constant.any():
            raise RSABridgeError(f"{who} RDM is constant (all dissimilarities equal), so {what} is undefined")


def finish_pearson(mo) -> np.ndarray:
    _check_constant(mo, "its correlation with another RDM")
    cov = mo.sxy - np.outer(mo.sx, mo.sy) / mo.m
    var_x = mo.sxx - mo.sx ** 2 / mo.m
    var_y = mo.syy - mo.sy ** 2 / mo.m
    return np.clip(cov / np.sqrt(np.outer(var_x, var_y)), -1.0, 1.0)


def finish_rho_a(mo) -> np.ndarray:
    _check_constant(mo, "rho-a")
    return mo.sxy * (12.0 / (float(mo.m) ** 3 - mo.m))


def _check_finite(mo) -> None:
    """A one-line refusal, never a silent NaN or 0, when the chunked sums overflowed (an RDM whose later chunks
    are ~1e150 times larger than its first)."""
    if not all(np.isfinite(v).all() for v in (mo.sx, mo.sy, mo.sxx, mo.syy, mo.sxy)):
        raise RSABridgeError("an RDM's dissimilarities span too many orders of magnitude for the chunked sums of an "
                             "RDM store; rescale it, or compare without --rdm-store")


def finish_cosine(mo) -> np.ndarray:
    _check_finite(mo)
    for who, sq in (("a model", mo.sxx), ("a neural", mo.syy)):
        if (sq == 0).any():
            raise RSABridgeError(f"{who} RDM is all zeros, so its cosine with another RDM is undefined")
    return np.clip(mo.sxy / np.sqrt(np.outer(mo.sxx, mo.syy)), -1.0, 1.0)
