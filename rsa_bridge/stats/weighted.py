"""Comparison methods on bootstrap samples, batched: each sample is the original pairs with weights.

A stimulus bootstrap sample of an RDM is the multiset of the original pairs (i, j) with multiplicity
w = c_i c_j (see :func:`rsa_bridge.stats.resample.pair_weights`). Every dot-product method is a
weighted statistic of the original vectors:

- ranks of the multiset: the entries with smaller value carry S = sum of their weights and a tie
  group carries T, so the average rank is S + (T + 1) / 2 — one cumulative sum over the original
  sort order, so a fixed RDM (a model layer) is **sorted once** and re-ranked per sample in O(m);
- mean, norm and dot products become weighted sums.

:func:`prepare` turns (B samples x K RDMs x m pairs) into unit vectors whose batched matrix product
is the similarity — one ``matmul`` for all layers x RDMs x samples, no loop over pairs. What "prepared"
means is the method's own: its :class:`rsa_bridge.methods.DotPath` (this module holds the shared weighted
helpers they use). For fixed RDMs a method may give ``prepare_fixed`` (the rank methods: each RDM's sorted
order, one sample at a time — gather the weights, one cumulative sum, centre and scale in place, one gather
back — spread over threads, :data:`THREADS`; the thread count never changes a result). A method without a
dot path (Kendall's tau-a, the whitened methods, a plugin that gives none) goes through
:mod:`rsa_bridge.stats.masked` instead.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import numpy as np

#: threads for the per-sample loop of the rank methods (None: the CPUs this process may use, at most 8).
#: Every sample is computed the same way whatever the count, so results do not depend on it.
THREADS: int | None = None
#: below this many values per sample (K x m) one thread is used
THREAD_MIN_VALUES = 200_000


@dataclass(frozen=True)
class SortOrder:
    """The sort order and tie groups of vectors (..., m), computed once.

    ``start``/``end``: first/last sorted position of each sorted entry's tie group; ``inverse``: the
    sorted position of each entry; ``ties``: whether any row has tied values.
    """

    order: np.ndarray
    inverse: np.ndarray
    start: np.ndarray
    end: np.ndarray
    ties: bool


def sort_order(x: np.ndarray) -> SortOrder:
    """Sort order and tie groups along the last axis of x (..., m)."""
    order = np.argsort(x, axis=-1, kind="stable")
    xs = np.take_along_axis(x, order, axis=-1)
    m = x.shape[-1]
    pos = np.broadcast_to(np.arange(m), x.shape)
    new = np.ones(x.shape, dtype=bool)
    new[..., 1:] = xs[..., 1:] != xs[..., :-1]
    start = np.maximum.accumulate(np.where(new, pos, 0), axis=-1)
    last = np.ones(x.shape, dtype=bool)
    last[..., :-1] = new[..., 1:]
    end = np.flip(np.minimum.accumulate(np.flip(np.where(last, pos, m - 1), axis=-1), axis=-1), axis=-1)
    inverse = np.empty_like(order)
    np.put_along_axis(inverse, order, pos, axis=-1)
    return SortOrder(order, inverse, start, end, not bool(new.all()))


def _flat(index: np.ndarray) -> np.ndarray:
    """(K, m) per-row positions -> positions in the flattened (K * m) array."""
    return (index + np.arange(index.shape[0])[:, None] * index.shape[1]).ravel()


def weighted_ranks(x: np.ndarray, w: np.ndarray, order: SortOrder | None = None) -> np.ndarray:
    """Average ranks of each row of x as a multiset with multiplicities w.

    Args:
        x: (K, m) fixed vectors (pass their :func:`sort_order`) or (B, K, m) per-sample vectors.
        w: (B, m) non-negative integer weights (as float64).
        order: the sort order of x; computed when None.

    Returns:
        (B, K, m) ranks; an entry of weight 0 gets a rank too, which carries no weight anywhere.
    """
    if order is None:
        order = sort_order(x)
    b, m = w.shape
    if x.ndim == 2:
        # fixed rows: gather with one flat index per row (faster than take_along_axis)
        k = x.shape[0]
        ws = w[:, order.order].reshape(b, k * m)
        cum = np.cumsum(ws.reshape(b, k, m), axis=-1).reshape(b, k * m)
        if order.ties:
            start, end = _flat(order.start), _flat(order.end)
            before = cum[:, start] - ws[:, start]
            ranks_sorted = before + (cum[:, end] - before + 1.0) / 2.0
        else:
            ranks_sorted = cum - 0.5 * ws + 0.5
        return ranks_sorted[:, _flat(order.inverse)].reshape(b, k, m)
    ws = np.take_along_axis(np.broadcast_to(w[:, None, :], x.shape), order.order, axis=-1)
    cum = np.cumsum(ws, axis=-1)
    if order.ties:
        before = np.take_along_axis(cum, order.start, -1) - np.take_along_axis(ws, order.start, -1)
        ranks_sorted = before + (np.take_along_axis(cum, order.end, -1) - before + 1.0) / 2.0
    else:
        ranks_sorted = cum - 0.5 * ws + 0.5
    return np.take_along_axis(ranks_sorted, order.inverse, -1)


def _unit(v: np.ndarray, w: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """sqrt(w) * v scaled to unit norm along the last axis; zero-norm rows become NaN.

    ``reference`` (B, K, 1): the norm before centring; a centred norm below 1e-12 of it counts as zero
    (a constant RDM leaves only rounding residue after subtracting its mean).
    """
    v = v * np.sqrt(w)[:, None, :]
    norm = np.sqrt(np.einsum("bkm,bkm->bk", v, v))[..., None]
    zero = norm <= (0.0 if reference is None else 1e-12 * reference)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(zero, np.nan, v / np.where(zero, 1.0, norm))


unit = _unit


def weighted_norm(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted norms sqrt(sum w x^2), (B, K, 1), of x (K, m) or (B, K, m) under weights w (B, m)."""
    xb = x[None] if x.ndim == 2 else x
    return np.sqrt(np.einsum("bkm,bm->bk", np.broadcast_to(xb * xb, (w.shape[0],) + xb.shape[1:]), w))[..., None]


