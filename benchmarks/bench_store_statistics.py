"""Benchmark: peak memory of compare's statistics with the model RDMs dense vs in an RDM store.

Each variant runs in its own child process (peak RSS from ``os.wait4``, so the numbers do not mix):

- ``dense``: 8 model RDMs as one (8, n, n) float64 DataArray (what ``compare`` stacked before issue 19),
  passed to :func:`rsa_bridge.stats.summary.compare_statistics`;
- ``store``: the same 8 RDMs put one at a time into an ``RDMStore`` (``memory_budget=0``: all on
  disk; float64), seen through a :class:`rsa_bridge.stats.stores.StoreStack` (labels ``model:layer``),
  passed to the same function.

The RDMs are 1 - Pearson r over seeded random features (``--units`` per layer, a shared latent so the
similarities are not ~0) and one synthetic area RDM; both variants draw identical data and the same
seed, and the child prints its similarity and CI table so the two can be compared (they agree to 1e-12).
The statistics: ``--bootstrap`` samples over stimuli (scheme auto: the subset m-out-of-n scheme above
2,000 stimuli) and ``--permutations``.

    python benchmarks/bench_store_statistics.py --n 5000 --bootstrap 1000 --permutations 0
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time, numpy as np, xarray as xr
from rsa_bridge.rdm import ROW, COL
n, layers, units, boot, perms, variant = (int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]),
                                          int(sys.argv[5]), sys.argv[6])
ids = [f"s{i}" for i in range(n)]
latent = np.random.default_rng(0).normal(size=(n, 8))

def rdm(seed, noise):
    x = np.hstack([latent, noise * np.random.default_rng(seed).normal(size=(n, units))])
    x = x - x.mean(axis=1, keepdims=True)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    d = 1.0 - x @ x.T
    np.fill_diagonal(d, 0.0)
    return (d + d.T) / 2

area = xr.Dataset({"V4": ((ROW, COL), rdm(99, 1.0))}, coords={ROW: ids, COL: ids}, attrs={"name": "synthetic"})
t0 = time.perf_counter()
if variant == "dense":
    model = xr.DataArray(np.stack([rdm(k, 0.5 + 0.25 * k) for k in range(layers)]), dims=("model_layer", ROW, COL),
                         coords={"model_layer": [f"net:l{k}" for k in range(layers)], ROW: ids, COL: ids})
else:
    from rsa_bridge.rdm_store import RDMStore
    from rsa_bridge.stats.stores import StoreStack
    store = RDMStore(ids, memory_budget=0)
    for k in range(layers):
        store.put(f"l{k}", rdm(k, 0.5 + 0.25 * k))
    model = StoreStack([("net", store)])
t1 = time.perf_counter()
from rsa_bridge.stats.summary import compare_statistics
from rsa_bridge.options import StatsOptions
st = compare_statistics(model, area, ["V4"], "spearman", StatsOptions(bootstrap=boot, permutations=perms, progress=False),
                        rng=np.random.default_rng(0))
t2 = time.perf_counter()
print(json.dumps({"rdms_s": t1 - t0, "statistics_s": t2 - t1,
                  "observed": st.boot.observed.ravel().tolist() if st.boot else None,
                  "ci_low": st.ci_low.ravel().tolist() if st.ci_low is not None else None,
                  "ci_high": st.ci_high.ravel().tolist() if st.ci_high is not None else None,
                  "scheme": st.boot.attrs()["bootstrap_scheme"] if st.boot else None}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--permutations", type=int, default=0)
    args = parser.parse_args()
    results = {}
    for variant in ("dense", "store"):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-c", CHILD, str(args.n), str(args.layers), str(args.units), str(args.bootstrap),
               str(args.permutations), variant]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT, text=True)
        out_text = proc.stdout.read()
        err_text = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status):
            raise SystemExit(f"{variant} failed:\n{err_text[-2000:]}")
        res = json.loads(out_text.strip().splitlines()[-1])
        res.update(wall_s=time.perf_counter() - t0, cpu_s=usage.ru_utime + usage.ru_stime,
                   peak_rss_mib=usage.ru_maxrss / 1024)
        results[variant] = res
        print(f"{variant:6s} peak RSS {res['peak_rss_mib']:8.0f} MiB  wall {res['wall_s']:7.1f} s  CPU {res['cpu_s']:7.1f} s"
              f"  (RDMs {res['rdms_s']:.1f} s, statistics {res['statistics_s']:.1f} s)  {res['scheme']}", flush=True)
    d, s = results["dense"], results["store"]
    if d["ci_low"] is not None:
        import numpy as np

        diff = max(np.max(np.abs(np.subtract(d[k], s[k]))) for k in ("observed", "ci_low", "ci_high"))
        print(f"largest |dense - store| over similarities and CI endpoints: {diff:.2e}")
    print(f"peak RSS store / dense: {s['peak_rss_mib'] / d['peak_rss_mib']:.2f}  (n={args.n}, {args.layers} layers, "
          f"--bootstrap {args.bootstrap}, --permutations {args.permutations})")


if __name__ == "__main__":
    main()
