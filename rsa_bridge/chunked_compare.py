"""RDM comparison chunk by chunk, for RDMs kept in an :class:`~rsa_bridge.rdm_store.RDMStore`.

A method whose similarity is a function of **sums over stimulus pairs** needs only those sums, which add up
over chunks of pairs. For L model vectors a_l and R brain vectors b_r (m pairs each, shifted by constants
k_a, k_b: x = a - k_a, y = b - k_b) each chunk of c pairs adds

    S_x = sum x,  S_y = sum y,  S_xx = sum x^2,  S_yy = sum y^2,  S_xy = X Y^T   (one (L x c) @ (c x R) GEMM)

in float64, and the similarity follows from the totals:

A method says how in its record (:class:`rsa_bridge.methods.Chunked`: the shift and the finishing step); the
built-in ones:

================ ============================================================ ==============================
method           from the sums                                                shift k
================ ============================================================ ==============================
pearson          (S_xy - S_x S_y / m) / sqrt((S_xx - S_x^2/m)(S_yy - S_y^2/m)) the first chunk's mean (keeps
                                                                              the sums small: no cancellation)
spearman         the same on the global average-tie ranks                     (m + 1) / 2, the ranks' exact mean
rho_a            12 S_xy / (m^3 - m) on the ranks                             (m + 1) / 2
cosine           S_xy / sqrt(S_xx S_yy)                                        none
================ ============================================================ ==============================

The ranks of the rank methods are global (:func:`rsa_bridge.ranking.rank_store`: exact, out of core when
needed), so the result equals :func:`rsa_bridge.compare.compare_vectors` on the dense vectors (tested to
1e-12). The model store's ranks are kept with the store until it changes (:meth:`RDMStore.derived`), so the
comparison and the statistics' observed values rank it once (for every method with ``transform="ranks"``).
``kendall_tau_a`` (pairs of pairs) and the whitened methods (the RDM's row and column structure through the
centring of the second-moment matrix) are not reduced to these sums here; which methods work is the
``chunked`` field of each record in :data:`rsa_bridge.definitions.COMPARISONS`, and any other is refused in
one line before any compute.

Example::

    >>> import numpy as np
    >>> from rsa_bridge.compare import compare_vectors
    >>> from rsa_bridge.rdm_store import RDMStore
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.random((2, 45)), rng.random(45)  # 10 stimuli
    >>> with RDMStore([str(i) for i in range(10)], memory_budget=0) as store:
    ...     store.put("l1", a[0]); store.put("l2", a[1])
    ...     r = compare_store(store, {"IT": b[None]}, "spearman", chunk_size=7)["IT"]
    >>> bool(np.allclose(r, compare_vectors(a, b, "spearman"), atol=1e-12))
    True
"""
from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from rsa_bridge.definitions import COMPARISONS
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.methods import Chunked, view
from rsa_bridge.rank_storage import rank_storage
from rsa_bridge.ranking import rank_store
from rsa_bridge.rdm_store import RDMStore
from rsa_bridge.registry import Registry

#: pairs per chunk by default (a chunk of L + R vectors is (L + R) x 8 MiB)
DEFAULT_CHUNK = 1 << 20


@dataclass
class Moments:
    """Sums over pairs of shifted model vectors x (L) and brain vectors y (R); see the module docstring."""

    m: int
    sx: np.ndarray
    sy: np.ndarray
    sxx: np.ndarray
    syy: np.ndarray
    sxy: np.ndarray
    constant_x: np.ndarray  # (L,) bool: all values equal
    constant_y: np.ndarray  # (R,) bool


#: how one method is computed from :class:`Moments` (its record's ``chunked``; kept under its old name)
ChunkedMethod = Chunked

#: method name -> how it is computed chunk by chunk: a live view of the records of
#: :data:`rsa_bridge.definitions.COMPARISONS` with a ``chunked`` entry
CHUNKED: Registry[Chunked] = view("chunked comparison method", lambda m: m.chunked, lambda m: m.chunked is not None)


