"""Gram form vs feature form of the issue-28 measures at n stimuli x p units (default n = 500, p = 5000).

    OMP_NUM_THREADS=1 python benchmarks/bench_gram_measures.py [--n 500] [--p 5000] [--seed 0]

For two random representations X, Y (n x p, related through a shared part) it times, once each:

- the **Gram form** (rsa_bridge.measures.procrustes / cca / knn) from the centred Grams K = X X^T, L = Y Y^T,
  with and without the cost of forming the two Grams (inside ``compare`` the Grams come with the RDMs);
- the **feature form** a peer runs on the feature matrices: Procrustes ``||Xc^T Yc||_*`` (singular values of
  the p x p cross-covariance; netrep and similarity-repository also compute its singular vectors), mean CCA
  from orthonormal bases ``scipy.linalg.orth`` of Xc and Yc, mutual k-NN with scikit-learn's
  NearestNeighbors on the unit-length rows.

It prints each time, the ratio feature / Gram, and the largest difference between the two forms' values.

``--main B`` instead times the main job ``compare --model alexnet --area V4 --weights none --no-cache``
(shipped V4 session, 640 images, 50 neurons) with RSA only and with the issue-28 measures added, one after
the other in this run, at ``--bootstrap 0`` (all seven: procrustes, shape, cca, svcca, pwcca, mutual_knn,
cknna) and at ``--bootstrap B`` (the four of the low-rank bootstrap route, procrustes, shape, cca, pwcca, then
the five spectral ones with svcca: the k-NN measures refuse a bootstrap over stimuli); it prints wall and CPU
seconds of each and the ratios (goal: <= 1.3x the RSA-only job) and with ``--json FILE`` writes them.

    OMP_NUM_THREADS=1 python benchmarks/bench_gram_measures.py --main 1000 --skip-zero \
        --json benchmarks/results/gram_measures_main_1000.json

``--factorisations`` prints the per-sample floor of the shape metric and SVCCA (one u x u Cholesky, triangular
inverse, ``eigh``) and how many directions hold 99 % of each main-job layer's variance.

    OMP_NUM_THREADS=1 python benchmarks/bench_gram_measures.py --factorisations

``--draws S`` instead times S bootstrap samples of each spectral measure on main-job-sized Grams (8 full-rank
layers, 640 stimuli, 50 neuroids), the job's route against the eigenbasis route (see ``bench_draws``).

    OMP_NUM_THREADS=1 python benchmarks/bench_gram_measures.py --draws 20
"""
from __future__ import annotations

import argparse
import time

import numpy as np


#: the measures with a bootstrap route that needs no layer eigendecomposition (rsa_bridge.measures.lowrank)
LOW_RANK = ("procrustes", "shape", "cca", "pwcca")


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def feature_forms(x: np.ndarray, y: np.ndarray, k: int) -> dict:
    import scipy.linalg
    from sklearn.neighbors import NearestNeighbors

    xc, yc = x - x.mean(0), y - y.mean(0)

    def procrustes():
        return np.linalg.svd(xc.T @ yc, compute_uv=False).sum() / (np.linalg.norm(xc) * np.linalg.norm(yc))

    def cca():
        qx, qy = scipy.linalg.orth(xc), scipy.linalg.orth(yc)
        return float(np.mean(np.linalg.svd(qx.T @ qy, compute_uv=False)))

    def knn():
        def sets(z):
            z = z / np.linalg.norm(z, axis=1, keepdims=True)
            idx = NearestNeighbors(n_neighbors=k + 1).fit(z).kneighbors(z, return_distance=False)
            return [set(row) - {i} for i, row in enumerate(idx)]
        return float(np.mean([len(a & b) / k for a, b in zip(sets(xc), sets(yc))]))

    return {"procrustes": procrustes, "cca": cca, "mutual_knn": knn}


def gram_forms(k_gram: np.ndarray, l_gram: np.ndarray, k: int) -> dict:
    from rsa_bridge.measures import cca, knn, procrustes

    return {"procrustes": lambda: procrustes.procrustes_similarity(k_gram, l_gram),
            "cca": lambda: cca.mean_cca(k_gram, l_gram),
            "mutual_knn": lambda: knn.mutual_knn(k_gram, l_gram, k)}


#: the issue-28 measures: all of them, and those that can be bootstrapped over stimuli
NEW_MEASURES = ("procrustes", "shape", "cca", "svcca", "pwcca", "mutual_knn", "cknna")
SPECTRAL = ("procrustes", "shape", "cca", "svcca", "pwcca")


def _cpu() -> float:
    import resource

    r, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime


