"""Benchmark: rsa-bridge's correlation RDM (rsa_bridge.gram) against one bare torch.mm and rsatoolbox.

Input: a seeded (3200 x 9216) float32 matrix (ReLU of Gaussian noise plus a per-unit offset, like a
conv5 layer). Printed, all measured in this one run:

* gram_rdm (float64) / torch.mm(X64, X64.T) (the same size, float64; X64 converted beforehand);
* gram_rdm (float32 products, float64 sums) / torch.mm(X, X.T) in float32;
* rsatoolbox.rdm.calc_rdm(method="correlation") / gram_rdm (float64), and the largest absolute
  difference of each of our paths from rsatoolbox (float64).

Run by hand (not a test):  .venv/bin/python benchmarks/bench_rdm.py [--n 3200] [--units 9216] [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from rsa_bridge.gram import gram_rdm


def best_time(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3200)
    parser.add_argument("--units", type=int, default=9216)
    parser.add_argument("--repeat", type=int, default=3, help="timings are the best of this many runs")
    parser.add_argument("--skip-rsatoolbox", action="store_true")
    args = parser.parse_args()
    gen = torch.Generator().manual_seed(0)
    x = torch.relu(torch.randn(args.n, args.units, generator=gen) + torch.randn(1, args.units, generator=gen))
    print(f"input {args.n} x {args.units} float32; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}; load average {os.getloadavg()}")

    x64 = x.to(torch.float64)
    t_mm64, _ = best_time(lambda: torch.mm(x64, x64.T), args.repeat)
    t_rdm64, rdm64 = best_time(lambda: gram_rdm(x, "correlation", precision="float64"), args.repeat)
    del x64
    t_mm32, _ = best_time(lambda: torch.mm(x, x.T), args.repeat)
    t_rdm32, rdm32 = best_time(lambda: gram_rdm(x, "correlation", precision="float32"), args.repeat)
    print(f"float64: gram_rdm {t_rdm64:.2f} s, bare torch.mm {t_mm64:.2f} s -> ratio {t_rdm64 / t_mm64:.2f}")
    print(f"float32: gram_rdm {t_rdm32:.2f} s, bare torch.mm {t_mm32:.2f} s -> ratio {t_rdm32 / t_mm32:.2f}")
    print(f"float32 path vs float64 path: {t_rdm64 / t_rdm32:.2f}x faster, "
          f"max |difference| {float((rdm32 - rdm64).abs().max()):.2e}")
    if args.skip_rsatoolbox:
        return
    from rsatoolbox.data import Dataset
    from rsatoolbox.rdm import calc_rdm

    data = Dataset(x.numpy().astype(np.float64))
    start = time.perf_counter()
    ref = calc_rdm(data, method="correlation").get_matrices()[0]
    t_rsa = time.perf_counter() - start
    print(f"rsatoolbox calc_rdm {t_rsa:.2f} s (one run) -> {t_rsa / t_rdm64:.1f}x the float64 path, "
          f"{t_rsa / t_rdm32:.1f}x the float32 path")
    print(f"max |rsatoolbox - ours|: float64 {np.abs(ref - rdm64.numpy()).max():.2e}, "
          f"float32 {np.abs(ref - rdm32.numpy()).max():.2e}")


if __name__ == "__main__":
    main()
