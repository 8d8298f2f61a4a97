"""Benchmark: RDMs kept as upper triangles (rsa_bridge.rdm_store) against the dense path, at one N.

Stages (wall and CPU seconds, peak RSS above the stage's start, sampled every 20 ms as in bench_scaling.py),
on 8 synthetic layer RDMs and 1 area RDM (correlation distances of seeded random features, made one at a time):

- ``put``: the 8 layer RDMs into a store with memory budget 0 (all spilled to HDF5) and with no budget;
- ``rank``: the global ranks of the 9 vectors in memory and out of core (``--rank-budget`` bytes);
- ``spearman``: ``compare_store`` (chunked, spilled) against ``compare_vectors`` on the dense (9, m) vectors;
- ``take``: 25 sub-RDMs of 1,000 stimuli from the spilled store against fancy indexing of dense squares;
- ``write``: ``RDMStore.to_netcdf`` (one layer at a time) against xarray's ``to_netcdf`` of the (8, n, n) array.

``--no-dense`` skips the dense counterparts (at N = 10,000 they need ~10 GB). ``--float32-spearman`` instead
measures what float32 storage does to Spearman on real model RDMs: AlexNet (untrained, seed 0, 8 layers) on
the 1,200-stimulus V4 session, against the session's V4 RDM (``--model-rdms FILE`` reuses a saved (layer,
stimulus_row, stimulus_col) NetCDF of those model RDMs instead of running the forward pass).

    python benchmarks/bench_rdm_store.py --n 5000
    python benchmarks/bench_rdm_store.py --n 10000 --no-dense
    python benchmarks/bench_rdm_store.py --float32-spearman [--model-rdms FILE]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scaling import Stage  # noqa: E402


def _rdm(n: int, seed: int, latent: np.ndarray, weight: float) -> np.ndarray:
    import torch

    from rsa_bridge.gram import gram_rdm

    rng = np.random.default_rng(seed)
    x = np.hstack([latent * weight, rng.normal(size=(n, 248))])
    return gram_rdm(torch.as_tensor(x), "correlation").numpy()


def run(n: int, rank_budget: float, dense: bool) -> None:
    import xarray as xr

    from rsa_bridge.chunked_compare import compare_store
    from rsa_bridge.compare import compare_vectors
    from rsa_bridge.ranking import rank_store
    from rsa_bridge.rdm_store import RDMStore

    ids = [f"s{i}" for i in range(n)]
    latent = np.random.default_rng(n).normal(size=(n, 8))
    t: dict = {}
    with tempfile.TemporaryDirectory() as tmp, RDMStore(ids, memory_budget=0, spill_dir=tmp) as disk, \
            RDMStore(ids, spill_dir=tmp) as area:
        area.put("V4", _rdm(n, 99, latent, 1.0))
        squares = [_rdm(n, k, latent, (k + 1) / 8) for k in range(8)] if dense else None
        with Stage("put 8, spilled", t):
            for k in range(8):
                disk.put(f"layer{k}", squares[k] if dense else _rdm(n, k, latent, (k + 1) / 8))
        if dense:
            with Stage("put 8, in memory", t), RDMStore(ids) as mem:
                for k in range(8):
                    mem.put(f"layer{k}", squares[k])
        with Stage("rank 8, in memory", t):
            rank_store(disk).close()
        with Stage(f"rank 8, out of core ({rank_budget / 2 ** 20:.0f} MiB)", t):
            rank_store(disk, memory_budget=rank_budget).close()
        with Stage("spearman, chunked (spilled, ranks out of core)", t):
            chunked = compare_store(disk, {"V4": area}, "spearman", rank_budget=rank_budget)["V4"]
        if dense:
            rows, cols = np.triu_indices(n, 1)
            vectors = np.stack([s[rows, cols] for s in squares])
            brain = area.vector("V4")
            del rows, cols
            with Stage("spearman, dense compare_vectors", t):
                full = compare_vectors(vectors, brain, "spearman")
            print(f"largest |chunked - dense| = {np.abs(chunked - full).max():.2e}")
            del vectors
        sets = [np.sort(np.random.default_rng(g).choice(n, min(n, 1000), replace=False)) for g in range(25)]
        with Stage("take 25 x 1000, spilled", t):
            subs = disk.take("layer0", sets)
        if dense:
            with Stage("take 25 x 1000, dense", t):
                ref = [squares[0][np.ix_(s, s)] for s in sets]
            assert all(np.array_equal(a, b) for a, b in zip(subs, ref))
        with Stage("write model_rdms.nc, streamed", t):
            disk.to_netcdf(Path(tmp) / "streamed.nc", dtype="float32")
        if dense:
            with Stage("write model_rdms.nc, xarray dense", t):
                da = xr.DataArray(np.stack(squares), dims=("layer", "stimulus_row", "stimulus_col"),
                                  coords={"layer": disk.names, "stimulus_row": ids, "stimulus_col": ids})
                xr.Dataset({"rdm": da}).to_netcdf(Path(tmp) / "dense.nc", engine="h5netcdf",
                                                  encoding={"rdm": {"dtype": "float32"}})
    print(f"N = {n}: {8 * n * n * 8 / 2 ** 30:.2f} GiB of dense float64 layer RDMs")
    print("| stage | wall s | CPU s | peak MiB above start |\n|---|---|---|---|")
    for name, r in t.items():
        print(f"| {name} | {r['wall']:.2f} | {r['cpu']:.2f} | {r['peak_mib']:.0f} |")


def float32_spearman(model_rdms: str | None) -> None:
    import xarray as xr

    from rsa_bridge.align import reorder_rdm
    from rsa_bridge.compare import compare_vectors
    from rsa_bridge.datasets import area_rdms, load_dataset
    from rsa_bridge.rdm import upper_triangle

    ds = load_dataset("cowley2023_v4_201025")
    if model_rdms:
        model = xr.open_dataarray(model_rdms).load()
    else:
        import torch

        from extractors import load_model
        from rsa_bridge.app.pipeline import network_rdms, stimuli_for

        torch.manual_seed(0)
        model = network_rdms(load_model("alexnet", "none"), stimuli_for(ds, None), None, progress=False)
    ids = [str(s) for s in model["stimulus_row"].values]
    area = reorder_rdm(area_rdms(ds, "V4"), ids)
    a64 = upper_triangle(model.values)
    b64 = upper_triangle(area.values.reshape(-1, len(ids), len(ids)))
    a32, b32 = a64.astype(np.float32).astype(np.float64), b64.astype(np.float32).astype(np.float64)
    print(f"{len(ids)} stimuli, {a64.shape[1]} pairs, layers {[str(v) for v in model['layer'].values]}")
    for x64, x32, what in ((a64, a32, "model"), (b64, b32, "V4")):
        lost = [np.unique(r).size - np.unique(q).size for r, q in zip(x64, x32)]
        print(f"{what}: distinct values merged into ties by float32 rounding, per RDM: {lost}")
    for method in ("spearman", "pearson"):
        r64, r32 = compare_vectors(a64, b64, method), compare_vectors(a32, b32, method)
        print(f"{method}: float64 {np.round(r64[:, 0], 4).tolist()}; max |float32 - float64| = "
              f"{np.abs(r32 - r64).max():.2e}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=5000)
    p.add_argument("--rank-budget", type=float, default=256 * 2 ** 20, help="bytes for the out-of-core ranking")
    p.add_argument("--no-dense", action="store_true", help="skip the dense counterparts")
    p.add_argument("--float32-spearman", action="store_true")
    p.add_argument("--model-rdms", help="saved model RDMs for --float32-spearman")
    args = p.parse_args()
    if args.float32_spearman:
        float32_spearman(args.model_rdms)
    else:
        run(args.n, args.rank_budget, not args.no_dense)


if __name__ == "__main__":
    main()
