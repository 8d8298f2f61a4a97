"""Nearest-neighbour alignment from two stimulus Grams: mutual k-NN and CKNNA (Huh et al. 2024).

Both take the two (n, n) Grams and prepare each as a kernel: ``center=True`` (default) centres it
(``H K H``: column-centred features), ``normalize=True`` (default) rescales it to the cosines
``K_ij / sqrt(K_ii K_jj)`` (unit-length rows, as platonic-rep normalises features before its metrics).
A stimulus's **k nearest neighbours** (``topk``) are the k other stimuli with the largest kernel value in its row
(with normalisation: the k nearest on the unit sphere; ties go to the lower index). To reproduce
platonic-rep on raw features exactly, pass the *uncentred* Gram with ``center=False``.

- **mutual k-NN** ``(1/n) sum_i |N_K(i) ∩ N_L(i)| / k`` in [0, 1] (platonic-rep ``mutual_knn``).
- **CKNNA** (platonic-rep ``cknna``, unbiased): with ``M_K`` (row i: 1 at i's k neighbours in K), ``M_L``
  likewise and ``M = M_K o M_L``,
  ``CKNNA = HSIC_u(M o K, M o L) / sqrt(HSIC_u(M_K o K, M_K o K) HSIC_u(M_L o L, M_L o L))`` where
  ``HSIC_u(A, B) = [sum(A~ o B~^T) + 1^T A~ 1 1^T B~ 1 / ((n-1)(n-2)) - 2/(n-2) 1^T A~ B~ 1] / (n(n-3))``,
  ``A~`` = A with a zero diagonal (Song et al. 2012's unbiased HSIC, on these non-symmetric masked kernels).
  The paper's text writes the alignment as a masked sum of row-centred kernels; its code (above) is what
  gives the published numbers and is the definition taken here. platonic-rep adds 1e-6 to the
  denominator; here a non-positive denominator gives NaN with a warning. Needs n >= 4.

Example::

    >>> X = np.random.default_rng(0).normal(size=(30, 8))
    >>> mutual_knn(X @ X.T, X @ X.T, topk=5), round(cknna(X @ X.T, X @ X.T, topk=5), 12)
    (1.0, 1.0)
"""
from __future__ import annotations

import warnings

import numpy as np

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.measures.spectral import ConstantRepresentation, check_gram

#: default number of neighbours (platonic-rep's default ``topk``)
DEFAULT_K = 10


def knn_kernel(k, *, center: bool = True, normalize: bool = True) -> np.ndarray:
    """The (n, n) kernel the neighbours and CKNNA are computed from (see the module docstring)."""
    from rsa_bridge.measures.cka import center_gram

    k = check_gram(k)
    if center:
        k = center_gram(k)
    if not np.any(k):
        raise ConstantRepresentation("a representation is constant over the stimuli (its centred Gram is zero); "
                                     "its neighbours are undefined")
    if normalize:
        d = np.diag(k)
        if not (d > 0).all():
            raise RSABridgeError("a stimulus has a zero-length (centred) representation, so its cosine "
                                 "neighbours are undefined; pass normalize=False")
        s = 1.0 / np.sqrt(d)
        k = k * s[:, None] * s[None, :]
    return k


def check_k(k: int, n: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n - 1:
        raise RSABridgeError(f"the number of neighbours k must be an integer in 1..n-1 = {n - 1} for {n} "
                             f"stimuli; got {k!r}")
    return int(k)


def knn_mask(kernel: np.ndarray, k: int) -> np.ndarray:
    """(n, n) bool: row i is True at the k stimuli j != i with the largest ``kernel[i, j]`` (ties: lower j)."""
    n = kernel.shape[0]
    k = check_k(k, n)
    scores = np.array(kernel, dtype=np.float64)
    np.fill_diagonal(scores, -np.inf)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    mask = np.zeros((n, n), dtype=bool)
    mask[np.arange(n)[:, None], order] = True
    return mask


def _prepared(k, l, center: bool, normalize: bool) -> tuple[np.ndarray, np.ndarray]:
    a, b = knn_kernel(k, center=center, normalize=normalize), knn_kernel(l, center=center, normalize=normalize)
    if a.shape != b.shape:
        raise RSABridgeError(f"the Gram matrices cover different numbers of stimuli: {a.shape[0]} and {b.shape[0]}")
    return a, b


def mutual_knn(k, l, topk: int = DEFAULT_K, *, center: bool = True, normalize: bool = True) -> float:
    """Mean share of each stimulus's k nearest neighbours that the two representations have in common."""
    a, b = _prepared(k, l, center, normalize)
    common = (knn_mask(a, topk) & knn_mask(b, topk)).sum(axis=1)
    return float(np.mean(common / topk))


def hsic_unbiased(a: np.ndarray, b: np.ndarray) -> float:
    """Song et al. 2012's unbiased HSIC of two (n, n) kernels (need not be symmetric; diagonals ignored)."""
    n = a.shape[0]
    if n < 4:
        raise RSABridgeError(f"the unbiased HSIC needs at least 4 stimuli; got {n}")
    a, b = np.array(a, dtype=np.float64), np.array(b, dtype=np.float64)
    np.fill_diagonal(a, 0.0)
    np.fill_diagonal(b, 0.0)
    value = (np.sum(a * b.T) + a.sum() * b.sum() / ((n - 1) * (n - 2))
             - 2.0 * float(a.sum(axis=0) @ b.sum(axis=1)) / (n - 2))
    return float(value / (n * (n - 3)))


def cknna(k, l, topk: int = DEFAULT_K, *, center: bool = True, normalize: bool = True) -> float:
    """Centred kernel nearest-neighbour alignment (Huh et al. 2024, unbiased); NaN when a self-term is <= 0."""
    a, b = _prepared(k, l, center, normalize)
    mask_a, mask_b = knn_mask(a, topk), knn_mask(b, topk)
    both = mask_a & mask_b
    cross = hsic_unbiased(both * a, both * b)
    self_a, self_b = hsic_unbiased(mask_a * a, mask_a * a), hsic_unbiased(mask_b * b, mask_b * b)
    if not (self_a > 0 and self_b > 0):
        warnings.warn("CKNNA: a self-alignment is not positive (too few neighbours or a degenerate kernel); "
                      "CKNNA is NaN", RuntimeWarning, stacklevel=2)
        return float("nan")
    return float(cross / np.sqrt(self_a * self_b))
