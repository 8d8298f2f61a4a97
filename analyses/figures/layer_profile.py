"""Layer profile per area: model-brain RDM similarity by layer, one panel per area, with the bootstrap CI
(error bars) and the area's noise ceiling (grey band, lower to upper bound).

    python -m analyses.figures.layer_profile --out figures/ [--results compare_out/]
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analyses.figures import common
from rsa_bridge.figures import PALETTE, figsize, use_style

NAME = "layer_profile"
CEILING_COLOUR = "0.82"


def _x_positions(rows: pd.DataFrame, several_models: bool) -> np.ndarray:
    n = len(rows)
    if not several_models:
        return np.arange(n, dtype=float)
    return np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(1)


def profile_per_area(table: pd.DataFrame, width: str | float | None = None, height_mm: float = 55.0):
    """One panel per area: similarity by layer, a line per model, CI bars, noise-ceiling band.

    Args:
        table: the ``results.csv`` table (model, layer, area, similarity, method; optional ci_low,
            ci_high, sem, ceiling_lower, ceiling_upper).
        width: ``single`` / ``double`` / millimetres (default: single for one area, else double).
        height_mm: figure height.

    With one model the x axis is its layers; with several, each model's layers are spread over a
    relative depth from 0 (first layer) to 1 (last).

    Returns:
        (figure, list of axes (one per area), handles): ``"MODEL AREA"`` -> line (y = similarity),
        ``"MODEL AREA ci"`` -> LineCollection (one vertical segment per layer from ci_low to ci_high, or ± sem),
        ``"AREA ceiling"`` -> band patch (lower to upper bound).
    """
    areas = list(dict.fromkeys(str(a) for a in table["area"]))
    models = list(dict.fromkeys(str(m) for m in table["model"]))
    several = len(models) > 1
    width = width or ("single" if len(areas) == 1 else "double")
    method = str(table["method"].iloc[0])
    handles: dict = {}
    with use_style():
        fig, axes = plt.subplots(1, len(areas), figsize=figsize(width, height_mm), sharey=True, squeeze=False)
        axes = list(axes[0])
        for ax, area in zip(axes, areas):
            part = table[table["area"].astype(str) == area]
            ceiling = part[["ceiling_lower", "ceiling_upper"]].iloc[0] if "ceiling_lower" in part else None
            if ceiling is not None and ceiling.notna().all():
                handles[f"{area} ceiling"] = ax.axhspan(ceiling["ceiling_lower"], ceiling["ceiling_upper"],
                                                        color=CEILING_COLOUR, lw=0, zorder=0, label="noise ceiling")
            for k, model in enumerate(models):
                rows = part[part["model"].astype(str) == model]
                if rows.empty:
                    continue
                colour = PALETTE[k % len(PALETTE)]
                x = _x_positions(rows, several)
                y = rows["similarity"].to_numpy(dtype=float)
                (line,) = ax.plot(x, y, marker="o", color=colour, label=model, zorder=3)
                handles[f"{model} {area}"] = line
                if "ci_low" in rows and rows["ci_low"].notna().any():
                    low, high = rows["ci_low"].to_numpy(float), rows["ci_high"].to_numpy(float)
                elif rows["sem"].notna().any():
                    low, high = y - rows["sem"].to_numpy(float), y + rows["sem"].to_numpy(float)
                else:
                    low = high = None
                if low is not None:
                    # vertical lines, not errorbar(): a percentile CI need not contain the estimate
                    handles[f"{model} {area} ci"] = ax.vlines(x, low, high, color=colour, lw=0.8, zorder=2)
                if not several:
                    ax.set_xticks(x, rows["layer"].astype(str).tolist(), rotation=45, ha="right")
            ax.axhline(0.0, color="0.6", lw=0.5, zorder=1)
            n_rdms = int(part["n_rdms"].iloc[0]) if "n_rdms" in part else 1
            ax.set_title(f"{area} ({n_rdms} RDMs)" if n_rdms > 1 else f"{area} (1 RDM: no noise ceiling)")
            ax.set_xlabel("relative depth (first to last layer)" if several else "layer")
        axes[0].set_ylabel(f"model-brain RDM similarity ({method} r)")
        bars = "95% bootstrap CI" if "ci_low" in table and table["ci_low"].notna().any() else "± SEM over RDMs"
        legend_handles = [h for k, h in handles.items() if k.split(" ")[0] in models and not k.endswith(" ci")]
        legend_handles = list({h.get_label(): h for h in legend_handles}.values())
        ceilings = [h for k, h in handles.items() if k.endswith(" ceiling")]
        axes[-1].legend(handles=legend_handles + ceilings[:1], title=f"bars: {bars}", loc="lower right",
                        bbox_to_anchor=(1.0, 1.06), ncol=len(legend_handles) + min(1, len(ceilings)))
    return fig, axes, handles


def main(argv: Sequence[str] | None = None) -> int:
    p = common.parser(NAME, "Layer profile per area with bootstrap CIs and noise-ceiling bands.")
    p.add_argument("--width", default=None, help="single, double or millimetres (default: by number of areas)")
    args = p.parse_args(argv)
    cached = common.load_or_compute(args)
    fig, _, _ = profile_per_area(cached.table, width=args.width)
    for path in common.save(fig, args.out, NAME, args.dpi):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(common.run(main))
