"""Figures of several measures: one profile panel per measure (``profile.pdf/png`` when more than RSA ran)."""
from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd

from rsa_bridge.figures import DOUBLE_MM, PALETTE, figsize, use_style
from rsa_bridge.measures import MEASURES

Y_LABELS = {"rsa": "RDM similarity ({method} r)", "cka": "linear CKA", "linear": "median held-out r ({method})"}


def measure_profile(table: pd.DataFrame, title: str | None = None):
    """Score by layer, one panel per measure; lines per (model, area); bars = bootstrap CI; dashed = ceiling
    (rsa: the Nili band). Returns (figure, axes)."""
    import matplotlib.pyplot as plt

    measures = list(dict.fromkeys(table["measure"]))
    with use_style():
        fig, axes = plt.subplots(1, len(measures), figsize=figsize(min(DOUBLE_MM, 62 * len(measures)), 66),
                                 squeeze=False)
        axes = list(axes[0])
        keys = list(dict.fromkeys(zip(table["model"], table["area"])))
        colour = {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(keys)}
        for ax, measure in zip(axes, measures):
            sub = table[table["measure"] == measure]
            for (model, area), rows in sub.groupby(["model", "area"], sort=False):
                x = np.arange(len(rows))
                c = colour[(model, area)]
                label = str(area) if len(keys) == len({a for _, a in keys}) else f"{model} {area}"
                ax.plot(x, rows["similarity"], marker="o", color=c, label=label)
                if "ci_low" in rows and rows["ci_low"].notna().any():
                    ax.vlines(x, rows["ci_low"].to_numpy(float), rows["ci_high"].to_numpy(float), color=c, lw=0.8)
                if measure == "rsa" and "ceiling_lower" in rows and pd.notna(rows["ceiling_lower"].iloc[0]):
                    ax.axhspan(rows["ceiling_lower"].iloc[0], rows["ceiling_upper"].iloc[0], color=c, alpha=0.15, lw=0)
                elif "measure_ceiling" in rows and pd.notna(rows["measure_ceiling"].iloc[0]):
                    ax.axhline(rows["measure_ceiling"].iloc[0], color=c, lw=0.8, ls="--")
                ax.set_xticks(list(x), rows["layer"].tolist(), rotation=45, ha="right")
            ax.axhline(0.0, color="0.7", lw=0.6, zorder=0)
            ax.set_title(MEASURES[measure].long_name, fontsize=7)
            ax.set_ylabel(Y_LABELS[measure].format(method=sub["method"].iloc[0]))
            ax.set_xlabel("layer")
        axes[-1].legend(title="bars: bootstrap CI; dashed: ceiling", fontsize=6, title_fontsize=6, frameon=False,
                       loc="lower right")
        if title:
            fig.suptitle(textwrap.fill(title, 120), fontsize=7)
    return fig, axes
