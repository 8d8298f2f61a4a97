"""Benchmark: ``compare --scheduler local:2`` against the serial run (wall time, CPU time, equal numbers).

Three measurements in one run, on AlexNet (untrained, its 8 default layers) and one shipped V4 session:

1. **the whole job**, as a user runs it:
   ``python -m rsa_bridge compare --model alexnet --weights none --area V4 --dataset DATASET --bootstrap B
   --no-cache --quiet --out DIR`` with and without ``--scheduler local:2``; wall and CPU seconds (this process's
   children), and whether ``results.csv`` and ``results.nc`` are equal (``results.nc`` but for the attrs
   that say where the bootstrap ran);
2. **the bootstrap alone**: :func:`rsa_bridge.stats.bootstrap_similarity` on the model RDMs that run 1 wrote,
   here vs as batches on a ``local:2`` cluster (:class:`rsa_bridge.stats.dask_bootstrap.DaskExecutor`);
3. **the unit of an RDM task**: one task computing all layers vs two tasks of four layers each, run at
   once on ``local:2``. Each task decodes every image and runs the network (every layer's Gram comes
   from the same streamed forward pass), so the split doubles that work; it pays only if the Gram
   products dominate the forward pass.

Run by hand (not a test; a few minutes):
    OMP_NUM_THREADS=1 python benchmarks/bench_dask.py [--dataset cowley2023_v4_210325] [--bootstrap 1000]
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rsa_bridge.stats import BootstrapOptions

REPO = Path(__file__).resolve().parents[1]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _compare(dataset: str, n_boot: int, out: Path, scheduler: str | None) -> tuple[float, float, list[str]]:
    """Wall and CPU seconds of one ``python -m rsa_bridge compare`` run, and its command line."""
    cmd = [sys.executable, "-m", "rsa_bridge", "compare", "--model", "alexnet", "--weights", "none", "--area", "V4",
           "--dataset", dataset, "--bootstrap", str(n_boot), "--no-cache", "--quiet", "--out", str(out)]
    if scheduler:
        cmd += ["--scheduler", scheduler]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    c0, t0 = _children_cpu(), time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0, _children_cpu() - c0, cmd[1:]


def _same_results(a: Path, b: Path) -> str:
    import pandas as pd
    import xarray as xr

    csv_equal = pd.read_csv(a / "results.csv").equals(pd.read_csv(b / "results.csv"))
    with xr.open_dataset(a / "results.nc") as ra, xr.open_dataset(b / "results.nc") as rb:
        ra, rb = ra.load(), rb.load()
    ran = rb.attrs.get("bootstrap_executor")
    for ds in (ra, rb):
        for attrs in [ds.attrs] + [ds[v].attrs for v in ds.data_vars]:
            attrs.pop("bootstrap_executor", None)
    return f"results.csv equal: {csv_equal}; results.nc identical: {ra.identical(rb)}; dask run: {ran!r}"


def _layer_task(layers, stimulus_set):
    """One dask task: AlexNet (untrained, seeded) RDMs of ``layers`` over ``stimulus_set``."""
    from extractors import load_model
    from rsa_bridge.app.distributed import _BUILD_LOCK
    from rsa_bridge.app.pipeline import network_rdms

    with _BUILD_LOCK:
        net = load_model("alexnet", "none")
    return network_rdms(net, stimulus_set, layers, progress=False)


def _layer_groups(dataset: str) -> None:
    from extractors import load_model
    from extractors.layers import resolve_layers
    from rsa_bridge.app.distributed import connect
    from rsa_bridge.app.pipeline import stimuli_for
    from rsa_bridge.datasets import load_dataset

    stim = stimuli_for(load_dataset(dataset), None)
    layers = [name for name, _ in resolve_layers(load_model("alexnet", "none"), None)]
    with connect("local:2") as client:
        t0 = time.perf_counter()
        whole = client.submit(_layer_task, layers, stim, pure=False).result()
        t_whole = time.perf_counter() - t0
        t0 = time.perf_counter()
        halves = client.gather([client.submit(_layer_task, part, stim, pure=False)
                                for part in (layers[:4], layers[4:])])
        t_split = time.perf_counter() - t0
    joined = np.concatenate([h.values for h in halves])
    print(f"3. RDM task unit on local:2, {len(layers)} layers x {stim.stimulus_ids.__len__()} stimuli: one task "
          f"{t_whole:.1f} s, two tasks of 4 layers at once {t_split:.1f} s (ratio split/whole "
          f"{t_split / t_whole:.2f}); RDMs equal: {np.array_equal(joined, whole.values)}")


def _bootstrap_alone(dataset: str, n_boot: int, model_rdms: Path) -> None:
    from rsa_bridge.app.distributed import connect, scheduler_label
    from rsa_bridge.datasets import load_dataset
    from rsa_bridge.model_rdms import read_model_rdms
    from rsa_bridge.stats import bootstrap_similarity
    from rsa_bridge.stats.dask_bootstrap import DaskExecutor

    rdms = read_model_rdms(model_rdms)
    neural = {"V4": load_dataset(dataset)["V4"]}
    bootstrap_similarity(rdms[:, :30, :30], {"V4": neural["V4"][:30, :30]}, n_samples=16, seed=0,
                         options=BootstrapOptions(progress=False))
    t0 = time.perf_counter()
    serial = bootstrap_similarity(rdms, neural, n_samples=n_boot, seed=0, options=BootstrapOptions(progress=False))
    t_serial = time.perf_counter() - t0
    with connect("local:2") as client:
        executor = DaskExecutor(client, scheduler_label("local:2", client))
        t0 = time.perf_counter()
        dask = bootstrap_similarity(rdms, neural, n_samples=n_boot, seed=0,
                                    options=BootstrapOptions(progress=False, executor=executor))
        t_dask = time.perf_counter() - t0
    print(f"2. bootstrap alone ({n_boot} samples, {rdms.sizes['layer']} layers): serial {t_serial:.1f} s, "
          f"{dask.executor} {t_dask:.1f} s (ratio {t_dask / t_serial:.2f}); samples equal: "
          f"{np.array_equal(dask.samples, serial.samples, equal_nan=True)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="cowley2023_v4_210325")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--skip", nargs="*", default=(), choices=("compare", "bootstrap", "layers"))
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}, OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}")
    with tempfile.TemporaryDirectory(prefix="bench_dask_") as tmp:
        serial_out, dask_out = Path(tmp) / "serial", Path(tmp) / "dask"
        if "layers" not in args.skip:
            _layer_groups(args.dataset)  # first: it also brings the images into the page cache
        if "compare" not in args.skip or "bootstrap" not in args.skip:
            t_s, c_s, cmd = _compare(args.dataset, args.bootstrap, serial_out, None)
        if "compare" not in args.skip:
            t_d, c_d, _ = _compare(args.dataset, args.bootstrap, dask_out, "local:2")
            print(f"1. {' '.join(cmd[:-2])} [--scheduler local:2]\n   serial {t_s:.1f} s wall ({c_s:.1f} s CPU), "
                  f"--scheduler local:2 {t_d:.1f} s wall ({c_d:.1f} s CPU): ratio {t_d / t_s:.2f} wall, "
                  f"{c_d / c_s:.2f} CPU\n   {_same_results(serial_out, dask_out)}")
        if "bootstrap" not in args.skip:
            _bootstrap_alone(args.dataset, args.bootstrap, serial_out / "model_rdms.nc")
        print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