_norm = weighted_norm


def weighted_mean(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted means (B, K, 1) of x (K, m) or (B, K, m) under weights w (B, m)."""
    xb = x[None] if x.ndim == 2 else x
    return np.einsum("bkm,bm->bk", np.broadcast_to(xb, (w.shape[0],) + xb.shape[1:]), w)[..., None] / w.sum(
        axis=-1)[:, None, None]


_weighted_mean = weighted_mean


def weighted_zscores(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(x - weighted mean) / weighted population SD, (B, K, m) (rsatoolbox ``pool_rdm`` for correlations)."""
    xb = np.broadcast_to(x, (w.shape[0],) + x.shape[-2:]) if x.ndim == 2 else x
    total = w.sum(axis=-1)[:, None, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        centred = xb - weighted_mean(xb, w)
        sd = np.sqrt(np.einsum("bkm,bm->bk", centred * centred, w)[..., None] / total)
        return centred / sd


def weighted_rms_scaled(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x / weighted root mean square, (B, K, m) (rsatoolbox ``pool_rdm`` for cosines)."""
    xb = np.broadcast_to(x, (w.shape[0],) + x.shape[-2:]) if x.ndim == 2 else x
    total = w.sum(axis=-1)[:, None, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        rms = np.sqrt(np.einsum("bkm,bm->bk", xb * xb, w)[..., None] / total)
        return xb / rms


def _centred_sorted_ranks(order: SortOrder, w: np.ndarray) -> tuple[np.ndarray, float]:
    """sqrt(w) * (rank - mean rank) of fixed vectors (K, m) for one sample, in each row's sorted order.

    ``w`` (m,) the sample's pair weights. Returns the (K, m) values and the total weight W. In place
    where possible: this runs once per sample.
    """
    ws = np.take(w, order.order)
    cum = np.cumsum(ws, axis=-1)
    total = float(cum[0, -1])
    if order.ties:  # average rank of a tie group: before + (weight of the group + 1) / 2
        before = np.take_along_axis(cum, order.start, -1)
        before -= np.take_along_axis(ws, order.start, -1)
        ranks = np.take_along_axis(cum, order.end, -1)
        ranks -= before
        ranks *= 0.5
        ranks += before
        ranks -= total / 2.0  # (rank + 1/2) - (W + 1)/2
    else:  # rank = cum - (w - 1)/2; centred: cum - w/2 - W/2
        ranks = cum
        ws *= 0.5
        ranks -= ws
        ranks -= total / 2.0
        ws *= 2.0
    np.sqrt(ws, out=ws)
    ranks *= ws
    return ranks, total


def fixed_ranks(order: SortOrder, w: np.ndarray, scale: Callable[..., None]) -> np.ndarray:
    """Prepared centred ranks of fixed vectors (K, m) with the sort ``order``, one sample at a time, (B, K, m).

    ``scale(v, norm, total, zero)`` finishes one sample in place: v (K, m) the sqrt(w)-weighted centred ranks
    in sorted order, norm (K,) their norms, total W the sample's total weight, zero (K,) the rows constant within
    the sample (set to NaN afterwards). A rank method's ``prepare_fixed`` (``spearman`` divides by the norm,
    ``rho_a`` scales by sqrt(12 / (W^3 - W))).

    Everything happens in each row's sorted order (weights gathered once, one cumulative sum,
    centring, scaling, all in place); one gather per sample puts the result back into pair order.
    Equal to :func:`weighted_ranks` + centring (tests check it) and several times faster for large RDMs.
    """
    w = np.asarray(w, dtype=np.float64)
    k, m = order.order.shape
    out = np.empty((w.shape[0], k, m))

    def one(s: int) -> None:
        v, total = _centred_sorted_ranks(order, w[s])
        norm = np.sqrt(np.einsum("km,km->k", v, v))
        zero = norm == 0  # constant within the sample: the similarity is undefined
        scale(v, norm, total, zero)
        v[zero] = np.nan
        for row in range(k):  # row by row: the gather stays within one row's values (cache)
            np.take(v[row], order.inverse[row], out=out[s, row])

    threads = _threads(w.shape[0], k * m)
    if threads == 1:
        for s in range(w.shape[0]):
            one(s)
    else:  # numpy releases the GIL in these array operations
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, range(w.shape[0])))
    return out


def cpu_threads() -> int:
    """The cores this process may use (``os.sched_getaffinity`` where it exists), at most 8."""
    return min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def _threads(n_tasks: int, values: int) -> int:
    if n_tasks < 2 or values < THREAD_MIN_VALUES:
        return 1
    limit = THREADS if THREADS is not None else cpu_threads()
    return max(1, min(n_tasks, limit))


def _dot(method):
    from rsa_bridge.methods import get

    record = get(method)
    record.require("dot", "the batched bootstrap / permutation path", "use its explicit (masked) path")
    return record


def prepare(method, x: np.ndarray, w: np.ndarray, order: SortOrder | None = None) -> np.ndarray:
    """Prepared vectors (B, K, m): ``prepared_a @ prepared_b.T`` per sample is the method's similarity.

    Args:
        method: a name or :class:`rsa_bridge.methods.Method` with a dot path.
        x: (K, m) fixed vectors (e.g. model layers; pass their :func:`sort_order`, computed once) or
            (B, K, m) per-sample vectors.
        w: (B, m) pair weights of the samples.
        order: the sort order of a fixed x (rank methods); computed when None.

    Rows that are constant (or zero, for cosine) within a sample are NaN.
    """
    record = _dot(method)
    if x.ndim == 2 and record.rank and order is None:
        order = sort_order(x)
    if x.ndim == 2 and record.dot.prepare_fixed is not None and order is not None:
        return record.dot.prepare_fixed(order, np.asarray(w, dtype=np.float64))
    return record.dot.prepare(x, w, order)


def pool_values(method, x: np.ndarray, w: np.ndarray, order: SortOrder | None = None) -> np.ndarray:
    """Per-RDM values that the pooled (noise-ceiling) RDM averages, as rsatoolbox's ``pool_rdm``, (B, K, m).

    The method's ``dot.pool_values`` (ranks for the rank methods, z-scores for pearson, RMS-scaled values for
    cosine); a method without them is refused in one line.
    """
    record = _dot(method)
    if record.dot.pool_values is None:
        from rsa_bridge.errors import RSABridgeError

        raise RSABridgeError(f"comparison method {record.name!r} gives no weighted pool values (dot.pool_values), "
                             "which bootstrap noise ceilings need; bootstrap without ceiling=True")
    if x.ndim == 2 and record.rank and order is None:
        order = sort_order(x)
    return record.dot.pool_values(x, w, order)


def __getattr__(name: str):
    """``PREPARE`` (method -> its dot ``prepare``), ``DOT_METHODS``, ``RANK_METHODS``: live views of the registry."""
    from rsa_bridge import definitions
    from rsa_bridge.methods import view

    if name == "PREPARE":
        return view("comparison method with a fast path", lambda m: m.dot.prepare, lambda m: m.dot is not None)
    if name in ("DOT_METHODS", "RANK_METHODS"):
        return getattr(definitions, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
