"""The layer profile: one measure's model-brain score by layer, with uncertainty, ceilings and controls.

One function, :func:`layer_profile`, draws what ``rsa-bridge compare --out`` writes (``profile.png``), the
``rsa-bridge figure layer_profile`` figure and the notebooks' profiles:

- ``by="model"`` (default): one panel per network, one line per area in the area's colour;
  ``by="area"``: one panel per area, one line per network (several networks share a relative-depth axis).
- error bars: the bootstrap CI (``ci_low``/``ci_high``) when the table has it, else ± SEM over the area's RDMs;
  drawn as vertical segments (a percentile CI need not contain the estimate).
- noise ceiling: a band from the lower to the upper bound in the area's colour, outlined so that two
  overlapping bands stay readable, with a legend entry per area. Other measures (``measure`` column: cka,
  linear) have one ceiling value per area, drawn as a dashed line on the score's own scale
  (:func:`rsa_bridge.measures.results.ceiling_on_scale`: the square root of linear predictivity's
  reliability), its definition in the legend.
- one measure per figure: a table of several measures is refused (select one with
  :func:`rsa_bridge.measures.results.select_measure`); the y label is the measure's, from the registry.
- controls (image-statistics models such as ``pixels``, ``gabor``: one "layer" each) are not layers: each is
  a dashed horizontal reference line across the panel, labelled by name at its right end.

Peers: rsatoolbox has no layer profile (``plot_model_comparison`` draws bars per model, see
:mod:`rsa_bridge.figures.comparison`); Brain-Score's site shows per-layer scores as tables.
"""
from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Patch

from rsa_bridge.figures.layout import short_labels, spread
from rsa_bridge.measures import MEASURES
from rsa_bridge.measures.results import ceiling_on_scale, measure_label, measures_in, select_measure
from rsa_bridge.figures.style import DOUBLE_MM, SINGLE_MM, area_colours, figsize, use_style

#: the ``weights`` label the compare job gives image-statistics controls
CONTROL_WEIGHTS_LABEL = "none (image statistics)"
#: line colours and markers of networks in ``by="area"`` panels (the band takes the area's colour)
MODEL_STYLES = [("0.1", "o"), ("#D55E00", "s"), ("#0072B2", "^"), ("#CC79A7", "D"), ("0.5", "v")]
BAND_ALPHA = 0.16


def control_models(table: pd.DataFrame) -> list[str]:
    """Models of the table that are image-statistics controls (by their ``weights`` label or name)."""
    names = list(dict.fromkeys(str(m) for m in table["model"]))
    known: set[str] = set()
    try:
        from stimuli.controls import CONTROL_MODELS
        known = set(CONTROL_MODELS)
    except ImportError:  # pragma: no cover - stimuli ships with rsa_bridge
        pass
    out = []
    for name in names:
        rows = table[table["model"].astype(str) == name]
        by_weights = "weights" in rows and (rows["weights"].astype(str) == CONTROL_WEIGHTS_LABEL).all()
        if by_weights or (name in known and rows["layer"].nunique() == 1):
            out.append(name)
    return out


def _columns(table: pd.DataFrame) -> tuple[str, str, bool]:
    normalized = "similarity_normalized" in table and table["similarity_normalized"].notna().any()
    return ("similarity_normalized", "_normalized", True) if normalized else ("similarity", "", False)


def _interval(rows: pd.DataFrame, y: np.ndarray, suffix: str, normalized: bool):
    """(low, high, what) of the error bars, or None."""
    if f"ci_low{suffix}" in rows and rows[f"ci_low{suffix}"].notna().any():
        return rows[f"ci_low{suffix}"].to_numpy(float), rows[f"ci_high{suffix}"].to_numpy(float), "bootstrap CI"
    if not normalized and "sem" in rows and rows["sem"].notna().any():
        sem = rows["sem"].to_numpy(float)
        return y - sem, y + sem, "± SEM over RDMs"
    return None