def chunked_method(method: str) -> str:
    """The canonical name of ``method``; RSABridgeError in one line when it cannot run chunk by chunk."""
    name = COMPARISONS.resolve(method)
    COMPARISONS[name].require("chunked", "comparing RDMs kept in a store (out of memory)",
                              f"use one of {', '.join(CHUNKED)}, or --rdm-store memory")
    return name


def _left(like: RDMStore, made: list[RDMStore]) -> float | None:
    """What is left of ``like``'s memory budget after it and the stores made here so far (None: no limit)."""
    if np.isinf(like.memory_budget):
        return None
    return max(0.0, like.memory_budget - like.nbytes - sum(s.nbytes for s in made))


def _as_store(area: str, value, like: RDMStore, stack: contextlib.ExitStack, made: list[RDMStore]) -> RDMStore:
    """A brain RDM set as a store over ``like``'s ids (aligned by stimulus id for DataArrays)."""
    if isinstance(value, RDMStore):
        if value.ids != like.ids:
            raise RSABridgeError(f"the {area} RDMs cover other stimuli (or another order) than the model RDMs; "
                                 "build their store with the model store's ids")
        return value
    keep = _left(like, made)
    if hasattr(value, "dims"):  # a DataArray: reorder to the model's stimulus order by id
        rows = [str(s) for s in value["stimulus_row"].values]
        if sorted(rows) != sorted(like.ids):
            raise RSABridgeError(f"the {area} RDMs cover other stimuli than the model RDMs")
        value = value.sel(stimulus_row=like.ids, stimulus_col=like.ids)
        store = RDMStore.from_dataarray(value, memory_budget=keep, spill_dir=like.spill_dir)
        made.append(store)
        return stack.enter_context(store)
    array = np.asarray(value, dtype=np.float64)
    condensed = array.ndim == 1 or (array.ndim == 2 and array.shape[1] == like.m and array.shape != (like.n, like.n))
    array = array[None] if array.ndim == (1 if condensed else 2) else array
    store = stack.enter_context(RDMStore(like.ids, memory_budget=keep, spill_dir=like.spill_dir))
    made.append(store)
    for r, rdm in enumerate(array):
        store.put(f"{area}_{r}", rdm)
    return store


#: shift kind (:data:`rsa_bridge.methods.SHIFTS`) -> (store, chunk size) -> (K,) the constant subtracted per RDM
SHIFT_VALUES = {
    "rank_mean": lambda src, size, exps: np.full(len(src.names), (src.m + 1) / 2.0),
    "first_chunk_mean": lambda src, size, exps: np.array([np.ldexp(src.read(name, 0, min(src.m, size)), -e).mean()
                                                          for name, e in zip(src.names, exps)]),
    "none": lambda src, size, exps: np.zeros(len(src.names)),
}


def _exponents(src: RDMStore, size: int, scale: bool) -> np.ndarray:
    """Per RDM, the power of two (as an exponent) that brings its first chunk's largest |value| into [0.5, 1):
    an exact rescaling, so the sums of a scale-invariant method cannot overflow at 1e300 or underflow at 1e-300
    (:func:`rsa_bridge.methods._numeric.scaled`); 0 (no scaling) for rank methods, whose finish is not
    scale-invariant and whose ranks never overflow."""
    if not scale:
        return np.zeros(len(src.names), dtype=np.int64)
    tops = np.array([np.max(np.abs(src.read(name, 0, min(src.m, size))), initial=0.0) for name in src.names])
    return np.frexp(np.where(np.isfinite(tops), tops, 0.0))[1].astype(np.int64)


def _shifts(kind: str, src: RDMStore, size: int, exps: np.ndarray) -> np.ndarray:
    return SHIFT_VALUES[kind](src, size, exps)


def _block(src: RDMStore, start: int, stop: int, shift: np.ndarray, exps: np.ndarray) -> np.ndarray:
    return np.ldexp(np.stack([src.read(name, start, stop) for name in src.names]), -exps[:, None]) - shift[:, None]


