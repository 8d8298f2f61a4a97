"""The eigenbasis of a centred stimulus Gram: what the Procrustes, shape-metric and CCA measures are made of.

For features X (n stimuli x p units) with column-centred ``Xc = H X`` (``H = I - 11^T/n``), the centred Gram
``Kc = H K H = Xc Xc^T`` has the eigendecomposition ``Kc = U diag(lam) U^T``. Its rank-r part gives

- ``U`` (n x r): an orthonormal basis of the column space of Xc (what CCA needs);
- ``lam`` (r,): the squared singular values of Xc, i.e. n x the variances of the principal components
  (what Procrustes, the shape metrics and SVCCA need): ``Xc = U diag(sqrt(lam)) V^T`` for some
  orthonormal V (p x r), so every measure that is invariant to orthogonal transforms of the units is a
  function of ``(U, lam)`` alone.

**Rank.** Eigenvalues ``lam <= rtol x lam_max`` are treated as zero (default ``rtol = n x eps``; eigh's error
on an eigenvalue is about ``eps x lam_max``, so smaller values cannot be told from 0 in float64). The centring
direction ``1`` is always in the null space, so r <= n - 1.

Example::

    >>> X = np.random.default_rng(0).normal(size=(6, 3))
    >>> s = gram_spectrum(X @ X.T)
    >>> s.rank, bool(np.allclose(s.values.sum(), ((X - X.mean(0)) ** 2).sum()))
    (3, True)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rsa_bridge.errors import RSABridgeError


class ConstantRepresentation(RSABridgeError):
    """A representation is the same for every stimulus (its centred Gram is zero): the measures are undefined."""


@dataclass(frozen=True)
class Spectrum:
    """The nonzero eigenpairs of a centred Gram: ``values`` (r,) descending, ``vectors`` (n, r) orthonormal."""

    values: np.ndarray
    vectors: np.ndarray

    @property
    def rank(self) -> int:
        return int(self.values.shape[0])

    @property
    def n(self) -> int:
        return int(self.vectors.shape[0])

    def factor(self, scale: np.ndarray | None = None) -> np.ndarray:
        """(n, r) ``U diag(scale)``; ``scale`` defaults to ``sqrt(values)`` (a feature matrix with this Gram)."""
        return self.vectors * (np.sqrt(self.values) if scale is None else scale)[None, :]

    def top(self, keep: float | int) -> Spectrum:
        """The leading directions: ``keep`` an int (that many, at most the rank) or a fraction in (0, 1] of the
        variance (the fewest leading directions whose eigenvalues sum to at least ``keep`` x the total)."""
        if isinstance(keep, (int, np.integer)) and not isinstance(keep, bool):
            if keep < 1:
                raise RSABridgeError(f"the number of directions to keep must be >= 1; got {keep}")
            r = min(int(keep), self.rank)
        else:
            keep = float(keep)
            if not 0 < keep <= 1:
                raise RSABridgeError(f"the fraction of variance to keep must be in (0, 1]; got {keep!r}")
            share = np.cumsum(self.values) / self.values.sum()
            r = int(min(np.searchsorted(share, keep - 1e-12) + 1, self.rank))
        return Spectrum(self.values[:r], self.vectors[:, :r])

    def permuted(self, order: np.ndarray) -> Spectrum:
        """The spectrum of ``Kc[order][:, order]`` (the stimuli relabelled): the same values, rows reordered."""
        return Spectrum(self.values, self.vectors[np.asarray(order)])


def check_gram(k, what: str = "the Gram matrix") -> np.ndarray:
    """``k`` as a finite, square, float64 (n, n) array, or RSABridgeError."""
    k = np.asarray(k, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise RSABridgeError(f"{what} must be a square (n, n) Gram matrix; got shape {k.shape}")
    if not np.isfinite(k).all():
        raise RSABridgeError(f"{what} contains NaN or inf")
    if k.shape[0] < 3:
        raise RSABridgeError(f"{what} covers {k.shape[0]} stimuli; these measures need at least 3")
    return k


def gram_spectrum(k, *, rtol: float | None = None) -> Spectrum:
    """The rank-r eigenpairs of the centred ``H K H`` of an (n, n) Gram (centred or not); see the module."""
    if isinstance(k, Spectrum):
        return k
    from rsa_bridge.measures.cka import center_gram

    kc = center_gram(check_gram(k))
    values, vectors = np.linalg.eigh(kc)
    values, vectors = values[::-1], vectors[:, ::-1]
    r = _rank(values, kc.shape[0], rtol)
    return Spectrum(values[:r].copy(), np.ascontiguousarray(vectors[:, :r]))


def factor_spectrum(f, *, rtol: float | None = None) -> Spectrum:
    """:func:`gram_spectrum` of the Gram ``F F^T`` from the (n, q) factor ``F`` itself (e.g. stimulus x neuroid
    responses): a thin SVD of the column-centred F (n q^2 instead of the n^3 eigenproblem; the same eigenpairs up to
    rounding and the vectors' signs). With q >= n the Gram is decomposed instead. Same rank tolerance.

    Example::

        >>> f = np.random.default_rng(0).normal(size=(40, 3))
        >>> a, b = factor_spectrum(f), gram_spectrum(f @ f.T)
        >>> a.rank, bool(np.allclose(a.values, b.values))
        (3, True)
    """
    f = np.asarray(f, dtype=np.float64)
    if f.ndim != 2 or f.shape[1] >= f.shape[0]:
        return gram_spectrum(f @ f.T, rtol=rtol)
    if not np.isfinite(f).all():
        raise RSABridgeError("the factor of the Gram matrix contains NaN or inf")
    w, s, _ = np.linalg.svd(f - f.mean(axis=0), full_matrices=False)
    values = s * s
    r = _rank(values, f.shape[0], rtol)
    return Spectrum(values[:r].copy(), np.ascontiguousarray(w[:, :r]))


def same_stimuli(a: Spectrum, b: Spectrum) -> None:
    if a.n != b.n:
        raise RSABridgeError(f"the Gram matrices cover different numbers of stimuli: {a.n} and {b.n}")


def nuclear_norm(a: np.ndarray, b: np.ndarray) -> float:
    """``||A^T B||_*``: the sum of the singular values of the (r_a, r_b) cross product of two (n, r) factors."""
    return float(np.linalg.svd(a.T @ b, compute_uv=False).sum())


def resampled_spectrum(k, idx, *, rtol: float | None = None) -> Spectrum:
    """The spectrum of ``H K[idx][:, idx] H`` (a bootstrap sample: ``idx`` (n,) indices with repeats) from an
    eigenproblem over the u distinct stimuli drawn instead of all n (about (0.63)^3 = 1/4 of the cost).

    With S (n x u) the selection of the distinct stimuli, c their counts, ``d = sqrt(c)`` and
    ``T = H S diag(c)^{-1/2}``: ``T^T T = P = I - d d^T / n`` (a projector, ``T P = T``), so
    ``H K[idx][:, idx] H = T M T^T`` with ``M = P diag(d) K_u diag(d) P`` (u x u, K_u the Gram of the distinct
    stimuli), and each eigenpair (lam, w) of M gives the eigenpair (lam, T w) of the resampled Gram (T is an
    isometry on the range of P). Same rank tolerance as :func:`gram_spectrum` (``n x eps x lam_max``).
    ``k`` may be the :class:`Spectrum` of the Gram instead (all stimuli): then M's eigenpairs come from a thin
    SVD of the drawn rows of its factor (:func:`factor_draw_spectrum`; u r^2 for rank r, e.g. a neural Gram).

    Example::

        >>> X = np.random.default_rng(0).normal(size=(8, 3)); idx = np.array([0, 0, 1, 3, 3, 3, 5, 7])
        >>> a, b = resampled_spectrum(X @ X.T, idx), gram_spectrum((X @ X.T)[np.ix_(idx, idx)])
        >>> bool(np.allclose(a.values, b.values)), bool(np.allclose(a.vectors @ a.vectors.T, b.vectors @ b.vectors.T))
        (True, True)
    """
    draw = Draw.of(idx)
    if isinstance(k, Spectrum):                          # a Gram given by its spectrum: resample its factor
        return factor_draw_spectrum(draw_factor(k.factor(), draw), draw, rtol=rtol)
    return draw_spectrum(draw_centred(k, draw), draw, rtol=rtol)


@dataclass(frozen=True)
class Draw:
    """A bootstrap draw of n stimuli (with repeats) as its u distinct stimuli: ``unique`` (u,) their indices,
    ``inverse`` (n,) the position of each drawn stimulus among them, ``counts`` (u,) float64, ``d = sqrt(counts)``."""

    unique: np.ndarray
    inverse: np.ndarray
    counts: np.ndarray
    d: np.ndarray

    @classmethod
    def of(cls, idx) -> Draw:
        unique, inverse, counts = np.unique(np.asarray(idx), return_inverse=True, return_counts=True)
        c = counts.astype(np.float64)
        return cls(unique, inverse.reshape(-1), c, np.sqrt(c))

    @property
    def n(self) -> int:
        return int(self.inverse.shape[0])


def draw_centred(k, draw: Draw) -> np.ndarray:
    """(u, u) ``M = P diag(d) K_u diag(d) P`` of :func:`resampled_spectrum`: the resampled centred Gram
    ``H K[idx][:, idx] H = T M T^T`` in the coordinates of the distinct stimuli drawn (T an isometry)."""
    k = np.asarray(k, dtype=np.float64)
    return centre_draw(k.take(draw.unique, 0).take(draw.unique, 1), draw)


def centre_draw(m: np.ndarray, draw: Draw) -> np.ndarray:
    """:func:`draw_centred` from the (u, u) Gram ``K_u`` of the distinct stimuli drawn, or from a stack (L, u, u)
    of them (overwritten in place)."""
    c, d, n = draw.counts, draw.d, draw.n
    a = m @ c / n                                        # centre with the draw's weights: (I - 1 c^T/n) K_u (I - c 1^T/n)
    m -= a[..., None, :]
    m -= a[..., :, None]
    m += (a @ c / n)[..., None, None]
    m *= d[:, None]
    m *= d[None, :]                                      # = P diag(d) K_u diag(d) P
    return m


def _rank(values: np.ndarray, n: int, rtol: float | None) -> int:
    rtol = n * np.finfo(np.float64).eps if rtol is None else float(rtol)
    top = values[0] if values.size else 0.0
    r = int(np.sum(values > rtol * top)) if top > 0 else 0
    if r == 0:
        raise ConstantRepresentation("a representation is constant over the stimuli (its centred Gram is zero); "
                                     "these measures are undefined for it")
    return r


def _lifted(values: np.ndarray, w: np.ndarray, draw: Draw) -> Spectrum:
    vectors = (w / draw.d[:, None])[draw.inverse]       # S diag(c)^{-1/2} W
    vectors -= vectors.mean(axis=0)                      # H
    return Spectrum(values.copy(), np.ascontiguousarray(vectors))


def draw_spectrum(m: np.ndarray, draw: Draw, *, rtol: float | None = None) -> Spectrum:
    """The n-stimulus :class:`Spectrum` of a draw from its (u, u) :func:`draw_centred` matrix (one u x u eigh)."""
    values, w = np.linalg.eigh((m + m.T) / 2)
    values, w = values[::-1], w[:, ::-1]
    r = _rank(values, draw.n, rtol)
    return _lifted(values[:r], w[:, :r], draw)


def draw_factor(factor: np.ndarray, draw: Draw) -> np.ndarray:
    """(u, q) ``Z = P diag(d) F_u`` with ``Z Z^T`` the :func:`draw_centred` matrix of the Gram ``F F^T``
    (``factor`` (n, q), e.g. :meth:`Spectrum.factor` of a low-rank neural Gram): an n^2 q-free resampling."""
    z = factor[draw.unique] * draw.d[:, None]
    return z - np.outer(draw.d, draw.d @ z) / draw.n


def factor_draw_spectrum(z: np.ndarray, draw: Draw, *, rtol: float | None = None) -> Spectrum:
    """The :class:`Spectrum` of the draw of a Gram ``F F^T`` from its (u, q) :func:`draw_factor` (a thin SVD:
    u q^2 instead of u^3); equals :func:`resampled_spectrum` of ``F F^T`` up to rounding."""
    w, s, _ = np.linalg.svd(z, full_matrices=False)
    values = s * s
    r = _rank(values, draw.n, rtol)
    return _lifted(values[:r], w[:, :r], draw)
