"""Bootstrap samples of Procrustes, the shape metric, CCA, PWCCA (and SVCCA) over the distinct stimuli drawn.

A bootstrap sample of the spectral measures (:mod:`rsa_bridge.measures.gram_scoring`) needs the resampled
centred layer Gram ``H K[idx][:, idx] H`` and neural Gram ``H L[idx][:, idx] H``. In the coordinates of the
u distinct stimuli drawn (:func:`rsa_bridge.measures.spectral.draw_centred`) they are the (u, u) ``M`` and
``Z Z^T`` with ``Z`` (u, q) the drawn rows of a factor of L (:func:`rsa_bridge.measures.spectral.draw_factor`;
q = the rank of L, e.g. the neuroids; thin SVD ``Z = W diag(s) V^T``, r singular values above the rank
tolerance). When the layer Gram has full rank (rank n - 1 on all stimuli, well conditioned: :func:`full_rank`;
then every draw's M has rank u - 1 and no direction is dropped), each measure is a function of the r x r
matrix ``(W S)^T f(M) (W S)`` and ``tr f(M)`` for some matrix function f, with ``S = diag(s)``:

- **Procrustes** ``||Xc^T Yc||_* = sum sqrt eig((W S)^T M (W S))`` (the singular values of ``Xc^T Yc``, r x r
  instead of the u x u eigenproblem), ``||Xc||_F^2 = tr M``, ``||Yc||_F^2 = sum s^2``;
- **shape metric** (covariance shrinkage a): the layer's whitened Gram is ``f(M) = M (b M + a I)^{-1}``
  (``b = (1 - a) / n``; each eigenvalue lam becomes ``lam / (b lam + a)``, the square of the factor
  :func:`rsa_bridge.measures.procrustes.covariance_whitened_factor` uses), from one Cholesky factorisation
  ``b M + a I = R^T R`` (u^3 / 3) and ``R^{-1}`` (u^3 / 3): ``tr f(M) = (u - a ||R^{-1}||_F^2) / b`` (or, where
  that subtraction would lose digits, ``sum(B^{-1} o M)``) and ``(W S~)^T f(M) (W S~)`` as ``Y^T Z`` with
  ``[Y, Z] = R^{-T} [W S~, M W S~]`` (one triangular solve with 2r right-hand sides, no product with R^{-1}); ``a = 0``: ``f(M) = n P`` (every direction whitened to n); the neural side is
  whitened in its own r singular directions, ``s -> s / sqrt(b s^2 + a)``;
- **CCA, PWCCA**: the layer spans every centred direction of the draw, so the neural column space lies in it and
  every canonical correlation is 1 (the saturation :func:`rsa_bridge.measures.cca.canonical_correlations`
  warns about on all stimuli): both are 1 in every sample, with no computation.

- **SVCCA**: keeps the leading directions of the layer, which needs the eigenvectors of M (one u x u ``eigh``);
  the canonical correlations are those of the leading eigenvectors of M and the leading columns of W, both in
  the coordinates of the distinct stimuli (T maps both isometrically, so nothing is lifted to the n stimuli).
  With SVCCA in the job (``Measure.draw_eigen``) the shape metric takes ``f(M) = V diag(f(lam)) V^T`` from that
  same decomposition (no Cholesky factorisation, and ``tr f(M) = sum f(lam)`` with no subtraction).

Cost per layer and sample: u^2 r + r^3 (+ u^3 for the shape metric with 0 < a < 1, and the u^3 ``eigh`` for
SVCCA), against the u^3 eigendecomposition with vectors lifted to n stimuli for every measure. Procrustes is
scored for a block of S draws and all L layers at once (:class:`DrawBlock`): ``E^T K E`` with ``E`` the drawn,
weighted neural factor scattered onto the n stimuli, from one (L n, n) x (n, S (q + 1)) GEMM (n^2 q per layer
and draw at the GEMM's full rate instead of u^2 q after a gather of K_u that costs as much as the product).
Equal to the eigenbasis route to rounding (tests: 1e-10).

Example::

    >>> from rsa_bridge.measures.spectral import Draw, draw_factor, gram_spectrum
    >>> rng = np.random.default_rng(0); x, y = rng.normal(size=(12, 30)), rng.normal(size=(12, 3))
    >>> idx = rng.integers(0, 12, 12); draw = Draw.of(idx)
    >>> pair = draw_pair(x @ x.T, draw_factor(gram_spectrum(y @ y.T).factor(), draw), draw)
    >>> from rsa_bridge.measures.procrustes import procrustes_similarity
    >>> cut = np.ix_(idx, idx)
    >>> bool(abs(procrustes(pair) - procrustes_similarity((x @ x.T)[cut], (y @ y.T)[cut])) < 1e-12)
    True
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rsa_bridge.measures.procrustes import check_alpha
from rsa_bridge.measures.spectral import ConstantRepresentation, Draw, check_gram

#: a layer Gram qualifies when its n - 1 centred eigenvalues all exceed this share of the largest (the
#: eigenbasis route drops those below n x eps ~ 1e-13 of it, so none is near the tolerance in any draw)
FULL_RANK_MARGIN = 1e-9


#: ``tr f(M) = (u - a tr B^{-1}) / b`` subtracts two numbers up to u (error about ``eps kappa(B) u`` on
#: ``b tr f``); it is kept only when ``b tr f >= _CANCELLATION u^2`` (a deliberately wide margin: many directions
#: with ``b lam >> a``), else the trace is summed as ``sum(B^{-1} o M)`` (``B^{-1} = R^{-1} R^{-T}`` from LAPACK's
#: ``lauum``, u^3 / 3, no subtraction). Layers with small activations (AlexNet's conv3 to fc8 on 640 images)
#: take this branch.
_CANCELLATION = 1e-3


def full_rank(k, margin: float = FULL_RANK_MARGIN) -> bool:
    """Whether the centred (n, n) Gram ``k`` has rank n - 1 with every nonzero eigenvalue > ``margin`` x the
    largest (one ``eigvalsh``, n^3); then every bootstrap draw of it has full rank too."""
    from rsa_bridge.measures.cka import center_gram

    values = np.linalg.eigvalsh(center_gram(check_gram(k)))     # ascending; values[0] is the centring direction
    return bool(values[-1] > 0 and values[1] > margin * values[-1])


class once:
    """A per-instance cached attribute (like :func:`functools.cached_property`, which before Python 3.12 computes
    under one lock shared by every instance of the class, and so ran the bootstrap threads' blocks one at a time:
    two threads reached 1.0 core). Each :class:`DrawBlock` and :class:`DrawLayers` is used by one thread only."""

    def __init__(self, fn):
        self.fn, self.name, self.__doc__ = fn, fn.__name__, fn.__doc__

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.fn(obj)    # the instance's dict answers every later access
        return value


#: bytes of the (L N, S (q + 1)) product a :class:`DrawBlock` forms at most (sets how many draws share one GEMM)
BLOCK_BYTES = 64 * 2 ** 20


def block_size(layers: int, n: int, q: int, limit: int = 32) -> int:
    """How many bootstrap draws :class:`DrawBlock` scores in one GEMM: at most ``limit``, and the product
    (layers n x draws (q + 1) float64) within :data:`BLOCK_BYTES`; a function of the shapes only, so a result
    never depends on the thread count."""
    return int(max(1, min(limit, BLOCK_BYTES // max(1, 8 * layers * n * (q + 1)))))


class DrawBlock:
    """S bootstrap draws of the full-rank layers against the neural draws: what their measures share, each piece
    computed once, for every layer (and, for Procrustes, every draw of the block) in one call, on first use.

    ``stack`` (L, N, N) float64 C-contiguous: the layer Grams on all stimuli; ``draws``: S
    :class:`rsa_bridge.measures.spectral.Draw`; ``zs``: each draw's (u, q) neural
    :func:`rsa_bridge.measures.spectral.draw_factor`. :meth:`layers` gives one draw's :class:`DrawLayers`.
    ``procrustes`` (S, L): ``E_s^T K_l E_s`` for every draw s and layer l from one GEMM
    ``K (L N, N) x [E_1 .. E_S] (N, S (q + 1))``, with ``E_s`` (N, q + 1) = ``[c o (F - mean), c]`` on the drawn
    stimuli and 0 elsewhere (no gather of a drawn Gram; 2 L N^2 (q + 1) flops per draw at the GEMM's full rate).
    The gathers, products and factorisations are numpy calls over whole stacks, which release the GIL: the
    bootstrap threads (:func:`rsa_bridge.measures.gram_scoring._spread`) keep the cores busy."""

    def __init__(self, stack: np.ndarray, draws: list[Draw], zs: list[np.ndarray]):
        self.stack, self.draws, self.zs = stack, list(draws), list(zs)

    def layers(self, sample: int) -> DrawLayers:
        """The :class:`DrawLayers` of draw ``sample``; ConstantRepresentation when its neural draw is constant."""
        return DrawLayers(self, sample)

    @once
    def procrustes(self) -> np.ndarray:
        """(S, L) Procrustes similarities: ``||Xc^T Yc||_* = sum sqrt eig(Z^T M Z)`` with ``Z^T M Z = E^T K E``
        (``P Z = Z``; E's first q columns ``D Z`` on the drawn rows) and ``tr M = sum c_i K_ii - c^T K c / n``
        (``c^T K c`` the last entry of ``E^T K E``); NaN for a constant neural draw."""
        n_layers, n = self.stack.shape[:2]
        q = self.zs[0].shape[1]
        e = np.zeros((n, len(self.draws), q + 1))
        for i, (draw, z) in enumerate(zip(self.draws, self.zs)):
            e[draw.unique, i, :q] = z * draw.d[:, None]
            e[draw.unique, i, q] = draw.counts
        ke = (self.stack.reshape(n_layers * n, n) @ e.reshape(n, -1)).reshape(n_layers, n, len(self.draws), q + 1)
        quad = np.matmul(e.transpose(1, 2, 0)[None], ke.transpose(0, 2, 1, 3))     # (L, S, q + 1, q + 1)
        g = quad[..., :q, :q]
        nuclear = np.sqrt(np.clip(np.linalg.eigvalsh((g + np.swapaxes(g, -1, -2)) / 2), 0.0, None)).sum(axis=-1)
        diagonal = np.einsum("lii->li", self.stack)                                 # (L, N)
        trace = diagonal @ e[:, :, q] - quad[..., q, q] / np.array([d.n for d in self.draws])
        total = np.array([float(np.sum(z * z)) for z in self.zs])
        with np.errstate(divide="ignore", invalid="ignore"):
            value = nuclear / np.sqrt(trace * total)
        return np.clip(value, 0.0, 1.0).T


class DrawLayers:
    """The full-rank layers of one bootstrap draw (``sample`` of a :class:`DrawBlock`) against its neural draw.

    Pieces, each computed once for every layer in one call on first use: ``svd`` (``w`` (u, r) orthonormal,
    ``s`` (r,) descending: the thin SVD ``Z = W diag(s) V^T``, r above the rank tolerance of
    :func:`rsa_bridge.measures.spectral.gram_spectrum`), ``ku`` (L, u, u) the layers' Grams of the distinct
    stimuli drawn, ``m`` their :func:`rsa_bridge.measures.spectral.draw_centred`, ``eigen`` M's eigendecompositions
    (one batched ``eigh``), ``procrustes`` (L,) from the block. ConstantRepresentation when the neural draw is
    constant."""

    def __init__(self, block: DrawBlock, sample: int = 0):
        self.block, self.sample = block, sample
        self.draw, self.z = block.draws[sample], block.zs[sample]
        if not np.any(self.z):
            raise ConstantRepresentation("a representation is constant over the stimuli drawn; these measures are "
                                         "undefined for it")

    @property
    def n(self) -> int:
        return self.draw.n

    def __len__(self) -> int:
        return int(self.block.stack.shape[0])

    @once
    def svd(self) -> tuple[np.ndarray, np.ndarray]:
        w, s, _ = np.linalg.svd(self.z, full_matrices=False)
        keep = s * s > self.n * np.finfo(np.float64).eps * s[0] ** 2
        return np.ascontiguousarray(w[:, keep]), s[keep]

    @once
    def ku(self) -> np.ndarray:
        unique = self.draw.unique
        return self.block.stack.take(unique, 1).take(unique, 2)

    @once
    def m(self) -> np.ndarray:
        from rsa_bridge.measures.spectral import centre_draw

        return centre_draw(self.ku.copy(), self.draw)

    @once
    def eigen(self) -> tuple[np.ndarray, np.ndarray]:
        """``(values, vectors)`` (L, u), (L, u, u) of each M, descending (one batched ``eigh``): SVCCA's, reused
        by the shape metric when a record of the job has ``draw_eigen``."""
        values, vectors = np.linalg.eigh(self.m)
        return values[:, ::-1], vectors[:, :, ::-1]

    @property
    def procrustes(self) -> np.ndarray:
        return self.block.procrustes[self.sample]

    def pair(self, layer: int, share_eigen: bool = False) -> DrawPair:
        return DrawPair(self, layer, share_eigen)


def stack_layers(kernels) -> np.ndarray:
    """(L, N, N) float64 C-contiguous layer Grams: what :class:`DrawBlock` multiplies and gathers from (made once
    per job, not per sample)."""
    return np.ascontiguousarray(np.asarray(kernels, dtype=np.float64))


def spectrum_full_rank(spectrum, margin: float = FULL_RANK_MARGIN) -> bool:
    """:func:`full_rank` from the Gram's :class:`rsa_bridge.measures.spectral.Spectrum` (already decomposed for the
    observed score; None: a constant Gram): rank n - 1, the smallest eigenvalue > ``margin`` x the largest."""
    return bool(spectrum is not None and spectrum.rank == spectrum.n - 1 and spectrum.values[0] > 0
                and spectrum.values[-1] > margin * spectrum.values[0])


@dataclass(frozen=True)
class DrawPair:
    """One full-rank layer (``layer``, an index into ``layers``) against the neural data on one bootstrap draw of
    n stimuli (u distinct): what a record's ``draw_score`` takes. ``w`` (u, r), ``s`` (r,), ``ku`` and ``m``
    (u, u), ``eigen`` are the layer's share of :class:`DrawLayers`' pieces (computed for every layer on first
    use). ``share_eigen``: the shape metric takes ``f(M)`` from ``eigen`` (a record of the job has
    ``draw_eigen``)."""

    layers: DrawLayers
    layer: int = 0
    share_eigen: bool = False

    @property
    def n(self) -> int:
        return self.layers.n

    @property
    def draw(self) -> Draw:
        return self.layers.draw

    @property
    def w(self) -> np.ndarray:
        return self.layers.svd[0]

    @property
    def s(self) -> np.ndarray:
        return self.layers.svd[1]

    @property
    def ku(self) -> np.ndarray:
        return self.layers.ku[self.layer]

    @property
    def m(self) -> np.ndarray:
        return self.layers.m[self.layer]

    @property
    def eigen(self) -> tuple[np.ndarray, np.ndarray]:
        values, vectors = self.layers.eigen
        return values[self.layer], vectors[self.layer]


def draw_pair(k: np.ndarray, z: np.ndarray, draw: Draw) -> DrawPair:
    """The :class:`DrawPair` of one layer Gram ``k`` (N, N) and the neural draw's (u, q) ``z``
    (:func:`rsa_bridge.measures.spectral.draw_factor`); ConstantRepresentation when the neural draw is constant."""
    return DrawBlock(stack_layers(np.asarray(k)[None]), [draw], [z]).layers(0).pair(0)


def _nuclear(ws: np.ndarray, fws: np.ndarray) -> float:
    g = ws.T @ fws
    return float(np.sqrt(np.clip(np.linalg.eigvalsh((g + g.T) / 2), 0.0, None)).sum())


def procrustes(pair: DrawPair) -> float:
    """Procrustes similarity of the draw (as :func:`rsa_bridge.measures.procrustes.procrustes_similarity`), from
    :attr:`DrawLayers.procrustes` (every layer of the draw at once)."""
    return float(pair.layers.procrustes[pair.layer])


def shape(pair: DrawPair, alpha: float = 0.5) -> float:
    """Shape-metric similarity with covariance shrinkage ``alpha`` (as
    :func:`rsa_bridge.measures.procrustes.shape_metric_similarity`)."""
    from scipy.linalg import lapack

    a = check_alpha(alpha)
    b = (1.0 - a) / pair.n
    t = pair.s / np.sqrt(b * pair.s * pair.s + a)       # the neural side whitened in its own directions
    wt = pair.w * t
    u = pair.m.shape[0]
    if a > 0.0 and pair.share_eigen:                     # M = V diag(lam) V^T is decomposed anyway (SVCCA)
        lam, vectors = pair.eigen
        f = np.clip(lam, 0.0, None) / (b * np.clip(lam, 0.0, None) + a)
        g = vectors.T @ wt
        cross, trace = g.T @ (g * f[:, None]), float(f.sum())
        value = float(np.sqrt(np.clip(np.linalg.eigvalsh((cross + cross.T) / 2), 0.0, None)).sum())
    elif a == 0.0:                                       # f(M) = n P, and W lies in the range of P
        cross, trace = pair.n * (wt.T @ wt), pair.n * (u - 1.0)
        value = float(np.sqrt(np.clip(np.linalg.eigvalsh((cross + cross.T) / 2), 0.0, None)).sum())
    else:                                                # f(M) = (b M + a I)^{-1} M, B = b M + a I = R^T R
        from scipy.linalg import blas

        m = pair.m
        bmat = m * b
        bmat.flat[::u + 1] += a
        chol, info = lapack.dpotrf(bmat, lower=0, overwrite_a=1, clean=0)   # upper R; the lower part is B's
        if info != 0:
            raise np.linalg.LinAlgError("the shrunk layer covariance is not positive definite")
        r = wt.shape[1]                                  # R^{-T} [W T, M W T]: two triangular solves in one call
        solved = blas.dtrsm(1.0, chol, np.concatenate([wt, m @ wt], axis=1), side=0, lower=0, trans_a=1,
                            overwrite_b=1)
        rinv, info2 = lapack.dtrtri(chol, lower=0, overwrite_c=1)       # reads and writes the upper part only
        if info2 != 0:
            raise np.linalg.LinAlgError("the shrunk layer covariance is not positive definite")
        norm = float(lapack.dlantr("F", rinv, uplo="U"))                  # ||R^{-1}||_F, tr B^{-1} = its square
        trace = float(np.trace(m)) if b == 0 else (u - a * norm * norm) / b
        if b > 0 and b * trace < _CANCELLATION * u * u:      # tr f = (u - a tr B^{-1}) / b lost digits: sum it
            binv = np.triu(lapack.dlauum(rinv, lower=0, overwrite_c=1)[0])   # B^{-1} = R^{-1} R^{-T}, upper part
            trace = 2.0 * float(np.einsum("ij,ij->", binv, m)) - float(np.diagonal(binv) @ np.diagonal(m))
        value = _nuclear(solved[:, :r], solved[:, r:])
    value /= np.sqrt(trace * float(t @ t))
    return float(min(max(value, 0.0), 1.0))


def cca(pair: DrawPair) -> float:
    """Mean CCA of the draw: 1 (the full-rank layer contains the neural column space; see the module)."""
    return 1.0


def pwcca(pair: DrawPair) -> float:
    """PWCCA of the draw: 1 (every canonical correlation is 1, whatever the weights; see the module)."""
    return 1.0


def svcca(pair: DrawPair, keep: float | int = 0.99) -> float:
    """SVCCA of the draw (as :func:`rsa_bridge.measures.cca.svcca`): the mean canonical correlation of the
    layer's and the neural data's leading directions (``keep``: a share of the variance or a count, as
    :meth:`rsa_bridge.measures.spectral.Spectrum.top`), from the eigenvectors of M and the columns of W."""
    from rsa_bridge.measures.spectral import Spectrum, _rank

    values, vectors = pair.eigen
    r = _rank(values, pair.n, None)
    layer = Spectrum(values[:r], vectors[:, :r]).top(keep)
    neural = Spectrum(pair.s * pair.s, pair.w).top(keep)
    rho = np.linalg.svd(layer.vectors.T @ neural.vectors, compute_uv=False)
    return float(np.mean(np.clip(rho, 0.0, 1.0)))
