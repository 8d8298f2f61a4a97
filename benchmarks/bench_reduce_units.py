"""Benchmark: what ``--reduce-units K`` (the count sketch of :mod:`extractors.streaming`) costs in accuracy and
saves in time, at a moderate size.

The layer RDMs of AlexNet (untrained, ``--weights none``, its 8 default layers) over N seeded generated images
(``benchmarks/large_data.py``) are computed exactly and with each K of ``--k``, in ``--precision``, one
:func:`extractors.streaming.stream_rdms` call each (decode, forward, Gram; wall seconds). Per layer and K it
reports the largest absolute difference of the RDM entries from the exact RDM, the Spearman correlation of
the two RDMs' upper triangles (1 = the sketch ranks every pair as the exact RDM does), and what a user reads:
the layer's RSA similarity with the data set's (synthetic V4) RDM (Spearman; ``compare``'s default method),
its difference from the exact similarity, and the best layer. Spearman here is Pearson's r of
``scipy.stats.rankdata`` ranks (average ties: ``scipy.stats.spearmanr``'s definition), each vector ranked once.
Only the exact run's ranks (float32) are kept between runs, so 10,000 stimuli need about 6 GiB.

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/bench_reduce_units.py --n 1000 --k 1024,4096
        --out benchmarks/results/reduce_units_1000.json
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from large_data import build


def main() -> None:
    from scipy.stats import spearmanr

    from extractors import load_model
    from extractors.streaming import stream_rdms
    from rsa_bridge.options import RDMOptions
    from stimuli import load_stimulus_set

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="stimuli")
    parser.add_argument("--k", default="1024,4096", help="comma-separated K of --reduce-units")
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--data", type=Path, default=None, help="cache folder of the generated data")
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write")
    args = parser.parse_args()
    stimuli = load_stimulus_set(build(args.n, root=args.data) / "stimuli")
    model = load_model("alexnet", weights="none")
    import xarray as xr
    from scipy.stats import rankdata

    runs: dict[str, dict] = {}
    iu = np.triu_indices(args.n, 1)

    def ranks(v):
        r = rankdata(v).astype(np.float64)
        r -= r.mean()
        return (r / np.linalg.norm(r)).astype(np.float32)

    with xr.open_dataset(build(args.n, root=args.data) / "neural.nc", engine="h5netcdf") as ds:
        neural = ranks(ds["V4"].isel(session=0).values[iu])
    exact_ranks, exact_sim, exact_values = {}, {}, {}
    for k in [None, *[int(s) for s in args.k.split(",")]]:
        t0 = time.perf_counter()
        rdms = stream_rdms(model, stimuli, None, RDMOptions(precision=args.precision, reduce_units=k), progress=False)
        wall = time.perf_counter() - t0
        label = "exact" if k is None else f"K={k}"
        row = {"wall_s": wall, "layers": {}}
        for layer in [str(x) for x in rdms["layer"].values]:
            values = rdms.sel(layer=layer).values[iu]
            r = ranks(values)
            sim = float(np.dot(r.astype(np.float64), neural))
            if k is None:
                exact_ranks[layer], exact_sim[layer], exact_values[layer] = r, sim, values.astype(np.float32)
            row["layers"][layer] = {
                "units": int(rdms["n_units"].sel(layer=layer)),
                "max_abs_diff": float(np.abs(exact_values[layer] - values).max()),
                "spearman_vs_exact": float(np.dot(exact_ranks[layer].astype(np.float64), r)),
                "similarity": sim, "similarity_minus_exact": sim - exact_sim[layer]}
        del rdms
        row["best_layer"] = max(row["layers"], key=lambda l: row["layers"][l]["similarity"])
        runs[label] = row
        print(label, json.dumps({"wall_s": round(wall, 1), "best": row["best_layer"],
                                 **{l: (round(v["spearman_vs_exact"], 5), round(v["similarity_minus_exact"], 5))
                                    for l, v in row["layers"].items()}}), flush=True)
    argv = [f"benchmarks/results/{args.out.name}" if args.out and a == str(args.out) else a for a in sys.argv[1:]]
    env = " ".join(f"{k}={os.environ[k]}" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS") if os.environ.get(k))
    result = {"command": f"{env} python benchmarks/bench_reduce_units.py ".lstrip() + shlex.join(argv),
              "data": f"python benchmarks/large_data.py --n {args.n}", "model": "alexnet, weights none",
              "precision": args.precision, "cores": os.cpu_count(), "loadavg_after": list(os.getloadavg()),
              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "runs": runs}
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
