"""Layer x area heatmap of one measure's model-brain scores, each cell labelled with its value; the in-sample
best layer per area (the highest score among the layers drawn, a maximum that is biased upward) is outlined.

One figure per measure: ``--measure cka`` draws CKA alone; without it every measure in the results gets its
own figure (``layer_heatmap_rsa.png``, ``layer_heatmap_cka.png``... when there are several).

    rsa-bridge figure layer_heatmap --results compare_out/ [--measure rsa] [--value similarity_normalized]
    python -m analyses.figures.layer_heatmap --out figures/ [--results compare_out/]
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle

from analyses.figures import common
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.figures import figsize, use_style
from rsa_bridge.measures.results import measure_label, measures_in, select_measure

NAME = "layer_heatmap"
#: what to colour by -> axis label ({label}: the measure's label from the registry)
VALUE_LABELS = {"similarity": "{label}", "similarity_normalized": "{label} / ceiling"}
#: the normalized column of the non-RSA measures (compare writes score / ceiling there)
OTHER_NORMALIZED = "score_over_ceiling"


def similarity_grid(table: pd.DataFrame, value: str = "similarity") -> tuple[np.ndarray, list[str], list[str]]:
    """(rows x areas) grid of ``value``; rows are layers (``model:layer`` when several models), in table order."""
    table = select_measure(table)  # one measure, never a mix
    if value == "similarity_normalized" and measures_in(table) != ["rsa"]:
        value = OTHER_NORMALIZED
    if value not in table:
        raise RSABridgeError(f"the results have no column {value!r}; they have {', '.join(table.columns)}")
    several = table["model"].nunique() > 1
    keys = [f"{m}:{l}" if several else str(l) for m, l in zip(table["model"], table["layer"])]
    rows = list(dict.fromkeys(keys))
    areas = list(dict.fromkeys(str(a) for a in table["area"]))
    grid = np.full((len(rows), len(areas)), np.nan)
    for key, area, v in zip(keys, table["area"].astype(str), table[value].astype(float)):
        grid[rows.index(key), areas.index(area)] = v
    return grid, rows, areas


def layer_area_heatmap(table: pd.DataFrame, value: str = "similarity", width: str | float = "single",
                       cmap: str = "viridis"):
    """Heatmap of ``value`` of one measure with layers down and areas across.

    Args:
        table: the ``results.csv`` rows of one measure (:func:`rsa_bridge.measures.results.select_measure`);
            a table of several measures is refused.
        value: ``similarity`` or ``similarity_normalized`` (when compare ran with --normalize-by-ceiling).
        width: ``single`` / ``double`` / millimetres. cmap: a perceptually uniform, colour-blind-safe map.

    Returns:
        (figure, axes, handles): ``image`` -> the AxesImage (its array is the (layers x areas) grid),
        ``colorbar``, ``cells`` -> {(layer, area): Text}, ``best`` -> {area: outline Rectangle}.
    """
    table = select_measure(table)
    grid, rows, areas = similarity_grid(table, value)
    label = VALUE_LABELS.get(value, value).format(label=measure_label(measures_in(table)[0], table["method"].iloc[0]))
    height = 14 + 5.2 * len(rows)
    with use_style():
        fig, ax = plt.subplots(figsize=figsize(width, height))
        finite = grid[np.isfinite(grid)]
        vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        image = ax.imshow(grid, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
        ax.set_xticks(range(len(areas)), areas)
        ax.set_yticks(range(len(rows)), rows)
        ax.set_xlabel("brain area")
        ax.set_ylabel("model layer")
        ax.tick_params(length=0)
        for side in ("top", "right", "bottom", "left"):
            ax.spines[side].set_visible(False)
        cells = {}
        colormap = plt.get_cmap(cmap)
        for i, row in enumerate(rows):
            for j, area in enumerate(areas):
                v = grid[i, j]
                if not np.isfinite(v):
                    continue
                shade = colormap((v - vmin) / (vmax - vmin) if vmax > vmin else 0.5)
                luminance = 0.2126 * shade[0] + 0.7152 * shade[1] + 0.0722 * shade[2]
                cells[(row, area)] = ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6,
                                             color="black" if luminance > 0.5 else "white")
        best = {}
        for j, area in enumerate(areas):
            column = grid[:, j]
            if np.isfinite(column).any():
                i = int(np.nanargmax(column))
                best[area] = ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="#D55E00", lw=1.2))
        colorbar = fig.colorbar(image, ax=ax, shrink=0.9, pad=0.02)
        colorbar.set_label(label)
        ax.set_title(f"outline: in-sample best of {len(rows)} layers per area", loc="left", fontsize=6)
    return fig, ax, {"image": image, "colorbar": colorbar, "cells": cells, "best": best}


def main(argv: Sequence[str] | None = None) -> int:
    p = common.parser(NAME, "Layer x area heatmap of one measure's model-brain scores.")
    p.add_argument("--value", default="similarity", choices=sorted(VALUE_LABELS),
                   help="what to colour by (similarity_normalized: score / ceiling)")
    p.add_argument("--width", default="single", help="single, double or millimetres (default single)")
    args = p.parse_args(argv)
    cached = common.load_or_compute(args)
    for measure, table in common.measure_tables(cached, args.measure):
        fig, _, _ = layer_area_heatmap(table, value=args.value, width=args.width)
        for path in common.save(fig, args.out, common.figure_name(NAME, measure, cached), args.dpi):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(common.run(main))
