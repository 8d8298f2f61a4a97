"""The house style of every figure: style file, journal widths, colours, saving.

- :data:`STYLE` — the package's matplotlib style file (7 pt fonts, Arial/Helvetica first when installed,
  TrueType fonts embedded in PDFs, the Okabe–Ito colour-blind-safe cycle, viridis maps); :func:`use_style`
  applies it in a ``with``.
- :data:`SINGLE_MM`, :data:`DOUBLE_MM` — journal column widths (85 mm, 180 mm); :func:`figsize` turns
  millimetres into the inches matplotlib wants.
- :func:`save_figure` — vector PDF + PNG, each written atomically, under the style (fonts embedded).
- :func:`area_colours` — one colour per brain area, the same in every figure.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

# No matplotlib.use(): the backend stays the user's (inline in notebooks); without a display matplotlib
# picks Agg by itself, and every figure here is saved, never shown.
import matplotlib
import matplotlib.pyplot as plt

from rsa_bridge.io import atomic_path

#: the package's matplotlib style file
STYLE = Path(__file__).resolve().parents[1] / "styles" / "rsa_bridge.mplstyle"
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
    with plt.style.context(str(STYLE)), matplotlib.rc_context({"font.sans-serif": installed_fonts()}):
        try:
            yield
        finally:
            interactive = matplotlib.is_interactive()
    matplotlib.interactive(interactive)


def installed_fonts(families: list[str] | None = None) -> list[str]:
    """The style's sans-serif list (Arial, Helvetica, ... first) without the fonts this machine lacks.

    matplotlib takes the first installed family of the list; dropping absent ones keeps it from
    logging a "font not found" line per family. DejaVu Sans (bundled with matplotlib) always stays last.
    """
    from matplotlib import font_manager

    if families is None:
        families = [f.strip() for f in _style_value("font.sans-serif").split(",")]
    have = {f.name for f in font_manager.fontManager.ttflist}
    kept = [f for f in families if f in have and f != "DejaVu Sans"]
    return kept + ["DejaVu Sans"]


def _style_value(key: str) -> str:
    for line in STYLE.read_text().splitlines():
        if line.split(":", 1)[0].strip() == key:
            return line.split(":", 1)[1].split("#", 1)[0].strip()
    raise KeyError(key)


def area_colours(areas) -> dict[str, str]:
    """Area name -> colour (the palette in order of the areas' first appearance)."""
    names = list(dict.fromkeys(str(a) for a in areas))
    return {a: PALETTE[k % len(PALETTE)] for k, a in enumerate(names)}


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
