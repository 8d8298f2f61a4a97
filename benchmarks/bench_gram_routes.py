"""``compare --gram-tiles`` by route: driver (serial), tiles (read the spill) and recompute (re-run the network).

Runs :func:`rsa_bridge.app.distributed.compare_many` on a 2-process ``LocalCluster`` (one thread per worker) with
every layer spilled (``memory_budget=0``), once per ``--gram-route``, and the serial ``compare_models``; reports
wall seconds, the planner's lines (``gram_routes``: measured forward ms per image and read rate under ``auto``),
the largest RDM difference to the serial run, and per layer the break-even read rate ``n_units * 4 / t`` (bytes
per second below which recompute is cheaper, ``t`` the driver's measured seconds per image). ``--project N``
projects recompute's forwards to N stimuli in panels of ``--project-panel-rows`` on ``--workers`` workers:
``(P + 1) N`` image forwards per layer without caches, spread over the workers (a cache that kept every panel
would need ``N * units * 4`` bytes per worker, reported too).

    TORCH_HOME=/work/shared/data/torchvision_weights PYTHONPATH=. OMP_NUM_THREADS=1 \\
        python benchmarks/bench_gram_routes.py --model mobilenet_v2 --weights IMAGENET1K_V1 \\
        --layers features.1,features.4,features.10 --project 73000 --out benchmarks/results/gram_routes.json
"""
from __future__ import annotations

import argparse
import json
import math
import re
import tempfile
import time
from pathlib import Path


def _run(names, areas, network, rdm, scheduler=None, tiles=None):
    from rsa_bridge.app.distributed import compare_many
    from rsa_bridge.app.pipeline import compare_models
    from rsa_bridge.options import StatsOptions

    stats = StatsOptions(ceiling=False, bootstrap=0)
    t0 = time.perf_counter()
    if scheduler is None:
        result = compare_models(names, areas, network=network, rdm=rdm, stats=stats, progress=False)
    else:
        result = compare_many(names, areas, scheduler=scheduler, gram_tiles=tiles, network=network, rdm=rdm,
                              stats=stats, progress=False)
    return result, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v2")
    parser.add_argument("--weights", default="IMAGENET1K_V1")
    parser.add_argument("--layers", default="features.1,features.4,features.10")
    parser.add_argument("--area", default="IT", help="area of the default 92-image dataset")
    parser.add_argument("--panel-rows", type=int, default=23, help="stimuli per panel (sets --gram-budget)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--project", type=int, default=0, help="N to project recompute to (0: none)")
    parser.add_argument("--project-panel-rows", type=int, default=4096)
    parser.add_argument("--workers", type=int, default=16, help="workers of the projection")
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write")
    args = parser.parse_args()

    import numpy as np
    from dask.distributed import Client, LocalCluster

    from rsa_bridge.app.gram_routes import GramTiles
    from rsa_bridge.app.network import NetworkOptions
    from rsa_bridge.options import RDMOptions

    layers = args.layers.split(",")
    network = NetworkOptions(weights=args.weights, layers=layers, cache=False)
    rows = {}
    with tempfile.TemporaryDirectory(prefix="bench-gram-routes-") as spill:
        base = {"precision": "float32", "batch_size": args.batch_size, "memory_budget": 0, "spill_dir": spill}
        serial, serial_s = _run([args.model], [args.area], network, RDMOptions(**base))
        want = next(iter(serial.model_rdms.values()))
        units = {str(k): int(v) for k, v in zip(want["layer"].values, want["n_units"].values)}
        budget = 3 * 4 * args.panel_rows * max(units.values())
        rdm = RDMOptions(**base, gram_budget=budget)
        rows["driver (serial)"] = {"wall_s": serial_s}
        with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            for route in ("tiles", "recompute", "auto"):
                result, wall = _run([args.model], [args.area], network, rdm, client, GramTiles(route))
                got = next(iter(result.model_rdms.values()))
                rows[route] = {"wall_s": wall, "max_abs_rdm_diff": float(np.abs(got.values - want.values).max()),
                               "gram_routes": result.results.attrs["gram_routes"],
                               "gram_paths": got.attrs["gram_paths"]}
    per_image = [float(m) * 1e-3 for m in re.findall(r"x ([0-9.e+-]+) ms =", rows["auto"]["gram_routes"])]
    n = int(want.sizes["stimulus_row"])
    out = {"model": args.model, "weights": args.weights, "n": n, "units": units, "panel_rows": args.panel_rows,
           "runs": rows, "forward_s_per_image": per_image[0] if per_image else None}
    if per_image:
        t = per_image[0]
        out["break_even_bytes_per_s"] = {layer: p * 4 / t for layer, p in units.items()}
        if args.project:
            panels = math.ceil(args.project / args.project_panel_rows)
            images = (panels + 1) * args.project
            out["projection"] = {"n": args.project, "panels": panels, "image_forwards_per_layer": images,
                                 "forward_s_per_layer_per_worker": images * t / args.workers,
                                 "workers": args.workers,
                                 "cache_bytes_to_keep_every_panel": {layer: args.project * p * 4
                                                                     for layer, p in units.items()}}
    text = json.dumps(out, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
