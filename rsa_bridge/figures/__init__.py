"""Figures of compare results (matplotlib, no display needed), at journal size, in one house style.

- :mod:`~rsa_bridge.figures.style`: :data:`STYLE`, :func:`use_style`, :func:`figsize`, :func:`save_figure`,
  :data:`PALETTE`, :func:`area_colours` (85 / 180 mm widths, 7 pt Arial/Helvetica when installed).
- :func:`layer_profile` — similarity by layer with CIs, per-area ceiling bands, controls as reference lines
  (``rsa-bridge compare --out`` writes it as ``profile.png``).
- :func:`model_comparison` — bars per model with pairwise-test brackets and the noise ceiling (the figure
  rsatoolbox's ``plot_model_comparison`` draws).
- :func:`mds_plot` — 2-D metric MDS of an RDM, points coloured by category or drawn as image icons;
  :func:`rdm_with_icons` — one RDM with image thumbnails along its axes.
- :mod:`~rsa_bridge.figures.layout` — label shortening and the text-overlap check the tests use.
- :mod:`~rsa_bridge.figures.time_course` — similarity over time per layer with peak latencies (time-resolved areas).

Every figure function returns ``(figure, axes, handles)``: ``handles`` maps readable names to the
artists that carry the data, so a user can restyle them (and tests can read the plotted values back).
"""
from rsa_bridge.figures.comparison import model_comparison, pairwise_bootstrap_p
from rsa_bridge.figures.embedding import mds_embedding, mds_plot, rdm_with_icons
from rsa_bridge.figures.layout import overlapping_texts, short_label, short_labels, texts_outside
from rsa_bridge.figures.profile import control_models, layer_profile
from rsa_bridge.figures.style import (DOUBLE_MM, MM_PER_INCH, PALETTE, SINGLE_MM, STYLE, WIDTHS, area_colours,
                                      figsize, installed_fonts, save_figure, use_style, width_mm)

__all__ = [
    "DOUBLE_MM", "MM_PER_INCH", "PALETTE", "SINGLE_MM", "STYLE", "WIDTHS", "area_colours", "control_models",
    "figsize", "installed_fonts", "layer_profile", "mds_embedding", "mds_plot", "model_comparison",
    "overlapping_texts", "pairwise_bootstrap_p", "rdm_with_icons", "save_figure", "short_label", "short_labels",
    "texts_outside", "use_style", "width_mm",
]
