"""A contact sheet: one figure with a thumbnail per stimulus, titled by ``stimulus_id``."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from stimuli.atomic import atomic_write
from stimuli.errors import StimulusError
from stimuli.stimulus_set import StimulusSet, read_image

#: matplotlib colour cycles used for label values, by how many values they can tell apart
PALETTES: dict[int, str] = {10: "tab10", 20: "tab20"}


def label_colours(values: list[str]) -> dict[str, str]:
    """A hex colour per distinct value (sorted): tab10 up to 10 values, tab20 up to 20, else evenly spaced hues."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    distinct = sorted(set(values))
    for limit, name in sorted(PALETTES.items()):
        if len(distinct) <= limit:
            cmap = colormaps[name]
            return {v: to_hex(cmap(i)) for i, v in enumerate(distinct)}
    cmap = colormaps["hsv"]
    return {v: to_hex(cmap(i / len(distinct))) for i, v in enumerate(distinct)}


def contact_sheet(
    stimulus_set: StimulusSet,
    out: str | Path,
    label: str | None = None,
    columns: int | None = None,
    max_images: int = 100,
    thumb_inches: float = 1.2,
    dpi: int = 100,
    title: str | None = None,
) -> Path:
    """Save a grid of thumbnails, each titled with its ``stimulus_id``, to ``out`` (format from the suffix).

    Args:
        stimulus_set: the set; the first ``max_images`` stimuli in manifest order are shown.
        out: image file to write (``.png``, ``.pdf``, ``.svg``, ...), written atomically.
        label: optional manifest column; each thumbnail gets a frame coloured by its value
            (:func:`label_colours`) and the figure a legend.
        columns: thumbnails per row (default: about the square root of their number).
        max_images: at most this many thumbnails.
        thumb_inches: size of one thumbnail cell in inches.
        dpi: resolution of raster output.
        title: figure title (default: set name and how many of its stimuli are shown).

    Returns:
        The path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    if max_images < 1:
        raise StimulusError(f"max_images must be at least 1, got {max_images}")
    if columns is not None and columns < 1:
        raise StimulusError(f"columns must be at least 1 thumbnail per row, got {columns}")
    shown = stimulus_set.manifest.iloc[:max_images]
    n = len(shown)
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    colours: dict[str, str] = {}
    values: list[str] = []
    if label is not None:
        values = [str(v) for v in stimulus_set.labels(label).loc[shown["stimulus_id"]].tolist()]
        colours = label_colours(values)
    legend_rows = math.ceil(len(colours) / 6) if colours else 0
    fig = Figure(figsize=(columns * thumb_inches, rows * (thumb_inches + 0.2) + 0.5 + 0.25 * legend_rows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, columns, squeeze=False)
    pixels = max(int(thumb_inches * dpi), 16)
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if k >= n:
            ax.set_axis_off()
            continue
        stimulus_id = shown["stimulus_id"].iloc[k]
        image = read_image(stimulus_set.root / shown["filename"].iloc[k])
        image.thumbnail((pixels, pixels))
        ax.imshow(np.asarray(image), interpolation="nearest")
        ax.set_title(str(stimulus_id), fontsize=6, pad=2)
        for spine in ax.spines.values():
            if colours:
                spine.set_color(colours[values[k]])
                spine.set_linewidth(3)
            else:
                spine.set_visible(False)
    height = fig.get_figheight()
    fig.suptitle(
        title if title is not None else f"{stimulus_set.name}: {n} of {len(stimulus_set)} stimuli",
        fontsize=9, y=1 - 0.08 / height, va="top",
    )
    if colours:
        handles = [Patch(color=c, label=v) for v, c in colours.items()]
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=7, title=label,
                   title_fontsize=7, frameon=False)
    bottom = (0.25 * legend_rows + 0.25) / height if colours else 0.02
    fig.subplots_adjust(left=0.02, right=0.98, bottom=bottom, top=1 - 0.45 / height, wspace=0.1, hspace=0.3)
    out = Path(out)
    fmt = out.suffix.lstrip(".").lower() or "png"
    return atomic_write(out, lambda tmp: fig.savefig(tmp, format=fmt, dpi=dpi))
