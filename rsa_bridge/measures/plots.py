"""Figures of several measures, one measure per panel, never mixed.

- :func:`measure_profile` — score by layer, one panel per measure (``profile.pdf/png`` of ``compare`` when more
  than RSA ran): each panel's y axis is its measure's label from the registry
  (:func:`rsa_bridge.measures.results.measure_label`), and its ceiling is drawn on the score's own scale
  (RSA: the noise-ceiling band from the lower to the upper bound; CKA: a dashed line at the split-half CKA;
  linear predictivity: a dashed line at the square root of the split-half reliability, the r that a perfect
  model reaches), with one legend entry per ceiling saying its definition.
- :func:`agreement_figure` — layer ranks (1 = best, integers) per measure, one panel per area, house style.

Both apply the house style (:func:`rsa_bridge.figures.use_style`) and journal widths.
"""
from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd

from rsa_bridge.figures import DOUBLE_MM, PALETTE, SINGLE_MM, figsize, use_style
from rsa_bridge.measures import MEASURES
from rsa_bridge.measures.results import ceiling_on_scale, measure_label, measures_in, select_measure

#: transparency of the RSA noise-ceiling band
BAND_ALPHA = 0.16


def _ceiling_artist(ax, rows: pd.DataFrame, measure: str, colour: str):
    """Draw one (model, area)'s ceiling on the score's scale; returns (artist or None, (low, high) or None)."""
    if MEASURES[measure].ceiling_style == "band":
        if "ceiling_lower" not in rows or not pd.notna(rows["ceiling_lower"].iloc[0]):
            return None, None
        low, high = float(rows["ceiling_lower"].iloc[0]), float(rows["ceiling_upper"].iloc[0])
        return ax.axhspan(low, high, color=colour, alpha=BAND_ALPHA, lw=0, zorder=0), (low, high)
    if "measure_ceiling" not in rows or not pd.notna(rows["measure_ceiling"].iloc[0]):
        return None, None
    level = ceiling_on_scale(measure, rows["measure_ceiling"].iloc[0])
    if not np.isfinite(level):
        return None, None
    return ax.axhline(level, color=colour, lw=0.8, ls="--", zorder=1), (level, level)


def _ceiling_entry(measure: str):
    """The legend entry explaining a measure's ceiling (band or dashed line)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    label = MEASURES[measure].ceiling_label
    if MEASURES[measure].ceiling_style == "band":
        return Patch(facecolor="0.5", alpha=0.35, lw=0, label=label)
    return plt.Line2D([], [], color="0.3", lw=0.8, ls="--", label=label)


def measure_profile(table: pd.DataFrame, title: str | None = None):
    """Score by layer, one panel per measure; a line per (model, area); bars: bootstrap CI; the ceiling per
    measure (see the module docstring).

    Returns:
        (figure, axes). Each plotted series carries its key as ``gid``: ``"MEASURE MODEL AREA"`` (Line2D,
        y = the measure's scores in table order), ``"MEASURE MODEL AREA ci"`` (LineCollection),
        ``"MEASURE AREA ceiling"`` (band or dashed line).

    Example::

        fig, axes = measure_profile(pd.read_csv("out/results.csv"))
    """
    import matplotlib.pyplot as plt

    measures = measures_in(table)
    width = SINGLE_MM if len(measures) == 1 else DOUBLE_MM
    with use_style():
        fig, axes = plt.subplots(1, len(measures), figsize=figsize(width, 72), squeeze=False)
        axes = list(axes[0])
        keys = list(dict.fromkeys(zip(table["model"].astype(str), table["area"].astype(str))))
        colour = {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(keys)}
        one_model = len({m for m, _ in keys}) == 1
        lines = {}
        for ax, measure in zip(axes, measures):
            sub = select_measure(table, measure)
            drawn = False
            for (model, area), rows in sub.groupby([sub["model"].astype(str), sub["area"].astype(str)], sort=False):
                x = np.arange(len(rows))
                c = colour[(model, area)]
                label = area if one_model else f"{model} {area}"
                (line,) = ax.plot(x, rows["similarity"].to_numpy(float), marker="o", color=c, label=label)
                line.set_gid(f"{measure} {model} {area}")
                lines.setdefault(label, line)
                if "ci_low" in rows and rows["ci_low"].notna().any():
                    ci = ax.vlines(x, rows["ci_low"].to_numpy(float), rows["ci_high"].to_numpy(float), color=c, lw=0.8)
                    ci.set_gid(f"{measure} {model} {area} ci")
                artist, _ = _ceiling_artist(ax, rows, measure, c)
                if artist is not None:
                    artist.set_gid(f"{measure} {area} ceiling")
                    drawn = True
                ax.set_xticks(list(x), rows["layer"].astype(str).tolist(), rotation=90)
            ax.axhline(0.0, color="0.7", lw=0.5, zorder=0)
            ax.set_title(MEASURES[measure].long_name)
            ax.set_ylabel(measure_label(measure, sub["method"].iloc[0] if "method" in sub else None)
                          .replace(" (", "\n(", 1))
            ax.set_xlabel("layer")
            if drawn:
                ax.legend(handles=[_ceiling_entry(measure)], loc="lower left", bbox_to_anchor=(0.0, 1.06),
                          borderaxespad=0.0, fontsize=5)
        fig.legend(handles=list(lines.values()), title="bars: 95% bootstrap CI", loc="outside lower center",
                   ncols=min(6, max(1, len(lines))))
        if title:
            fig.suptitle(textwrap.fill(title, 120))
    return fig, axes


def agreement_figure(table: pd.DataFrame, title: str | None = None):
    """Layer ranks (1 = best; ties share the best rank) per measure, one panel per area: where the lines
    cross, the measures disagree. Returns the figure (house style, journal width, integer rank ticks)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from rsa_bridge.measures.agreement import layer_ranks

    ranks = layer_ranks(table)
    ranks["rank"] = ranks["rank"].astype(int)
    areas = list(dict.fromkeys(ranks["area"].astype(str)))
    with use_style():
        fig, axes = plt.subplots(1, len(areas), figsize=figsize(SINGLE_MM if len(areas) == 1 else DOUBLE_MM, 70),
                                 squeeze=False, sharey=True)
        for ax, area in zip(axes[0], areas):
            sub = ranks[ranks["area"].astype(str) == area]
            several = sub["model"].nunique() > 1
            for k, ((model, measure), g) in enumerate(sub.groupby(["model", "measure"], sort=False)):
                label = measure if not several else f"{model} {measure}"
                (line,) = ax.plot(range(len(g)), g["rank"].to_numpy(int), marker="o", color=PALETTE[k % len(PALETTE)],
                                  label=label)
                line.set_gid(f"{model} {measure} {area}")
                ax.set_xticks(range(len(g)), g["layer"].astype(str).tolist(), rotation=90)
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylim(ranks["rank"].max() + 0.5, 0.5)   # rank 1 at the top
            ax.set_title(area)
            ax.set_xlabel("layer")
        axes[0][0].set_ylabel("layer rank by each measure (1 = best)")
        axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
        if title:
            fig.suptitle(textwrap.fill(title, 120))
    return fig
