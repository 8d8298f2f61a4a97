"""Trained vs untrained MobileNetV2 vs image-statistics controls, on V4, IT and hIT.

One panel per area: the similarity (Spearman correlation of model and brain RDMs, correlation-distance
RDMs) of every default layer of torchvision's MobileNetV2 with its ImageNet weights (``IMAGENET1K_V1``)
and of the same architecture untrained (``--weights none``, seed 0), with percentile bootstrap CIs over
stimuli (error bars); the image-statistics controls ``pixels`` and ``gabor`` as horizontal lines with
their CIs (hatched bands); the area's noise ceiling as a grey band (Nili et al. 2014; V4 has one RDM,
so no ceiling). Two compare jobs, the same bootstrap seed:

    TORCH_HOME=../shared/data/torchvision_weights RSA_BRIDGE_OFFLINE=1 \\
        python -m analyses.figures.trained_vs_untrained --out docs/figures [--bootstrap 100 --seed 0]

It prints one line per area (best layer of each network, controls, ceiling) and writes
``OUT/trained_vs_untrained.png|pdf`` and, with ``--table FILE``, every number as CSV.
"""
from __future__ import annotations

from rsa_bridge.app.argtypes import count, seed

import sys
from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analyses.figures import common
from rsa_bridge.figures import PALETTE, figsize, use_style
from stimuli.csv_cells import frame_to_csv, read_own_csv
from rsa_bridge.measures.results import measure_label, select_measure

NAME = "trained_vs_untrained"
AREAS = ("V4", "IT", "hIT")
CONTROLS = ("pixels", "gabor")
TRAINED = "IMAGENET1K_V1"


def compute(bootstrap: int, seed: int, areas: Sequence[str] = AREAS) -> pd.DataFrame:
    """The two compare jobs, as one table with a ``network`` column (trained / untrained / control name)."""
    from rsa_bridge.app.pipeline import NetworkOptions, StatsOptions, compare_models

    stats = StatsOptions(bootstrap=bootstrap, seed=seed)
    trained = compare_models(["mobilenet_v2", *CONTROLS], list(areas), network=NetworkOptions(weights=TRAINED),
                             progress=False, stats=stats).table
    untrained = compare_models(["mobilenet_v2"], list(areas), network=NetworkOptions(weights="none"), progress=False,
                               stats=stats).table
    trained["network"] = np.where(trained["model"] == "mobilenet_v2", "trained", trained["model"])
    untrained["network"] = "untrained"
    return pd.concat([trained, untrained], ignore_index=True)


def figure(table: pd.DataFrame):
    """(figure, axes): one panel per area, layers on x, networks as lines, controls as bands (RSA rows only)."""
    table = select_measure(table, "rsa")
    areas = list(dict.fromkeys(table["area"]))
    colours = {"trained": PALETTE[0], "untrained": PALETTE[1], "pixels": PALETTE[2], "gabor": PALETTE[3]}
    with use_style():
        fig, axes = plt.subplots(1, len(areas), figsize=figsize("double", 62), sharey=True, squeeze=False)
        axes = list(axes[0])
        for ax, area in zip(axes, areas):
            part = table[table["area"] == area]
            ceiling = part[["ceiling_lower", "ceiling_upper"]].iloc[0]
            if ceiling.notna().all():
                ax.axhspan(ceiling["ceiling_lower"], ceiling["ceiling_upper"], color="0.85", lw=0, zorder=0,
                           label="noise ceiling")
            layers = list(dict.fromkeys(part[part["network"] == "trained"]["layer"]))
            x = np.arange(len(layers))
            for network in ("trained", "untrained"):
                rows = part[part["network"] == network].set_index("layer").loc[layers]
                err = np.vstack([rows["similarity"] - rows["ci_low"], rows["ci_high"] - rows["similarity"]])
                ax.errorbar(x, rows["similarity"], yerr=err, color=colours[network], lw=1.2, ms=2.5, marker="o",
                            capsize=0, elinewidth=0.7, label=f"MobileNetV2 {network}")
            for control in CONTROLS:
                row = part[part["network"] == control].iloc[0]
                ax.axhline(row["similarity"], color=colours[control], lw=1.0, ls="--", label=f"{control} (control)")
                ax.axhspan(row["ci_low"], row["ci_high"], color=colours[control], alpha=0.15, lw=0)
            ax.axhline(0, color="0.5", lw=0.5)
            ax.set_title(area)
            ax.set_xticks(x[::2], layers[::2], rotation=90, fontsize=5)
        axes[0].set_ylabel(measure_label("rsa", table["method"].iloc[0]).replace(" (", "\n(", 1))
        handles, labels = axes[-1].get_legend_handles_labels()
        if fig.get_layout_engine() is None:
            fig.set_layout_engine("constrained")
        fig.legend(handles, labels, fontsize=5, loc="outside lower center", ncol=5, frameon=False)
    return fig, axes


def summary(table: pd.DataFrame) -> list[str]:
    """One line per area: in-sample best layer of each network with its CI, the controls, the ceiling (RSA)."""
    table = select_measure(table, "rsa")
    lines = []
    for area, part in table.groupby("area", sort=False):
        bits = []
        for network in ("trained", "untrained", *CONTROLS):
            rows = part[part["network"] == network]
            best = rows.loc[rows["similarity"].idxmax()]
            bits.append(f"{network} {best['layer']} (in-sample best) {best['similarity']:.3f} [{best['ci_low']:.3f}, "
                        f"{best['ci_high']:.3f}]")
        ceil = part[["ceiling_lower", "ceiling_upper"]].iloc[0]
        ceiling = f"ceiling [{ceil.iloc[0]:.3f}, {ceil.iloc[1]:.3f}]" if ceil.notna().all() else "ceiling n/a (1 RDM)"
        lines.append(f"{area}: " + "; ".join(bits) + f"; {ceiling}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    p = common.parser(NAME, __doc__.splitlines()[0], compare=False)
    p.add_argument("--bootstrap", type=count("--bootstrap", 100_000), default=100, help="bootstrap samples (default 100)")
    p.add_argument("--seed", type=seed(), default=0, help="bootstrap seed (default 0)")
    p.add_argument("--table", type=Path, help="also write every number as CSV to this file")
    args = p.parse_args(argv)
    cached = Path(args.results) / f"{NAME}.csv" if args.results else None
    if cached is not None and cached.is_file():
        table = read_own_csv(cached)
    else:
        table = compute(args.bootstrap, args.seed)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            frame_to_csv(table, cached, index=False)
    if args.table:
        frame_to_csv(table, args.table, index=False)
    for line in summary(table):
        print(line)
    fig, _ = figure(table)
    paths = common.save(fig, args.out, NAME, args.dpi)
    print(f"wrote {', '.join(str(p) for p in paths)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(common.run(main))
