"""Benchmark: how each stage of a compare job grows with the number of stimuli N.

Stages, timed separately (wall and CPU seconds) with the peak resident memory above the stage's start
(RSS sampled every 20 ms; numba's and torch's allocations included):

- ``model_rdms``: decode + forward + Gram of AlexNet (untrained, 8 default layers) over a shipped
  stimulus set (N = 92, 640, 1,200); for generated sizes (5,000 / 10,000 / 22,000) the forward pass
  is not run (seeded random features of 256 units per layer stand in, the Gram/RDM step is the same
  torch code: :func:`rsa_bridge.gram.gram_rdm`), so that column is the Gram/RDM only;
- ``compare``: Spearman of 8 layer RDMs with the area RDM (the table's similarity);
- ``bootstrap``: ``bootstrap_similarity`` over stimuli (scheme ``auto``: exact up to 2,000 stimuli,
  the subset m-out-of-n scheme above; the scheme is printed);
- ``permutations``: ``permutation_test`` (scheme ``auto`` likewise);
- ``write``: the 8 model RDMs to a NetCDF file (float32).

The neural RDM of a shipped set is its V4/IT RDM; generated sizes get a seeded synthetic area RDM
sharing a latent structure with the features (so similarities are not zero).

Default run (short): N = 92, 640, 1200 with 100 bootstrap samples and 100 permutations, extrapolating
the bootstrap to 1000 samples linearly. ``--large`` adds the generated sizes (memory: one float64 RDM
at 22,000 stimuli is 3.9 GB; 8 layers do not fit in 24 GiB as dense float64 — that run needs the
out-of-core store of issue 19 item 3 and is expected to fail here with a clear message).
``--plot PATH`` draws cost against N (log-log) per stage, default docs/figures/scaling.png.

    python benchmarks/bench_scaling.py [--sizes 92,640,1200] [--large] [--samples 100] [--plot docs/figures/scaling.png]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
from rsa_bridge.stats import BootstrapOptions, PermutationOptions

SHIPPED = {92: ("kriegeskorte2008_92images", "IT"), 640: ("cowley2023_v4_210325", "V4"),
           1200: ("cowley2023_v4_201025", "V4")}


class Stage:
    """Context manager: wall, CPU and peak RSS above the start of the block."""

    def __init__(self, name: str, out: dict):
        self.name, self.out = name, out

    def _poll(self):
        import psutil

        proc = psutil.Process()
        while not self._stop.is_set():
            self.peak = max(self.peak, proc.memory_info().rss)
            self._stop.wait(0.02)

    def __enter__(self):
        import psutil

        self.base = self.peak = psutil.Process().memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        wall, cpu = time.perf_counter() - self.t0, time.process_time() - self.c0
        self._stop.set()
        self._thread.join()
        self.out[self.name] = {"wall": wall, "cpu": cpu, "peak_mib": (self.peak - self.base) / 2 ** 20}
        return False


def _shipped(n: int):
    import torch

    from extractors import load_model
    from rsa_bridge.datasets import area_rdms, load_dataset
    from rsa_bridge.app.pipeline import network_rdms, stimuli_for

    name, area = SHIPPED[n]
    ds = load_dataset(name)
    torch.manual_seed(0)
    net = load_model("alexnet", "none")
    return net, stimuli_for(ds, None), area_rdms(ds, area), network_rdms


def _synthetic_rdms(n: int, n_layers: int = 8, units: int = 256):
    import torch

    from rsa_bridge.gram import gram_rdm

    rng = np.random.default_rng(n)
    latent = rng.normal(size=(n, 8))
    layers = []
    for k in range(n_layers):
        x = np.hstack([latent * (k + 1) / n_layers, rng.normal(size=(n, units - 8))])
        layers.append(gram_rdm(torch.as_tensor(x), "correlation").numpy())
    area = gram_rdm(torch.as_tensor(np.hstack([latent, rng.normal(size=(n, 40))])), "correlation").numpy()
    return np.stack(layers), area[None]


def run(n: int, samples: int, permutations: int) -> dict:
    import xarray as xr

    from rsa_bridge.compare import compare_vectors
    from rsa_bridge.stats import bootstrap_similarity, permutation_test

    times: dict = {}
    with Stage("model_rdms", times):
        if n in SHIPPED:
            net, stim, area, network_rdms = _shipped(n)
            model = network_rdms(net, stim, None, progress=False)
            ids = [str(s) for s in model["stimulus_row"].values]
            from rsa_bridge.align import reorder_rdm

            area = reorder_rdm(area, ids)
            layers, area_np = model.values, area.values.reshape((-1, n, n))
        else:
            layers, area_np = _synthetic_rdms(n)
    rows, cols = np.triu_indices(n, k=1)
    with Stage("compare", times):
        compare_vectors(layers[:, rows, cols], area_np[:, rows, cols], "spearman")
    with Stage("bootstrap", times):
        boot = bootstrap_similarity(layers, {"area": area_np}, n_samples=samples, seed=0,
                                    options=BootstrapOptions(progress=False))
    with Stage("permutations", times):
        perm = permutation_test(layers, {"area": area_np}, n_permutations=permutations, seed=0,
                                options=PermutationOptions(keep_null=False))
    with Stage("write", times), tempfile.TemporaryDirectory() as tmp:
        xr.DataArray(layers.astype(np.float32), dims=("layer", "stimulus_row", "stimulus_col")).to_netcdf(
            Path(tmp) / "model_rdms.nc")
    times["_scheme"] = (boot.attrs()["bootstrap_scheme"], perm.attrs()["permutation_scheme"], boot.backend)
    return times


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(results)
    fig, ax = plt.subplots(figsize=(6, 4))
    for stage in ("model_rdms", "compare", "bootstrap", "permutations", "write"):
        ax.plot(sizes, [max(results[n][stage]["cpu"], 1e-3) for n in sizes], marker="o", label=stage)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("stimuli N")
    ax.set_ylabel("CPU seconds")
    ax.set_title("compare stages against N (bench_scaling.py)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="92,640,1200", help="comma-separated N (92/640/1200 are real sets)")
    parser.add_argument("--large", action="store_true", help="add the generated sizes 5000,10000,22000")
    parser.add_argument("--samples", type=int, default=100, help="bootstrap samples (default 100)")
    parser.add_argument("--permutations", type=int, default=100)
    parser.add_argument("--plot", type=Path, default=Path("docs/figures/scaling.png"))
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    os.environ.setdefault("TORCH_HOME", str(Path(__file__).resolve().parents[2] / "shared" / "data"
                                             / "torchvision_weights"))
    from scipy.spatial.distance import pdist, squareform

    from rsa_bridge.stats import bootstrap_similarity

    rng = np.random.default_rng(0)
    warm = np.stack([squareform(pdist(rng.normal(size=(30, 4)))) for _ in range(2)])
    # load the compiled kernel
    bootstrap_similarity(warm[:1], warm[1:], n_samples=20, seed=0, options=BootstrapOptions(progress=False))
    sizes = [int(s) for s in args.sizes.split(",")] + ([5000, 10000, 22000] if args.large else [])
    results = {}
    print(f"{'N':>6} {'stage':<13} {'wall s':>9} {'CPU s':>9} {'peak MiB':>9}")
    for n in sizes:
        results[n] = run(n, args.samples, args.permutations)
        for stage, t in results[n].items():
            if not stage.startswith("_"):
                print(f"{n:>6} {stage:<13} {t['wall']:9.2f} {t['cpu']:9.2f} {t['peak_mib']:9.0f}", flush=True)
        print(f"{n:>6} schemes: bootstrap {results[n]['_scheme'][0]!r} ({results[n]['_scheme'][2]}), "
              f"permutations {results[n]['_scheme'][1]!r}", flush=True)
        rest = sum(results[n][s]["cpu"] for s in ("model_rdms", "compare", "write"))
        print(f"{n:>6} bootstrap of 1000 samples (extrapolated x{1000 / args.samples:g}) / rest (model RDMs + "
              f"compare + write), CPU: {results[n]['bootstrap']['cpu'] * 1000 / args.samples / rest:.2f}", flush=True)
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
