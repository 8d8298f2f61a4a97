"""Exact average-tie ranks of condensed RDMs, in memory or out of core by value ranges.

Spearman's correlation of two RDMs is the Pearson correlation of their *global* ranks over all m = n(n-1)/2
pairs (ties get the average of the ranks they span, ``scipy.stats.rankdata(v, method="average")``). A chunk
cannot be ranked on its own, so :func:`rank_store` ranks every vector of an :class:`~rsa_bridge.rdm_store.RDMStore`
once and returns the ranks as another store (float64: ranks reach m = 2.4e8 at 22,000 stimuli; float32 holds
integers exactly only up to 2^24 = 1.7e7, so ranks are never stored in float32).

**In memory** when one vector and rankdata's work arrays fit ``memory_budget``
(:data:`IN_MEMORY_BYTES_PER_VALUE` bytes per value): ``rankdata`` of the whole vector.

**Out of core** otherwise, by *value ranges* [lo, hi) ("buckets"):

1. boundaries from the quantiles of a seeded random sample of the values (``seed``); each boundary value b
   also gets its own range [b, nextafter(b)), so a heavily tied value is a range of its own;
2. one pass counts the values per range and their minimum/maximum; the count of all smaller values is the
   range's rank offset. A range still too large for the budget is split again the same way (a sample of its
   own values); a range holding one value only (min = max) is never gathered: all its entries get the rank
   ``offset + (count + 1) / 2``;
3. consecutive ranges whose values fit the budget together are gathered in one pass (positions and values),
   ranked with ``rankdata``, shifted by their offsets and written in one read-modify-write pass of the output.

Equal values can never fall into different ranges (ranges are value intervals), so every tie group is ranked
whole, and offset + local average rank equals the global average rank exactly (both are half-integers,
exact in float64). Tests: ``tests/test_ranking.py`` (equal to ``rankdata`` with many ties and with a budget
forcing many ranges). Peers: scipy ``rankdata`` and rsatoolbox rank in memory only.

Example::

    >>> import numpy as np
    >>> from scipy.stats import rankdata
    >>> from rsa_bridge.rdm_store import RDMStore
    >>> v = np.random.default_rng(0).integers(0, 5, size=45).astype(float)  # 10 stimuli, many ties
    >>> with RDMStore([str(i) for i in range(10)]) as store:
    ...     store.put("layer", v)
    ...     ranks = rank_store(store, memory_budget=0)  # the smallest budget: out of core
    ...     bool(np.array_equal(ranks.vector("layer"), rankdata(v)))
    True
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.rdm_store import RDMStore
from rsa_bridge.rank_storage import HALF_RANKS, rank_storage

#: working bytes per value of an in-memory ranking: the float64 vector (8) and ``rankdata``'s work arrays and
#: result (57, measured with tracemalloc), with a margin
IN_MEMORY_BYTES_PER_VALUE = 72
#: working bytes per gathered value out of core: position and value (16), ``rankdata`` (57), the shift (8), with a
#: margin (measured peak: 91 per value plus the chunk buffers; ``tests/test_ranking.py``)
GATHER_BYTES_PER_VALUE = 96
#: fewest values gathered at once whatever the budget (progress on tiny budgets)
MIN_GATHER = 256
#: sampled values per range when a range is split
SAMPLES_PER_RANGE = 64


@dataclass
class _Range:
    """Values in [lo, hi): how many (count), how many values are smaller (offset), one value only (constant)."""

    lo: float
    hi: float
    count: int
    offset: int
    constant: bool = False


def rank_vector(values: np.ndarray) -> np.ndarray:
    """Average-tie ranks (1..m) of a vector in memory, float64 (``scipy.stats.rankdata``)."""
    return rankdata(np.asarray(values, dtype=np.float64), method="average").astype(np.float64, copy=False)


def _in_range(v: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return (v >= lo) & (v < hi)


def _sample(store: RDMStore, name: str, r: _Range, size: int, rng: np.random.Generator) -> np.ndarray:
    """About ``size`` values of range ``r`` drawn uniformly (Bernoulli per value), in one pass."""
    p = min(1.0, size / max(r.count, 1))
    picked = []
    for _, _, v in store.chunks(name):
        inside = v[_in_range(v, r.lo, r.hi)]
        picked.append(inside[rng.random(inside.shape[0]) < p])
    return np.concatenate(picked)


def _split(store: RDMStore, name: str, r: _Range, parts: int, rng: np.random.Generator) -> list[_Range]:
    """Split range ``r`` at sample quantiles into about ``parts`` ranges with their counts (two passes)."""
    sample = _sample(store, name, r, parts * SAMPLES_PER_RANGE, rng)
    if sample.size == 0:
        sample = np.array([r.lo]) if math.isfinite(r.lo) else np.zeros(1)
    cuts = np.unique(np.quantile(sample, np.linspace(0, 1, parts + 1)[1:-1], method="inverted_cdf"))
    edges = np.unique(np.concatenate([cuts, np.nextafter(cuts, np.inf)]))
    edges = edges[(edges > r.lo) & (edges < r.hi)]
    bounds = np.concatenate([[r.lo], edges, [r.hi]])
    counts = np.zeros(bounds.size - 1, dtype=np.int64)
    low = np.full(counts.size, np.inf)
    high = np.full(counts.size, -np.inf)
    for _, _, v in store.chunks(name):
        v = v[_in_range(v, r.lo, r.hi)]
        which = np.searchsorted(edges, v, side="right")
        counts += np.bincount(which, minlength=counts.size)
        np.minimum.at(low, which, v)
        np.maximum.at(high, which, v)
    offsets = r.offset + np.concatenate([[0], np.cumsum(counts)[:-1]])
    return [_Range(float(bounds[k]), float(bounds[k + 1]), int(counts[k]), int(offsets[k]),
                   bool(counts[k] > 0 and low[k] == high[k]))
            for k in range(counts.size) if counts[k] > 0]


def _rank_batch(store: RDMStore, name: str, out: RDMStore, batch: list[_Range]) -> None:
    """Gather the non-constant ranges of ``batch`` (one pass), rank them, write all ranks (one pass)."""
    gathered = [r for r in batch if not r.constant]
    constant = [r for r in batch if r.constant]
    pos_parts, val_parts = [], []
    if gathered:
        lo, hi = gathered[0].lo, gathered[-1].hi
        for start, _, v in store.chunks(name):
            mask = _in_range(v, lo, hi)
            if constant:  # constant ranges between the gathered ones are filled, not gathered
                for r in constant:
                    mask &= ~_in_range(v, r.lo, r.hi)
            where = np.flatnonzero(mask)
            pos_parts.append(where + start)
            val_parts.append(v[where])
    positions = np.concatenate(pos_parts) if pos_parts else np.empty(0, dtype=np.int64)
    values = np.concatenate(val_parts) if val_parts else np.empty(0)
    ranks = rankdata(values, method="average") if values.size else np.empty(0)
    if gathered:  # rank among the gathered values -> global rank: + offset - gathered values below the range
        lows = np.array([r.lo for r in gathered])
        below = np.concatenate([[0], np.cumsum([r.count for r in gathered])[:-1]])
        shift = np.array([r.offset for r in gathered]) - below
        ranks += shift[np.searchsorted(lows, values, side="right") - 1]
    del values
    for start, stop, current in out.chunks(name):
        a, b = np.searchsorted(positions, [start, stop])
        current[positions[a:b] - start] = ranks[a:b]
        if constant:
            v = store.read(name, start, stop)
            for r in constant:
                current[_in_range(v, r.lo, r.hi)] = r.offset + (r.count + 1) / 2.0
        out.write(name, start, current)


def _rank_out_of_core(store: RDMStore, name: str, out: RDMStore, cap: int, rng: np.random.Generator) -> None:
    out.allocate(name, **store.coords[name])
    pending = [_Range(-np.inf, np.inf, store.m, 0)]
    splits = 0
    while pending:
        head = pending[0]
        if head.count > cap and not head.constant:
            splits += 1
            if splits > 64 + 4 * math.ceil(store.m / cap):
                raise RSABridgeError(f"ranking {name!r} out of core made no progress; raise the memory budget")
            pending[:1] = _split(store, name, head, max(2, 2 * math.ceil(head.count / cap)), rng)
            continue
        batch, load = [], 0
        while pending and (pending[0].constant or pending[0].count <= cap - load):
            r = pending.pop(0)
            batch.append(r)
            load += 0 if r.constant else r.count
        _rank_batch(store, name, out, batch)


def rank_store(store: RDMStore, names: Sequence[str] | None = None, *, memory_budget: float | None = None,
               out: RDMStore | None = None, seed: int = 0) -> RDMStore:
    """Average-tie ranks of each condensed RDM of ``store``, as a float64 store over the same ids.

    Args:
        store: the RDMs.
        names: which (default: all, in the store's order).
        memory_budget: working bytes for ranking one vector (None: no limit, always in memory). In memory when
            ``m * IN_MEMORY_BYTES_PER_VALUE`` fits; otherwise out of core (module docstring), gathering at
            most ``memory_budget / GATHER_BYTES_PER_VALUE`` values at once.
        out: the store to write into (default: a new store with ``store``'s memory budget and spill folder, uint32
            of 2 x rank where exact, else float64: :func:`rsa_bridge.rank_storage.rank_storage`).
        seed: seed of the samples that place range boundaries (the ranks do not depend on it).

    Returns:
        ``out``: one (m,) rank vector per name (read as float64), equal to ``scipy.stats.rankdata(vector)``; per-RDM
        coords copied. The caller closes it.
    """
    names = list(store.names if names is None else names)
    if out is None:
        keep = None if math.isinf(store.memory_budget) else store.memory_budget
        out = RDMStore(store.ids, storage=rank_storage(store.m), memory_budget=keep, spill_dir=store.spill_dir,
                       attrs={**store.attrs, "values": "average-tie ranks"})
    if out.storage not in ("float64", HALF_RANKS) or out.ids != store.ids:
        raise RSABridgeError(f"ranks go to a float64 or {HALF_RANKS} store over the same stimulus ids")
    rng = np.random.default_rng(seed)
    budget = math.inf if memory_budget is None else float(memory_budget)
    try:
        for name in names:
            if store.m * IN_MEMORY_BYTES_PER_VALUE <= budget:
                out.put(name, rank_vector(store.vector(name)), **store.coords[name])
            else:
                _rank_out_of_core(store, name, out, max(MIN_GATHER, int(budget // GATHER_BYTES_PER_VALUE)), rng)
    except BaseException:
        out.close()
        raise
    return out