def _ceiling(rows: pd.DataFrame) -> tuple[float, float] | None:
    if "ceiling_lower" not in rows or "ceiling_upper" not in rows:
        return None
    low, up = rows["ceiling_lower"].iloc[0], rows["ceiling_upper"].iloc[0]
    return (float(low), float(up)) if pd.notna(low) and pd.notna(up) else None


def _measure_ceiling(rows: pd.DataFrame, measure: str) -> float | None:
    """A non-RSA measure's ceiling of an area on the score's scale, or None."""
    if MEASURES[measure].ceiling_style == "band" or "measure_ceiling" not in rows or rows.empty:
        return None
    value = rows["measure_ceiling"].iloc[0]
    value = ceiling_on_scale(measure, value) if pd.notna(value) else float("nan")
    return value if np.isfinite(value) else None


def _band(ax, low: float, up: float, colour: str):
    band = ax.axhspan(low, up, facecolor=colour, alpha=BAND_ALPHA, lw=0, zorder=0)
    for y in (low, up):
        ax.axhline(y, color=colour, lw=0.5, alpha=0.8, zorder=0.5)
    return band


def _control_lines(ax, table, controls, areas, y_col, colours, handles, one_area: bool) -> list:
    """Dashed reference lines; returns their labels to place (text, y, colour, key) once the layout is final."""
    entries = []
    for control in controls:
        for area in areas:
            rows = table[(table["model"].astype(str) == control) & (table["area"].astype(str) == area)]
            if rows.empty or not np.isfinite(rows[y_col].iloc[0]):
                continue
            y = float(rows[y_col].iloc[0])
            colour = "0.35" if one_area else colours[area]
            line = ax.axhline(y, color=colour, lw=0.8, ls=(0, (3, 2)), zorder=1.5)
            handles[f"{control} {area}"] = line
            entries.append((control if one_area else f"{control} ({area})", y, colour, f"{control} {area}"))
    return entries


def _label_controls(fig, entries_per_axes: list, handles: dict) -> None:
    """Labels at the right end of the reference lines, spaced at least one text line apart."""
    if not any(entries for _, entries in entries_per_axes):
        return
    fig.draw_without_rendering()  # final axes sizes and y ranges
    for ax, _ in entries_per_axes:
        ax.set_ylim(ax.get_ylim())
    size = plt.rcParams["ytick.labelsize"]
    for ax, entries in entries_per_axes:
        if not entries:
            continue
        low, high = ax.get_ylim()
        height_pt = ax.get_window_extent().height * 72.0 / fig.dpi
        gap = 1.6 * size * (high - low) / max(height_pt, 1.0)
        positions = spread([y for _, y, _, _ in entries], gap)
        for (text, y, colour, key), at in zip(entries, positions):
            handles[f"{key} label"] = ax.annotate(
                text, xy=(1.0, y), xycoords=ax.get_yaxis_transform(), xytext=(1.03, at),
                textcoords=ax.get_yaxis_transform(), va="center", ha="left", fontsize=size, color=colour,
                annotation_clip=False,
                arrowprops=None if abs(at - y) < 0.2 * gap else dict(arrowstyle="-", lw=0.4, color=colour))


def _ceiling_text(table: pd.DataFrame, area: str, what: str = "note") -> str:
    """The area's ``ceiling_definition`` (``nili``, ``split-half``...) or ``ceiling_note`` column, '' if absent."""
    column = f"ceiling_{what}"
    rows = table[table["area"].astype(str) == area]
    if column not in rows or rows.empty or pd.isna(rows[column].iloc[0]):
        return ""
    return str(rows[column].iloc[0])