def _run_compare(base: list, b: int, measures: tuple) -> tuple[float, float]:
    import subprocess

    extra = [a for m in measures for a in ("--measure", m)]
    t0, c0 = time.perf_counter(), _cpu()
    subprocess.run(base + ["--bootstrap", str(b)] + extra, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0, _cpu() - c0


def bench_main(bootstrap: int, zero: bool = True, out: str | None = None, sets=None) -> dict:
    """The main job with RSA only and with the new measures added, one after the other in this run: at
    --bootstrap 0 with all seven (unless not ``zero``), and at --bootstrap B with the four of the low-rank
    route (procrustes, shape, cca, pwcca) and with all five spectral ones (+ svcca). ``out``: write the
    times and CPU ratios there as JSON; ``sets``: other measure sets for --bootstrap B (tuples of names)."""
    import json
    import os
    import platform
    import sys

    base = [sys.executable, "-m", "rsa_bridge", "compare", "--model", "alexnet", "--area", "V4", "--weights", "none",
            "--no-cache", "--quiet"]
    plan = ([(0, NEW_MEASURES)] if zero else []) + [(bootstrap, m) for m in (sets or (LOW_RANK, SPECTRAL))]
    rows, reference = [], {}
    for b, measures in plan:
        if b not in reference:
            reference[b] = _run_compare(base, b, ())
            print(f"  (load average {os.getloadavg()[0]:.2f})", flush=True)
            rows.append({"bootstrap": b, "measures": ["rsa"], "wall_s": round(reference[b][0], 1),
                         "cpu_s": round(reference[b][1], 1)})
            print(f"bootstrap {b:5d} | rsa only: {reference[b][0]:.1f} s wall, {reference[b][1]:.1f} s CPU", flush=True)
        wall, cpu = _run_compare(base, b, measures)
        w1, c1 = reference[b]
        rows.append({"bootstrap": b, "measures": ["rsa", *measures], "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
                     "ratio_wall": round(wall / w1, 3), "ratio_cpu": round(cpu / c1, 3)})
        print(f"bootstrap {b:5d} | rsa + {', '.join(measures)}: {wall:.1f} s wall, {cpu:.1f} s CPU | ratio (/ rsa "
              f"only): {wall / w1:.2f}x wall, {cpu / c1:.2f}x CPU", flush=True)
    import os

    omp = os.environ.get("OMP_NUM_THREADS")
    result = {"command": ("" if omp is None else f"OMP_NUM_THREADS={omp} ")
                         + f"python benchmarks/bench_gram_measures.py --main {bootstrap}"
                         + ("" if zero else " --skip-zero") + "".join(f" --set {','.join(m)}" for m in sets or ()),
              "job": "rsa-bridge compare --model alexnet --area V4 --weights none --no-cache (640 images, 50 neurons)",
              "python": platform.python_version(), "machine": platform.machine(), "runs": rows,
              "goal": "ratio <= 1.3", "load_avg_1min_end": round(os.getloadavg()[0], 2),
              "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()}
    if out:
        with open(out, "w") as fh:
            json.dump(result, fh, indent=1)
    return result


def bench_draws(samples: int, seed: int = 0) -> None:
    """CPU ms per bootstrap sample of each spectral measure alone (and of the four low-rank ones and all five
    together) on main-job-sized Grams: 8 full-rank layers (640 stimuli x 1000 units) and a 50-neuroid neural
    Gram, through the job's route (``gram_scoring._Draws``) and through the eigenbasis route (a resampled
    spectrum per Gram per sample, as before)."""
    import warnings

    from rsa_bridge.measures import MEASURES
    from rsa_bridge.measures import gram_scoring as gs
    from rsa_bridge.measures.scoring import MeasureOptions

    warnings.simplefilter("ignore", RuntimeWarning)
    rng = np.random.default_rng(seed)
    n = 640
    kernels = np.stack([x @ x.T for x in (rng.normal(size=(n, 1000)) for _ in range(8))])
    y = rng.normal(size=(n, 50))
    neural = y @ y.T
    sets = [(m,) for m in SPECTRAL] + [LOW_RANK, SPECTRAL]
    for names in sets:
        records = [MEASURES[m].bound(MeasureOptions()) for m in names]
        draws = gs._Draws(records, kernels, neural)
        idx = [np.random.default_rng(seed + 1).integers(0, n, n) for _ in range(samples)]
        t0 = time.process_time()
        for start in range(0, samples, draws.block):               # in blocks, as the job runs them
            draws.scores_block(idx[start:start + draws.block])
        t1 = time.process_time()
        for i in idx:
            gs._scores_many(records, gs._Prepared(records, kernels, i), gs._Prepared(records, [neural], i))
        t2 = time.process_time()
        print(f"{'+'.join(names):37s} job's route {1e3 * (t1 - t0) / samples:6.1f} ms CPU per sample "
              f"(8 layers) | eigenbasis route {1e3 * (t2 - t1) / samples:6.1f} ms", flush=True)


def factorisations(seed: int = 0) -> None:
    """The per-sample floor of the shape metric and SVCCA: CPU ms of one Cholesky factorisation, triangular
    inverse, ``eigh`` and ``eigvalsh`` of a Gram over u = the distinct stimuli of one draw of 640 (one core), and
    how many leading directions hold 99 % (90 %) of the variance of each main-job layer (untrained AlexNet on the
    shipped V4 session's 640 images; SVCCA keeps those)."""
    from scipy.linalg import lapack

    from extractors import load_model
    from rsa_bridge.app.pipeline import network_rdms, stimuli_for
    from rsa_bridge.datasets import load_dataset
    from rsa_bridge.measures.cka import center_gram

    stim = stimuli_for(load_dataset("cowley2023_v4_210325"), None)
    kernels: dict = {}
    network_rdms(load_model("alexnet", weights="none"), stim, None, progress=False, kernels_out=kernels)
    rng = np.random.default_rng(seed)
    for name, gram in kernels.items():
        lam = np.linalg.eigvalsh(center_gram(np.asarray(gram, dtype=np.float64)))[::-1]
        share = np.cumsum(lam) / lam.sum()
        print(f"{name:6s} directions holding 99 % of the variance: {int(np.searchsorted(share, 0.99)) + 1} "
              f"(90 %: {int(np.searchsorted(share, 0.9)) + 1}) of {len(lam) - 1}")
    gram = np.asarray(next(iter(kernels.values())), dtype=np.float64)
    unique = np.unique(rng.integers(0, gram.shape[0], gram.shape[0]))
    ku = gram[np.ix_(unique, unique)]
    chol = lapack.dpotrf(ku, lower=0)[0]
    steps = {"Cholesky": lambda: lapack.dpotrf(ku, lower=0), "triangular inverse": lambda: lapack.dtrtri(chol, lower=0),
             "eigh": lambda: np.linalg.eigh(ku), "eigvalsh": lambda: np.linalg.eigvalsh(ku)}
    for label, fn in steps.items():
        fn()
        t0 = time.process_time()
        for _ in range(10):
            fn()
        print(f"{label:18s} of a {len(unique)} x {len(unique)} Gram: {100 * (time.process_time() - t0):.1f} ms CPU")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--main", type=int, default=None, metavar="B",
                        help="time the main job instead (RSA only vs the new measures; bootstrap 0 and B)")
    parser.add_argument("--skip-zero", action="store_true", help="with --main: only the --bootstrap B runs")
    parser.add_argument("--set", action="append", default=None, metavar="M1,M2",
                        help="with --main: a measure set to time at --bootstrap B (repeatable; default: the four "
                             "low-rank ones, then the five spectral ones)")
    parser.add_argument("--json", default=None, help="with --main: write the times and ratios to this JSON file")
    parser.add_argument("--draws", type=int, default=None, metavar="S",
                        help="CPU ms per bootstrap sample of each spectral measure, S samples (see bench_draws)")
    parser.add_argument("--factorisations", action="store_true",
                        help="the per-sample floor of shape and svcca (see factorisations)")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--p", type=int, default=5000)
    parser.add_argument("--k", type=int, default=10, help="neighbours for mutual k-NN")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.factorisations:
        factorisations(args.seed)
        return
    if args.draws is not None:
        bench_draws(args.draws, args.seed)
        return
    if args.main is not None:
        sets = None if args.set is None else [tuple(x.split(",")) for x in args.set]
        bench_main(args.main, zero=not args.skip_zero, out=args.json, sets=sets)
        return
    rng = np.random.default_rng(args.seed)
    shared = rng.normal(size=(args.n, 50))
    x = shared @ rng.normal(size=(50, args.p)) + rng.normal(size=(args.n, args.p))
    y = shared @ rng.normal(size=(50, args.p)) + rng.normal(size=(args.n, args.p))
    (k_gram, l_gram), t_gram = _timed(lambda: (x @ x.T, y @ y.T))
    print(f"{args.n} stimuli x {args.p} units; forming both Grams: {t_gram:.2f} s")
    grams, features = gram_forms(k_gram, l_gram, args.k), feature_forms(x, y, args.k)
    for name in grams:
        g, tg = _timed(grams[name])
        f, tf = _timed(features[name])
        print(f"{name:11s} Gram form {tg:7.2f} s (+ Grams {tg + t_gram:7.2f} s) | feature form {tf:7.2f} s | "
              f"ratio {tf / tg:6.1f}x ({tf / (tg + t_gram):5.1f}x with the Grams) | |difference| {abs(g - f):.1e}")


if __name__ == "__main__":
    main()
