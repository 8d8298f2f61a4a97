"""Exact weighted-rank bootstrap of Spearman / rho_a in few cache-friendly passes per RDM (compiled, all cores).

The science is that of :mod:`rsa_bridge.stats.weighted`: a stimulus bootstrap sample is the original
pairs (i, j) with integer weights w = c_i c_j (c_i: how often stimulus i was drawn); the sample's
Spearman correlation of two RDM vectors x, y is the weighted Pearson correlation of their weighted
average ranks. This module computes it with the fewest passes over the n(n-1)/2 pairs that the
arithmetic allows:

- every fixed RDM (model layers and area RDMs) is sorted **once**; per sorted position the stimulus
  pair (i, j) is stored as small integers, so a sample's weight is two look-ups in the tiny count
  table c (n x 16 float32, in cache) instead of a gather from an m-long weight vector;
- weighted ranks are a running sum of w in that sorted order. All rank quantities are kept as the
  integer ``2 * rank - (W + 1)`` (W = sum of weights = ((sum c)^2 - sum c^2) / 2, known before the
  pass), exact in float64 (|value| <= W < 2^53), and stored in float32 while W < 2^24 (exact there);
- :data:`LANES` = 16 samples share every pass: their values for one pair fill one 64-byte cache line,
  and the lane loops have that compile-time length, so they become SIMD instructions;
- one sequential pass per area RDM writes its ranks in the area's own sorted order; they reach each
  model RDM's sorted order through a **blocked two-step permutation** planned once per model/area
  pair (:func:`plan_chunks`): a pass sends every rank to its model block (2^:data:`BLOCK_SHIFT`
  positions, 512 KiB: an L2 cache), then per block the ranks are placed and the block is walked in
  order, accumulating sum w a b and sum w a^2 — no random access to main memory, no model ranks
  stored, no GEMM over m;
- the sums are partial per block (pairwise-style summation), so the rounding error of a similarity
  is ~1e-15, not m * eps;
- groups of samples run in parallel over all cores (numba ``prange``); the result does not depend on
  the thread count (each sample is computed by one thread in a fixed order);
- the compiled code is cached on disk (:func:`_jit`): the first run of an installation compiles.

Pairs with weight 0 (a stimulus not drawn) add nothing (they are walked: 16 samples rarely all miss a pair).
Equivalent in rsatoolbox: ``eval_bootstrap_pattern`` with ``method='spearman'`` / ``'rho_a'``
(tests check equality to 1e-10 on the same index sets).

Requires numba (``pip install numba``); :func:`available` says whether it is importable, and
:mod:`rsa_bridge.stats.bootstrap` falls back to the numpy path when it is not.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

#: model-sorted positions per block of the blocked permutation: 2^13 positions x 16 float32 samples = 512 KiB,
#: an L2 cache; the cross sums are partial per block (bounds the rounding error of long sums)
BLOCK_SHIFT = 13
#: bytes of permutation plans (6 per pair, model RDM and area RDM) held at once; more model RDMs run in chunks
PLAN_BYTES = 512 * 2**20
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


def _jit(**options):
    """``numba.njit`` with the machine code cached on disk (``__pycache__`` next to this file, else numba's
    user-wide cache folder, or ``NUMBA_CACHE_DIR``): the first run of an installation compiles (tens of
    seconds), later runs load. Where no cache folder is writable, compiled once per process instead."""
    def wrap(function):
        try:
            return njit(cache=True, **options)(function)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            return njit(**options)(function)
    return wrap


@dataclass(frozen=True)
class SortedPairs:
    """Fixed RDM vectors (K, m) in sorted order: pair index, its two stimuli, tie flags.

    ``order`` (K, m) pair index at each sorted position; ``position`` (K, m) the sorted position of
    each pair index (the inverse of ``order``); ``i``/``j`` (K, m) the pair's stimuli (int16 when
    n < 32768, else int32); ``tied`` (K, m) uint8, 1 where the next sorted value is equal.
    """

    order: np.ndarray
    i: np.ndarray
    j: np.ndarray
    tied: np.ndarray
    position: np.ndarray


def sorted_pairs(x: np.ndarray, n: int) -> SortedPairs:
    """:class:`SortedPairs` of vectors x (K, m), m = n(n-1)/2 in upper-triangle order.

    The order within a tie group is irrelevant (a group shares one rank), so the fast unstable sort is used.
    """
    index = np.int64 if x.shape[-1] >= 2**31 else np.int32
    order = np.argsort(x, axis=-1).astype(index)
    xs = np.take_along_axis(x, order, axis=-1)
    tied = np.zeros(x.shape, dtype=np.uint8)
    tied[:, :-1] = xs[:, 1:] == xs[:, :-1]
    position = np.empty_like(order)
    np.put_along_axis(position, order, np.arange(x.shape[-1], dtype=index)[None], axis=-1)
    rows, cols = np.triu_indices(n, k=1)
    dtype = np.int16 if n < 32768 else np.int32
    return SortedPairs(order, rows.astype(dtype)[order], cols.astype(dtype)[order], tied, position)


if _HAVE_NUMBA:
    @_jit(parallel=True)
    def _plans(m_order, a_position, shift):  # pragma: no cover - compiled
        """Blocked permutation from each area RDM's sorted order to each model RDM's sorted order.

        m_order (L, m): pair at each model-sorted position t; a_position (R, m): area-sorted position u
        of each pair. Model-sorted positions come in blocks of 2^shift; ``dest`` (L, R, m) sends area
        position u to a slot of t's block (slots of block k are [k << shift, (k+1) << shift), filled in
        ascending u); ``local`` (L, R, m) says which t of the block a slot holds (t & (2^shift - 1)).
        """
        n_l, m = m_order.shape
        n_r = a_position.shape[0]
        n_b = (m + (1 << shift) - 1) >> shift
        mask = (1 << shift) - 1
        dest = np.empty((n_l, n_r, m), dtype=np.int32)
        local = np.empty((n_l, n_r, m), dtype=np.uint16)
        for k in prange(n_l * n_r):
            l = k // n_r
            r = k - l * n_r
            inv = np.empty(m, dtype=np.int32)
            for t in range(m):
                inv[a_position[r, m_order[l, t]]] = t
            nxt = np.empty(n_b, dtype=np.int64)
            for b in range(n_b):
                nxt[b] = b << shift
            for u in range(m):
                t = inv[u]
                b = t >> shift
                d = nxt[b]
                nxt[b] = d + 1
                dest[l, r, u] = d
                local[l, r, d] = t & mask
        return dest, local

    @_jit(nogil=True)
    def _area_pass(ct, pi, pj, tied, total, ranks):  # pragma: no cover - compiled
        """Doubled centred ranks 2r - (W+1) of one area RDM in its sorted order into ranks (m, LANES).

        ct (n, LANES) float32 counts; total (LANES,) W per sample. Returns sum w a^2 per sample
        (LANES,). Sequential writes only: the ranks stay in the area's sorted order. The lane loops
        have the compile-time length LANES, so they compile to SIMD instructions.
        """
        m = pi.shape[0]
        st = np.zeros((3, LANES))  # running rank sum, tie group weight, sum w a^2
        t = 0
        while t < m:
            i = pi[t]
            j = pj[t]
            if tied[t] == 0:
                for s in range(LANES):
                    w = np.float64(ct[i, s] * ct[j, s])
                    a = 2.0 * st[0, s] + w - total[s]
                    ranks[t, s] = a
                    st[2, s] += w * a * a
                    st[0, s] += w
                t += 1
                continue
            e = t
            while tied[e] == 1:
                e += 1
            for s in range(LANES):
                st[1, s] = 0.0
            for u in range(t, e + 1):
                for s in range(LANES):
                    st[1, s] += np.float64(ct[pi[u], s] * ct[pj[u], s])
            for u in range(t, e + 1):
                for s in range(LANES):
                    ranks[u, s] = 2.0 * st[0, s] + st[1, s] - total[s]
            for s in range(LANES):
                a = 2.0 * st[0, s] + st[1, s] - total[s]
                st[2, s] += st[1, s] * a * a
                st[0, s] += st[1, s]
            t = e + 1
        return st[2].copy()

    @_jit(nogil=True)
    def _model_pass(ct, pairs, total, ranks, plan, scratch, cross, norm):  # pragma: no cover - compiled
        """cross (LANES,) += sum w a b of one model RDM against one area RDM's ranks; norm += sum w a^2.

        pairs: the model RDM's sorted pairs ``(pi, pj, tied)`` (m,) each; plan: ``(dest, local, shift)`` of
        :func:`_plans`; scratch: ``(staging, blk)`` buffers of one thread (tuples, so that the compiled
        signature stays short).

        ranks (m, LANES): the area's doubled centred ranks in its sorted order. They reach the model's
        sorted order in two cache-friendly steps (:func:`_plans`): one pass sends each to its slot in
        the model position's block (``staging``, few sequential write streams), then per block of
        2^shift model positions the slots are placed into ``blk`` (fits the L2 cache) and the block
        is walked in order with the running rank sum. The sums are partial per block. ``norm`` of
        length 0: not summed (already counted for this model RDM).
        """
        pi, pj, tied = pairs
        dest, local, shift = plan
        staging, blk = scratch
        m = pi.shape[0]
        for u in range(m):
            d = dest[u]
            for s in range(LANES):
                staging[d, s] = ranks[u, s]
        st = np.zeros((4, LANES))  # running rank sum, rank of the current tie group, partial cross, partial norm
        gend = -1
        size = 1 << shift
        for lo in range(0, m, size):
            hi = min(m, lo + size)
            for v in range(lo, hi):
                q = local[v]
                for s in range(LANES):
                    blk[q, s] = staging[v, s]
            for s in range(LANES):
                st[2, s] = 0.0
                st[3, s] = 0.0
            for t in range(lo, hi):
                i = pi[t]
                j = pj[t]
                q = t - lo
                if t > gend and tied[t] == 0:  # a pair of its own (the common case): one fused lane loop
                    gend = t
                    for s in range(LANES):
                        w = np.float64(ct[i, s] * ct[j, s])
                        a = 2.0 * st[0, s] + w - total[s]
                        st[0, s] += w
                        wa = w * a
                        st[2, s] += wa * blk[q, s]
                        st[3, s] += wa * a
                    continue
                if t > gend:  # a new tie group: its rank from the weight of all its pairs
                    e = t
                    while tied[e] == 1:
                        e += 1
                    gend = e
                    for s in range(LANES):
                        g = 0.0
                        for u in range(t, e + 1):
                            g += np.float64(ct[pi[u], s] * ct[pj[u], s])
                        st[1, s] = 2.0 * st[0, s] + g - total[s]
                        st[0, s] += g
                for s in range(LANES):
                    wa = np.float64(ct[i, s] * ct[j, s]) * st[1, s]
                    st[2, s] += wa * blk[q, s]
                    st[3, s] += wa * st[1, s]
            for s in range(LANES):
                cross[s] += st[2, s]
            if norm.shape[0] > 0:
                for s in range(LANES):
                    norm[s] += st[3, s]

    @_jit(parallel=True)
    def _samples(counts_t, model, area, plan, buffers):  # pragma: no cover - compiled
        """counts_t (G, n, S): G groups of S samples. Returns cross (G, L, R, S), norms (G, L, S), (G, R, S), W (G, S).

        model / area: the sorted pairs ``(i, j, tied)`` of L model / R area RDMs, (L or R, m) each; plan:
        ``(dest, local, shift)`` of :func:`_plans`; buffers: ``(ranks_buf, staging_buf, blk_buf)``.

        ranks_buf / staging_buf (T, m, S) and blk_buf (T, 2^shift, S): scratch per thread slot T
        (allocated by numpy, in huge pages where the system allows).
        """
        m_i, m_j, m_tied = model
        a_i, a_j, a_tied = area
        dest, local, shift = plan
        ranks_buf, staging_buf, blk_buf = buffers
        n_g = counts_t.shape[0]
        n_s = counts_t.shape[2]
        n_l = m_i.shape[0]
        n_r = a_i.shape[0]
        cross = np.zeros((n_g, n_l, n_r, n_s))
        norm_m = np.zeros((n_g, n_l, n_s))
        norm_a = np.zeros((n_g, n_r, n_s))
        totals = np.zeros((n_g, n_s))
        n_t = min(ranks_buf.shape[0], n_g)
        skip = np.zeros(0)
        for k in prange(n_t):
            ranks = ranks_buf[k]
            staging = staging_buf[k]
            blk = blk_buf[k]
            for g in range(k, n_g, n_t):
                ct = counts_t[g]
                for s in range(n_s):
                    sc = 0.0
                    sc2 = 0.0
                    for q in range(ct.shape[0]):
                        sc += np.float64(ct[q, s])
                        sc2 += np.float64(ct[q, s]) * np.float64(ct[q, s])
                    totals[g, s] = (sc * sc - sc2) / 2.0  # W, the number of pairs in the sample
                for r in range(n_r):
                    norm_a[g, r] = _area_pass(ct, a_i[r], a_j[r], a_tied[r], totals[g], ranks)
                    for l in range(n_l):
                        _model_pass(ct, (m_i[l], m_j[l], m_tied[l]), totals[g], ranks, (dest[l, r], local[l, r], shift),
                                    (staging, blk), cross[g, l, r], norm_m[g, l] if r == 0 else skip)
        return cross, norm_m, norm_a, totals


def set_threads(threads: int | None) -> None:
    """Threads of the kernel (None: numba's default, all usable CPUs)."""
    if _HAVE_NUMBA:
        numba.set_num_threads(threads if threads else numba.config.NUMBA_NUM_THREADS)


def plan_chunks(model: SortedPairs, area: SortedPairs) -> list[tuple[slice, np.ndarray, np.ndarray, int]]:
    """The blocked permutations (:func:`_plans`) from ``area``'s sorted order to each model RDM's.

    Returns [(model rows, dest (l, R, m) int32, local (l, R, m) uint16, block shift)], rows in chunks of at most
    :data:`PLAN_BYTES`. Computed once per model/area pair and reused by every call of
    :func:`similarities` (pass ``plans``).
    """
    n_l, m = model.order.shape
    chunk = max(1, PLAN_BYTES // max(6 * area.order.shape[0] * m, 1))  # model RDMs per chunk of plans
    out = []
    with _LOCK:
        for lo in range(0, n_l, chunk):
            sl = slice(lo, min(n_l, lo + chunk))
            out.append((sl, *_plans(model.order[sl], area.position, BLOCK_SHIFT), BLOCK_SHIFT))
    return out


def kernel_of(method) -> str:
    """The rank-kernel finish (``pearson`` / ``rho_a``) of a method's record; refused in one line without one."""
    from rsa_bridge.methods import get

    record = get(method)
    record.require("kernel", "the compiled / torch rank bootstrap", "use the numpy backend")
    return record.kernel


def similarities(method: str, model: SortedPairs, area: SortedPairs, counts: np.ndarray,
                 plans: list | None = None) -> np.ndarray:
    """Per-sample similarities (B, L, R) of model RDMs with area RDMs.

    Args:
        method: a method name (or :class:`rsa_bridge.methods.Method`) with a rank ``kernel``: ``pearson``
            (Spearman) or ``rho_a`` finishing of the weighted ranks.
        model, area: :func:`sorted_pairs` of the (L, m) model and (R, m) area vectors.
        counts: (B, n) how often each stimulus was drawn in each sample (all ones: no resampling).
        plans: :func:`plan_chunks` of model and area (computed here when None; when they exceed
            :data:`PLAN_BYTES` pass None and they are computed chunk by chunk).

    Returns:
        (B, L, R) float64; NaN where an RDM is constant within the sample.
    """
    kernel = kernel_of(method)
    counts = np.asarray(counts, dtype=np.float64)
    b, n = counts.shape
    lanes = LANES
    n_g = -(-b // lanes)
    padded = np.ones((n_g * lanes, n))  # padding samples (all stimuli once) are computed and dropped
    padded[:b] = counts
    # pair weights c_i c_j are computed in the counts' dtype: float32 is exact while every product is below 2^24
    exact32 = counts.max(initial=0.0) ** 2 < FLOAT32_EXACT
    counts_t = np.ascontiguousarray(padded.reshape(n_g, lanes, n).transpose(0, 2, 1),
                                    dtype=np.float32 if exact32 else np.float64)
    # doubled centred ranks are integers of size <= W = ((sum c)^2 - sum c^2) / 2: exact in float32 below 2^24
    # |2r - (W+1)| <= W for every pair; W from the counts themselves (index sets may hold more than n draws)
    w_max = float(((counts.sum(axis=1) ** 2 - (counts ** 2).sum(axis=1)) / 2.0).max())
    dtype = np.float32 if w_max < FLOAT32_EXACT else np.float64
    n_l, m = model.order.shape
    n_r = area.order.shape[0]
    if plans is None:
        chunk = max(1, PLAN_BYTES // max(6 * n_r * m, 1))
        plans = [(slice(lo, min(n_l, lo + chunk)), None, None, BLOCK_SHIFT) for lo in range(0, n_l, chunk)]
    shift = plans[0][3]
    with _LOCK:
        n_t = min(numba.get_num_threads(), n_g)
        ranks = np.empty((n_t, m, lanes), dtype=dtype)
        staging = np.empty((n_t, m, lanes), dtype=dtype)
        blk = np.empty((n_t, 1 << shift, lanes), dtype=dtype)
        parts = []
        for sl, dest, local, _ in plans:
            if dest is None:
                dest, local = _plans(model.order[sl], area.position, shift)
            parts.append(_samples(counts_t, (model.i[sl], model.j[sl], model.tied[sl]), (area.i, area.j, area.tied),
                                  (dest, local, shift), (ranks, staging, blk)))
    cross = np.concatenate([p[0] for p in parts], axis=1)
    norm_m = np.concatenate([p[1] for p in parts], axis=1)
    norm_a, total = parts[0][2], parts[0][3]
    # (G, ..., S) -> (B, ...)
    cross = np.moveaxis(cross, -1, 1).reshape((n_g * lanes,) + cross.shape[1:3])[:b]
    norm_m = np.moveaxis(norm_m, -1, 1).reshape(n_g * lanes, -1)[:b]
    norm_a = np.moveaxis(norm_a, -1, 1).reshape(n_g * lanes, -1)[:b]
    total = total.reshape(-1)[:b]
    zero = (norm_m == 0)[:, :, None] | (norm_a == 0)[:, None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        if kernel == "pearson":  # the method's record says which finish (rsa_bridge.methods)
            sims = cross / np.sqrt(norm_m[:, :, None] * norm_a[:, None, :])
        else:  # rho_a: 12 sum w a b / (W^3 - W), a, b centred ranks (here doubled: / 4)
            sims = 3.0 * cross / (total ** 3 - total)[:, None, None]
    return np.where(zero, np.nan, sims)
