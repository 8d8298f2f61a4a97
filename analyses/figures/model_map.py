"""Heatmap of a model x model map (``rsa-bridge compare --between-models --out DIR``): the first network's
layers down, the second's across, coloured by the map's measure (named on the colour bar). With
``--areas COMPARE_DIR`` (a ``compare --out`` folder of either network against brain areas), each area's
best layer of that network, under the same measure when the folder holds it (else RSA), is marked on the
matching axis: a tick label suffix ``[V4]`` and a line across the map.

    rsa-bridge figure model_map --results map_out/ [--areas compare_out/] [--out figures/]
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from analyses.figures import common
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.figures import figsize, use_style

NAME = "model_map"
#: area-marker colours (Okabe-Ito, colour-blind safe)
AREA_COLOURS = ("#D55E00", "#009E73", "#CC79A7", "#0072B2", "#E69F00", "#56B4E9")


def read_map(folder: str | Path) -> xr.DataArray:
    """``model_map.nc`` of a ``compare --between-models --out`` folder; RSABridgeError when it has none."""
    path = Path(folder) / "model_map.nc"
    if not path.is_file():
        raise RSABridgeError(f"{str(folder)!r} holds no model_map.nc; run `rsa-bridge compare --model A --model B "
                             f"--between-models --out {folder}` (a compare folder of brain areas goes to --areas)")
    with xr.open_dataset(path, engine="h5netcdf") as handle:
        return handle["similarity"].load()


def best_layers(table, model: str, measure: str) -> tuple[dict[str, str], str]:
    """({area: best layer of ``model``}, the measure used) from a compare ``results.csv`` table: the map's
    measure when the table holds it, else ``rsa``; {} when the model is not in it."""
    from rsa_bridge.measures.results import measures_in

    use = measure if measure in measures_in(table) else "rsa"
    rows = table[(table["model"].astype(str) == model) & (table["measure"].astype(str) == use)] \
        if "measure" in table else table[table["model"].astype(str) == model]
    out = {}
    for area, group in rows.groupby("area", sort=False):
        scores = group["similarity"].astype(float)
        if scores.notna().any():
            out[str(area)] = str(group["layer"].iloc[int(np.nanargmax(scores.values))])
    return out, use


def model_map_figure(result: xr.DataArray, areas_table=None, width: str | float = "single", cmap: str = "viridis"):
    """Heatmap of a (layer_a, layer_b) map; ``areas_table``: a compare results table to mark best layers.

    Returns (figure, axes, handles): ``image`` (its array is the map), ``colorbar``, ``marks`` ->
    {(axis, area): layer} for every best layer marked (axis ``"a"`` rows, ``"b"`` columns).
    """
    attrs = result.attrs
    rows, cols = [str(l) for l in result["layer_a"].values], [str(l) for l in result["layer_b"].values]
    marks: dict = {}
    if areas_table is not None:
        for axis, model, layers in (("a", attrs["model_a"], rows), ("b", attrs["model_b"], cols)):
            found, used = best_layers(areas_table, str(model), str(attrs["measure"]))
            marks.update({(axis, area): layer for area, layer in found.items() if layer in layers})
    grid = np.asarray(result.values, dtype=float)
    height = 20 + 3.2 * len(rows)
    with use_style():
        fig, ax = plt.subplots(figsize=figsize(width, height))
        image = ax.imshow(grid, cmap=cmap, aspect="auto", interpolation="nearest")
        labels = {"a": list(rows), "b": list(cols)}
        areas = list(dict.fromkeys(area for _, area in marks))
        for (axis, area), layer in marks.items():
            colour = AREA_COLOURS[areas.index(area) % len(AREA_COLOURS)]
            k = (rows if axis == "a" else cols).index(layer)
            labels[axis][k] += f" [{area}]"
            (ax.axhline if axis == "a" else ax.axvline)(k, color=colour, lw=0.8, ls="--")
        ax.set_yticks(range(len(rows)), labels["a"], fontsize=5)
        ax.set_xticks(range(len(cols)), labels["b"], fontsize=5, rotation=90)
        ax.set_ylabel(f"{attrs['model_a']} ({attrs.get('weights_a', 'unknown')}) layer")
        ax.set_xlabel(f"{attrs['model_b']} ({attrs.get('weights_b', 'unknown')}) layer")
        ax.tick_params(length=0)
        colorbar = fig.colorbar(image, ax=ax, shrink=0.9, pad=0.02)
        colorbar.set_label(str(attrs.get("measure_label", attrs["measure"])))
        title = f"{attrs['n_stimuli']} stimuli"
        if marks:
            title += f"; dashed: best layer per area ({used})"
        ax.set_title(title, loc="left", fontsize=6)
    return fig, ax, {"image": image, "colorbar": colorbar, "marks": marks}


def main(argv: Sequence[str] | None = None) -> int:
    p = common.parser(NAME, "Heatmap of a model x model map (compare --between-models).", compare=False)
    p.add_argument("--areas", type=Path, default=None, metavar="COMPARE_DIR",
                   help="a compare --out folder (results.csv) of either network against brain areas: mark each "
                        "area's best layer")
    p.add_argument("--width", default="single", help="single, double or millimetres (default single)")
    args = p.parse_args(argv)
    if args.results is None:
        raise RSABridgeError("say which map to draw: --results DIR (a compare --between-models --out folder)")
    result = read_map(args.results)
    table = common.read_results(args.areas).table if args.areas is not None else None
    fig, _, handles = model_map_figure(result, table, width=args.width)
    if args.areas is not None and not handles["marks"]:
        print(f"note: {args.areas} names no best layer of {result.attrs['model_a']} or {result.attrs['model_b']}",
              file=__import__("sys").stderr)
    for path in common.save(fig, args.out, NAME, args.dpi):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(common.run(main))
