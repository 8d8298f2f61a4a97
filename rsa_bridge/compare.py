"""Comparison of RDMs: one function per method, looked up in :data:`METHODS`.

Every method works on the strictly upper triangles (``n*(n-1)/2`` dissimilarities) of two RDMs that
cover the same stimuli. :func:`compare_rdms` aligns them by ``stimulus_id`` first (never by position);
:func:`compare_vectors` compares many RDM vectors at once with one matrix product where the method
allows it.

================= ========================================================== ============================
name              definition on the two dissimilarity vectors a, b           rsatoolbox ``compare`` method
================= ========================================================== ============================
spearman          Pearson r of the ranks (average ranks for ties)            ``spearman``
pearson           Pearson r                                                  ``corr``
kendall_tau_a     (concordant - discordant pairs) / (m (m - 1) / 2)          ``tau-a``
rho_a             12 sum (R_a - mean)(R_b - mean) / (m^3 - m) with average   ``rho-a``
                  ranks R (Spearman's rho without the tie correction of the
                  denominator; equals ``spearman`` when there are no ties)
cosine            a.b / (|a| |b|) (no centring)                              ``cosine``
whitened_pearson  ``whitened_cosine`` of the mean-centred vectors             ``corr_cov`` (sigma_k=None)
whitened_cosine   cosine of the double-centred second-moment matrices        ``cosine_cov`` (sigma_k=None)
                  G = -H D H / 2 (H the centring matrix, D the RDM), i.e.
                  their Frobenius cosine: the RDM cosine whitened by the
                  covariance of distance estimates under i.i.d. pattern
                  noise (Diedrichsen et al. 2021; = linear CKA)
================= ========================================================== ============================

``m`` is the number of stimulus pairs, n(n-1)/2. Each method has one record in
:data:`rsa_bridge.definitions.COMPARISONS` (function, peers' names, aliases, bootstrap path);
``docs/reference/registries.md`` is generated from those records.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import xarray as xr
from scipy import stats

from rsa_bridge.align import align_rdms
from rsa_bridge.definitions import COMPARISONS
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.rdm import ROW, upper_triangle
from rsa_bridge.registry import Registry


def _standardize(x: np.ndarray, what: str) -> np.ndarray:
    """Rows centred and scaled to unit norm; a constant row is an error."""
    x = x - x.mean(axis=-1, keepdims=True)
    norm = np.sqrt((x * x).sum(axis=-1, keepdims=True))
    if (norm == 0).any():
        raise RSABridgeError(
            f"{what} RDM is constant (all dissimilarities equal), so its correlation with another RDM is undefined"
        )
    return x / norm


def _pearson_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.clip(_standardize(a, "a model") @ _standardize(b, "a neural").T, -1.0, 1.0)


def _rank(x: np.ndarray) -> np.ndarray:
    return stats.rankdata(x, axis=-1, method="average")


def _spearman_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _pearson_matrix(_rank(a), _rank(b))


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


def _kendall_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([[kendall_tau_a(x, y) for y in b] for x in a])


def _rho_a_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    m = a.shape[-1]
    ra = _rank(a)
    rb = _rank(b)
    for what, r in (("a model", ra), ("a neural", rb)):
        if (r.max(axis=-1) == r.min(axis=-1)).any():
            raise RSABridgeError(f"{what} RDM is constant (all dissimilarities equal), so rho-a is undefined")
    ra = ra - ra.mean(axis=-1, keepdims=True)
    rb = rb - rb.mean(axis=-1, keepdims=True)
    return ra @ rb.T * (12.0 / (float(m) ** 3 - m))


def _unit_rows(x: np.ndarray, what: str, why: str) -> np.ndarray:
    norm = np.sqrt((x * x).sum(axis=-1, keepdims=True))
    if (norm == 0).any():
        raise RSABridgeError(f"{what} RDM {why}, so its cosine with another RDM is undefined")
    return x / norm


def _cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    why = "is all zeros"
    return np.clip(_unit_rows(a, "a model", why) @ _unit_rows(b, "a neural", why).T, -1.0, 1.0)


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


def _whitened(a: np.ndarray, b: np.ndarray, centre: bool) -> np.ndarray:
    if centre:
        a = a - a.mean(axis=-1, keepdims=True)
        b = b - b.mean(axis=-1, keepdims=True)
    why = "is constant (all dissimilarities equal)" if centre else "is all zeros"
    wa = _unit_rows(whitening_transform(a), "a model", why)
    wb = _unit_rows(whitening_transform(b), "a neural", why)
    return np.clip(wa @ wb.T, -1.0, 1.0)


def _whitened_pearson_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _whitened(a, b, centre=True)


def _whitened_cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _whitened(a, b, centre=False)


#: method name -> function (a (L, m), b (R, m)) -> (L, R) similarities, built from the one record per method in
#: :data:`rsa_bridge.definitions.COMPARISONS` (which also holds the peers' names and the bootstrap path)
METHODS: Registry[Callable[[np.ndarray, np.ndarray], np.ndarray]] = Registry(
    COMPARISONS.what, {name: globals()[c.function] for name, c in COMPARISONS.items()}, aliases=COMPARISONS.aliases)

#: method name -> the rsatoolbox ``compare`` method with the same definition
RSATOOLBOX_NAMES: dict[str, str] = {name: c.rsatoolbox for name, c in COMPARISONS.items()}


def compare_vectors(a: np.ndarray, b: np.ndarray, method: str = "spearman") -> np.ndarray:
    """Similarity of every RDM vector in ``a`` with every one in ``b``.

    Args:
        a: (L, m) or (m,) upper-triangle dissimilarity vectors (e.g. one per model layer).
        b: (R, m) or (m,) vectors over the same stimulus pairs in the same order (e.g. one per subject).
        method: one of :data:`METHODS` or an alias (rsatoolbox's ``corr``, ``tau-a`` ...; case ignored).

    Returns:
        (L, R) float64 similarities (dimensionless, in [-1, 1] for the correlation methods).
    """
    method = METHODS.resolve(method)
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(b, dtype=np.float64))
    if a.shape[-1] != b.shape[-1]:
        raise RSABridgeError(f"RDM vectors differ in length: {a.shape[-1]} vs {b.shape[-1]}")
    if a.shape[-1] < 3:
        raise RSABridgeError("comparing RDMs needs at least 3 stimuli")
    for what, x in (("model", a), ("neural", b)):
        if not np.isfinite(x).all():
            raise RSABridgeError(f"the {what} RDM contains NaN or inf")
    return METHODS[method](a, b)


def compare_rdms(model_rdm, neural_rdm, method: str = "spearman") -> float:
    """Similarity of two RDMs over their upper triangles.

    Args:
        model_rdm, neural_rdm: (n, n) RDM DataArrays (matched by ``stimulus_id``: the neural RDM is
            reordered to the model's order; differing id sets are an error), or plain square arrays
            already in the same stimulus order.
        method: ``spearman`` (default) or another name in :data:`METHODS` (see the module table).

    Returns:
        The similarity as a Python float.

    Examples:
        The same RDM with its stimuli listed in reverse order: DataArrays are matched by id, plain
        arrays are taken in the order given (by hand: Spearman of 1..6 with 6, 5, 3, 4, 2, 1 is
        1 - 6 * 68 / (6 * 35) = -0.9429):

        >>> import numpy as np
        >>> from rsa_bridge.rdm import rdm_dataarray
        >>> d = np.array([[0, 1, 2, 3], [1, 0, 4, 5], [2, 4, 0, 6], [3, 5, 6, 0]], dtype=float)
        >>> model = rdm_dataarray(d, ["a", "b", "c", "d"])
        >>> brain = model.sel(stimulus_row=["d", "c", "b", "a"], stimulus_col=["d", "c", "b", "a"])
        >>> round(compare_rdms(model, brain), 12)
        1.0
        >>> round(compare_rdms(model.values, brain.values), 4)
        -0.9429
    """
    if isinstance(model_rdm, xr.DataArray) and isinstance(neural_rdm, xr.DataArray):
        for what, rdm in (("model", model_rdm), ("neural", neural_rdm)):
            ids = [str(s) for s in rdm[ROW].values] if ROW in rdm.coords else []
            if len(set(ids)) != len(ids):
                dup = sorted({s for s in ids if ids.count(s) > 1})
                raise RSABridgeError(f"the {what} RDM has duplicate stimulus ids: {', '.join(map(repr, dup[:5]))}")
        model_rdm, neural_rdm = align_rdms(model_rdm, neural_rdm)
    a, b = np.asarray(model_rdm), np.asarray(neural_rdm)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape != b.shape:
        raise RSABridgeError(f"RDMs must be square and of equal size; got {a.shape} and {b.shape}")
    if a.shape[0] < 3:
        raise RSABridgeError(f"RDMs need at least 3 stimuli to be compared; got {a.shape[0]}")
    for what, m in (("model", a), ("neural", b)):
        if m.dtype.kind not in "biuf":
            raise RSABridgeError(f"the {what} RDM holds {m.dtype} values, not numbers")
        if not np.allclose(m, m.T, rtol=1e-7, atol=1e-12, equal_nan=True):
            i, j = np.argwhere(~np.isclose(m, m.T, rtol=1e-7, atol=1e-12, equal_nan=True))[0]
            raise RSABridgeError(f"the {what} RDM is not symmetric (entry [{i}, {j}] = {m[i, j]:.6g} but "
                                 f"[{j}, {i}] = {m[j, i]:.6g}); an RDM holds one dissimilarity per pair")
    return float(compare_vectors(upper_triangle(a), upper_triangle(b), method)[0, 0])
