"""PLS regression (Brain-Score's ``pls`` protocol: 25 components, no scaling) computed from the stimulus Gram.

Brain-Score's V4/IT "neural predictivity" fits ``sklearn.cross_decomposition.PLSRegression(n_components=25,
scale=False)`` on all neuroids at once (PLS2, NIPALS with power iterations, regression deflation).
This module runs *the same iterations in the dual*: every feature-space vector is kept as a combination
of training stimuli, so only the training-centred Gram ``Kt = (X_tr - m)(X_tr - m)^T`` and the cross Gram
``Kx`` (test x train, same centring; :func:`rsa_bridge.measures.ridge.fold_kernels`) are needed.

Per component k (``Xk = D X`` with ``D`` the product of the deflations so far, ``Kk = D Kt D``):

1. power iteration from ``u`` = the first non-zero column of ``Yk``: ``w = Xk^T u / |Xk^T u|``, i.e.
   dual ``a = u / sqrt(u^T Kk u)``; ``t = Xk w = Kk a``; ``c = Yk^T t / t^T t``; ``u = Yk c / c^T c``;
   stop when ``|w - w_old|^2 = (a - a_old)^T Kk (a - a_old) < tol`` (1e-6, at most 500 iterations;
   one iteration for a single neuroid), as scikit-learn;
2. loadings ``p = Xk^T t / t^T t = X^T t / t^T t``; ``q = Yk^T t / t^T t``; deflate ``Kk`` and ``Yk`` by t.

With ``W = X^T A`` (``A`` = the ``D a`` of each component) and ``P = X^T B`` (``B`` = ``t / t^T t``):
``P^T W = B^T Kt A``, the rotations ``W pinv(P^T W)`` and the prediction
``(x - m) W pinv(P^T W) Q^T + mean(y_tr) = Kx A pinv(B^T Kt A) Q^T + mean(y_tr)`` — scikit-learn's
``predict`` without ever forming a (units x neuroids) coefficient matrix. Sign flips of the weights
do not change predictions. Example::

    >>> rng = np.random.default_rng(0); X = rng.normal(size=(60, 200)); Y = X[:, :3]
    >>> pls_fold(X @ X.T, Y, np.arange(50), np.arange(50, 60), n_components=5).shape
    (10, 3)
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy.linalg import pinv

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.measures.ridge import fold_kernels

#: Brain-Score's number of PLS components
BRAIN_SCORE_COMPONENTS = 25


def pls_fold(gram: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray,
             n_components: int = BRAIN_SCORE_COMPONENTS, max_iter: int = 500, tol: float = 1e-6) -> np.ndarray:
    """(n_te, t) test predictions of PLS regression fitted on ``train`` (see the module docstring).

    Args:
        gram: (n, n) Gram of the features (any centring); y: (n, t) responses; train/test: index arrays.
        n_components: PLS components (Brain-Score: 25); at most the number of training stimuli.
    """
    kt, kx = fold_kernels(np.asarray(gram, dtype=np.float64), train, test)
    y = np.asarray(y, dtype=np.float64)
    y = y[:, None] if y.ndim == 1 else y
    n = len(train)
    if not 1 <= n_components <= n:
        raise RSABridgeError(f"PLS with {n_components} components needs at least that many training stimuli; "
                             f"the fold has {n}")
    y_mean = y[train].mean(axis=0)
    yk = y[train] - y_mean
    kk = kt.copy()
    deflate = np.eye(n)
    eps = np.finfo(np.float64).eps
    dual_w, dual_p, y_load = [], [], []
    for k in range(n_components):
        yk[:, np.all(np.abs(yk) < 10 * eps, axis=0)] = 0.0
        nonzero = [j for j in range(yk.shape[1]) if np.any(np.abs(yk[:, j]) > eps)]
        if not nonzero:
            warnings.warn(f"y residual is constant at PLS component {k}; using {k} components", RuntimeWarning,
                          stacklevel=2)
            break
        u = yk[:, nonzero[0]].copy()
        a_old = None
        for _ in range(max_iter):
            a = u / (u @ u)
            a = a / (np.sqrt(max(a @ kk @ a, 0.0)) + eps)
            t = kk @ a
            c = yk.T @ t / (t @ t)
            u = yk @ c / (c @ c + eps)
            if yk.shape[1] == 1:
                break
            if a_old is not None:
                diff = a - a_old
                if diff @ kk @ diff < tol:
                    break
            a_old = a
        tt = t @ t
        dual_w.append(deflate @ a)
        dual_p.append(t / tt)
        q = yk.T @ t / tt
        y_load.append(q)
        yk -= np.outer(t, q)
        # K <- P K P and D <- P D with P = I - t t^T / t^T t, as rank-one updates (O(n^2), no n^3 products)
        kt_t = kk @ t
        kk = kk - np.outer(t, kt_t) / tt - np.outer(kt_t, t) / tt + np.outer(t, t) * (t @ kt_t) / tt ** 2
        deflate = deflate - np.outer(t, t @ deflate) / tt
    if not dual_w:
        return np.tile(y_mean, (len(test), 1))
    a_mat, b_mat, q_mat = np.stack(dual_w, 1), np.stack(dual_p, 1), np.stack(y_load, 1)
    rot = a_mat @ pinv(b_mat.T @ kt @ a_mat, check_finite=False)
    return kx @ rot @ q_mat.T + y_mean
