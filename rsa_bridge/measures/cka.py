"""Centred kernel alignment (CKA) between two representations of the same stimuli, from Gram matrices.

Definitions (n stimuli; K, L are n x n kernel (Gram) matrices, e.g. ``K = X X^T`` for features X):

- **linear CKA** (Kornblith et al. 2019): ``CKA = <HKH, HLH>_F / (||HKH||_F ||HLH||_F)`` with the
  centring matrix ``H = I - 11^T/n``. With linear kernels of column-centred features this equals
  ``||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)``. Also: rsatoolbox ``cosine_cov`` on squared Euclidean
  RDMs and rsa-bridge ``whitened_cosine`` (since ``HKH = -H D H / 2`` for D the squared distances).
- **debiased CKA** (Nguyen et al. 2021): HSIC replaced by the unbiased estimator of Song et al. 2012,
  ``HSIC_u(K, L) = [tr(K~L~) + 1^T K~ 1 1^T L~ 1 / ((n-1)(n-2)) - 2/(n-2) 1^T K~ L~ 1] / (n(n-3))``
  with ``K~`` = K with its diagonal set to zero; ``CKA_u = HSIC_u(K,L) / sqrt(HSIC_u(K,K) HSIC_u(L,L))``.
  Computed here as the Frobenius cosine of the *U-centred* Grams (Szekely & Rizzo 2014), which equals
  it exactly. Needs n >= 4; NaN with a warning when a self-HSIC_u is not positive.
- **RBF CKA**: linear CKA of ``K_ij = exp(-d_ij^2 / (2 sigma^2))`` with ``sigma = fraction x median
  d_ij`` over the pairs i < j (Kornblith et al. use ``fraction`` = "threshold"; their median also
  counts the zero diagonal, ours does not). Squared distances come from the Gram:
  ``d_ij^2 = K_ii + K_jj - 2 K_ij``.

Peers: Brain-Score has ``cka`` (linear, feature space); Net2Brain's ``CKA`` (linear); thingsvision's
``CKA(kernel='linear'|'rbf', unbiased=...)``; rsatoolbox has none by that name (``cosine_cov``).

Example::

    >>> X = np.random.default_rng(0).normal(size=(50, 30))
    >>> round(linear_cka(X @ X.T, X @ X.T), 12)
    1.0
"""
from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from rsa_bridge.errors import RSABridgeError

#: CKA variants by name: (kernel, debiased)
CKA_KINDS = ("linear", "debiased", "rbf")


