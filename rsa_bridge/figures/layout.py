"""Layout that holds for long names: shortened tick labels, separated end labels, and an overlap check.

- :func:`short_label` — a long module path (``encoder.layers.encoder_layer_11``) shortened in the middle to
  at most ``width`` characters, keeping its informative ends (``encoder.…_layer_11``).
- :func:`short_labels` — the same for a list, kept unique.
- :func:`spread` — positions at least ``gap`` apart, as close as possible to the wanted ones (labels at the
  end of reference lines whose values nearly coincide).
- :func:`text_boxes`, :func:`overlapping_texts` — every visible text's bounding box after a draw, and the
  pairs that overlap: what the figure tests assert to be empty.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

ELLIPSIS = "…"


def short_label(name: str, width: int = 18) -> str:
    """``name`` if it has at most ``width`` characters, else shortened with an ellipsis.

    A dotted module path keeps its last parts that fit (``encoder.layers.encoder_layer_11`` ->
    ``…encoder_layer_11``); otherwise the head and tail of the name are kept (``features…conv_4``).
    """
    name = str(name)
    if len(name) <= width:
        return name
    parts = name.split(".")
    kept: list[str] = []
    while parts and len(".".join([parts[-1], *kept])) <= width - 1:
        kept.insert(0, parts.pop())
    if kept:
        return ELLIPSIS + ".".join(kept)
    tail = (width - 1) * 2 // 3
    head = width - 1 - tail
    return name[:head] + ELLIPSIS + name[-tail:]


def short_labels(names: Sequence[str], width: int = 18) -> list[str]:
    """:func:`short_label` of each name, widened where two would read the same."""
    names = [str(n) for n in names]
    for w in range(width, max((len(n) for n in names), default=0) + 1):
        out = [short_label(n, w) for n in names]
        if len(set(out)) == len(set(names)):
            return out
    return names


def spread(wanted: Sequence[float], gap: float) -> np.ndarray:
    """Positions, in the order given, each at least ``gap`` from its neighbours, close to ``wanted``.

    Sort, push each up past its lower neighbour, then shift the whole run down by the mean push so the
    labels stay centred on their lines.
    """
    wanted = np.asarray(wanted, dtype=float)
    if wanted.size < 2:
        return wanted.copy()
    order = np.argsort(wanted)
    pos = wanted[order].copy()
    for k in range(1, pos.size):
        pos[k] = max(pos[k], pos[k - 1] + gap)
    pos -= (pos - wanted[order]).mean()
    for k in range(1, pos.size):  # the shift keeps the gaps; re-assert against rounding
        pos[k] = max(pos[k], pos[k - 1] + gap)
    out = np.empty_like(pos)
    out[order] = pos
    return out


def text_boxes(fig) -> list[tuple[str, object]]:
    """(text, display-space Bbox) of every visible, non-empty text of ``fig``, after drawing it."""
    from matplotlib.text import Text

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    hidden = set()  # tick labels of ticks outside the view limits exist but are not drawn
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            slack = 1e-9 * max(abs(low), abs(high), 1.0)
            for ticks, locs in ((axis.majorTicks, axis.get_majorticklocs()), (axis.minorTicks, axis.get_minorticklocs())):
                for k, tick in enumerate(ticks):
                    if k >= len(locs) or not low - slack <= locs[k] <= high + slack:
                        hidden |= {id(tick.label1), id(tick.label2)}
    out = []
    for artist in fig.findobj(Text):
        if not artist.get_visible() or not artist.get_text().strip() or id(artist) in hidden:
            continue
        if any(not a.get_visible() for a in _ancestors(artist)):
            continue
        # Text's own box: an Annotation's get_window_extent also covers its arrow
        out.append((artist.get_text(), Text.get_window_extent(artist, renderer)))
    return out


def _ancestors(artist):
    axes = getattr(artist, "axes", None)
    return [axes] if axes is not None else []


def overlapping_texts(fig, tolerance: float = 0.5) -> list[tuple[str, str]]:
    """Pairs of texts whose bounding boxes overlap by more than ``tolerance`` pixels in both directions."""
    boxes = text_boxes(fig)
    pairs = []
    for i in range(len(boxes)):
        a_text, a = boxes[i]
        for b_text, b in boxes[i + 1:]:
            dx = min(a.x1, b.x1) - max(a.x0, b.x0)
            dy = min(a.y1, b.y1) - max(a.y0, b.y0)
            if dx > tolerance and dy > tolerance:
                pairs.append((a_text, b_text))
    return pairs


def texts_outside(fig, margin: float = 0.0) -> list[str]:
    """Texts whose box leaves the figure (or comes closer than ``margin`` pixels to its edge)."""
    width, height = fig.canvas.get_width_height()
    return [text for text, box in text_boxes(fig)
            if box.x0 < margin or box.y0 < margin or box.x1 > width - margin or box.y1 > height - margin]
