"""Canonical correlation measures from two stimulus Grams: mean CCA, SVCCA, PWCCA.

n stimuli; ``Kc = U_X diag(lam_X) U_X^T`` and ``Lc = U_Y diag(lam_Y) U_Y^T`` the rank-r eigendecompositions
of the centred Grams (:func:`rsa_bridge.measures.spectral.gram_spectrum`). The columns of ``U_X`` are an
orthonormal basis of the column space of the centred features, so the **canonical correlations** are the
singular values of ``M = U_X^T U_Y = A diag(rho) B^T`` (the cosines of the principal angles between the two
column spaces), ``rho_1 >= ... >= rho_m``, ``m = min(r_X, r_Y)``.

- **mean CCA** ``sum rho_i / m`` (Raghu et al. 2017's summary; Kornblith et al. 2019's ``rho bar``).
  With n <= rank(X) + rank(Y) the column spaces share directions and many rho are 1; when one
  representation has rank n - 1 (a layer with at least as many units as stimuli) the other's column space
  lies inside its own and *every* rho is 1 whatever the data (a RuntimeWarning says so): use SVCCA then.
- **SVCCA** (Raghu et al. 2017): the same on the leading principal directions of each representation,
  ``keep`` = a fraction of the variance (default 0.99: the fewest leading directions whose eigenvalues sum
  to >= 99 % of the total, as in Raghu et al. and Kornblith et al.) or an int (that many directions).
- **PWCCA** (Morcos et al. 2018): ``sum w_i rho_i / sum w_i`` with the weight of canonical direction i its
  share of the *first* representation, ``w_i = ||Xc^T h_i||_2 = sqrt(a_i^T diag(lam_X) a_i)`` with the unit
  canonical variate ``h_i = U_X a_i``. Morcos et al. use the L1 norm ``sum_j |<h_i, x_j>|`` over units j,
  which depends on the unit basis and so is not a function of the Gram; the L2 norm is its
  rotation-invariant counterpart (the definition chosen here). Asymmetric: ``pwcca(K, L)`` weights by K.

Example::

    >>> x = np.array([[1.0], [-1.0], [0.0]]); y = np.array([[1.0], [0.0], [-1.0]])
    >>> round(mean_cca(x @ x.T, y @ y.T), 12)    # one direction each: |cos| of the centred vectors
    0.5
"""
from __future__ import annotations

import warnings

import numpy as np

from rsa_bridge.measures.spectral import Spectrum, gram_spectrum, same_stimuli

#: SVCCA's default share of the variance kept in each representation (Raghu et al. 2017)
SVCCA_KEEP = 0.99


def _pair(k, l) -> tuple[Spectrum, Spectrum]:
    a, b = gram_spectrum(k), gram_spectrum(l)
    same_stimuli(a, b)
    return a, b


def _saturated(a: Spectrum, b: Spectrum) -> None:
    """Warn when one representation spans every centred direction (rank n - 1): then every rho is 1."""
    if max(a.rank, b.rank) >= a.n - 1:
        warnings.warn(f"CCA: a representation spans all {a.n - 1} centred directions of the {a.n} stimuli (as many "
                      "units as stimuli or more), so every canonical correlation is 1 whatever the other one; "
                      "keep fewer directions (svcca) or use procrustes", RuntimeWarning, stacklevel=3)


def canonical_correlations(k, l) -> np.ndarray:
    """(m,) canonical correlations, descending, ``m = min(rank Kc, rank Lc)``, from two Grams (or Spectra).

    Warns when a representation has rank n - 1 (then all are 1)."""
    a, b = _pair(k, l)
    _saturated(a, b)
    return np.clip(np.linalg.svd(a.vectors.T @ b.vectors, compute_uv=False), 0.0, 1.0)


def mean_cca(k, l) -> float:
    """Mean canonical correlation in [0, 1]."""
    return float(np.mean(canonical_correlations(k, l)))


def svcca(k, l, keep: float | int = SVCCA_KEEP) -> float:
    """Mean canonical correlation of the leading directions of each (``keep``: variance share or count)."""
    a, b = _pair(k, l)
    return mean_cca(a.top(keep), b.top(keep))


def pwcca(k, l) -> float:
    """Projection-weighted mean canonical correlation, weights from the first Gram (L2 projections)."""
    a, b = _pair(k, l)
    _saturated(a, b)
    u, rho, _ = np.linalg.svd(a.vectors.T @ b.vectors, full_matrices=False)
    weights = np.sqrt(np.einsum("i,ij->j", a.values, u * u))
    return float(np.sum(weights * np.clip(rho, 0.0, 1.0)) / np.sum(weights))
