"""Figure of time-resolved RSA: similarity over time per layer, with bootstrap bands and peak latencies.

One panel per time-resolved area; one line per model layer (similarity per bin against the bin centre
in ms), a shaded band for the per-bin bootstrap CI when there is one, and below the curves a marker at
each layer's peak latency with a horizontal bar for its bootstrap CI. House style from
:mod:`rsa_bridge.figures`; returns ``(figure, axes, handles)`` like every figure function there.
"""
from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from rsa_bridge.figures.style import DOUBLE_MM, PALETTE, SINGLE_MM, figsize, use_style


def time_course_figure(results: xr.Dataset, title: str | None = None, layers=None):
    """Similarity over time per layer (one panel per area with ``similarity_time``), peak latency with its CI.

    Args:
        results: a ``results.nc`` Dataset (or :func:`rsa_bridge.stats.time_course.time_course` output)
            with ``similarity_time`` (model_layer, area, time_bin) and ``time_bin_center`` (ms).
        title: figure title; layers: which ``model_layer`` labels to draw (default all).

    Returns:
        (figure, list of axes, handles): handles maps ``"area model_layer"`` to its line and
        ``"area model_layer peak"`` to its peak marker (x = peak latency in ms).
    """
    sim = results["similarity_time"]
    area_names = [str(a) for a in sim["area"].values if np.isfinite(sim.sel(area=a).values).any()]
    labels = [str(v) for v in sim["model_layer"].values] if layers is None else list(layers)
    t = np.asarray(results["time_bin_center"].values, dtype=float)
    width = SINGLE_MM if len(area_names) == 1 else min(DOUBLE_MM, 0.5 * DOUBLE_MM * len(area_names))
    handles = {}
    with use_style():
        fig, axes = plt.subplots(1, len(area_names), figsize=figsize(width, 65), sharey=True, squeeze=False)
        axes = list(axes[0])
        for ax, area in zip(axes, area_names):
            y_min = np.nanmin(sim.sel(area=area).values)
            for k, label in enumerate(labels):
                colour = PALETTE[k % len(PALETTE)]
                y = sim.sel(area=area, model_layer=label).values
                (line,) = ax.plot(t, y, color=colour, label=label.split(":", 1)[-1] if sim["model_layer"].size else label)
                handles[f"{area} {label}"] = line
                if "similarity_time_ci_low" in results:
                    ax.fill_between(t, results["similarity_time_ci_low"].sel(area=area, model_layer=label).values,
                                    results["similarity_time_ci_high"].sel(area=area, model_layer=label).values,
                                    color=colour, alpha=0.15, lw=0)
                peak = float(results["peak_latency"].sel(area=area, model_layer=label))
                if np.isfinite(peak):
                    level = y_min - 0.04 * (k + 1) * max(1e-9, np.nanmax(np.abs(sim.values)))
                    (mark,) = ax.plot([peak], [level], marker="v", color=colour, ls="none")
                    handles[f"{area} {label} peak"] = mark
                    if "peak_latency_ci_low" in results:
                        ax.hlines(level, float(results["peak_latency_ci_low"].sel(area=area, model_layer=label)),
                                  float(results["peak_latency_ci_high"].sel(area=area, model_layer=label)),
                                  color=colour, lw=0.8)
            ax.axhline(0.0, color="0.7", lw=0.6, zorder=0)
            ax.set_title(area)
            ax.set_xlabel("time after stimulus onset (ms, bin centre)")
        method = results.attrs.get("time_course_method", results.attrs.get("method", ""))
        axes[0].set_ylabel(f"RDM similarity ({method} r)".replace(" ( r)", ""))
        note = "band: bootstrap CI; ▼ peak latency" + (" with CI" if "peak_latency_ci_low" in results else "")
        axes[-1].legend(title=note, loc="upper right", fontsize=6)
        if title:
            fig.suptitle(textwrap.fill(title, 60 if len(area_names) == 1 else 120), fontsize=7)
    return fig, axes, handles
