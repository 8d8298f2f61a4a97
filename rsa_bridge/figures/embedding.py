"""Looking at one RDM: a 2-D MDS map of the stimuli, and the RDM with image thumbnails along its axes.

- :func:`mds_embedding` — stimulus coordinates (n, 2) whose distances follow the RDM: ``classical``
  (Torgerson: double-centre the squared dissimilarities, keep the leading eigenvectors; deterministic) or
  ``metric`` (SMACOF stress minimisation, scikit-learn's ``MDS``, seeded).
- :func:`mds_plot` — the map, one colour per category, or each stimulus drawn as its image.
- :func:`rdm_with_icons` — the RDM (as percentiles, or raw) with thumbnails of the stimuli on both axes.

Peers: rsatoolbox's ``rsatoolbox.vis.show_MDS`` (metric MDS with optional icons) and ``show_rdm`` with
``pattern_descriptor`` icons; scikit-learn's ``sklearn.manifold.MDS``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.offsetbox import AnnotationBbox, OffsetImage

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.figures.style import PALETTE, figsize, use_style
from rsa_bridge.rdm import COL, ROW

MDS_METHODS = ("classical", "metric")


def _square(rdm) -> tuple[np.ndarray, list[str]]:
    """(n, n) float array and ids of an RDM DataArray (or a plain array, ids ``0..n-1``)."""
    if isinstance(rdm, xr.DataArray):
        rdm = rdm.transpose(ROW, COL)
        return rdm.values.astype(float), [str(s) for s in rdm[ROW].values]
    arr = np.asarray(rdm, dtype=float)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise RSABridgeError(f"an RDM is a square (n, n) matrix; got shape {arr.shape}")
    return arr, [str(k) for k in range(arr.shape[0])]


def mds_embedding(rdm, n_components: int = 2, method: str = "classical", seed: int = 0) -> np.ndarray:
    """(n, n_components) coordinates whose Euclidean distances approximate the RDM's dissimilarities.

    Args:
        rdm: (n, n) symmetric dissimilarities (DataArray or array); NaNs are not allowed.
        method: ``classical`` (Torgerson, exact for Euclidean distances) or ``metric`` (SMACOF, 4 random
            starts seeded by ``seed``).

    Example::

        xy = mds_embedding(dataset["IT"].isel(subject=0))
    """
    d, _ = _square(rdm)
    if not np.isfinite(d).all():
        raise RSABridgeError("the RDM has missing (NaN) dissimilarities; MDS needs all of them")
    d = (d + d.T) / 2.0
    np.fill_diagonal(d, 0.0)
    if method == "classical":
        n = d.shape[0]
        centre = np.eye(n) - np.ones((n, n)) / n
        b = -0.5 * centre @ (d ** 2) @ centre
        values, vectors = np.linalg.eigh(b)
        top = np.argsort(values)[::-1][:n_components]
        coords = vectors[:, top] * np.sqrt(np.clip(values[top], 0.0, None))
        signs = np.sign(coords[np.argmax(np.abs(coords), axis=0), range(n_components)])  # a fixed orientation
        return coords * np.where(signs == 0, 1.0, signs)
    if method == "metric":
        from sklearn.manifold import MDS

        try:
            mds = MDS(n_components=n_components, metric="precomputed", n_init=4, init="random", random_state=seed,
                      normalized_stress="auto")
        except TypeError:  # scikit-learn < 1.8 names the option `dissimilarity`
            mds = MDS(n_components=n_components, dissimilarity="precomputed", n_init=4, random_state=seed)
        return mds.fit_transform(d)
    raise RSABridgeError(f"MDS method must be one of {', '.join(MDS_METHODS)}; got {method!r}")


def _thumbnails(images, ids: list[str], size_px: int) -> dict[str, np.ndarray]:
    """Stimulus id -> (h, w, 3 or 4) uint8 thumbnail, from a StimulusSet or a mapping id -> path/array/PIL."""
    from PIL import Image

    if hasattr(images, "stimulus_ids") and hasattr(images, "paths"):
        images = dict(zip(images.stimulus_ids, images.paths))
    if not isinstance(images, Mapping):
        raise RSABridgeError("images must be a StimulusSet or a mapping stimulus_id -> image (path, array or PIL)")
    missing = [s for s in ids if s not in images]
    if missing:
        raise RSABridgeError(f"no image for stimulus {missing[0]!r} ({len(missing)} of {len(ids)} missing)")
    out = {}
    for sid in ids:
        item: Any = images[sid]
        if isinstance(item, (str, Path)):
            from stimuli.stimulus_set import read_image
            item = read_image(item)
        if not isinstance(item, Image.Image):
            arr = np.asarray(item)
            if arr.dtype != np.uint8:
                arr = np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
            item = Image.fromarray(arr)
        thumb = item.convert("RGB")
        thumb.thumbnail((size_px, size_px))
        out[sid] = np.asarray(thumb)
    return out


def _icon(thumb: np.ndarray, size_pt: float) -> OffsetImage:
    return OffsetImage(thumb, zoom=size_pt / max(thumb.shape[:2]), interpolation="lanczos")


def mds_plot(rdm, categories: pd.Series | None = None, images=None, *, method: str = "classical", seed: int = 0,
             width: str | float = "single", height_mm: float = 75.0, icon_mm: float = 5.0, title: str | None = None):
    """2-D MDS map of the stimuli of one RDM: dots coloured by category, or the images themselves.

    Args:
        rdm: (stimulus_row, stimulus_col) DataArray (or an (n, n) array).
        categories: label per stimulus id (index = ids) to colour the dots, or None.
        images: a StimulusSet or mapping id -> image; when given, each stimulus is drawn as its image
            (with a frame in its category's colour).
        method, seed: see :func:`mds_embedding`. icon_mm: image size in millimetres.

    Returns:
        (figure, axes, handles): ``coords`` (n, 2) in the ``ids`` order, ``ids``, ``points`` (PathCollection
        whose offsets are ``coords``), ``icons`` (id -> AnnotationBbox) when images are drawn, ``legend``.
    """
    _, ids = _square(rdm)
    coords = mds_embedding(rdm, 2, method, seed)
    handles: dict = {"coords": coords, "ids": ids, "icons": {}}
    labels = None if categories is None else [str(categories.get(s, "")) for s in ids]
    names = list(dict.fromkeys(labels)) if labels else []
    colour_of = {c: PALETTE[k % len(PALETTE)] for k, c in enumerate(names)}
    colours = [colour_of[c] for c in labels] if labels else ["0.2"] * len(ids)
    with use_style():
        fig, ax = plt.subplots(figsize=figsize(width, height_mm))
        handles["points"] = ax.scatter(coords[:, 0], coords[:, 1], s=8 if images is None else 0.5, c=colours,
                                       linewidths=0, zorder=2)
        if images is not None:
            thumbs = _thumbnails(images, ids, 64)
            size_pt = icon_mm / 25.4 * 72
            for sid, (x, y), colour in zip(ids, coords, colours):
                box = AnnotationBbox(_icon(thumbs[sid], size_pt), (x, y), frameon=labels is not None, pad=0.1,
                                     bboxprops=dict(edgecolor=colour, lw=0.8))
                ax.add_artist(box)
                handles["icons"][sid] = box
        for name in names:
            ax.scatter([], [], s=8, c=colour_of[name], label=name)
        if names:
            handles["legend"] = ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), borderaxespad=0.2)
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(f"{method} MDS dimension 1")
        ax.set_ylabel(f"{method} MDS dimension 2")
        if title:
            ax.set_title(title)
    return fig, ax, handles


def rdm_with_icons(rdm, images, *, percentile: bool = True, every: int | None = None, width: str | float = "single",
                   cmap: str = "viridis", title: str | None = None):
    """One RDM with thumbnails of its stimuli along the left and top edges.

    Args:
        rdm: (stimulus_row, stimulus_col) DataArray; images: a StimulusSet or mapping id -> image.
        percentile: show each pair's percentile among the RDM's pairs (0-100; as ``rdm_panels``) instead of
            the raw dissimilarity.
        every: draw every k-th icon (default: all up to 40 stimuli, else about 40).

    Returns:
        (figure, axes, handles): ``image`` (AxesImage; its array is what is shown, in ``ids`` order), ``ids``,
        ``icons`` (list of (id, axis, AnnotationBbox)), ``colorbar``.
    """
    values, ids = _square(rdm)
    n = len(ids)
    every = every or max(1, int(np.ceil(n / 40)))
    shown = values.copy()
    if percentile:
        from scipy.stats import rankdata

        iu = np.triu_indices(n, 1)
        ranks = rankdata(values[iu])
        shown = np.full((n, n), np.nan)
        shown[iu] = shown[iu[1], iu[0]] = 100.0 * (ranks - 1) / max(ranks.size - 1, 1)
    thumbs = _thumbnails(images, ids[::every], 64)
    handles: dict = {"ids": ids, "icons": []}
    with use_style():
        fig, ax = plt.subplots(figsize=figsize(width, 0.9 * figsize(width)[0] * 25.4))
        image = ax.imshow(shown, cmap=cmap, interpolation="nearest", vmin=0 if percentile else None,
                          vmax=100 if percentile else None)
        handles["image"] = image
        ax.set_xticks([])
        ax.set_yticks([])
        for side in ax.spines.values():
            side.set_visible(False)
        fig.draw_without_rendering()
        cell_pt = ax.get_window_extent().width * 72.0 / fig.dpi / n * every * 0.92
        for k, sid in enumerate(ids[::every]):
            pos = k * every
            left = AnnotationBbox(_icon(thumbs[sid], cell_pt), (0.0, pos), xycoords=("axes fraction", "data"),
                                  xybox=(-1.0, 0.0), boxcoords="offset points", box_alignment=(1.0, 0.5),
                                  frameon=False, pad=0.0, annotation_clip=False)
            top = AnnotationBbox(_icon(thumbs[sid], cell_pt), (pos, 1.0), xycoords=("data", "axes fraction"),
                                 xybox=(0.0, 1.0), boxcoords="offset points", box_alignment=(0.5, 0.0),
                                 frameon=False, pad=0.0, annotation_clip=False)
            ax.add_artist(left)
            ax.add_artist(top)
            handles["icons"] += [(sid, "y", left), (sid, "x", top)]
        colorbar = fig.colorbar(image, ax=ax, shrink=0.7, pad=0.02, aspect=14)
        colorbar.set_label("dissimilarity (percentile)" if percentile else "dissimilarity")
        handles["colorbar"] = colorbar
        if title:
            ax.set_title(title, pad=cell_pt + 3)
    return fig, ax, handles
