"""RDM panels side by side: model layers and brain areas on one shared colour scale, with category
boundaries.

Dissimilarities of different RDMs live on different scales (1 - r of a layer, of neurons, of voxels),
so every panel shows each pair's **percentile** among that RDM's off-diagonal pairs (0 = most similar
pair, 100 = most dissimilar): one colour scale for all panels, and exactly what a rank comparison
(Spearman) sees. Stimuli are grouped by a manifest label column (default ``category``); lines mark the
category boundaries. Areas with several RDMs (subjects/sessions) show their mean.

    python -m analyses.figures.rdm_panels --out figures/ [--results compare_out/] [--layers conv1,conv5,fc7]
"""
from __future__ import annotations

import textwrap
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from scipy.stats import rankdata

from analyses.figures import common
from rsa_bridge.datasets import area_rdms, areas as dataset_areas, load_dataset
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.figures import figsize, short_label, use_style, width_mm
from rsa_bridge.rdm import COL, ROW

NAME = "rdm_panels"


def percentile_rdm(rdm: np.ndarray) -> np.ndarray:
    """Each off-diagonal entry of a symmetric (n, n) RDM as its percentile (0-100) among the upper-triangle
    pairs (ties share their mean rank); the diagonal is NaN."""
    rdm = np.asarray(rdm, dtype=np.float64)
    n = rdm.shape[0]
    iu = np.triu_indices(n, k=1)
    ranks = rankdata(rdm[iu])
    values = 100.0 * (ranks - 1.0) / max(ranks.size - 1, 1)
    out = np.full((n, n), np.nan)
    out[iu] = values
    out[(iu[1], iu[0])] = values
    return out


def category_order(ids: Sequence[str], categories: pd.Series | None) -> tuple[list[str], list[tuple[str, int, int]]]:
    """Ids grouped by category (categories in order of first appearance, stable within), and the blocks
    ``(category, first index, last index + 1)``."""
    ids = [str(i) for i in ids]
    if categories is None:
        return ids, []
    labels = [str(categories.get(i, "")) for i in ids]
    names = list(dict.fromkeys(labels))
    order = sorted(range(len(ids)), key=lambda k: names.index(labels[k]))
    blocks, start = [], 0
    for name in names:
        count = labels.count(name)
        blocks.append((name, start, start + count))
        start += count
    return [ids[k] for k in order], blocks


def rdm_panels(rdms: dict[str, xr.DataArray], categories: pd.Series | None = None, width: str | float = "double",
               cmap: str = "viridis", columns: int | None = None):
    """Panels of percentile RDMs on one colour scale, stimuli grouped by category.

    Args:
        rdms: panel title -> (stimulus_row, stimulus_col) RDM; all over the same stimulus ids (any order:
            panels are aligned by id to the first RDM's ids, grouped by category).
        categories: label per stimulus id (index = ids), or None for no grouping.
        width: ``single`` / ``double`` / millimetres. cmap: colour-blind-safe sequential map.
        columns: panels per row (default: all in one row).

    Returns:
        (figure, list of axes, handles): panel title -> AxesImage (its array is the percentile RDM in
        the displayed order), ``colorbar``, ``order`` (the displayed stimulus ids), ``blocks``.
    """
    if not rdms:
        raise RSABridgeError("no RDMs to draw")
    first = next(iter(rdms.values()))
    order, blocks = category_order(first[ROW].values, categories)
    columns = columns or len(rdms)
    n_rows = int(np.ceil(len(rdms) / columns))
    total_mm = width_mm(width)
    panel_mm = (total_mm - 22) / columns
    handles: dict = {"order": order, "blocks": blocks}
    with use_style():
        fig, axes = plt.subplots(n_rows, columns, figsize=figsize(total_mm, panel_mm * n_rows + 20), squeeze=False)
        axes = list(axes.ravel())
        for ax, (title, rdm) in zip(axes, rdms.items()):
            ids = [str(s) for s in rdm[ROW].values]
            if set(ids) != set(order):
                raise RSABridgeError(f"panel {title!r} covers other stimuli than {next(iter(rdms))!r}")
            values = rdm.transpose(ROW, COL).sel({ROW: order, COL: order}).values
            image = ax.imshow(percentile_rdm(values), cmap=cmap, vmin=0, vmax=100, interpolation="nearest")
            handles[title] = image
            ax.set_title(panel_title(title, panel_mm), fontsize=6)
            for _, start, stop in blocks[1:]:
                for line in (ax.axhline, ax.axvline):
                    line(start - 0.5, color="white", lw=0.5)
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
        for ax in axes[len(rdms):]:
            ax.set_visible(False)
        if blocks:
            centres = [(start + stop - 1) / 2 for _, start, stop in blocks]
            for ax in axes[::columns]:
                ax.set_yticks(centres, [name for name, _, _ in blocks], fontsize=5)
                ax.tick_params(axis="y", length=0, pad=1)
        colorbar = fig.colorbar(handles[next(iter(rdms))], ax=axes[: len(rdms)], shrink=0.7, pad=0.01, aspect=12)
        colorbar.set_label("dissimilarity (percentile)")
        handles["colorbar"] = colorbar
    return fig, axes[: len(rdms)], handles


