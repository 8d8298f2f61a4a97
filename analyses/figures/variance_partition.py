"""Variance partitioning: a bar per unique and shared component (and the total R^2) of a brain RDM's
variance explained by 2-4 model RDMs, with the bootstrap CI over stimuli when the results have one.
The axis names the measure (R^2 of OLS with intercept) and the vectors (raw or ranked condensed RDMs).

    rsa-bridge partition --model-rdms run/model_rdms.nc --predictors block5,block11,pooled --area hIT --out part/
    rsa-bridge figure variance_partition --results part/
"""
from __future__ import annotations

import textwrap
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from analyses.figures import common
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.figures import PALETTE, figsize, use_style

NAME = "variance_partition"


def partition_bars(result: xr.Dataset, width: str | float = "single", height_mm: float = 55.0):
    """Horizontal bars of ``result["component"]`` (unique, shared, total), CIs as error bars when present.

    Args:
        result: the Dataset of :func:`rsa_bridge.fitting.partition_variance` (``partition.nc``).

    Returns:
        (figure, axes, handles): ``"bars"`` -> BarContainer (component order), ``"xlabel"`` -> its text.
    """
    if "component" not in result or result.attrs.get("measure") != "r2_ols_intercept":
        raise RSABridgeError("these results are not a variance partition (partition.nc of `rsa-bridge partition`)")
    labels = [str(v) for v in result["component_name"].values]
    values = result["component"].values.astype(float)
    colours = [PALETTE[0] if lab.startswith("unique:") else PALETTE[1] if lab.startswith("shared:") else "0.3"
               for lab in labels]
    with use_style():
        fig, ax = plt.subplots(figsize=figsize(width, height_mm))
        y = np.arange(len(labels))[::-1]
        err = None
        if "ci_low" in result:
            err = np.abs(np.stack([values - result["ci_low"].values, result["ci_high"].values - values]))
        bars = ax.barh(y, values, color=colours, xerr=err, error_kw={"lw": 0.6, "capsize": 1.5})
        ax.set_yticks(y, [lab.replace("unique:", "unique ").replace("shared:", "shared ") for lab in labels])
        ax.axvline(0, color="0.5", lw=0.5)
        transform = result.attrs.get("transform", "none")
        vectors = "ranked" if transform == "ranks" else "raw"
        area = result.attrs.get("area", "brain")
        text = f"share of variance of the {area} RDM: R² (OLS with intercept, {vectors} condensed RDMs)"
        if "ci_low" in result:
            text += f"; {result.attrs.get('ci', '')} CI over {result.attrs.get('n_boot', '?')} stimulus draws"
        xlabel = ax.set_xlabel(textwrap.fill(text, 36))
    return fig, ax, {"bars": bars, "xlabel": xlabel}


def main(argv: Sequence[str] | None = None) -> int:
    p = common.parser(NAME, "Unique and shared variance of a brain RDM explained by 2-4 model RDMs.", compare=False)
    p.add_argument("--width", default="single", help="single, double or millimetres (default single)")
    args = p.parse_args(argv)
    results = args.results or (args.out and args.out / "results")
    if results is None or not common.check_folder(results, "partition"):
        raise RSABridgeError("no partition results: run `rsa-bridge partition ... --out DIR` and pass --results DIR")
    with xr.open_dataset(results / "partition.nc") as ds:
        result = ds.load()
    fig, _, _ = partition_bars(result, width=args.width)
    for path in common.save(fig, args.out or results, NAME, args.dpi):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(common.run(main))
