"""Exact weighted-rank bootstrap of Spearman / rho_a in one pass per RDM and sample (compiled, all cores).

The science is that of :mod:`rsa_bridge.stats.weighted`: a stimulus bootstrap sample is the original
pairs (i, j) with integer weights w = c_i c_j (c_i: how often stimulus i was drawn); the sample's
Spearman correlation of two RDM vectors x, y is the weighted Pearson correlation of their weighted
average ranks. This module computes it with the fewest passes over the n(n-1)/2 pairs that the
arithmetic allows:

- every fixed RDM (model layers and area RDMs) is sorted **once**; per sorted position the stimulus
  pair (i, j) is stored as small integers, so a sample's weight is two look-ups in the tiny count
  table c (n values, in L1 cache) instead of a gather from an m-long weight vector;
- weighted ranks are a running sum of w in that sorted order. All rank quantities are kept as the
  integer ``2 * rank - (W + 1)`` (W = sum of weights = ((sum c)^2 - sum c^2) / 2, known before the
  pass), exact in float64 (|value| <= W < 2^53), so the ranks are exact integers, not rounded floats;
- one pass per area RDM writes its doubled centred ranks into pair order; one pass per model RDM
  walks its sorted order and accumulates sum w a b against them for all the area's RDMs at once (no
  model ranks are ever stored, no GEMM over m is needed) together with sum w a^2;
- the cross sums are accumulated in blocks of :data:`BLOCK` pairs (pairwise-style summation), so
  the rounding error of a similarity is ~1e-15, not m * eps;
- samples run in parallel over all cores (numba ``prange``); the result does not depend on the
  thread count (each sample is computed by one thread in a fixed order).

Pairs with weight 0 (a stimulus not drawn) add nothing; they are walked but not written.
Equivalent in rsatoolbox: ``eval_bootstrap_pattern`` with ``method='spearman'`` / ``'rho_a'``
(tests check equality to 1e-10 on the same index sets).

Requires numba (``pip install numba``); :func:`available` says whether it is importable, and
:mod:`rsa_bridge.stats.bootstrap` falls back to the numpy path when it is not.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

#: pairs per partial sum of the cross products (bounds the rounding error of long sums)
BLOCK = 4096
#: samples per pass over the sorted pairs (16 float32 = one 64-byte cache line per pair and area RDM)
LANES = 16
#: numba's default (workqueue) threading layer must not be entered by two threads at once (dask workers
#: that are threads of one process): kernel calls are serialised; each call uses all cores itself
_LOCK = threading.Lock()
#: integers up to this size are exact in float32 (the rank buffers use float32 when every rank fits)
FLOAT32_EXACT = 2.0 ** 24

try:  # optional accelerator
    import numba
    from numba import njit, prange

    _HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only without numba
    _HAVE_NUMBA = False


def available() -> bool:
    """Whether the compiled kernel can run (numba importable)."""
    return _HAVE_NUMBA


@dataclass(frozen=True)
class SortedPairs:
    """Fixed RDM vectors (K, m) in sorted order: pair index, its two stimuli, tie flags.

    ``order`` (K, m) int64 pair index at each sorted position; ``i``/``j`` (K, m) the pair's stimuli
    (int16 when n < 32768, else int32); ``tied`` (K, m) uint8, 1 where the next sorted value is equal.
    """

    order: np.ndarray
    i: np.ndarray
    j: np.ndarray
    tied: np.ndarray


def sorted_pairs(x: np.ndarray, n: int) -> SortedPairs:
    """:class:`SortedPairs` of vectors x (K, m), m = n(n-1)/2 in upper-triangle order."""
    order = np.argsort(x, axis=-1, kind="stable").astype(np.int64 if x.shape[-1] >= 2**31 else np.int32)
    xs = np.take_along_axis(x, order, axis=-1)
    tied = np.zeros(x.shape, dtype=np.uint8)
    tied[:, :-1] = xs[:, 1:] == xs[:, :-1]
    rows, cols = np.triu_indices(n, k=1)
    dtype = np.int16 if n < 32768 else np.int32
    return SortedPairs(order, rows.astype(dtype)[order], cols.astype(dtype)[order], tied)


if _HAVE_NUMBA:
    @njit(cache=True, nogil=True)
    def _area_pass(ct, order, pi, pj, tied, out, col, total, norm, ranks):  # pragma: no cover - compiled
        """Doubled centred ranks 2r - (W+1) of one sorted RDM into out[:, col, :] for S samples at once.

        ct (n, S) counts; total (S,) W per sample; adds sum w a^2 to norm (S,). ``ranks`` (m, S) is
        scratch: the ranks are computed in sorted order (sequential), then scattered in one tight loop
        (many cache misses in flight at once instead of one per step of the arithmetic).
        """
        m = order.shape[0]
        n_s = ct.shape[1]
        cum = np.zeros(n_s)
        group = np.zeros(n_s)
        t = 0
        while t < m:
            e = t
            while tied[e] == 1:
                e += 1
            if e == t:
                i = pi[t]
                j = pj[t]
                for s in range(n_s):
                    w = ct[i, s] * ct[j, s]
                    a = 2.0 * cum[s] + w - total[s]
                    ranks[t, s] = a
                    norm[s] += w * a * a
                    cum[s] += w
            else:
                for s in range(n_s):
                    group[s] = 0.0
                for u in range(t, e + 1):
                    for s in range(n_s):
                        group[s] += ct[pi[u], s] * ct[pj[u], s]
                for u in range(t, e + 1):
                    for s in range(n_s):
                        w = ct[pi[u], s] * ct[pj[u], s]
                        a = 2.0 * cum[s] + group[s] - total[s]
                        ranks[u, s] = a
                        norm[s] += w * a * a
                for s in range(n_s):
                    cum[s] += group[s]
            t = e + 1
        for t in range(m):
            p = order[t]
            for s in range(n_s):
                out[p, col, s] = ranks[t, s]

    @njit(cache=True, nogil=True)
    def _model_pass(ct, order, pi, pj, tied, area, total, cross, norm, gathered):  # pragma: no cover - compiled
        """cross (R, S) += sum w a b_r of one sorted model RDM against the area ranks (m, R, S); norm (S,) += sum w a^2.

        ``gathered`` (m, R, S) scratch: the area ranks in this RDM's sorted order, gathered first in one
        tight loop, then walked sequentially with the running rank sum.
        """
        m = order.shape[0]
        n_r = area.shape[1]
        n_s = ct.shape[1]
        for t in range(m):
            p = order[t]
            for r in range(n_r):
                for s in range(n_s):
                    gathered[t, r, s] = area[p, r, s]
        block = np.zeros((n_r, n_s))
        cum = np.zeros(n_s)
        group = np.zeros(n_s)
        wa = np.zeros(n_s)
        count = 0
        t = 0
        while t < m:
            e = t
            while tied[e] == 1:
                e += 1
            if e == t:
                i = pi[t]
                j = pj[t]
                for s in range(n_s):
                    w = ct[i, s] * ct[j, s]
                    a = 2.0 * cum[s] + w - total[s]
                    wa[s] = w * a
                    norm[s] += wa[s] * a
                    cum[s] += w
                for r in range(n_r):
                    for s in range(n_s):
                        block[r, s] += wa[s] * gathered[t, r, s]
            else:
                for s in range(n_s):
                    group[s] = 0.0
                for u in range(t, e + 1):
                    for s in range(n_s):
                        group[s] += ct[pi[u], s] * ct[pj[u], s]
                for u in range(t, e + 1):
                    for s in range(n_s):
                        w = ct[pi[u], s] * ct[pj[u], s]
                        a = 2.0 * cum[s] + group[s] - total[s]
                        wa[s] = w * a
                        norm[s] += wa[s] * a
                    for r in range(n_r):
                        for s in range(n_s):
                            block[r, s] += wa[s] * gathered[u, r, s]
                for s in range(n_s):
                    cum[s] += group[s]
            t = e + 1
            count += 1
            if count >= BLOCK:
                for r in range(n_r):
                    for s in range(n_s):
                        cross[r, s] += block[r, s]
                        block[r, s] = 0.0
                count = 0
        for r in range(n_r):
            for s in range(n_s):
                cross[r, s] += block[r, s]

    @njit(cache=True, parallel=True)
    def _samples(counts_t, m_order, m_i, m_j, m_tied, a_order, a_i, a_j, a_tied, storage, n_threads):  # pragma: no cover - compiled
        """counts_t (G, n, S): G groups of S samples. Returns cross (G, L, R, S), norms (G, L, S), (G, R, S), W (G, S)."""
        n_g = counts_t.shape[0]
        n_s = counts_t.shape[2]
        n_l = m_order.shape[0]
        n_r = a_order.shape[0]
        m = m_order.shape[1]
        cross = np.zeros((n_g, n_l, n_r, n_s))
        norm_m = np.zeros((n_g, n_l, n_s))
        norm_a = np.zeros((n_g, n_r, n_s))
        totals = np.zeros((n_g, n_s))
        n_t = min(n_threads, n_g)
        # one pair of rank buffers per thread slot, reused by its groups (no page faults per group)
        areas = np.empty((n_t, m, n_r, n_s), dtype=storage.dtype)
        scratches = np.empty((n_t, m, n_r, n_s), dtype=storage.dtype)
        for k in prange(n_t):
            area = areas[k]
            scratch = scratches[k]
            for g in range(k, n_g, n_t):
                ct = counts_t[g]
                for s in range(n_s):
                    sc = 0.0
                    sc2 = 0.0
                    for q in range(ct.shape[0]):
                        sc += ct[q, s]
                        sc2 += ct[q, s] * ct[q, s]
                    totals[g, s] = (sc * sc - sc2) / 2.0  # W, the number of pairs in the sample
                for r in range(n_r):
                    _area_pass(ct, a_order[r], a_i[r], a_j[r], a_tied[r], area, r, totals[g], norm_a[g, r],
                               scratch[:, 0])
                for l in range(n_l):
                    _model_pass(ct, m_order[l], m_i[l], m_j[l], m_tied[l], area, totals[g], cross[g, l],
                                norm_m[g, l], scratch)
        return cross, norm_m, norm_a, totals


def lanes_for(n_rdms: int) -> int:
    """Samples computed together in one pass (their area ranks of one pair share a cache line)."""
    return max(1, LANES // max(n_rdms, 1))


def set_threads(threads: int | None) -> None:
    """Threads of the kernel (None: numba's default, all usable CPUs)."""
    if _HAVE_NUMBA:
        numba.set_num_threads(threads if threads else numba.config.NUMBA_NUM_THREADS)


def similarities(method: str, model: SortedPairs, area: SortedPairs, counts: np.ndarray) -> np.ndarray:
    """Per-sample similarities (B, L, R) of model RDMs with area RDMs.

    Args:
        method: ``spearman`` or ``rho_a``.
        model, area: :func:`sorted_pairs` of the (L, m) model and (R, m) area vectors.
        counts: (B, n) how often each stimulus was drawn in each sample (all ones: no resampling).

    Returns:
        (B, L, R) float64; NaN where an RDM is constant within the sample.
    """
    counts = np.asarray(counts, dtype=np.float64)
    b, n = counts.shape
    lanes = lanes_for(area.order.shape[0])
    n_g = -(-b // lanes)
    padded = np.ones((n_g * lanes, n))  # padding samples (all stimuli once) are computed and dropped
    padded[:b] = counts
    counts_t = np.ascontiguousarray(padded.reshape(n_g, lanes, n).transpose(0, 2, 1))
    # doubled centred ranks are integers of size <= W = ((sum c)^2 - sum c^2) / 2: exact in float32 below 2^24
    # |2r - (W+1)| <= W for every pair; W from the counts themselves (index sets may hold more than n draws)
    w_max = float(((counts.sum(axis=1) ** 2 - (counts ** 2).sum(axis=1)) / 2.0).max())
    storage = np.zeros(1, dtype=np.float32 if w_max < FLOAT32_EXACT else np.float64)
    with _LOCK:
        cross, norm_m, norm_a, total = _samples(counts_t, model.order, model.i, model.j, model.tied,
                                                area.order, area.i, area.j, area.tied, storage,
                                                numba.get_num_threads())
    # (G, ..., S) -> (B, ...)
    cross = np.moveaxis(cross, -1, 1).reshape((n_g * lanes,) + cross.shape[1:3])[:b]
    norm_m = np.moveaxis(norm_m, -1, 1).reshape(n_g * lanes, -1)[:b]
    norm_a = np.moveaxis(norm_a, -1, 1).reshape(n_g * lanes, -1)[:b]
    total = total.reshape(-1)[:b]
    zero = (norm_m == 0)[:, :, None] | (norm_a == 0)[:, None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        if method == "spearman":
            sims = cross / np.sqrt(norm_m[:, :, None] * norm_a[:, None, :])
        else:  # rho_a: 12 sum w a b / (W^3 - W), a, b centred ranks (here doubled: / 4)
            sims = 3.0 * cross / (total ** 3 - total)[:, None, None]
    return np.where(zero, np.nan, sims)