def panel_title(title: str, panel_mm: float, font_pt: float = 6.0) -> str:
    """``title`` wrapped to the panel's width (at most 2 lines), long words shortened in the middle.

    E.g. ``mobilenet_v2 encoder.layers.encoder_layer_11`` in a 30 mm panel -> ``mobilenet_v2`` /
    ``…encoder_layer_11``. Characters are taken as 0.6 of the font size wide (DejaVu/Arial average).
    """
    chars = max(6, int(panel_mm / 25.4 * 72 / (0.6 * font_pt)))
    words = [short_label(w, chars) for w in str(title).split()]
    lines = textwrap.wrap(" ".join(words), chars, break_long_words=False, break_on_hyphens=False) or [""]
    if len(lines) > 2:
        lines = [lines[0], short_label(" ".join(lines[1:]), chars)]
    return "\n".join(lines)


def default_layers(layers: Sequence[str]) -> list[str]:
    """First, middle and last layer."""
    layers = list(layers)
    picks = [layers[0], layers[len(layers) // 2], layers[-1]] if len(layers) >= 3 else layers
    return list(dict.fromkeys(picks))


def panels_from_results(cached: common.CachedResults, layers: Sequence[str] | None = None,
                        model: str | None = None, dataset: str | None = None) -> tuple[dict[str, xr.DataArray], xr.Dataset]:
    """Model layer RDMs (from ``model_rdms.nc``) and brain-area RDMs (mean over subjects/sessions) to draw.

    ``dataset``: the RDM dataset (shipped name or path); default the one named in ``results.csv``, which
    works for shipped datasets (a user dataset is named by its file stem only, so pass its path).
    """
    if not cached.model_rdms:
        raise RSABridgeError(f"{str(cached.folder)!r} holds no model_rdms.nc; run `rsa-bridge compare ... --out DIR`")
    model = model or next(iter(cached.model_rdms))
    if model not in cached.model_rdms:
        raise RSABridgeError(f"no model {model!r} in model_rdms.nc; it has {', '.join(cached.model_rdms)}")
    model_rdms = cached.model_rdms[model]
    have = [str(l) for l in model_rdms["layer"].values]
    layers = list(layers) if layers else default_layers(have)
    missing = [l for l in layers if l not in have]
    if missing:
        raise RSABridgeError(f"model_rdms.nc has no layer {missing[0]!r}; it has {', '.join(have)}")
    table = cached.table
    name = str(table.loc[table["model"].astype(str) == model, "dataset"].iloc[0])
    try:
        dataset = load_dataset(dataset or name)
    except RSABridgeError:
        if dataset:
            raise
        raise RSABridgeError(f"the results name dataset {name!r}, which is not shipped; pass its file with "
                             "--dataset PATH.nc") from None
    panels = {f"{model} {l}": model_rdms.sel(layer=l).drop_vars([c for c in model_rdms.coords if c not in (ROW, COL)])
              for l in layers}
    wanted = [a for a in dict.fromkeys(table["area"].astype(str)) if a in dataset_areas(dataset)]
    for area in wanted:
        stack = area_rdms(dataset, area)
        n = stack.sizes["replicate"]
        panels[f"{area} (mean of {n})" if n > 1 else area] = stack.mean("replicate")
    return panels, dataset


def dataset_categories(dataset: xr.Dataset, column: str = "category") -> pd.Series | None:
    """The ``column`` label of each stimulus from the dataset's stimulus-set manifest (None if unavailable)."""
    from stimuli import load_stimulus_set

    path = dataset.attrs.get("stimuli_path")
    if not path:
        return None
    stim = load_stimulus_set(path, check_images=False)
    return stim.labels(column) if column in stim.manifest.columns else None


def main(argv: Sequence[str] | None = None) -> int:
    p = common.parser(NAME, "Model-layer and brain-area RDMs on one colour scale, with category boundaries.",
                      measures=False)
    p.add_argument("--layers", default=None, help="comma-separated layers (default: first, middle, last)")
    p.add_argument("--category", default="category", help="manifest column to group stimuli by (default category)")
    p.add_argument("--width", default="double", help="single, double or millimetres (default double)")
    args = p.parse_args(argv)
    cached = common.load_or_compute(args)
    layers = [s.strip() for s in args.layers.split(",") if s.strip()] if args.layers else None
    panels, dataset = panels_from_results(cached, layers, dataset=args.dataset)
    fig, _, _ = rdm_panels(panels, dataset_categories(dataset, args.category), width=args.width)
    for path in common.save(fig, args.out, NAME, args.dpi):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(common.run(main))
