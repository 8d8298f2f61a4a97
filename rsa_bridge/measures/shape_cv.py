"""Cross-validated shape metric: the alignment is fitted on training stimuli and scored on held-out ones.

The ``shape`` measure (:mod:`rsa_bridge.measures.procrustes`) fits and scores the rotation on the same
stimuli, so with as many units as stimuli it can align almost anything. Here, per fold of
:func:`rsa_bridge.measures.folds.make_folds` (the folds of linear predictivity: ``n_splits``, ``seed``):

1. centre both representations by their **training** means;
2. whiten each by its **training** covariance shrunk towards I, ``C_a = (1 - a) Xtr^T Xtr / n_tr + a I``
   (``a`` = ``alpha``; ``a = 0``: pseudo-inverse on the training rank);
3. fit the rotation on the training stimuli: ``Xtr~^T Ytr~ = P S R^T`` (thin SVD, min(r_X, r_Y) directions),
   ``Q = P R^T`` (orthogonal Procrustes; a partial isometry that is zero outside the training directions,
   so unit directions the training stimuli never reached are not aligned by chance);
4. score the held-out stimuli: ``<Xte~ Q, Yte~>_F / (||Xte~||_F ||Yte~||_F)`` (a cosine in [-1, 1]; the
   norms count the held-out components outside the training directions, whitened by ``1/sqrt(a)``).

The score is the mean over folds. All of it is computed from the two (n, n) Grams: with the training-
centred Gram ``G``, ``G_tt = U diag(lam) U^T`` gives the training coordinates ``U sqrt(lam)`` and the held-out
rows' coordinates in the same basis ``G_et U / sqrt(lam)`` (their remaining norm is ``diag(G_ee)`` minus
that), so no feature matrix is needed. Cost: per fold an eigendecomposition of each n_tr x n_tr training
Gram. Not bootstrapped over stimuli (a stimulus drawn twice can sit in a training and a test fold: the
held-out score would leak).

Example::

    >>> x = np.random.default_rng(0).normal(size=(40, 3)); y = x @ np.linalg.qr(np.eye(3)[::-1])[0]
    >>> round(shape_cv_similarity(x @ x.T, y @ y.T, alpha=1.0, n_splits=4), 10)
    1.0
"""
from __future__ import annotations

import numpy as np

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.measures.procrustes import check_alpha
from rsa_bridge.measures.spectral import ConstantRepresentation, check_gram


def _train_centred(k: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Gram of every stimulus's features minus the training mean: ``P K P^T``, ``P = I - 1 w^T``."""
    w = np.zeros(k.shape[0])
    w[train] = 1.0 / len(train)
    kw = k @ w
    return k - kw[None, :] - kw[:, None] + float(w @ kw)


def _whitened(g: np.ndarray, train: np.ndarray, test: np.ndarray, alpha: float):
    """(training coords (n_tr, r), held-out coords (n_te, r), squared held-out norm) after whitening."""
    g_tt = g[np.ix_(train, train)]
    lam, u = np.linalg.eigh((g_tt + g_tt.T) / 2)
    lam, u = lam[::-1], u[:, ::-1]
    keep = lam > len(train) * np.finfo(np.float64).eps * max(lam[0], 0.0) if lam.size and lam[0] > 0 else lam > np.inf
    if not keep.any():
        raise ConstantRepresentation("a representation is constant over a fold's training stimuli; the "
                                     "cross-validated shape metric is undefined")
    lam, u = lam[keep], u[:, keep]
    scale = 1.0 / np.sqrt((1.0 - alpha) * lam / len(train) + alpha)
    f_tr = u * (np.sqrt(lam) * scale)
    proj = g[np.ix_(test, train)] @ (u / np.sqrt(lam))
    outside = max(float(np.trace(g[np.ix_(test, test)]) - np.sum(proj * proj)), 0.0)
    f_te = proj * scale
    norm2 = float(np.sum(f_te * f_te)) + (outside / alpha if alpha > 0 else 0.0)
    return f_tr, f_te, norm2


def fold_score(k: np.ndarray, l: np.ndarray, train, test, alpha: float) -> float:
    """The held-out cosine of one fold (see the module) from two (n, n) Grams and index arrays."""
    train, test = np.asarray(train), np.asarray(test)
    xtr, xte, nx = _whitened(_train_centred(k, train), train, test, alpha)
    ytr, yte, ny = _whitened(_train_centred(l, train), train, test, alpha)
    a, _, ct = np.linalg.svd(xtr.T @ ytr, full_matrices=False)
    q = a @ ct                                    # (r_X, r_Y) partial isometry
    if not (nx > 0 and ny > 0):
        raise ConstantRepresentation("a representation is constant over a fold's held-out stimuli")
    return float(np.sum((xte @ q) * yte) / np.sqrt(nx * ny))


def shape_cv_similarity(k, l, alpha: float = 0.5, n_splits: int = 5, seed: int = 0) -> float:
    """Mean over ``n_splits`` folds (seed ``seed``) of the held-out shape-metric cosine (see the module).

    ``k``, ``l``: (n, n) Grams (centred or not) of the same stimuli; ``alpha`` in [0, 1].
    """
    from rsa_bridge.measures.folds import make_folds

    alpha = check_alpha(alpha)
    k, l = check_gram(k, "the first Gram"), check_gram(l, "the second Gram")
    if k.shape != l.shape:
        raise RSABridgeError(f"the Gram matrices cover different numbers of stimuli: {k.shape[0]} and {l.shape[0]}")
    folds = make_folds(k.shape[0], n_splits, seed)
    return float(np.mean([fold_score(k, l, tr, te, alpha) for tr, te in folds]))


def check_shape_cv(n_stimuli: int, options=None, labels=None) -> None:
    """Refuse (before the forward pass) folds whose held-out sets have fewer than 2 stimuli."""
    n_splits = getattr(options, "n_splits", 5)
    if n_stimuli < 2 * n_splits:
        raise RSABridgeError(f"--measure shape_cv scores held-out stimuli: {n_stimuli} stimuli in {n_splits} folds "
                             f"leave fewer than 2 per fold; use --folds {max(2, n_stimuli // 2)} or fewer, or "
                             "more stimuli")
