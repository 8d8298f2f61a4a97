"""Best layer per area: for each area, the bootstrap probability that each layer has the highest score of one
measure (fraction of bootstrap samples in which it wins; ties share). The layer with the highest score on the
full data is drawn dark and labelled "in-sample best": its score is the maximum over the layers drawn, so it
is biased upward. One figure per measure (``best_layer_rsa.png``... when the results hold several).

    rsa-bridge figure best_layer --results compare_out/ [--measure linear]
    python -m analyses.figures.best_layer --out figures/ [--results compare_out/]
"""
from __future__ import annotations

import textwrap
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analyses.figures import common
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.figures import PALETTE, figsize, use_style
from rsa_bridge.measures import MEASURES
from rsa_bridge.measures.results import measure_label, measures_in, select_measure

NAME = "best_layer"


def best_layer_bars(table: pd.DataFrame, n_samples: int | None = None, width: str | float | None = None,
                    height_mm: float = 50.0):
    """Bars of ``p_best`` by layer, one panel per area (one colour per model), for one measure.

    Args:
        table: the ``results.csv`` rows of one measure of a compare run with a bootstrap (columns p_best,
            is_best); a table of several measures is refused.
        n_samples: the number of bootstrap samples (shown in the axis label), if known.
        width: ``single`` / ``double`` / millimetres (default: single for one area, else double).

    Returns:
        (figure, list of axes, handles): ``"MODEL AREA"`` -> BarContainer (heights = p_best in table
        order), ``"MODEL AREA best"`` -> the in-sample best bar, ``"title"``.
    """
    table = select_measure(table)
    measure = measures_in(table)[0]
    if "p_best" not in table or table["p_best"].isna().all():
        raise RSABridgeError("the results have no p_best column: run compare with a bootstrap (--bootstrap 1000)")
    areas = list(dict.fromkeys(str(a) for a in table["area"]))
    models = list(dict.fromkeys(str(m) for m in table["model"]))
    width = width or ("single" if len(areas) == 1 else "double")
    handles: dict = {}
    with use_style():
        fig, axes = plt.subplots(1, len(areas), figsize=figsize(width, height_mm), sharey=True, squeeze=False)
        axes = list(axes[0])
        for ax, area in zip(axes, areas):
            part = table[table["area"].astype(str) == area]
            start, ticks, labels = 0.0, [], []
            for k, model in enumerate(models):
                rows = part[part["model"].astype(str) == model]
                x = start + np.arange(len(rows))
                colour = PALETTE[k % len(PALETTE)]
                bars = ax.bar(x, rows["p_best"].to_numpy(float), width=0.75, color=colour, alpha=0.55,
                              edgecolor=colour, lw=0.6, label=model if len(models) > 1 else None)
                handles[f"{model} {area}"] = bars
                if "is_best" in rows and rows["is_best"].astype(bool).any():
                    b = int(np.flatnonzero(rows["is_best"].astype(bool).to_numpy())[0])
                    bars[b].set_alpha(1.0)
                    handles[f"{model} {area} best"] = bars[b]
                    ax.annotate("in-sample\nbest", (x[b], bars[b].get_height()), xytext=(0, 2),
                                textcoords="offset points", ha="center", va="bottom", fontsize=5)
                ticks += list(x)
                labels += [str(l) if len(models) == 1 else f"{model}:{l}" for l in rows["layer"]]
                start += len(rows) + 1
            ax.set_xticks(ticks, labels, rotation=45, ha="right")
            ax.set_title(area)
            ax.set_ylim(0, 1.12)
        over = MEASURES[measure].bootstrap_over
        samples = f"\n({n_samples} samples over {over})" if n_samples else f"\n(bootstrap over {over})"
        axes[0].set_ylabel(f"P(best layer){samples}")
        size = float(plt.rcParams["axes.titlesize"])
        chars = int(0.9 * fig.get_size_inches()[0] * 72 / (0.6 * size))
        handles["title"] = fig.suptitle(textwrap.fill(f"best layer by {measure_label(measure, table['method'].iloc[0])}",
                                                      chars), fontsize=size)
        if len(models) > 1:
            axes[-1].legend(loc="upper right")
    return fig, axes, handles


def main(argv: Sequence[str] | None = None) -> int:
    p = common.parser(NAME, "Bootstrap probability of each layer being the best per area, one measure each.")
    p.add_argument("--width", default=None, help="single, double or millimetres (default: by number of areas)")
    args = p.parse_args(argv)
    cached = common.load_or_compute(args)
    n = int(cached.results.attrs["stats_bootstrap"]) if cached.results is not None and \
        "stats_bootstrap" in cached.results.attrs else None
    for measure, table in common.measure_tables(cached, args.measure):
        fig, _, _ = best_layer_bars(table, n_samples=n, width=args.width)
        for path in common.save(fig, args.out, common.figure_name(NAME, measure, cached), args.dpi):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(common.run(main))