def compare_store(store: RDMStore, neural: Mapping[str, object], method: str = "spearman", *,
                  chunk_size: int | None = None, rank_budget: float | None = None,
                  seed: int = 0) -> dict[str, np.ndarray]:
    """Similarity of every RDM in ``store`` with every brain RDM of each area, chunk by chunk.

    Args:
        store: L model RDMs (e.g. one per layer). Its ``memory_budget`` also bounds the stores made here (brain
            RDMs given as arrays, the ranks): each gets what is left of it, the rest is spilled to its
            ``spill_dir``.
        neural: area -> its R brain RDMs: an :class:`RDMStore` over the same ids, an (R, n, n) or (n, n) array
            (or (R, m) / (m,) condensed vectors) in ``store.ids`` order, or an RDM DataArray (aligned to
            ``store.ids`` by stimulus id).
        method: one whose record has a ``chunked`` entry (pearson, spearman, rho_a, cosine).
        chunk_size: pairs per chunk (default :data:`DEFAULT_CHUNK`).
        rank_budget: working bytes of the global ranking (:func:`rsa_bridge.ranking.rank_store`; None:
            :func:`rsa_bridge.budget.auto_rank_budget`, in memory when one ranking fits a quarter of the
            available memory, out of core beyond).
        seed: seed of the ranking's samples (the ranks do not depend on it).

    Returns:
        area -> (L, R) float64 similarities, rows in ``store.names`` order, equal to
        :func:`rsa_bridge.compare.compare_vectors` on the dense vectors.
    """
    name = chunked_method(method)
    plan = CHUNKED[name]
    if rank_budget is None:
        from rsa_bridge.budget import auto_rank_budget

        rank_budget = auto_rank_budget(store.n)
    size = int(chunk_size or DEFAULT_CHUNK)
    if not store.names:
        raise RSABridgeError("the model RDM store is empty")
    with contextlib.ExitStack() as stack:
        given = store
        # stores made here share what is left of ``store``'s memory budget, with its ranks kept from an earlier call
        made: list[RDMStore] = list(given.derived_stores())
        brains = {area: _as_store(area, value, given, stack, made) for area, value in neural.items()}
        if COMPARISONS[name].rank:
            def ranked(src: RDMStore) -> RDMStore:
                out = RDMStore(src.ids, storage=rank_storage(src.m), memory_budget=_left(given, made),
                               spill_dir=given.spill_dir)  # uint32 of 2 x rank where exact: half the bytes
                return rank_store(src, memory_budget=rank_budget, seed=seed, out=out)

            for area, b in brains.items():
                brains[area] = stack.enter_context(ranked(b))
                made.append(brains[area])
            # the model store's ranks are kept with it (RDMStore.derived): the comparison, the bootstrap's and
            # the permutation test's observed values rank it once, not once per call
            store, built = given.derived("average-tie ranks", lambda: ranked(given))
            if built:
                made.append(store)
        scale = not COMPARISONS[name].rank
        ex = _exponents(store, size, scale)
        ey = {area: _exponents(b, size, scale) for area, b in brains.items()}
        kx = _shifts(plan.shift, store, size, ex)
        ky = {area: _shifts(plan.shift, b, size, ey[area]) for area, b in brains.items()}
        L = len(store.names)
        sx, sxx = np.zeros(L), np.zeros(L)
        lo, hi = np.full(L, np.inf), np.full(L, -np.inf)
        acc = {area: [np.zeros(len(b.names)), np.zeros(len(b.names)), np.zeros((L, len(b.names))),
                      np.full(len(b.names), np.inf), np.full(len(b.names), -np.inf)] for area, b in brains.items()}
        for start in range(0, store.m, size):
            stop = min(store.m, start + size)
            x = _block(store, start, stop, kx, ex)
            sx += x.sum(axis=1)
            sxx += np.einsum("ij,ij->i", x, x)
            lo, hi = np.minimum(lo, x.min(axis=1)), np.maximum(hi, x.max(axis=1))
            for area, b in brains.items():
                y = _block(b, start, stop, ky[area], ey[area])
                s = acc[area]
                s[0] += y.sum(axis=1)
                s[1] += np.einsum("ij,ij->i", y, y)
                s[2] += x @ y.T
                s[3], s[4] = np.minimum(s[3], y.min(axis=1)), np.maximum(s[4], y.max(axis=1))
        return {area: plan.finish(Moments(store.m, sx, s[0], sxx, s[1], s[2], lo == hi, s[3] == s[4]))
                for area, s in acc.items()}
