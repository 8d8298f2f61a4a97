"""Benchmark: the cost of hooks and the gain of early exit, on untrained AlexNet (weights none).

Same preprocessed random batches (N x 3 x 224 x 224) for every variant; each variant is timed
``--repeat`` times, interleaved, and the best time is kept. Printed ratios, all from this one run:

* all 8 default layers (conv1..fc8), hooked with extractors.run_recorded, / a plain forward pass;
* the same through extract_batches (the public API: probe pass, per-batch checks, CPU float32 copies) / plain;
* all 18 aliased AlexNet layers (conv, ReLU, pool, fc) through run_recorded / plain;
* conv1 only through extract_batches (stops after features.0) / a forward of ``features[:1]``.

Run by hand (not a test):  .venv/bin/python benchmarks/bench_extraction.py [--n 512] [--batch-size 64] [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import time

import torch

from extractors import extract_batches, list_layers, load_model, resolve_layers, run_recorded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    model = load_model("alexnet", "none").eval()
    x = torch.randn(args.n, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    batches = [x[s:s + args.batch_size] for s in range(0, args.n, args.batch_size)]
    default = dict(resolve_layers(model, None))
    every = dict(list_layers(model))
    print(f"AlexNet (weights none), {args.n} images in batches of {args.batch_size}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; load average {os.getloadavg()}")

    def plain() -> None:
        with torch.inference_mode():
            for b in batches:
                model(b)

    def features1() -> None:
        with torch.inference_mode():
            for b in batches:
                model.features[:1](b)

    def hooked(layers: dict[str, str]):
        def run() -> None:
            for b in batches:
                run_recorded(model, b, layers, stop_early=True)
        return run

    def public(layers) -> callable:
        def run() -> None:
            for _ in extract_batches(model, x, layers, batch_size=args.batch_size, progress=False):
                pass
        return run

    variants = {"plain forward": plain, "features[:1] forward": features1,
                f"run_recorded, {len(default)} default layers": hooked(default),
                f"extract_batches, {len(default)} default layers": public(list(default)),
                f"run_recorded, all {len(every)} aliased layers": hooked(every),
                "extract_batches, conv1 only": public(["conv1"])}
    best = dict.fromkeys(variants, float("inf"))
    plain()  # warm-up
    for _ in range(args.repeat):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    for name, seconds in best.items():
        print(f"{name:40s} {seconds:7.2f} s")
    p, f1 = best["plain forward"], best["features[:1] forward"]
    print(f"ratio run_recorded {len(default)} layers / plain: {best[f'run_recorded, {len(default)} default layers'] / p:.3f}")
    print(f"ratio extract_batches {len(default)} layers / plain: "
          f"{best[f'extract_batches, {len(default)} default layers'] / p:.3f}")
    print(f"ratio run_recorded all {len(every)} layers / plain: {best[f'run_recorded, all {len(every)} aliased layers'] / p:.3f}")
    print(f"ratio conv1-only extract_batches / features[:1]: {best['extract_batches, conv1 only'] / f1:.3f} "
          f"(and / plain forward: {best['extract_batches, conv1 only'] / p:.3f})")


if __name__ == "__main__":
    main()
