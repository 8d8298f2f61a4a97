"""Benchmark: linear predictivity from the Gram vs scikit-learn RidgeCV, and the cost of extra measures.

Part 1 (``ridge``): the shipped V4 set (Cowley et al. 2023, session 210325: 640 images, 50 neurons),
one AlexNet layer (untrained, ``conv4``: 256 x 13 x 13 = 43,264 units). Ridge over 11 alphas
(1e-5 .. 1e5) x all 50 neuroids x 10 folds (seed 0), alpha by efficient leave-one-out:
- rsa-bridge: one Gram ``X X^T`` (timed), then :func:`rsa_bridge.measures.ridge.ridge_cv_fold` per fold;
- scikit-learn: ``RidgeCV(alphas).fit(X[train], Y[train]).predict(X[test])`` per fold, same folds.
Prints both times, the ratio, the largest difference of the predictions and whether every fold chose
the same alpha.

Part 2 (``main``): the main job ``compare --model alexnet --area V4 --weights none`` (bootstrap 1000 by
default) with RSA only, then with ``--measure cka --measure linear``, one after the other in this run,
``--no-cache``; prints wall and CPU seconds of each and the ratio.

Run by hand (not a test):  python benchmarks/bench_measures.py [ridge|main|all] [--bootstrap N]
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time

import numpy as np


def _cpu() -> float:
    r, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime


def bench_ridge(layer: str = "conv4") -> None:
    from sklearn.linear_model import RidgeCV

    from extractors import extract, load_model
    from rsa_bridge.measures.ceilings import mean_responses
    from rsa_bridge.measures.folds import make_folds
    from rsa_bridge.measures.ridge import DEFAULT_ALPHAS, ridge_cv_fold
    from rsa_bridge.neural.load import read_neural
    from stimuli import load_stimulus_set
    from rsa_bridge.datasets import SHIPPED

    stim = load_stimulus_set(SHIPPED["cowley2023_v4_210325"].stimuli)
    net = load_model("alexnet", "none")
    x = extract(net, stim, [layer], progress=False)[layer]
    ids = [str(s) for s in x["stimulus_id"].values]
    x = np.asarray(x.values, dtype=np.float64)
    y = mean_responses(read_neural("cowley2023_v4_210325_rates").data).sel(stimulus_id=ids).values
    folds = make_folds(len(ids), 10, seed=0)
    print(f"layer {layer}: {x.shape[0]} stimuli x {x.shape[1]} units; {y.shape[1]} neuroids; "
          f"{len(DEFAULT_ALPHAS)} alphas x {len(folds)} folds; threads {os.environ.get('OMP_NUM_THREADS', 'all')}")
    t0, c0 = time.perf_counter(), _cpu()
    gram = x @ x.T
    t_gram = time.perf_counter() - t0
    ours, alphas = [], []
    for train, test in folds:
        pred, alpha = ridge_cv_fold(gram, y, train, test, DEFAULT_ALPHAS)
        ours.append(pred)
        alphas.append(alpha)
    t_ours, c_ours = time.perf_counter() - t0, _cpu() - c0
    t0, c0 = time.perf_counter(), _cpu()
    ref, ref_alphas = [], []
    for train, test in folds:
        model = RidgeCV(alphas=DEFAULT_ALPHAS).fit(x[train], y[train])
        ref.append(model.predict(x[test]))
        ref_alphas.append(float(model.alpha_))
    t_ref, c_ref = time.perf_counter() - t0, _cpu() - c0
    diff = max(float(np.abs(a - b).max()) for a, b in zip(ours, ref))
    print(f"rsa-bridge (Gram {t_gram:.2f} s + 10 folds): {t_ours:.2f} s wall, {c_ours:.2f} s CPU")
    print(f"scikit-learn RidgeCV (10 fits):          {t_ref:.2f} s wall, {c_ref:.2f} s CPU")
    print(f"speed-up: {t_ref / t_ours:.1f}x wall, {c_ref / c_ours:.1f}x CPU; largest prediction difference "
          f"{diff:.2e}; same alpha in every fold: {alphas == ref_alphas} ({sorted(set(alphas))})")


def bench_main(bootstrap: int) -> None:
    base = [sys.executable, "-m", "rsa_bridge", "compare", "--model", "alexnet", "--area", "V4", "--weights", "none",
            "--bootstrap", str(bootstrap), "--no-cache", "--quiet"]
    times = {}
    for label, extra in (("rsa only", []), ("rsa + cka + linear", ["--measure", "cka", "--measure", "linear"])):
        t0, c0 = time.perf_counter(), _cpu()
        subprocess.run(base + extra, check=True, stdout=subprocess.DEVNULL)
        times[label] = (time.perf_counter() - t0, _cpu() - c0)
        print(f"{label}: {times[label][0]:.1f} s wall, {times[label][1]:.1f} s CPU")
    (w1, c1), (w2, c2) = times.values()
    print(f"ratio (all three / rsa only): {w2 / w1:.2f}x wall, {c2 / c1:.2f}x CPU (bootstrap {bootstrap})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("part", nargs="?", default="all", choices=("ridge", "main", "all"))
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--layer", default="conv4")
    args = parser.parse_args()
    if args.part in ("ridge", "all"):
        bench_ridge(args.layer)
    if args.part in ("main", "all"):
        bench_main(args.bootstrap)
