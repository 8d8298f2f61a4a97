"""Figures of compare results (matplotlib, no display needed)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

#: colour-blind-safe palette (Okabe & Ito 2008)
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]


def layer_profile(table: pd.DataFrame, title: str | None = None):
    """Similarity by layer, one line per (model, area), with uncertainty and the noise ceiling.

    Error bars: the bootstrap CI (columns ``ci_low``/``ci_high``) when present, else the SEM over the
    area's RDMs. Shaded band: the area's noise ceiling from its lower to its upper bound (columns
    ``ceiling_lower``/``ceiling_upper``; areas with one RDM have none). With ``similarity_normalized``
    in the table the normalized values are plotted, and the axis says so.

    Args:
        table: the ``results.csv`` table (columns model, layer, area, similarity, sem, method, ...).

    Several models get one panel each (shared y axis; layers differ between architectures).

    Returns:
        (figure, axes, handles) — axes is one Axes (one model) or a list; handles maps ``"model area"``
        to its line, for restyling.
    """
    models = list(dict.fromkeys(table["model"]))
    width = 180 / 25.4 * (0.6 if len(models) == 1 else min(1.0, 0.4 * len(models)))
    fig, axes = plt.subplots(1, len(models), figsize=(width, 2.6), sharey=True, constrained_layout=True,
                             squeeze=False)
    axes = list(axes[0])
    handles = {}
    normalized = "similarity_normalized" in table
    y_col = "similarity_normalized" if normalized else "similarity"
    suffix = "_normalized" if normalized else ""
    area_colour = {str(a): PALETTE[k % len(PALETTE)] for k, a in enumerate(dict.fromkeys(table["area"]))}
    notes = []
    for ax, model in zip(axes, models):
        for area, rows in table[table["model"] == model].groupby("area", sort=False):
            colour = area_colour[str(area)]
            x = np.arange(len(rows))
            label = str(area) if rows[y_col].notna().any() else f"{area} (no ceiling: 1 RDM)"
            (line,) = ax.plot(x, rows[y_col], marker="o", color=colour, label=label)
            if f"ci_low{suffix}" in rows and rows[f"ci_low{suffix}"].notna().any():
                y = rows[y_col].to_numpy()
                err = np.vstack([y - rows[f"ci_low{suffix}"].to_numpy(), rows[f"ci_high{suffix}"].to_numpy() - y])
                ax.errorbar(x, y, yerr=err, fmt="none", ecolor=colour, capsize=2)
                notes.append("bars: bootstrap CI")
            elif not normalized and rows["sem"].notna().any():
                ax.errorbar(x, rows["similarity"], yerr=rows["sem"], fmt="none", ecolor=colour, capsize=2)
                notes.append("bars: SEM over RDMs")
            if not normalized and "ceiling_lower" in rows and pd.notna(rows["ceiling_lower"].iloc[0]):
                ax.axhspan(rows["ceiling_lower"].iloc[0], rows["ceiling_upper"].iloc[0], color=colour, alpha=0.15,
                           lw=0, zorder=0)
                notes.append("band: noise ceiling")
            handles[f"{model} {area}"] = line
            ax.set_xticks(list(x), rows["layer"].tolist(), rotation=45, ha="right")
        ax.set_xlabel("layer" if len(models) == 1 else f"{model} layer")
        ax.axhline(0.0, color="0.7", lw=0.8, zorder=0)
        if normalized:
            ax.axhline(1.0, color="0.5", lw=0.8, ls="--", zorder=0)
    method = table["method"].iloc[0] if len(table) else ""
    if normalized:
        bound = table["normalized_by"].iloc[0].replace("ceiling_", "")
        axes[0].set_ylabel(f"similarity / ceiling ({bound})")
    else:
        axes[0].set_ylabel(f"RDM similarity ({method})")
    axes[-1].legend(frameon=False, fontsize=7, title="; ".join(dict.fromkeys(notes)) or None, title_fontsize=6)
    if title:
        fig.suptitle(title, fontsize=8)
    ax = axes[0] if len(axes) == 1 else axes
    return fig, ax, handles
