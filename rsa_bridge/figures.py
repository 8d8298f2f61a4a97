"""Figures of compare results (matplotlib, no display needed) and the house style of every figure.

- :data:`STYLE` — the package's matplotlib style file (7 pt fonts, TrueType fonts embedded in PDFs,
  the Okabe–Ito colour-blind-safe cycle, viridis maps); :func:`use_style` applies it in a ``with``.
- :data:`SINGLE_MM`, :data:`DOUBLE_MM` — journal column widths (85 mm, 180 mm); :func:`figsize` turns
  millimetres into the inches matplotlib wants.
- :func:`save_figure` — vector PDF + PNG, each written atomically, under the style (fonts embedded).
- :func:`layer_profile` — the profile that ``rsa-bridge compare --out`` writes.

Every figure function returns ``(figure, axes, handles)``: ``handles`` maps readable names to the
artists that carry the data, so a user can restyle them (and tests can read the plotted values back).
"""
from __future__ import annotations

import os
import textwrap
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

# No matplotlib.use(): the backend stays the user's (inline in notebooks); without a display matplotlib
# picks Agg by itself, and every figure here is saved, never shown.
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from rsa_bridge.io import atomic_path

#: the package's matplotlib style file
STYLE = Path(__file__).resolve().parent / "styles" / "rsa_bridge.mplstyle"
#: colour-blind-safe palette (Okabe & Ito 2008), the style's colour cycle
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
#: journal figure widths in millimetres (single and double column)
SINGLE_MM, DOUBLE_MM = 85.0, 180.0
WIDTHS = {"single": SINGLE_MM, "double": DOUBLE_MM}
MM_PER_INCH = 25.4


def width_mm(width: str | float) -> float:
    """``single`` -> 85, ``double`` -> 180, a number (or numeric string) -> itself, in millimetres."""
    if isinstance(width, str) and width in WIDTHS:
        return WIDTHS[width]
    try:
        return float(width)
    except ValueError:
        raise ValueError(f"width must be single, double or millimetres, not {width!r}") from None


def figsize(width: str | float = "single", height_mm: float = 60.0) -> tuple[float, float]:
    """(width, height) in inches for a figure ``width`` (``single``, ``double`` or millimetres) wide."""
    return width_mm(width) / MM_PER_INCH, height_mm / MM_PER_INCH


@contextmanager
def use_style() -> Iterator[None]:
    """Apply the rsa-bridge style inside a ``with`` block (rcParams are restored afterwards).

    The interactive flag is the exception: a backend started inside the block (e.g. the notebook's
    inline backend on the first figure) switches it on, and it must stay on afterwards.
    """
    with plt.style.context(str(STYLE)):
        try:
            yield
        finally:
            interactive = matplotlib.is_interactive()
    matplotlib.interactive(interactive)


def save_figure(fig, stem: str | os.PathLike, *, dpi: int = 300, close: bool = True) -> list[Path]:
    """Write ``stem.pdf`` (vector, TrueType fonts embedded) and ``stem.png`` (``dpi``), each atomically.

    Returns the two paths. The figure keeps its size: what is saved is the print size.
    """
    stem = Path(stem)
    paths = []
    with use_style():
        for suffix in ("pdf", "png"):
            path = stem.with_name(f"{stem.name}.{suffix}")
            with atomic_path(path) as tmp:
                fig.savefig(tmp, format=suffix, dpi=dpi)
            paths.append(path)
    if close:
        plt.close(fig)
    return paths


def _errorbars(ax, x, rows: pd.DataFrame, y_col: str, suffix: str, colour: str, normalized: bool) -> str | None:
    """Bootstrap CI bars when the table has them, else SEM bars; returns what the bars are.

    Drawn as vertical lines from low to high (not ``errorbar``): a percentile bootstrap CI need not
    contain the estimate, and ``errorbar`` refuses negative lengths.
    """
    if f"ci_low{suffix}" in rows and rows[f"ci_low{suffix}"].notna().any():
        ax.vlines(x, rows[f"ci_low{suffix}"].to_numpy(float), rows[f"ci_high{suffix}"].to_numpy(float), color=colour,
                  lw=0.8)
        return "bars: bootstrap CI"
    if not normalized and rows["sem"].notna().any():
        y, sem = rows["similarity"].to_numpy(float), rows["sem"].to_numpy(float)
        ax.vlines(x, y - sem, y + sem, color=colour, lw=0.8)
        return "bars: SEM over RDMs"
    return None


