"""Benchmark: RDM-store ranks as uint32 of 2 x rank (rsa_bridge.rank_storage) against float64 ranks, in one run.

Two spilled layer RDMs of N stimuli (seeded random values rounded to 4 decimals, so ties occur) and one area RDM:
CPU seconds of ``rank_store`` into a spilled rank store of each storage, the size of its HDF5 spill file, and
CPU seconds of the chunked Spearman (``compare_store``) with its ranks in each storage; each storage runs twice,
interleaved. The Spearman values printed are equal between the two storages.

    python benchmarks/bench_rank_storage.py 3000
"""
import time, os, sys
import numpy as np
import rsa_bridge.chunked_compare as cc
from rsa_bridge.rdm_store import RDMStore
from rsa_bridge.ranking import rank_store
from rsa_bridge.rank_storage import HALF_RANKS
n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
rng = np.random.default_rng(0)
m = n * (n - 1) // 2
ids = [str(i) for i in range(n)]
vecs = [np.round(rng.random(m), 4) for _ in range(2)]
brain = np.round(rng.random((1, m)), 3)
out = {}
for storage in (HALF_RANKS, "float64", HALF_RANKS, "float64"):
    with RDMStore(ids, memory_budget=0) as store:
        for k, v in enumerate(vecs):
            store.put(f"l{k}", v)
        t = time.process_time()
        with rank_store(store, out=RDMStore(ids, storage=storage, memory_budget=0)) as ranks:
            rt = time.process_time() - t
            size = os.path.getsize(ranks.spill_path)
        cc.rank_storage = lambda m, s=storage: s
        t = time.process_time()
        sim = cc.compare_store(store, {"IT": brain}, "spearman")["IT"]
        ct = time.process_time() - t
    out.setdefault(storage, []).append((rt, ct, size, sim.ravel().tolist()))
for s, rows in out.items():
    print(s, "rank_store CPU s", [round(r[0], 2) for r in rows], "compare_store CPU s", [round(r[1], 2) for r in rows],
          "rank file bytes", rows[0][2], "spearman", rows[0][3])
