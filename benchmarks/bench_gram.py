"""Benchmark: the Gram stage against its GEMM floor, in memory and out of core, measured in one run.

For each N of ``--sizes`` a seeded (N, P) float32 activation matrix is built and its Gram ``X X^T`` timed:

- ``in_memory``: :func:`rsa_bridge.gram_panels.symmetric_gram` (BLAS syrk on a view);
- ``torch_blocks``: the previous engine, :class:`rsa_bridge.gram.GramAccumulator` over column blocks of
  64 MiB (torch matmul per panel pair), the baseline;
- ``unit_blocks``: the matrix written as the unit-block spill file ``extractors.streaming`` writes (blocks
  from ``--gram-budget``), its pages dropped from the page cache (``posix_fadvise(DONTNEED)``, so the reads
  come from the disk), then :func:`rsa_bridge.gram_blocks.unit_block_gram` (what ``stream_rdms`` runs for
  a spilled layer; each byte read once);
- ``panels``: the same file, cold again, by stimulus panels (:func:`rsa_bridge.gram_panels.out_of_core_gram`)
  with a budget that forces ``--panels`` panels; bytes planned and read are recorded for both;
- ``dask_tiles`` (``--tiles``): the same plan as tasks on a 2-process ``LocalCluster``
  (:func:`rsa_bridge.app.gram_tiles.dask_gram`), with the per-tile read and product seconds.

The GEMM rate is measured in the same run (syrk of a (2048, 8192) matrix in the working precision, best
of 3), and each stage is reported as its wall seconds over the floor ``N^2 P / rate`` (syrk flops: half
of ``2 N^2 P``). The exponent of each path between the two largest sizes is log(t2/t1)/log(N2/N1) (2 is
the Gram's own growth at fixed P). ``--project`` extrapolates the dask tiles' measured per-flop and
per-byte costs to N stimuli (e.g. 73,000 for NSD) at P units on W workers.

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/bench_gram.py --sizes 2000,4000 --units 16384
        --panels 4 --tiles --project 73000 --project-units 494184 --workers 16
        --out benchmarks/results/gram_stage_float32.json

(One BLAS thread: on a loaded machine a 2-thread BLAS on 500-row tiles spends its time waiting for the other
thread; measured 3 to 7 Gflop/s against 22 with one thread at load average 12.)

The JSON has no machine paths (the spill folder is written ``SPILL``).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rsa_bridge.gram_blocks import plan_blocks, unit_block_gram, write_blocks
from rsa_bridge.gram_panels import (
    PanelReader,
    out_of_core_gram,
    plan_panels,
    symmetric_gram,
)

#: the timed paths, in the order they run
PATHS = ("in_memory", "torch_blocks", "unit_blocks", "panels", "dask_tiles")


def gemm_rate(precision: str, n: int = 2048, p: int = 8192, repeats: int = 3) -> float:
    """Syrk flops per second (n^2 p per product) of this machine now, best of ``repeats``."""
    x = np.random.default_rng(0).standard_normal((n, p)).astype(precision)
    out = np.empty((n, n), dtype=np.float64)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        symmetric_gram(x, precision, out=out)
        best = min(best, time.perf_counter() - t0)
    return n * n * p / best


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _torch_blocks(x: np.ndarray, precision: str) -> None:
    import torch

    from rsa_bridge.gram import GramAccumulator, block_width

    t = torch.from_numpy(x)
    acc = GramAccumulator(x.shape[0], "cosine", precision=precision)
    width = block_width(x.shape[0], precision)
    for u in range(0, x.shape[1], width):
        acc.add(t[:, u:u + width])


def _cold(path: Path) -> Path:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # the reads come from the disk, not the page cache
    finally:
        os.close(fd)
    return path


def run_size(n: int, units: int, precision: str, panels: int, args: argparse.Namespace, rate: float) -> dict:
    x = np.random.default_rng(n).standard_normal((n, units)).astype(np.float32)
    floor = n * n * units / rate
    row = {"n": n, "units": units, "precision": precision, "floor_s": floor}
    out = np.empty((n, n), dtype=np.float64)
    row["in_memory_s"] = _timed(lambda: symmetric_gram(x, precision, out=out))
    want = out.copy()
    if not args.no_torch:
        row["torch_blocks_s"] = _timed(lambda: _torch_blocks(x, precision))
    rows = math.ceil(n / panels)
    plan = plan_panels(n, units, 3 * 4 * units * rows)
    blocks = plan_blocks(n, units, args.gram_budget)
    with tempfile.TemporaryDirectory(prefix="rsa-bridge-bench-gram-", dir=args.spill_dir) as tmp:
        path = Path(tmp) / "layer000.f32"
        write_blocks(x, path, blocks.block_units)  # the layout extractors.streaming writes
        reader = PanelReader(_cold(path), n, units, blocks.block_units)
        row["unit_blocks_s"] = _timed(lambda: unit_block_gram(reader, blocks, precision, out=out))
        row["unit_blocks_max_rel_diff"] = float(np.abs(out - want).max() / np.abs(want).max())
        row.update(blocks=len(blocks.blocks), block_units=blocks.block_units, file_bytes=blocks.planned_bytes,
                   unit_blocks_planned_bytes=blocks.planned_bytes, unit_blocks_read_bytes=reader.bytes_read,
                   unit_blocks_read_s=reader.read_s, unit_blocks_wait_s=reader.wait_s)
        reader = PanelReader(_cold(path), n, units, blocks.block_units)
        row["panels_s"] = _timed(lambda: out_of_core_gram(reader, plan, precision, out=out))
        row["panels_max_rel_diff"] = float(np.abs(out - want).max() / np.abs(want).max())
        row.update(panels=len(plan.bounds), panels_planned_bytes=plan.planned_bytes, panels_read_bytes=reader.bytes_read,
                   panels_read_s=reader.read_s, panels_wait_s=reader.wait_s)
        if args.tiles:
            _cold(path)
            row.update(_tiles(path, plan, precision, want, blocks.block_units))
    for key in PATHS:
        if f"{key}_s" in row:
            row[f"{key}_over_floor"] = row[f"{key}_s"] / floor
    return row


def _warm() -> None:
    from rsa_bridge.gram_panels import tile_product

    a = np.ones((64, 256), np.float32)
    tile_product(a, a, "float32")
    tile_product(a, None, "float64")


def _tiles(path: Path, plan, precision: str, want: np.ndarray, block_units: int) -> dict:
    from dask.distributed import Client, LocalCluster

    from rsa_bridge.app.gram_tiles import dask_gram

    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.run(_warm)  # imports and BLAS start-up on every worker, outside the timed tiles
        t0 = time.perf_counter()
        gram, report = dask_gram(client, path, plan, precision, block_units=block_units)
        wall = time.perf_counter() - t0
    return {"dask_tiles_s": wall, "dask_workers": 2, "dask_tiles": report.tiles, "dask_read_bytes": report.read_bytes,
            "dask_planned_bytes": report.planned_bytes, "dask_read_s": report.read_s,
            "dask_product_s": report.product_s, "dask_equal_serial": bool(np.allclose(gram, want, rtol=0,
                                                                                        atol=1e-9 * np.abs(want).max()))}


def project(row: dict, n: int, units: int, workers: int, panel_rows: int) -> dict:
    """Per-worker seconds of an N-stimulus Gram from a measured dask row: its product seconds per syrk flop
    and read seconds per byte, applied to the tiles of N stimuli in panels of ``panel_rows``."""
    flops = row["n"] ** 2 * row["units"]
    per_flop = row["dask_product_s"] / flops  # syrk flop-equivalents: a gemm tile of r x s is 2 r s P / 2
    per_byte = row["dask_read_s"] / row["dask_read_bytes"]
    plan = plan_panels(n, units, 3 * 4 * units * panel_rows)
    from rsa_bridge.app.gram_tiles import tile_bytes

    product, read = per_flop * n * n * units, per_byte * tile_bytes(plan)
    return {"n": n, "units": units, "workers": workers, "panel_rows": panel_rows, "tiles": len(plan.tiles),
            "read_bytes": tile_bytes(plan), "product_s_total": product, "read_s_total": read,
            "wall_s_per_worker": (product + read) / workers, "from_measured_n": row["n"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,4000", help="comma-separated N")
    parser.add_argument("--units", type=int, default=16384, help="P, units of the layer")
    parser.add_argument("--precision", default="float32", help="float32 or float64")
    parser.add_argument("--panels", type=int, default=4, help="stimulus panels of the panel path")
    parser.add_argument("--gram-budget", type=float, default=2 ** 30,
                        help="bytes of the unit-block path's two blocks (RDMOptions.gram_budget)")
    parser.add_argument("--tiles", action="store_true", help="also the dask tiles on a 2-process LocalCluster")
    parser.add_argument("--no-torch", action="store_true", help="skip the torch column-block baseline")
    parser.add_argument("--project", type=int, default=0, help="N to project the dask tiles to (0: none)")
    parser.add_argument("--project-units", type=int, default=0, help="P of the projection (default --units)")
    parser.add_argument("--workers", type=int, default=16, help="workers of the projection")
    parser.add_argument("--project-panel-rows", type=int, default=8192, help="panel rows of the projection")
    parser.add_argument("--spill-dir", default=None, help="folder of the spill file (default: system temp)")
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write")
    args = parser.parse_args()
    t0, load_before = time.time(), list(os.getloadavg())
    warm = argparse.Namespace(**{**vars(args), "tiles": False})
    run_size(256, 512, args.precision, 2, warm, 1e9)  # warm-up: BLAS and torch thread pools, page cache of code
    rate = gemm_rate(args.precision)
    print(f"GEMM rate ({args.precision} syrk, same run): {rate / 1e9:.1f} Gflop/s", flush=True)
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        row = run_size(n, args.units, args.precision, args.panels, args, rate)
        rows.append(row)
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    argv = [a.replace(str(args.spill_dir), "SPILL") if args.spill_dir else a for a in sys.argv[1:]]
    if args.out is not None:  # no machine paths: the output file as it lies in the repository
        argv = [f"benchmarks/results/{args.out.name}" if a == str(args.out) else a for a in argv]
    env = " ".join(f"{k}={os.environ[k]}" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
                   if os.environ.get(k))
    result = {"command": f"{env} python benchmarks/bench_gram.py ".lstrip() + shlex.join(argv),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0)), "cores": os.cpu_count(),
        "threads_env": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")},
        "loadavg_before": load_before, "gemm_rate_flops": rate, "rows": rows}
    result["loadavg_after"] = list(os.getloadavg())
    if len(rows) >= 2:
        (a, b) = rows[-2], rows[-1]
        result["exponents"] = {key: math.log(b[f"{key}_s"] / a[f"{key}_s"]) / math.log(b["n"] / a["n"])
                               for key in PATHS
                               if f"{key}_s" in a and f"{key}_s" in b}
        print("exponents:", {k: round(v, 2) for k, v in result["exponents"].items()})
    if args.project and "dask_product_s" in rows[-1]:
        result["projection"] = project(rows[-1], args.project, args.project_units or args.units, args.workers,
                                       args.project_panel_rows)
        print("projection:", result["projection"])
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
