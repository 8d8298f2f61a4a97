"""MDS map of one RDM (a brain area or a model layer of a compare run): the stimuli placed in 2-D so that their
distances follow the dissimilarities, coloured by category, or drawn as their images (``--icons``). The drawing
is :func:`rsa_bridge.figures.mds_plot`.

    rsa-bridge figure mds --results out/ [--rdm IT | --rdm conv5] [--icons] [--method metric]
"""
from __future__ import annotations

from typing import Sequence

import xarray as xr

from analyses.figures import common
from analyses.figures.rdm_panels import dataset_categories, panels_from_results
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.figures import mds_plot
from rsa_bridge.figures.embedding import MDS_METHODS

NAME = "mds"


def pick_rdm(cached: common.CachedResults, name: str | None, dataset: str | None) -> tuple[str, xr.DataArray, xr.Dataset]:
    """(title, RDM, dataset): the area or model layer called ``name`` (default: the first area)."""
    have_layers = [str(l) for l in next(iter(cached.model_rdms.values()))["layer"].values] if cached.model_rdms else []
    layers = [name] if name in have_layers else None
    panels, ds = panels_from_results(cached, layers or have_layers[:1], dataset=dataset)
    areas = [t for t in panels if not any(t.endswith(f" {l}") for l in have_layers)]
    if name is None:
        title = areas[0] if areas else next(iter(panels))
        return title, panels[title], ds
    for title, rdm in panels.items():
        if title == name or title.split(" (")[0] == name or title.endswith(f" {name}"):
            return title, rdm, ds
    raise RSABridgeError(f"no RDM {name!r}: name an area ({', '.join(t.split(' (')[0] for t in areas)}) "
                         f"or a layer ({', '.join(have_layers[:8])})")


def main(argv: Sequence[str] | None = None) -> int:
    p = common.parser(NAME, "2-D MDS map of an area's or a layer's RDM.", measures=False)
    p.add_argument("--rdm", default=None, help="area or model layer to embed (default: the first area)")
    p.add_argument("--icons", action="store_true", help="draw each stimulus as its image")
    p.add_argument("--method", choices=MDS_METHODS, default="classical", help="classical (default) or metric MDS")
    p.add_argument("--category", default="category", help="manifest column to colour by (default category)")
    p.add_argument("--width", default="single", help="single, double or millimetres (default single)")
    args = p.parse_args(argv)
    cached = common.load_or_compute(args)
    title, rdm, dataset = pick_rdm(cached, args.rdm, args.dataset)
    images = None
    if args.icons:
        from stimuli import load_stimulus_set
        if not dataset.attrs.get("stimuli_path"):
            raise RSABridgeError("the dataset does not say where its images are; --icons needs them")
        images = load_stimulus_set(dataset.attrs["stimuli_path"])
    fig, _, _ = mds_plot(rdm, dataset_categories(dataset, args.category), images, method=args.method, seed=args.seed,
                         width=args.width, title=title)
    for path in common.save(fig, args.out, NAME, args.dpi):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(common.run(main))
