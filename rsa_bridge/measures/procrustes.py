"""Orthogonal Procrustes and the generalised shape metrics (Williams et al. 2021), from two stimulus Grams.

n stimuli; X (n x p), Y (n x q) two representations, column-centred (``Xc = H X``); their centred Grams
``Kc = Xc Xc^T``, ``Lc = Yc Yc^T`` (the Grams are centred here, so centred or uncentred Grams may be passed).

- **Procrustes similarity** ``||Xc^T Yc||_* / (||Xc||_F ||Yc||_F)`` in [0, 1]: the cosine between X and the
  best orthogonal rotation of Y (zero-padding the smaller one; max over Q of ``<Xc, Yc Q>_F``). The nuclear
  norm is ``sum sqrt(eig(Kc Lc))`` = the sum of the singular values of ``F_K^T F_L`` with ``F_K = U sqrt(lam)``
  from :func:`rsa_bridge.measures.spectral.gram_spectrum` (singular values of the small r x r product:
  the same numbers as ``sqrt eig(Kc^{1/2} Lc Kc^{1/2})``, without a square root of rounded eigenvalues).
- **angular Procrustes distance** ``arccos(similarity)`` in [0, pi/2]: a metric on representations up to
  rotation, translation and isotropic scaling (Williams et al. 2021, netrep ``LinearMetric(alpha=1,
  score_method="angular")``).
- **Euclidean Procrustes distance** ``min_Q ||X~ - Y~ Q||_F = sqrt(2 - 2 similarity)`` of the unit-norm
  ``X~ = Xc / ||Xc||_F``, ``Y~ = Yc / ||Yc||_F`` in [0, sqrt 2] (netrep ``score_method="euclidean"`` on
  unit-norm inputs).
- **shape metric with alpha** in [0, 1]: the angular Procrustes distance between the partially whitened
  ``Xc Z_alpha(X)`` and ``Yc Z_alpha(Y)``, ``Z_alpha(X) = alpha I + (1 - alpha) (Xc^T Xc)^{-1/2}`` (pseudo-inverse
  on the rank-r part; Williams et al. 2021 and netrep ``whiten``). In the eigenbasis each singular value s of
  Xc becomes ``alpha s + (1 - alpha)``: alpha = 1 is Procrustes, alpha = 0 whitens every direction to 1
  (the angle between the two column spaces: ``arccos(sum rho_i / sqrt(r_X r_Y))`` with the canonical
  correlations rho_i, i.e. CCA). The regulariser is this interpolation, on the unnormalised ``Xc^T Xc``
  (not the covariance ``/n``): alpha trades s against 1, so the result depends on the scale of X when
  0 < alpha < 1 (as in netrep). netrep also clips eigenvalues at 1e-7; here directions below the rank
  tolerance are dropped instead.
- **shape metric with covariance regularisation** (the ``shape`` measure, Williams et al. 2021's partial
  whitening as written in the paper): the angular Procrustes distance between ``Xc C_a(X)^{-1/2}`` and
  ``Yc C_a(Y)^{-1/2}``, ``C_a(X) = (1 - a) Xc^T Xc / n + a I`` (the covariance shrunk towards the identity).
  Each singular value s of Xc becomes ``s / sqrt((1 - a) s^2 / n + a)``: a = 1 is Procrustes, a = 0 is the
  whitened (CCA) case above, and for 0 < a < 1 the two interpolations differ (netrep's code interpolates
  the whitening matrix, the paper the covariance). Invariant to n: the covariance, not ``Xc^T Xc``, is
  shrunk, so a stimulus set's size does not move the balance; it still depends on the scale of X for
  0 < a < 1 (a unit-variance direction is half-way). Cost: one eigendecomposition (n^3) per Gram.

Example::

    >>> X = np.random.default_rng(0).normal(size=(20, 5))
    >>> Q = np.linalg.qr(np.random.default_rng(1).normal(size=(5, 5)))[0]
    >>> round(procrustes_similarity(X @ X.T, (3 * X @ Q) @ (3 * X @ Q).T), 10)
    1.0
"""
from __future__ import annotations

