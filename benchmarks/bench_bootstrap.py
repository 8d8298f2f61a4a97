"""Benchmark: rsa-bridge's batched stimulus bootstrap against rsatoolbox's ``eval_bootstrap_pattern``.

Same inputs for both: 8 model-layer RDMs x 3 areas x 92 stimuli (monkey IT, human IT 4 subjects x 2
sessions, and a third area: the Cichy et al. 15-subject EVC RDMs when ../shared/data has them, else the
first session of human IT), 1000 Spearman bootstrap samples over stimuli, and the *same* index sets
(rsatoolbox draws with ``np.random.randint``; this script hands it rsa-bridge's index sets), so the
script also prints the largest difference between the two results.

Run by hand (not a test):  .venv/bin/python benchmarks/bench_bootstrap.py [--samples 1000] [--ceiling]
``--ceiling`` also bootstraps the noise ceiling in both (rsatoolbox's default ``boot_noise_ceil=True``).

``--large N`` times rsa-bridge alone (rsatoolbox would take hours) on the size of a big neural set:
8 layer RDMs and one area RDM over N stimuli (e.g. 640, the Cowley et al. V4 set that
``rsa-bridge compare --area V4`` uses), random features, correlation distance; it prints wall and
CPU seconds. ``--threads K`` sets the threads of the per-sample ranking (default: all usable CPUs).
"""
from __future__ import annotations

import argparse
import platform
import time
import warnings
from pathlib import Path

import numpy as np

