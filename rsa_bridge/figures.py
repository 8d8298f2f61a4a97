"""Figures of compare results (matplotlib, no display needed)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

#: colour-blind-safe palette (Okabe & Ito 2008)
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]


def layer_profile(table: pd.DataFrame, title: str | None = None):
    """Similarity by layer, one line per (model, area), error bars = SEM over the area's RDMs.

    Args:
        table: the ``results.csv`` table (columns model, layer, area, similarity, sem, method).

    Returns:
        (figure, axes, handles) — handles maps ``"model area"`` to its line, for restyling.
    """
    fig, ax = plt.subplots(figsize=(180 / 25.4 * 0.6, 2.6), constrained_layout=True)
    handles = {}
    groups = list(table.groupby(["model", "area"], sort=False))
    multi_model = table["model"].nunique() > 1
    for k, ((model, area), rows) in enumerate(groups):
        label = f"{model} {area}" if multi_model else str(area)
        x = range(len(rows))
        (line,) = ax.plot(x, rows["similarity"], marker="o", color=PALETTE[k % len(PALETTE)], label=label)
        if rows["sem"].notna().any():
            ax.errorbar(x, rows["similarity"], yerr=rows["sem"], fmt="none", ecolor=line.get_color(), capsize=2)
        handles[f"{model} {area}"] = line
        ax.set_xticks(list(x), rows["layer"].tolist(), rotation=45, ha="right")
    method = table["method"].iloc[0] if len(table) else ""
    ax.set_xlabel("layer")
    ax.set_ylabel(f"RDM similarity ({method})")
    ax.axhline(0.0, color="0.7", lw=0.8, zorder=0)
    ax.legend(frameon=False, fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return fig, ax, handles
