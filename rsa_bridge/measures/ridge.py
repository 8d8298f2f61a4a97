"""Ridge regression in the dual, from the stimulus Gram: every alpha and neuroid from one eigendecomposition.

Model: ``y = (x - m_train) w + b`` fitted on the training stimuli with penalty ``alpha |w|^2`` and an
unpenalised intercept (scikit-learn ``Ridge(alpha, fit_intercept=True)``). Features are centred with the
*training* mean ``m_train``; the intercept is the training mean of y. With ``K`` any Gram ``X X^T`` of the
features (uncentred, or centred with any fixed vector: the training re-centring removes it):

- training kernel ``Kt = (X_tr - m)(X_tr - m)^T`` and cross kernel ``Kx = (X_te - m)(X_tr - m)^T``, both
  from K by subtracting row/column means over the training stimuli;
- dual coefficients ``c = (Kt + alpha I)^{-1} (y_tr - mean y_tr)``, prediction ``Kx c + mean y_tr``
  (kernel ridge with a linear kernel equals primal ridge: ``w = (X_tr - m)^T c``).

One ``eigh(Kt) = Q diag(s) Q^T`` per fold gives all alphas: ``c = Q diag(1/(s+alpha)) Q^T y``.
**Alpha selection** (scikit-learn ``RidgeCV`` with its default efficient leave-one-out, "gcv" mode):
the leave-one-out residual of training stimulus i is ``c_i / d_i`` with
``d = diag(G^{-1}) - (G^{-1} 1) / n_tr`` (``G = Kt + alpha I``; the second term leaves the intercept
unpenalised). The score of an alpha is minus the mean squared LOO residual over stimuli and neuroids
(one alpha for all neuroids) or over stimuli per neuroid (``per_target=True``, ``alpha_per_target``);
the first alpha in the grid wins ties, as in scikit-learn.

Cost per fold: ``O(n_tr^3)`` for the eigendecomposition plus ``O(n_tr^2 t)`` per alpha for t neuroids;
nothing depends on the number of units. Example::

    >>> rng = np.random.default_rng(0); X = rng.normal(size=(40, 100)); y = X[:, :1]
    >>> pred, alpha = ridge_cv_fold(X @ X.T, y, np.arange(30), np.arange(30, 40), [0.1, 1.0, 10.0])
    >>> pred.shape
    (10, 1)
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rsa_bridge.errors import RSABridgeError

#: default alpha grid: 11 values 1e-5 .. 1e5 (log-spaced)
DEFAULT_ALPHAS = tuple(float(a) for a in np.logspace(-5, 5, 11))


def fold_kernels(gram: np.ndarray, train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Kt (n_tr, n_tr), Kx (n_te, n_tr)): Grams of features centred with the training mean."""
    kt = gram[np.ix_(train, train)]
    kx = gram[np.ix_(test, train)]
    col = kt.mean(axis=0)
    total = col.mean()
    kt_c = kt - col[None, :] - col[:, None] + total
    kx_c = kx - kx.mean(axis=1)[:, None] - col[None, :] + total
    return (kt_c + kt_c.T) / 2, kx_c


def check_alphas(alphas: Sequence[float]) -> np.ndarray:
    a = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    if a.size == 0 or not np.isfinite(a).all() or (a <= 0).any():
        raise RSABridgeError(f"ridge alphas must be finite numbers > 0; got {list(a)}")
    return a


class DualRidge:
    """One fold's eigendecomposition, reused for every alpha.

    Args:
        gram: (n, n) Gram of the features over all stimuli.
        y: (n, t) responses (t neuroids).
        train, test: index arrays.
    """

    def __init__(self, gram: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> None:
        kt, self.kx = fold_kernels(np.asarray(gram, dtype=np.float64), train, test)
        y = np.asarray(y, dtype=np.float64)
        y = y[:, None] if y.ndim == 1 else y
        ytr = y[train]
        self.y_mean = ytr.mean(axis=0)
        self.s, self.q = np.linalg.eigh(kt)
        # eigenvalues at rounding level belong to the null space of Kt (rank < n_tr when units < stimuli):
        # set them to exactly 0 (exact LOO) and keep their directions out of predictions (Kx is 0 there)
        null = self.s <= max(float(self.s.max()), 0.0) * len(train) * np.finfo(np.float64).eps
        self.s[null] = 0.0
        self.range = ~null
        self.qty = self.q.T @ (ytr - self.y_mean)
        self.qt1 = self.q.sum(axis=0)  # Q^T 1
        self.q2 = self.q * self.q
        self.n_train = len(train)

    def coef(self, alpha) -> np.ndarray:
        """(n_tr, t) dual coefficients ``(Kt + alpha I)^{-1} y_c`` restricted to the range of Kt (where Kx
        lives); ``alpha`` a float or a (t,) array (one per neuroid)."""
        q, s = self.q[:, self.range], self.s[self.range]
        return q @ (self.qty[self.range] / (s[:, None] + np.asarray(alpha, dtype=np.float64)))

    def predict(self, alpha) -> np.ndarray:
        """(n_te, t) predictions at ``alpha`` (a float or one per neuroid)."""
        return self.kx @ self.coef(alpha) + self.y_mean

    def loo_errors(self, alpha: float) -> tuple[np.ndarray, np.ndarray]:
        """(LOO residuals (n_tr, t), dual coefficients (n_tr, t)) at ``alpha``."""
        inv = 1.0 / (self.s + alpha)
        c = self.q @ (self.qty * inv[:, None])
        d = self.q2 @ inv - (self.q @ (inv * self.qt1)) / self.n_train
        return c / d[:, None], c


def ridge_cv_fold(gram: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray,
                  alphas: Sequence[float] = DEFAULT_ALPHAS, per_target: bool = False
                  ) -> tuple[np.ndarray, np.ndarray | float]:
    """Fit on ``train`` with the LOO-best alpha, predict ``test``.

    Returns:
        predictions (n_te, t) and the chosen alpha (a float, or (t,) array with ``per_target``).
    """
    alphas = check_alphas(alphas)
    fold = DualRidge(gram, y, train, test)
    best_score, best_alpha = None, None
    for alpha in alphas:
        looe, _ = fold.loo_errors(float(alpha))
        sq = looe ** 2
        score = -sq.mean(axis=0) if per_target else -float(sq.mean())
        if best_score is None:
            best_score = np.array(score, dtype=np.float64, copy=True)
            best_alpha = np.full(np.shape(score), float(alpha)) if per_target else float(alpha)
        elif per_target:
            better = score > best_score
            best_score[better], best_alpha[better] = score[better], float(alpha)
        elif score > best_score:
            best_score, best_alpha = score, float(alpha)
    return fold.predict(best_alpha), best_alpha


def ridge_path(gram: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray,
               alphas: Sequence[float]) -> np.ndarray:
    """(n_alphas, n_te, t) test predictions of ridge at each alpha (no selection)."""
    fold = DualRidge(gram, y, train, test)
    return np.stack([fold.predict(float(a)) for a in check_alphas(alphas)])