from rsa_bridge import load_dataset
from rsa_bridge.datasets import area_rdms
from rsa_bridge.rdm import upper_triangle
from rsa_bridge.stats import BootstrapOptions, bootstrap_similarity, bootstrap_stimuli, weighted

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def inputs(n_layers: int = 8, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    ds = load_dataset("kriegeskorte2008_92images")
    it, hit = area_rdms(ds, "IT").values, area_rdms(ds, "hIT").values
    third = ("hIT_session1", hit[::2])
    cichy = SHARED / "cichy_algonauts2019_fmri_rdms" / "target_fmri_92.mat"
    if cichy.exists():
        import h5py

        with h5py.File(cichy, "r") as handle:
            third = ("EVC_cichy", np.transpose(handle["EVC_RDMs"][()]))
    rng = np.random.default_rng(seed)
    n = it.shape[1]
    layers = []
    for k in range(n_layers):  # layers that drift from IT-like to noise, like a network's depth profile
        noise = rng.normal(size=(n, n))
        m = np.abs((k / n_layers) * it[0] + (1 - k / n_layers) * (noise + noise.T) / 2)
        np.fill_diagonal(m, 0.0)
        layers.append(m)
    return np.stack(layers), {"IT": it, "hIT": hit, third[0]: third[1]}


def run_rsatoolbox(models: np.ndarray, areas: dict[str, np.ndarray], stim: np.ndarray,
                   ceiling: bool) -> tuple[np.ndarray, list[np.ndarray]]:
    from rsatoolbox.inference import eval_bootstrap_pattern
    from rsatoolbox.model import ModelFixed
    from rsatoolbox.rdm import RDMs

    mods = [ModelFixed(f"layer{k}", RDMs(upper_triangle(models[k])[None])) for k in range(models.shape[0])]
    out, ceilings = [], []
    for rdms in areas.values():
        queue = list(stim)
        original = np.random.randint
        np.random.randint = lambda low, high, size=None: queue.pop(0)  # hand over our index sets
        try:
            result = eval_bootstrap_pattern(mods, RDMs(upper_triangle(rdms)), method="spearman", N=stim.shape[0],
                                            boot_noise_ceil=ceiling)
        finally:
            np.random.randint = original
        out.append(result.evaluations)
        ceilings.append(np.asarray(result.noise_ceiling).T)
    return np.stack(out, axis=-1), ceilings


def large(n: int, n_samples: int, old: int = 0) -> None:
    """rsa-bridge alone on 8 layers x 1 area x n stimuli; ``old`` > 0 also times that many samples of the
    numpy backend of before (numba switched off) in the same process and prints the per-sample ratio."""
    from scipy.spatial.distance import pdist, squareform

    from rsa_bridge.stats import rank_kernel

    rng = np.random.default_rng(0)
    mats = np.stack([squareform(pdist(rng.normal(size=(n, 50)), "correlation")) for _ in range(9)])
    bootstrap_similarity(mats[:1, :30, :30], {"area": mats[8:, :30, :30]}, n_samples=20, seed=0)  # load the kernel
    t0, c0 = time.perf_counter(), time.process_time()
    res = bootstrap_similarity(mats[:8], {"area": mats[8:]}, method="spearman", n_samples=n_samples, seed=0)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if old:
        rank_kernel._HAVE_NUMBA = False
        c1 = time.process_time()
        ref = bootstrap_similarity(mats[:8], {"area": mats[8:]}, method="spearman", n_samples=old, seed=0)
        cpu_old = time.process_time() - c1
        rank_kernel._HAVE_NUMBA = True
        print(f"backend {res.backend}: {cpu / n_samples:.4f} CPU s per sample; numpy (before): "
              f"{cpu_old / old:.4f} CPU s per sample ({old} samples); ratio {cpu_old / old / (cpu / n_samples):.1f}x; "
              f"largest |difference| on the common samples "
              f"{np.nanmax(np.abs(res.samples[:old] - ref.samples)):.1e}")
    print(f"machine: {platform.processor() or platform.machine()}, numpy {np.__version__}, threads "
          f"{weighted.THREADS or 'all usable CPUs'}")
    print(f"rsa-bridge bootstrap_similarity, 8 layers x 1 area x {n} stimuli, {n_samples} Spearman samples over "
          f"stimuli: {wall:.2f} s wall, {cpu:.2f} s CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--ceiling", action="store_true", help="bootstrap the noise ceiling too")
    parser.add_argument("--large", type=int, metavar="N", help="time rsa-bridge alone on N synthetic stimuli")
    parser.add_argument("--threads", type=int, help="threads of the per-sample ranking (default: all CPUs)")
    parser.add_argument("--old", type=int, default=0, metavar="K",
                        help="with --large: also time K samples of the numpy backend of before")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    weighted.THREADS = args.threads
    if args.large:
        large(args.large, args.samples, args.old)
        return
    models, areas = inputs()
    n = models.shape[1]
    stim = bootstrap_stimuli(n, args.samples, np.random.default_rng(1))

    t0 = time.perf_counter()
    ours = bootstrap_similarity(models, areas, method="spearman", ceiling=args.ceiling,
                                options=BootstrapOptions(stimulus_indices=stim))
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs, their_ceilings = run_rsatoolbox(models, areas, stim, args.ceiling)
    t_theirs = time.perf_counter() - t0

    print(f"machine: {platform.processor() or platform.machine()}, numpy {np.__version__}")
    print(f"inputs: {models.shape[0]} layers x {len(areas)} areas ({', '.join(f'{a}: {v.shape[0]} RDMs' for a, v in areas.items())})"
          f" x {n} stimuli, {args.samples} Spearman samples over stimuli, noise ceiling per sample: {args.ceiling}")
    print(f"rsa-bridge bootstrap_similarity: {t_ours:8.2f} s")
    print(f"rsatoolbox eval_bootstrap_pattern: {t_theirs:8.2f} s")
    print(f"ratio (rsatoolbox / rsa-bridge): {t_theirs / t_ours:.1f}x")
    print(f"largest |difference| of the {ours.samples.size} sample statistics: {np.nanmax(np.abs(ours.samples - theirs)):.2e}")
    if args.ceiling:
        diffs = [np.nanmax(np.abs(ours.ceiling[:, j] - c)) for j, c in enumerate(their_ceilings)
                 if areas[list(areas)[j]].shape[0] >= 2]
        print(f"largest |difference| of the per-sample noise ceilings: {max(diffs):.2e}")


if __name__ == "__main__":
    main()
