"""Figure of time-resolved RSA: similarity over time per layer, with bootstrap bands and peak latencies.

One panel per time-resolved area; one line per model layer (similarity per bin against the bin centre
in ms), a shaded band for the per-bin bootstrap CI when there is one, and below the curves a marker at
each layer's peak latency with a horizontal bar for its bootstrap CI. With the results of
:mod:`rsa_bridge.stats.time_inference`: a grey band between the per-bin noise-ceiling bounds, and above the
curves one bar per layer over the bins of its significant clusters (cluster p < ``alpha``).
:func:`cross_temporal_figure` draws the layer x time matrix and the brain time x time matrix. House style from
:mod:`rsa_bridge.figures`; returns ``(figure, axes, handles)`` like every figure function there.
"""
from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from rsa_bridge.figures.style import DOUBLE_MM, PALETTE, SINGLE_MM, figsize, use_style


def time_course_figure(results: xr.Dataset, title: str | None = None, layers=None, alpha: float = 0.05):
    """Similarity over time per layer (one panel per area with ``similarity_time``), peak latency with its CI.

    Args:
        results: a ``results.nc`` Dataset (or :func:`rsa_bridge.stats.time_course.time_course` output)
            with ``similarity_time`` (model_layer, area, time_bin) and ``time_bin_center`` (ms).
        title: figure title; layers: which ``model_layer`` labels to draw (default all).
        alpha: clusters with ``cluster_p`` below it are marked (when the results have ``cluster_p``).

    Returns:
        (figure, list of axes, handles): handles maps ``"area model_layer"`` to its line,
        ``"area model_layer peak"`` to its peak marker (x = peak latency in ms), ``"area model_layer clusters"``
        to the list of cluster bars (x extent = the cluster's bins, edge to edge) and ``"area ceiling"`` to the
        ceiling band.
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
            _ceiling_band(ax, results, area, t, handles)
            _cluster_bars(ax, results, area, labels, t, alpha, handles)
            ax.axhline(0.0, color="0.7", lw=0.6, zorder=0)
            ax.set_title(area)
            ax.set_xlabel("time after stimulus onset (ms, bin centre)")
        method = results.attrs.get("time_course_method", results.attrs.get("method", ""))
        axes[0].set_ylabel(f"RDM similarity ({method} r)".replace(" ( r)", ""))
        note = "band: bootstrap CI; ▼ peak latency" + (" with CI" if "peak_latency_ci_low" in results else "")
        if "cluster_p" in results:
            n_perm = results["cluster_p"].attrs.get("permutations", results.attrs.get("cluster_permutations", "?"))
            note += f"\nbars: clusters p < {alpha:g} ({n_perm} permutations)"
        if "ceiling_time_lower" in results and np.isfinite(results["ceiling_time_lower"].values).any():
            note += "\ngrey: noise ceiling per bin"
        axes[-1].legend(title=note, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=6)  # beside the curves
        if title:
            fig.suptitle(textwrap.fill(title, 60 if len(area_names) == 1 else 120), fontsize=7)
    return fig, axes, handles


def _ceiling_band(ax, results: xr.Dataset, area: str, t: np.ndarray, handles: dict) -> None:
    if "ceiling_time_lower" not in results:
        return
    low = results["ceiling_time_lower"].sel(area=area).values
    high = results["ceiling_time_upper"].sel(area=area).values
    if np.isfinite(low).any():
        handles[f"{area} ceiling"] = ax.fill_between(t, low, high, color="0.85", lw=0, zorder=0)


def _cluster_bars(ax, results: xr.Dataset, area: str, labels, t: np.ndarray, alpha: float, handles: dict) -> None:
    if "cluster_p" not in results:
        return
    from rsa_bridge.stats.clusters import cluster_labels

    step = float(np.median(np.diff(t))) if t.size > 1 else 1.0
    top = np.nanmax(results["similarity_time"].sel(area=area).values)
    for k, label in enumerate(labels):
        p = results["cluster_p"].sel(area=area, model_layer=label).values
        runs = cluster_labels(np.nan_to_num(p, nan=1.0) < alpha)
        level = top + 0.05 * (k + 1) * max(1e-9, abs(top))
        bars = []
        for c in range(1, int(runs.max()) + 1):
            idx = np.flatnonzero(runs == c)
            bars.append(ax.hlines(level, t[idx[0]] - step / 2, t[idx[-1]] + step / 2,
                                  color=PALETTE[k % len(PALETTE)], lw=2.5))
        handles[f"{area} {label} clusters"] = bars


def cross_temporal_figure(results: xr.Dataset, areas=None, title: str | None = None):
    """Per area (one row each): layer x time similarity and, when present, the brain time x time matrix.

    Args:
        results: a ``results.nc`` with ``similarity_time`` (and ``cross_temporal`` from
            :func:`rsa_bridge.stats.time_inference.time_inference`); areas: which (default every one drawn by
            :func:`time_course_figure`).
        title: figure title.

    Returns:
        (figure, axes (rows x columns list of lists), handles): ``"AREA layers"`` -> the (layers x bins)
        AxesImage, ``"AREA brain"`` -> the (bins x bins) AxesImage when drawn; each image's array is its matrix.
    """
    sim = results["similarity_time"]
    if areas is None:
        areas = [str(a) for a in sim["area"].values if np.isfinite(sim.sel(area=a).values).any()]
    t = np.asarray(results["time_bin_center"].values, dtype=float)
    brain = "cross_temporal" in results
    method = results.attrs.get("time_course_method", results.attrs.get("method", ""))
    step = (t[1] - t[0]) if t.size > 1 else 1.0
    extent_t = (t[0] - step / 2, t[-1] + step / 2)
    rows = [str(v).split(":", 1)[-1] for v in sim["model_layer"].values]
    handles = {}
    with use_style():
        fig, axes = plt.subplots(len(areas), 2 if brain else 1, squeeze=False,
                                 figsize=figsize(DOUBLE_MM if brain else SINGLE_MM, 12 + 62 * len(areas)))
        for row_axes, area in zip(axes, areas):
            image = row_axes[0].imshow(sim.sel(area=area).values, aspect="auto", cmap="viridis",
                                       interpolation="nearest", extent=(*extent_t, len(rows) - 0.5, -0.5))
            row_axes[0].set_yticks(range(len(rows)), rows)
            row_axes[0].set_xlabel("brain time (ms, bin centre)")
            row_axes[0].set_ylabel(f"{area}: model layer")
            fig.colorbar(image, ax=row_axes[0], shrink=0.85).set_label(f"{method} similarity, model vs {area}")
            handles[f"{area} layers"] = image
            if brain:
                image = row_axes[1].imshow(results["cross_temporal"].sel(area=area).values, origin="lower",
                                           cmap="viridis", interpolation="nearest", extent=(*extent_t, *extent_t))
                row_axes[1].set_xlabel("brain time t2 (ms)")
                row_axes[1].set_ylabel("brain time t1 (ms)")
                row_axes[1].set_title(f"{area}: " + results.attrs.get(f"cross_temporal_{area}", ""), fontsize=6,
                                      loc="left")
                fig.colorbar(image, ax=row_axes[1], shrink=0.85).set_label(f"{method} similarity, {area} vs {area}")
                handles[f"{area} brain"] = image
        fig.suptitle(textwrap.fill(title or "cross-temporal RSA", 100), fontsize=7)
    return fig, [list(r) for r in axes], handles
