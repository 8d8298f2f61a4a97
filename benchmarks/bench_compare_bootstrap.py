"""Benchmark: the share of the bootstrap in a whole ``compare`` job, measured in one process.

Runs the ``rsa-bridge compare`` job (Python API, AlexNet untrained, its 8 default layers, one
shipped V4 session, no model-RDM cache) three times in one process: ``--bootstrap 0``,
``--bootstrap N`` with the default backend (the compiled kernel), and ``--bootstrap N`` with the
numpy backend of before (numba switched off), and prints the wall times and the ratios

    bootstrap share = (t_bootstrap - t_0) / t_0

that issue 19 asks for (goal at 1,200 stimuli: <= 0.5). The first run also compiles nothing: the
kernel is compiled (and cached on disk) by a warm-up call on 30 stimuli before the timings.

Run by hand (not a test):
    python benchmarks/bench_compare_bootstrap.py [--dataset cowley2023_v4_201025] [--samples 1000] [--no-old]
"""
from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np


def _run(dataset: str, n_boot: int) -> tuple[float, float]:
    """Wall and CPU seconds (all threads of this process) of one compare job."""
    from rsa_bridge.app.pipeline import StatsOptions, compare_models

    t0, c0 = time.perf_counter(), time.process_time()
    compare_models(["alexnet"], None, weights="none", dataset=dataset, cache=False, progress=False,
                   stats=StatsOptions(bootstrap=n_boot, seed=0, ceiling=False, progress=False))
    return time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="cowley2023_v4_201025")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--no-old", action="store_true", help="skip the run with the numpy backend of before")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    from scipy.spatial.distance import pdist, squareform

    from rsa_bridge.stats import bootstrap_similarity, rank_kernel

    rng = np.random.default_rng(0)
    warm = np.stack([squareform(pdist(rng.normal(size=(30, 4)))) for _ in range(2)])
    bootstrap_similarity(warm[:1], warm[1:], n_samples=20, seed=0)  # compile / load the kernel
    print(f"dataset {args.dataset}, AlexNet untrained, default layers, {args.samples} Spearman samples; "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, kernel threads "
          f"{rank_kernel.numba.get_num_threads() if rank_kernel.available() else 'n/a'}")
    print("(CPU seconds are the robust measure on a shared machine; wall seconds follow the load)")
    (w0, c0) = _run(args.dataset, 0)
    print(f"--bootstrap 0:                 wall {w0:8.1f} s  CPU {c0:8.1f} s", flush=True)
    (w1, c1) = _run(args.dataset, args.samples)
    print(f"--bootstrap {args.samples} (kernel):     wall {w1:8.1f} s  CPU {c1:8.1f} s   bootstrap share: "
          f"{(c1 - c0) / c0:.2f}x the rest (CPU), {(w1 - w0) / w0:.2f}x (wall)", flush=True)
    if not args.no_old:
        rank_kernel._HAVE_NUMBA = False
        (w2, c2) = _run(args.dataset, args.samples)
        print(f"--bootstrap {args.samples} (numpy, old): wall {w2:8.1f} s  CPU {c2:8.1f} s   bootstrap share: "
              f"{(c2 - c0) / c0:.2f}x the rest (CPU); the kernel's bootstrap is {(c2 - c0) / max(c1 - c0, 1e-9):.1f}x "
              "faster (CPU)")


if __name__ == "__main__":
    main()
