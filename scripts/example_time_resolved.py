"""Inputs of the worked time-resolved example (docs/guide/ceilings-time-nwb.md): synthetic rates with planted
latencies (V4 peaks at 75 ms, IT at 135 ms) and the model RDMs of their latent features.

    python scripts/example_time_resolved.py --out /tmp/planted
    python -m rsa_bridge neural rdm /tmp/planted/rates.nc --time-resolved --out /tmp/planted/rdms.nc
    python -m rsa_bridge compare --model-rdms /tmp/planted/model_rdms.nc --dataset /tmp/planted/rdms.nc \\
        --bootstrap 200 --out /tmp/planted/out

The last command prints each layer's peak latency with its bootstrap CI per area and draws
/tmp/planted/out/time_course.png.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import xarray as xr

from rsa_bridge.io import write_netcdf
from rsa_bridge.neural import save_rates
from rsa_bridge.neural.synthetic_time import planted_latency_rates
from rsa_bridge.rdm import COL, ROW


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rates, model = planted_latency_rates({"V4": 75.0, "IT": 135.0}, seed=args.seed)
    save_rates(rates, args.out / "rates.nc")
    rng = np.random.default_rng(args.seed + 1)
    noisy = model.values + np.abs(rng.normal(0, 0.5, model.shape))
    noisy = (noisy + noisy.T) / 2
    np.fill_diagonal(noisy, 0.0)
    ids = [str(s) for s in model[ROW].values]
    layers = xr.DataArray(np.stack([model.values, noisy]), dims=("layer", ROW, COL),
                          coords={"layer": ["features", "features_noisy"], ROW: ids, COL: ids},
                          attrs={"metric": "correlation", "model": "latent features of the synthetic stimuli"})
    write_netcdf(xr.Dataset({"rdm": layers}), args.out / "model_rdms.nc")
    print(f"wrote {args.out / 'rates.nc'} ({rates.sizes['neuroid']} neuroids x {rates.sizes['presentation']} "
          f"presentations x {rates.sizes['time_bin']} bins of 10 ms) and {args.out / 'model_rdms.nc'}")


if __name__ == "__main__":
    main()
