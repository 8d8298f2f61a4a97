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
cknna) and at ``--bootstrap B`` (the five spectral ones: the k-NN measures refuse a bootstrap over stimuli);
it prints wall and CPU seconds of each and the ratios (goal: <= 1.3x the RSA-only job).

    OMP_NUM_THREADS=1 python benchmarks/bench_gram_measures.py --main 100
"""
from __future__ import annotations

import argparse
import time

import numpy as np


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


def bench_main(bootstrap: int, zero: bool = True) -> None:
    """The main job with RSA only and with the new measures added, at --bootstrap 0 (unless not ``zero``) and
    --bootstrap B."""
    import subprocess
    import sys

    base = [sys.executable, "-m", "rsa_bridge", "compare", "--model", "alexnet", "--area", "V4", "--weights", "none",
            "--no-cache", "--quiet"]
    for b, measures in ((0, NEW_MEASURES), (bootstrap, SPECTRAL))[0 if zero else 1:]:
        times = []
        for label, extra in (("rsa only", []), (f"rsa + {', '.join(measures)}",
                                                [a for m in measures for a in ("--measure", m)])):
            t0, c0 = time.perf_counter(), _cpu()
            subprocess.run(base + ["--bootstrap", str(b)] + extra, check=True, stdout=subprocess.DEVNULL)
            times.append((time.perf_counter() - t0, _cpu() - c0))
            print(f"bootstrap {b:5d} | {label}: {times[-1][0]:.1f} s wall, {times[-1][1]:.1f} s CPU", flush=True)
        (w1, c1), (w2, c2) = times
        print(f"bootstrap {b:5d} | ratio (with the new measures / rsa only): {w2 / w1:.2f}x wall, {c2 / c1:.2f}x CPU",
              flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--main", type=int, default=None, metavar="B",
                        help="time the main job instead (RSA only vs the new measures; bootstrap 0 and B)")
    parser.add_argument("--skip-zero", action="store_true", help="with --main: only the --bootstrap B pair")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--p", type=int, default=5000)
    parser.add_argument("--k", type=int, default=10, help="neighbours for mutual k-NN")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.main is not None:
        bench_main(args.main, zero=not args.skip_zero)
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