def layer_profile(table: pd.DataFrame, title: str | None = None):
    """Similarity by layer, one line per (model, area), with uncertainty and the noise ceiling.

    Error bars: the bootstrap CI (columns ``ci_low``/``ci_high``) when present, else the SEM over the
    area's RDMs. Shaded band: the area's noise ceiling from its lower to its upper bound (columns
    ``ceiling_lower``/``ceiling_upper``; areas with one RDM have none). With ``similarity_normalized``
    in the table the normalized values are plotted, and the axis says so.

    Args:
        table: the ``results.csv`` table (columns model, layer, area, similarity, sem, method, ...).
        title: figure title (e.g. model, weights and dataset).

    Several models get one panel each (shared y axis; layers differ between architectures). One model
    fits a single column (85 mm); several take up to a double column (180 mm).

    Returns:
        (figure, axes, handles) — axes is one Axes (one model) or a list; handles maps ``"model area"``
        to its line, for restyling.
    """
    models = list(dict.fromkeys(table["model"]))
    width = SINGLE_MM if len(models) == 1 else min(DOUBLE_MM, 0.45 * DOUBLE_MM * len(models))
    with use_style():
        fig, axes = plt.subplots(1, len(models), figsize=figsize(width, 62), sharey=True, squeeze=False)
        axes = list(axes[0])
        handles = {}
        normalized = "similarity_normalized" in table
        y_col = "similarity_normalized" if normalized else "similarity"
        suffix = "_normalized" if normalized else ""
        area_names = list(dict.fromkeys(str(a) for a in table["area"]))
        area_colour = {a: PALETTE[k % len(PALETTE)] for k, a in enumerate(area_names)}
        # areas side by side at each layer, so that their error bars do not hide each other
        dodge = {a: 0.12 * (k - (len(area_names) - 1) / 2) for k, a in enumerate(area_names)}
        notes = []
        for ax, model in zip(axes, models):
            for area, rows in table[table["model"] == model].groupby("area", sort=False):
                colour = area_colour[str(area)]
                x = np.arange(len(rows)) + dodge[str(area)]
                label = str(area) if rows[y_col].notna().any() else f"{area} (no ceiling: 1 RDM)"
                if "ceiling_definition" in rows:  # which ceiling each area's band (or normaliser) is
                    definition = str(rows["ceiling_definition"].iloc[0])
                    label = (f"{area} (ceiling: {definition})" if definition != "n/a"
                             else f"{area} (no ceiling: {rows['ceiling_note'].iloc[0]})")
                (line,) = ax.plot(x, rows[y_col], marker="o", color=colour, label=label)
                note = _errorbars(ax, x, rows, y_col, suffix, colour, normalized)
                if note:
                    notes.append(note)
                if not normalized and "ceiling_lower" in rows and pd.notna(rows["ceiling_lower"].iloc[0]):
                    ax.axhspan(rows["ceiling_lower"].iloc[0], rows["ceiling_upper"].iloc[0], color=colour,
                               alpha=0.15, lw=0, zorder=0)
                    notes.append("band: noise ceiling")
                handles[f"{model} {area}"] = line
                ax.set_xticks(list(np.arange(len(rows))), rows["layer"].tolist(), rotation=45, ha="right")
            ax.set_xlabel("layer" if len(models) == 1 else f"{model} layer")
            ax.axhline(0.0, color="0.7", lw=0.6, zorder=0)
            if normalized:
                ax.axhline(1.0, color="0.5", lw=0.6, ls="--", zorder=0)
        method = table["method"].iloc[0] if len(table) else ""
        if normalized:
            bound = table["normalized_by"].iloc[0].replace("ceiling_", "")
            axes[0].set_ylabel(f"similarity / ceiling ({bound})")
        else:
            axes[0].set_ylabel(f"RDM similarity ({method} r)")
        axes[-1].legend(title="; ".join(dict.fromkeys(notes)) or None, loc="lower right",
                        bbox_to_anchor=(1.0, 1.0), ncol=min(4, len(handles)), borderaxespad=0.2)
        if title:
            fig.suptitle(textwrap.fill(title, 55 if len(models) == 1 else 120), fontsize=7)
    ax = axes[0] if len(axes) == 1 else axes
    return fig, ax, handles