def layer_profile(table: pd.DataFrame, title: str | None = None, *, by: str = "model",
                  width: str | float | None = None, height_mm: float | None = None,
                  controls: list[str] | None = None, label_width: int = 18):
    """Similarity by layer with error bars, per-area noise-ceiling bands and controls as reference lines.

    Args:
        table: the ``results.csv`` table (columns model, layer, area, similarity, method; optional sem,
            ci_low/ci_high, ceiling_lower/ceiling_upper, similarity_normalized, weights, n_rdms).
        title: figure title (e.g. model, weights and dataset).
        by: ``"model"`` (a panel per network, a line per area) or ``"area"`` (a panel per area, a line
            per network).
        width: ``single`` / ``double`` / millimetres (default: single for one panel, else double).
        height_mm: figure height (default: room for the longest tick label).
        controls: models to draw as reference lines (default: :func:`control_models` of the table).
        label_width: layer names longer than this are shortened in the middle (``encoder.…_layer_11``).

    With ``similarity_normalized`` in the table the normalized values are plotted (no ceiling band; a
    dashed line at 1).

    Returns:
        (figure, axes, handles): axes is one Axes for one panel, else a list. handles: ``"MODEL AREA"`` ->
        Line2D (y = similarity in table order; for a control, its horizontal line), ``"MODEL AREA ci"`` ->
        LineCollection (one segment per layer, low to high), ``"AREA ceiling"`` -> the band (lower to upper
        bound; for cka/linear the dashed Line2D at the ceiling on the score's scale), ``"CONTROL AREA label"`` -> the control's label, ``"legend"``.

    Example::

        table = select_measure(pd.read_csv("out/results.csv"), "rsa")
        fig, ax, handles = layer_profile(table, by="area")
    """
    if by not in ("model", "area"):
        raise ValueError(f"by must be 'model' or 'area', not {by!r}")
    table = select_measure(table)  # one measure: RSABridgeError for a table of several
    measure = measures_in(table)[0]
    controls = control_models(table) if controls is None else list(controls)
    networks = [m for m in dict.fromkeys(str(m) for m in table["model"]) if m not in controls]
    areas = list(dict.fromkeys(str(a) for a in table["area"]))
    colours = area_colours(areas)
    y_col, suffix, normalized = _columns(table)
    panels = (networks or ["(controls only)"]) if by == "model" else areas
    layer_names = [str(l) for l in table.loc[table["model"].astype(str).isin(networks), "layer"]]
    longest = max((len(s) for s in short_labels(layer_names, label_width)), default=4)
    several_nets = by == "area" and len(networks) > 1
    if width is None:
        width = SINGLE_MM if len(panels) == 1 else DOUBLE_MM
    if height_mm is None:
        height_mm = 50.0 + (0.0 if several_nets else 1.15 * longest)
    handles: dict = {}
    notes: list[str] = []
    labels_to_place: list = []
    with use_style():
        fig, grid = plt.subplots(1, len(panels), figsize=figsize(width, height_mm), sharey=True, squeeze=False)
        axes = list(grid[0])
        for ax, panel in zip(axes, panels):
            pairs = ([(panel, a) for a in areas] if by == "model" else [(m, panel) for m in networks])
            for k, (model, area) in enumerate(pairs):
                rows = table[(table["model"].astype(str) == model) & (table["area"].astype(str) == area)]
                if rows.empty:
                    continue
                n = len(rows)
                if several_nets:
                    x = np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(1)
                else:
                    dodge = 0.1 * (k - (len(pairs) - 1) / 2) if by == "model" else 0.0
                    x = np.arange(n) + dodge
                colour, marker = (colours[area], "o") if by == "model" else MODEL_STYLES[k % len(MODEL_STYLES)]
                y = rows[y_col].to_numpy(float)
                label = area if by == "model" else model
                (line,) = ax.plot(x, y, marker=marker, color=colour, label=label, zorder=3)
                handles[f"{model} {area}"] = line
                interval = _interval(rows, y, suffix, normalized)
                if interval is not None:
                    handles[f"{model} {area} ci"] = ax.vlines(x, interval[0], interval[1], color=colour, lw=0.8,
                                                              zorder=2)
                    notes.append(interval[2])
                if not several_nets:
                    ticks = np.arange(n)
                    ax.set_xticks(ticks, short_labels(rows["layer"].astype(str).tolist(), label_width),
                                  rotation=90, ha="center")
            for area in (areas if by == "model" else [panel]):
                rows = table[table["area"].astype(str) == area]
                bounds = None if normalized else _ceiling(rows)
                if bounds is not None:
                    band = _band(ax, *bounds, colours[area])
                    handles.setdefault(f"{area} ceiling", band)
                level = None if normalized else _measure_ceiling(rows, measure)
                if level is not None:
                    handles.setdefault(f"{area} ceiling", ax.axhline(level, color=colours[area], lw=0.8, ls="--",
                                                                     zorder=1))
            ax.axhline(0.0, color="0.7", lw=0.5, zorder=0)
            if normalized:
                ax.axhline(1.0, color="0.4", lw=0.6, ls="--", zorder=0)
            if by == "area":
                n_rdms = int(table.loc[table["area"].astype(str) == panel, "n_rdms"].iloc[0]) \
                    if "n_rdms" in table else 0
                has_band = not normalized and _ceiling(table[table["area"].astype(str) == panel]) is not None
                ax.set_title(panel if n_rdms != 1 or has_band or normalized else
                             f"{panel} (no ceiling: {_ceiling_text(table, panel) or '1 RDM'})")
                ax.set_xlabel("relative depth (first to last layer)" if several_nets else "layer")
            else:
                ax.set_xlabel("layer" if len(panels) == 1 else f"{panel} layer")
            labels_to_place.append((ax, _control_lines(ax, table, controls, areas if by == "model" else [panel],
                                                       y_col, colours, handles, one_area=by == "area" or len(areas) == 1)))
        method = table["method"].iloc[0] if "method" in table and len(table) else None
        if normalized:
            bound = str(table["normalized_by"].iloc[0]).replace("ceiling_", "") if "normalized_by" in table else ""
            axes[0].set_ylabel(f"similarity / ceiling\n({bound} bound)" if bound else "similarity / ceiling")
        else:
            axes[0].set_ylabel(measure_label(measure, method).replace(" (", "\n(", 1))
        entries = [h for k, h in handles.items() if isinstance(h, plt.Line2D) and k.split(" ", 1)[0] in networks]
        entries = list({h.get_label(): h for h in entries}.values())
        if MEASURES[measure].ceiling_style == "band":
            ceilings = [Patch(facecolor=colours[a], alpha=0.35, edgecolor=colours[a], lw=0.5,
                              label=f"{a} noise ceiling" + (f" ({_ceiling_text(table, a, 'definition')})"
                                                            if _ceiling_text(table, a, "definition") else ""))
                        for a in areas if f"{a} ceiling" in handles]
        else:
            ceilings = [plt.Line2D([], [], color=colours[a], lw=0.8, ls="--",
                                   label=f"{a} {MEASURES[measure].ceiling_label}")
                        for a in areas if f"{a} ceiling" in handles]
        legend_title = "bars: " + "; ".join(dict.fromkeys(
            "95% bootstrap CI" if n == "bootstrap CI" else n for n in notes)) if notes else None
        legend_items = entries + ceilings
        long_labels = max((len(h.get_label()) for h in legend_items), default=0) > 32
        if len(axes) == 1 and not axes[0].get_title():
            handles["legend"] = axes[0].legend(handles=legend_items, title=legend_title, loc="lower left",
                                               bbox_to_anchor=(0.0, 1.02), borderaxespad=0.0,
                                               ncols=1 if long_labels else 2 if ceilings
                                               else min(3, max(1, len(legend_items))))
        elif len(axes) == 1:  # a panel title: the legend goes below, where it cannot cover the title
            handles["legend"] = fig.legend(handles=legend_items, title=legend_title, loc="outside lower center",
                                           ncols=1 if long_labels else min(2, max(1, len(legend_items))))
        else:
            handles["legend"] = fig.legend(handles=legend_items, title=legend_title, loc="outside lower center",
                                           ncols=min(6, max(1, len(legend_items))))
        if title:
            fig.suptitle(textwrap.fill(title, 60 if len(axes) == 1 else 130), fontsize=7)
        _label_controls(fig, labels_to_place, handles)
    return fig, (axes[0] if len(axes) == 1 else axes), handles
