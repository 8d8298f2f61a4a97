"""Global average-tie ranks of condensed RDMs, in memory and out of core, against scipy.stats.rankdata."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import rankdata

from rsa_bridge import ranking
from rsa_bridge.ranking import rank_store
from rsa_bridge.rank_storage import HALF_RANKS
from rsa_bridge.condensed import n_pairs
from rsa_bridge.rdm_store import RDMStore


def _vectors(rng, m):
    heavy = rng.normal(size=m)
    heavy[rng.random(m) < 0.4] = 0.25          # 40% of the pairs tied at one value
    return {
        "integers": rng.integers(0, 30, size=m).astype(float),   # every value tied many times
        "continuous": rng.normal(size=m),
        "heavy_tie": heavy,
        "rounded": np.round(rng.standard_exponential(m), 2),
        "constant": np.full(m, 0.7),
    }


@pytest.mark.parametrize("store_budget", [None, 0])
@pytest.mark.parametrize("rank_budget", [None, 0, 3000 * ranking.GATHER_BYTES_PER_VALUE])
def test_ranks_equal_rankdata(rng, store_budget, rank_budget):
    n = 120
    m = n_pairs(n)
    vectors = _vectors(rng, m)
    with RDMStore([str(i) for i in range(n)], memory_budget=store_budget) as store:
        for name, v in vectors.items():
            store.put(name, v, module_path=name)
        with rank_store(store, memory_budget=rank_budget, seed=3) as ranks:
            assert ranks.names == store.names and ranks.storage == HALF_RANKS  # 2 x rank as uint32: exact
            assert ranks.coords["rounded"] == {"module_path": "rounded"}
            for name, v in vectors.items():
                assert np.array_equal(ranks.vector(name), rankdata(v)), name  # exact, not just close


def test_tiny_budget_forces_many_ranges(rng, monkeypatch):
    n = 100
    v = np.round(rng.normal(size=n_pairs(n)), 3)
    batches = []
    original = ranking._rank_batch
    monkeypatch.setattr(ranking, "_rank_batch", lambda *a: batches.append(len(a[3])) or original(*a))
    with RDMStore([str(i) for i in range(n)], memory_budget=0) as store:
        store.put("a", v)
        with rank_store(store, memory_budget=0, seed=1) as ranks:   # MIN_GATHER values at a time
            assert np.array_equal(ranks.vector("a"), rankdata(v))
    assert len(batches) >= n_pairs(n) // ranking.MIN_GATHER


def test_ranks_do_not_depend_on_the_seed(rng):
    n = 80
    v = rng.integers(0, 7, size=n_pairs(n)).astype(float)
    with RDMStore([str(i) for i in range(n)]) as store:
        store.put("a", v)
        got = [rank_store(store, memory_budget=0, seed=s).vector("a") for s in (0, 1, 2)]
    assert all(np.array_equal(g, rankdata(v)) for g in got)


def test_float32_cannot_hold_large_ranks():
    # why ranks are float64: above 2^24 consecutive integers (and half-integers sooner) collide in float32
    assert np.float32(2 ** 24 + 1) == np.float32(2 ** 24)
    assert np.float64(2 ** 24 + 1) != np.float64(2 ** 24)


def test_out_of_core_ranking_stays_near_its_budget():
    import tracemalloc

    n = 1501
    v = np.random.default_rng(2).normal(size=n_pairs(n))   # 1.1 million values, 9 MB
    budget = 2 * 2 ** 20                                     # far less than an in-memory ranking (80 MB)
    with RDMStore([str(i) for i in range(n)], memory_budget=0) as store:
        store.put("a", v)
        store.chunk = 65536  # 0.5 MiB reads, so the budget, not the read buffers, dominates
        with RDMStore(store.ids, memory_budget=0) as out:
            out.chunk = 65536
            tracemalloc.start()
            rank_store(store, memory_budget=budget, out=out)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            assert np.array_equal(out.vector("a"), rankdata(v))
    assert peak <= budget + 4 * 2 ** 20   # the budget plus a few read buffers of 0.5 MiB
