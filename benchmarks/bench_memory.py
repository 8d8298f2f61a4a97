"""Benchmark: peak resident memory of streamed model RDMs against the issue's bound.

Writes N generated PNG images (seeded noise, 64 x 64; the model's own transform resizes them to
224 x 224) to a temporary folder, then runs ``rsa_bridge.app.pipeline.network_rdms`` for all 8 default
AlexNet layers (weights none) in a *child process* and reads that child's peak RSS from the kernel
(``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``, the same figure ``/usr/bin/time -v`` prints).
A second child that only imports torch and builds the model gives the baseline.

Printed: wall time, peak RSS, and the bound
``largest layer's activations for one batch + all RDMs (L x N x N float64) + model parameters``
with the ratio peak / bound (and (peak - interpreter baseline) / bound, where the baseline is the
RSS of Python + torch + torchvision before any model exists).

Run by hand (not a test):
    .venv/bin/python benchmarks/bench_memory.py --n 3200
    .venv/bin/python benchmarks/bench_memory.py --n 10000 --reduce-units 4096 --precision float32
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, sys, time, psutil
import numpy as np
args = json.loads(sys.argv[1])
import torch
from extractors import load_model
base = psutil.Process().memory_info().rss
if args["mode"] == "baseline":
    print(json.dumps({"baseline_rss": base})); sys.exit(0)
model = load_model("alexnet", "none")
from rsa_bridge.app.pipeline import network_rdms
start = time.perf_counter()
from rsa_bridge.options import RDMOptions
options = RDMOptions(metric=args["metric"], batch_size=args["batch_size"], precision=args["precision"],
                     reduce_units=args["reduce_units"])
rdms = network_rdms(model, args["folder"], None, options, progress=args["progress"])
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "baseline_rss": base, "n": int(rdms.sizes["stimulus_row"]),
                  "layers": [str(l) for l in rdms["layer"].values], "n_units": [int(u) for u in rdms["n_units"].values],
                  "params": sum(p.numel() * p.element_size() for p in model.parameters()),
                  "finite": bool(np.isfinite(np.sum(rdms.values)))}))  # no N x N temporaries (torch.isfinite makes some)
"""


def make_images(folder: Path, n: int, size: int = 64, seed: int = 0) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    for k in range(n):
        Image.fromarray(rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)).save(folder / f"img{k:05d}.png")


def child(settings: dict) -> tuple[dict, int]:
    """Run CHILD with ``settings``; returns its JSON line and its peak RSS in bytes."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(settings)], check=True, stdout=subprocess.PIPE,
                          text=True)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if peak_kib <= before:
        raise RuntimeError("the child's peak RSS was not above an earlier child's; run one measurement per process")
    return json.loads(done.stdout.strip().splitlines()[-1]), peak_kib * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--metric", default="correlation")
    parser.add_argument("--precision", default="float64", choices=("float64", "float32"))
    parser.add_argument("--reduce-units", type=int, default=None)
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args()
    gib = 1024 ** 3
    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as folder:
        start = time.perf_counter()
        make_images(Path(folder), args.n)
        print(f"wrote {args.n} images in {time.perf_counter() - start:.1f} s")
        settings = {"mode": "run", "folder": folder, "metric": args.metric, "batch_size": args.batch_size,
                    "precision": args.precision, "reduce_units": args.reduce_units, "progress": args.progress}
        result, peak = child(settings)
    baseline = result["baseline_rss"]
    n, layers, units = result["n"], result["layers"], result["n_units"]
    batch = max(units) * args.batch_size * 4
    rdm_bytes = len(layers) * n * n * 8
    bound = batch + rdm_bytes + result["params"]
    print(f"{n} stimuli x {len(layers)} layers ({', '.join(layers)}), batch {args.batch_size}, "
          f"precision {args.precision}, reduce_units {args.reduce_units}; all RDMs finite: {result['finite']}")
    print(f"time {result['seconds']:.1f} s; load average after: {os.getloadavg()}")
    print(f"full activations would be {n * sum(units) * 4 / gib:.2f} GiB (float32)")
    print(f"bound: one batch of the largest layer {batch / gib:.3f} GiB + RDMs {rdm_bytes / gib:.3f} GiB + "
          f"model {result['params'] / gib:.3f} GiB = {bound / gib:.3f} GiB")
    print(f"peak RSS {peak / gib:.3f} GiB -> ratio {peak / bound:.2f}; interpreter+torch baseline "
          f"{baseline / gib:.3f} GiB; (peak - baseline) / bound = {(peak - baseline) / bound:.2f}")
    if math.isfinite(peak) and peak / bound > 1.5:
        print("NOTE: above the issue's 1.5x target")


if __name__ == "__main__":
    main()