def _square(k, what: str) -> np.ndarray:
    k = np.asarray(k, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise RSABridgeError(f"{what} must be a square (n, n) Gram matrix; got shape {k.shape}")
    if not np.isfinite(k).all():
        raise RSABridgeError(f"{what} contains NaN or inf")
    return k


def center_gram(k) -> np.ndarray:
    """``H K H`` (n, n): the Gram of column-centred features. Symmetrised."""
    k = np.asarray(k, dtype=np.float64)
    col = k.mean(axis=0)
    out = k - col[None, :] - k.mean(axis=1)[:, None] + col.mean()
    return (out + out.T) / 2


def u_center_gram(k) -> np.ndarray:
    """The U-centred Gram (zero diagonal): ``<U(K), U(L)>_F = n (n - 3) HSIC_u(K, L)``."""
    k = np.array(k, dtype=np.float64)
    n = k.shape[0]
    if n < 4:
        raise RSABridgeError(f"debiased CKA needs at least 4 stimuli; got {n}")
    np.fill_diagonal(k, 0.0)
    means = k.sum(axis=0) / (n - 2)
    means -= means.sum() / (2 * (n - 1))
    k -= means[None, :]
    k -= means[:, None]
    np.fill_diagonal(k, 0.0)
    return k


def _cosine(a: np.ndarray, b: np.ndarray, what: str) -> float:
    aa, bb = float(np.vdot(a, a)), float(np.vdot(b, b))
    if not (aa > 0 and bb > 0):
        warnings.warn(f"{what}: a self-similarity is not positive (constant representation?); CKA is NaN",
                      RuntimeWarning, stacklevel=3)
        return float("nan")
    return float(np.vdot(a, b) / np.sqrt(aa * bb))


def linear_cka(k, l) -> float:
    """Linear CKA of two (n, n) Grams (centred or not): a number in [0, 1]."""
    k, l = _square(k, "the first Gram"), _square(l, "the second Gram")
    if k.shape != l.shape:
        raise RSABridgeError(f"Gram matrices cover different numbers of stimuli: {k.shape[0]} and {l.shape[0]}")
    return _cosine(center_gram(k), center_gram(l), "linear CKA")


def debiased_cka(k, l) -> float:
    """Debiased linear CKA (unbiased HSIC) of two (n, n) Grams; can be slightly negative."""
    k, l = _square(k, "the first Gram"), _square(l, "the second Gram")
    if k.shape != l.shape:
        raise RSABridgeError(f"Gram matrices cover different numbers of stimuli: {k.shape[0]} and {l.shape[0]}")
    return _cosine(u_center_gram(k), u_center_gram(l), "debiased CKA")


def sq_distances(k) -> np.ndarray:
    """Squared Euclidean distances ``K_ii + K_jj - 2 K_ij`` of a linear Gram (n, n), clipped at 0."""
    k = np.asarray(k, dtype=np.float64)
    d = np.diag(k)
    return np.maximum(d[:, None] + d[None, :] - 2 * k, 0.0)


def rbf_gram(k, fraction: float = 1.0) -> np.ndarray:
    """RBF kernel from a linear Gram: ``exp(-d^2 / (2 sigma^2))``, ``sigma = fraction x median_{i<j} d_ij``."""
    if not fraction > 0:
        raise RSABridgeError(f"the RBF bandwidth fraction must be > 0; got {fraction!r}")
    d2 = sq_distances(k)
    iu = np.triu_indices(d2.shape[0], 1)
    sigma = fraction * float(np.median(np.sqrt(d2[iu])))
    if not sigma > 0:
        raise RSABridgeError("all stimuli have the same representation, so the RBF bandwidth is zero")
    return np.exp(-d2 / (2 * sigma ** 2))


def rbf_cka(k, l, fraction: float = 1.0) -> float:
    """Linear CKA of the RBF kernels of two linear Grams (bandwidth: ``fraction`` x median distance)."""
    k, l = _square(k, "the first Gram"), _square(l, "the second Gram")
    return _cosine(center_gram(rbf_gram(k, fraction)), center_gram(rbf_gram(l, fraction)), "RBF CKA")


def cka(k, l, kind: str = "linear", *, fraction: float = 1.0) -> float:
    """CKA of ``kind`` (``linear``, ``debiased``, ``rbf``) between two Grams.

    ``k`` and ``l`` may be arrays (same stimulus order) or DataArrays with ``stimulus_row`` /
    ``stimulus_col`` coords, which are aligned by ``stimulus_id`` (a mismatch is an error).
    """
    if isinstance(k, xr.DataArray) or isinstance(l, xr.DataArray):
        k, l = align_grams(k, l)
    if kind == "linear":
        return linear_cka(k, l)
    if kind == "debiased":
        return debiased_cka(k, l)
    if kind == "rbf":
        return rbf_cka(k, l, fraction)
    raise RSABridgeError(f"unknown CKA kind {kind!r}; choose one of {', '.join(CKA_KINDS)}")


def align_grams(k: xr.DataArray, l: xr.DataArray) -> tuple[np.ndarray, np.ndarray]:
    """Both Grams as arrays in ``k``'s stimulus order, matched by ``stimulus_id``."""
    from rsa_bridge.align import check_same_ids, reorder_rdm
    from rsa_bridge.rdm import ROW

    if not (isinstance(k, xr.DataArray) and isinstance(l, xr.DataArray)):
        raise RSABridgeError("pass both Grams as DataArrays (with stimulus ids) or both as arrays")
    ids = [str(s) for s in k[ROW].values]
    check_same_ids(ids, l[ROW].values, "the first Gram's stimuli", "the second Gram's stimuli")
    return np.asarray(k.values, dtype=np.float64), np.asarray(reorder_rdm(l, ids).values, dtype=np.float64)
