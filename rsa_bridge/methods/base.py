"""The comparison-method record: one object that owns every code path of one method.

This module imports only the standard library (the command line builds ``--method`` from the records at once);
the numeric code of a method is imported when it is called.

A method **must** give its similarity; everything else is an optional capability that the machinery asks for
and, when it is absent, either runs its generic path or refuses in one line before any compute:

================== ============================================ =============================================
capability         what it is                                   without it
================== ============================================ =============================================
``similarity``     (a (L, m), b (R, m)) -> (L, R) float64       (required)
``pool``           (R, m) RDMs -> (m,) pooled RDM for the Nili  the ``nili`` noise ceiling (and bootstrap
                   noise ceiling (rsatoolbox ``pool_rdm``)      ceilings) are refused in one line
``masked``         (a, b, valid) -> (L, R) over the valid pairs ``similarity`` on the valid pairs
                   when the missing-pair mask matters
``dot``            :class:`DotPath`: per-pair prepared values   bootstrap resamples explicitly, one sample
                   under pair weights whose dot product is the  at a time (:mod:`rsa_bridge.stats.masked`);
                   similarity (batched bootstrap, permutation)  permutation recomputes ``similarity``
``permutation``    vectors (K, m) -> (pairs (K, m), per-stimulus permutation recomputes ``similarity`` per
                   (K, n) or None): unit values that a          permutation (the generic path)
                   relabelling permutes (whitened methods)
``chunked``        :class:`Chunked`: the similarity from sums   RDM stores refuse it in one line
                   over pairs, chunk by chunk                   (``--rdm-store memory``)
``kernel``         the compiled / torch rank kernel's finish    the numpy bootstrap (``bootstrap_backend``
                   (``pearson`` or ``rho_a`` on ranks)           numpy)
================== ============================================ =============================================

``transform`` says what a method does to the dissimilarities first (:data:`TRANSFORMS`): ``ranks`` makes the
bootstrap sort each RDM once and the chunked path rank the stores globally.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

#: what a method does to the dissimilarities before comparing them -> description
TRANSFORMS: dict[str, str] = {
    "none": "the dissimilarities as they are",
    "ranks": "average ranks (ties share their mean rank)",
    "whitening": "the double-centred second-moment matrix G = -H D H / 2 (whitened for i.i.d. pattern noise)",
}
#: shift of the inputs of a chunked method before the sums (see :mod:`rsa_bridge.chunked_compare`) -> description
SHIFTS: dict[str, str] = {
    "none": "no shift",
    "first_chunk_mean": "each RDM's mean over the first chunk (keeps the sums small)",
    "rank_mean": "(m + 1) / 2, the exact mean of the ranks",
}
#: finishing kinds of the compiled / torch rank kernels -> description
KERNELS: dict[str, str] = {
    "pearson": "Pearson r of the weighted ranks (Spearman)",
    "rho_a": "12 sum w a b / (W^3 - W) of the centred weighted ranks (rho-a)",
}


@dataclass(frozen=True)
class DotPath:
    """A method whose similarity is a dot product of per-pair prepared values (the fast path).

    Attributes:
        prepare: (x (K, m) fixed or (B, K, m) per sample, w (B, m) pair weights, order) -> (B, K, m) prepared
            values, such that ``prepare(a) @ prepare(b).T`` per sample is the similarity of the multisets with
            multiplicities w; rows undefined within a sample are NaN. ``order`` is the
            :class:`rsa_bridge.stats.weighted.SortOrder` of a fixed x for ``transform="ranks"`` (else None).
        pool_values: (x, w, order) -> (B, K, m) the values whose weighted mean is the pooled RDM of the noise
            ceiling (ranks, z-scores, ...), or None when the bootstrap's ceilings should be refused.
        prepare_fixed: optional faster ``prepare`` of fixed x (K, m): (order, w) -> (B, K, m).
    """

    prepare: Callable[..., Any]
    pool_values: Callable[..., Any] | None = None
    prepare_fixed: Callable[..., Any] | None = None


@dataclass(frozen=True)
class Chunked:
    """A method computed from sums over pairs (:class:`rsa_bridge.chunked_compare.Moments`), chunk by chunk.

    Attributes:
        shift: a name in :data:`SHIFTS`.
        finish: Moments -> (L, R) similarities.
    """

    shift: str
    finish: Callable[[Any], Any]

    def __post_init__(self):
        if self.shift not in SHIFTS:
            raise ValueError(f"Chunked.shift must be one of {', '.join(SHIFTS)}; got {self.shift!r}")


@dataclass(frozen=True)
class Method:
    """One RDM comparison method and every capability it offers (see the module docstring).

    Attributes:
        name: the canonical name (``--method``, ``method=``).
        definition: the similarity of two upper-triangle dissimilarity vectors a, b, in words.
        similarity: (a (L, m), b (R, m)) -> (L, R) float64; an RSABridgeError where it is undefined.
        pool, masked, dot, permutation, chunked, kernel: optional capabilities (module docstring).
        transform: a name in :data:`TRANSFORMS`.
        rsatoolbox, brainscore, net2brain: what those tools call the same computation ("" = none).
        aliases: other names accepted for it (peers' spellings).
        note: anything else a user of a peer tool must know.

    Example:
        >>> import numpy as np
        >>> def anti(a, b):
        ...     return -(np.asarray(a) @ np.asarray(b).T)
        >>> m = Method("anti_dot", "-a.b", anti)
        >>> m.bootstrap, m.has("chunked"), m.rank
        ('masked', False, False)
    """

    name: str
    definition: str
    similarity: Callable[[Any, Any], Any]
    pool: Callable[[Any], Any] | None = None
    transform: str = "none"
    masked: Callable[[Any, Any, Any], Any] | None = None
    dot: DotPath | None = None
    permutation: Callable[[Any], Any] | None = None
    chunked: Chunked | None = None
    kernel: str | None = None
    rsatoolbox: str = ""
    brainscore: str = ""
    net2brain: str = ""
    aliases: tuple[str, ...] = ()
    note: str = field(default="")

    def __post_init__(self):
        if not self.name or not self.name.replace("_", "").isalnum():
            raise ValueError(f"a method name is letters, digits and '_'; got {self.name!r}")
        if not callable(self.similarity):
            raise ValueError(f"method {self.name!r}: similarity must be a function (a, b) -> (L, R)")
        if self.transform not in TRANSFORMS:
            raise ValueError(f"method {self.name!r}: transform must be one of {', '.join(TRANSFORMS)}")
        if self.kernel is not None and (self.kernel not in KERNELS or self.dot is None or not self.rank):
            raise ValueError(f"method {self.name!r}: a rank kernel ({', '.join(KERNELS)}) needs a dot path and "
                             "transform='ranks'")

    @property
    def rank(self) -> bool:
        """Whether the method works on (average) ranks."""
        return self.transform == "ranks"

    @property
    def bootstrap(self) -> str:
        """``dot`` (all samples as one batched product) or ``masked`` (resampled one sample at a time)."""
        return "dot" if self.dot is not None else "masked"

    @property
    def chunkable(self) -> bool:
        """Whether an RDM store computes it chunk by chunk."""
        return self.chunked is not None

    @property
    def source(self) -> str:
        """The module that defines the method's similarity (for the reference page)."""
        return f"{self.similarity.__module__}"

    def has(self, capability: str) -> bool:
        """Whether the optional capability (a field name: ``pool``, ``dot``, ``chunked`` ...) is given."""
        return getattr(self, capability) is not None

    def require(self, capability: str, what: str, instead: str) -> None:
        """One-line RSABridgeError before any compute when the capability is missing.

        ``what``: what needs it (``a noise ceiling``); ``instead``: what the user can do.
        """
        if not self.has(capability):
            from rsa_bridge.errors import RSABridgeError

            raise RSABridgeError(f"comparison method {self.name!r} has no {CAPABILITIES[capability]}, which "
                                 f"{what} needs; {instead}")

    def masked_similarity(self, a, b, valid=None):
        """Similarity (K1, K2) over valid pairs only: ``masked`` when given, else ``similarity``."""
        if self.masked is not None:
            return self.masked(a, b, valid)
        return self.similarity(a, b)


#: capability field -> how a refusal names it
CAPABILITIES: dict[str, str] = {
    "pool": "pooled RDM (pool)",
    "dot": "prepared fast path (dot)",
    "permutation": "permutable prepared values (permutation)",
    "chunked": "chunked form (chunked: sums over pairs)",
    "kernel": "rank kernel (kernel)",
    "masked": "missing-pair form (masked)",
}