import numpy as np

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.measures.spectral import Spectrum, gram_spectrum, nuclear_norm, same_stimuli


def _pair(k, l) -> tuple[Spectrum, Spectrum]:
    a, b = gram_spectrum(k), gram_spectrum(l)
    same_stimuli(a, b)
    return a, b


def _cosine_of_factors(fa: np.ndarray, fb: np.ndarray) -> float:
    value = nuclear_norm(fa, fb) / (np.linalg.norm(fa) * np.linalg.norm(fb))
    return float(min(max(value, 0.0), 1.0))


def procrustes_similarity(k, l) -> float:
    """``||Xc^T Yc||_* / (||Xc||_F ||Yc||_F)`` in [0, 1] from two (n, n) Grams (or their Spectra)."""
    a, b = _pair(k, l)
    return _cosine_of_factors(a.factor(), b.factor())


def procrustes_angular(k, l) -> float:
    """Angular Procrustes distance ``arccos(procrustes_similarity)`` in radians, in [0, pi/2]; a metric."""
    return float(np.arccos(procrustes_similarity(k, l)))


def procrustes_euclidean(k, l) -> float:
    """Euclidean Procrustes distance of the unit-Frobenius-norm representations: ``sqrt(2 - 2 similarity)``."""
    return float(np.sqrt(max(2.0 - 2.0 * procrustes_similarity(k, l), 0.0)))


def check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise RSABridgeError(f"the shape-metric alpha must be in [0, 1] (0: CCA, 1: Procrustes); got {alpha!r}")
    return alpha


def whitened_factor(s: Spectrum, alpha: float) -> np.ndarray:
    """(n, r) factor of ``Xc Z_alpha``: each direction's singular value s becomes ``alpha s + (1 - alpha)``."""
    alpha = check_alpha(alpha)
    return s.factor(alpha * np.sqrt(s.values) + (1.0 - alpha))


def shape_similarity(k, l, alpha: float = 1.0) -> float:
    """Cosine of the shape metric with ``alpha`` (1: Procrustes similarity; 0: ``sum rho / sqrt(r_X r_Y)``)."""
    a, b = _pair(k, l)
    return _cosine_of_factors(whitened_factor(a, alpha), whitened_factor(b, alpha))


def shape_distance(k, l, alpha: float = 1.0) -> float:
    """Generalised shape metric (angular, radians in [0, pi/2]) of Williams et al. 2021 with ``alpha``."""
    return float(np.arccos(shape_similarity(k, l, alpha)))


def covariance_whitened_factor(s: Spectrum, alpha: float) -> np.ndarray:
    """(n, r) factor of ``Xc ((1 - alpha) Xc^T Xc / n + alpha I)^{-1/2}`` (covariance shrinkage; see the module)."""
    alpha = check_alpha(alpha)
    return s.factor(np.sqrt(s.values) / np.sqrt((1.0 - alpha) * s.values / s.n + alpha))


def shape_metric_similarity(k, l, alpha: float = 0.5) -> float:
    """Cosine of the shape metric with covariance regularisation ``alpha`` in [0, 1] (the ``shape`` measure).

    ``k``, ``l``: (n, n) Grams (or their Spectra). 1: Procrustes similarity; 0: ``sum rho / sqrt(r_X r_Y)``.

    Example::

        >>> x = np.random.default_rng(0).normal(size=(9, 4)); y = x @ np.diag([1.0, 2.0, 3.0, 4.0])
        >>> round(shape_metric_similarity(x @ x.T, y @ y.T, 0.0), 12)   # same column space: whitened alike
        1.0
    """
    a, b = _pair(k, l)
    return _cosine_of_factors(covariance_whitened_factor(a, alpha), covariance_whitened_factor(b, alpha))


def shape_metric_distance(k, l, alpha: float = 0.5) -> float:
    """The angular shape metric ``arccos(shape_metric_similarity)`` in radians, in [0, pi/2]."""
    return float(np.arccos(shape_metric_similarity(k, l, alpha)))
