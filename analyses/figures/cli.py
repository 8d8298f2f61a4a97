"""``rsa-bridge figure KIND --results DIR``: draw one of the figure scripts of :mod:`analyses.figures`.

A registry (:data:`KINDS`, figure name -> script module) in place of an if/elif; each script's own options
follow the kind (``rsa-bridge figure KIND --help`` lists them). Nothing heavy is imported until a figure is
drawn (no torch, no matplotlib at import time), so ``rsa-bridge --help`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib

#: figure kind -> (script module, one-line description)
KINDS: dict[str, tuple[str, str]] = {
    "layer_profile": ("analyses.figures.layer_profile", "similarity by layer per area, CIs, ceilings, controls"),
    "layer_heatmap": ("analyses.figures.layer_heatmap", "layer x area heatmap with the best layer outlined"),
    "best_layer": ("analyses.figures.best_layer", "bootstrap probability of each layer being the best"),
    "model_map": ("analyses.figures.model_map", "layer x layer map of two networks (compare --between-models)"),
    "model_comparison": ("analyses.figures.model_comparison", "bars per model with pairwise-test brackets"),
    "rdm_panels": ("analyses.figures.rdm_panels", "layer and area RDMs side by side on one colour scale"),
    "rdm_icons": ("analyses.figures.rdm_icons", "one RDM with image thumbnails on its axes"),
    "mds": ("analyses.figures.mds", "2-D MDS map of an area's or a layer's RDM"),
    "missed_detections": ("analyses.figures.missed_detections", "missed-detection timeline of a tracked object"),
    "depth_masks": ("analyses.figures.depth_masks", "depth-mask grid of a lambda sweep"),
    "time_clusters": ("analyses.figures.time_clusters", "similarity over time with clusters and per-bin ceilings"),
    "cross_temporal": ("analyses.figures.cross_temporal", "layer x time and brain time x time heatmaps"),
    "variance_partition": ("analyses.figures.variance_partition", "unique and shared R² of a brain RDM by 2-4 "
                           "model RDMs, bootstrap CIs"),
}


def register(subparsers) -> None:
    listing = "\n".join(f"  {name:<18} {text}" for name, (_, text) in KINDS.items())
    p = subparsers.add_parser(
        "figure", help="draw a publication figure from a results folder",
        description="Draw a figure (vector PDF + PNG at journal width) from a `rsa-bridge compare --out` folder "
                    "(or the analysis's own results). Figure kinds:\n" + listing +
                    "\n\nThe kind's own options follow it; see `rsa-bridge figure KIND --help`. --out defaults to "
                    "the --results folder. Nothing is computed: a missing or empty --results folder is an error, "
                    "and so is a folder of another kind (a compare folder for missed_detections or depth_masks); "
                    "the `python -m analyses.figures.KIND` scripts run a default job into a missing or empty "
                    "folder instead. Figures of scores draw one measure each: --measure NAME, or every measure "
                    "in the results, one file each (KIND_MEASURE.png when there are several).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="rsa-bridge figure KIND --results DIR [--out DIR] [options of KIND]",
    )
    p.add_argument("kind", choices=tuple(KINDS), metavar="KIND", help="one of: " + ", ".join(KINDS))
    p.add_argument("options", nargs=argparse.REMAINDER, help="the kind's options (--results DIR, --out DIR, ...)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from analyses.figures import common
    from rsa_bridge.progress import progress_switch

    module = importlib.import_module(KINDS[args.kind][0])
    before = common.PROG_TEMPLATE, common.COMPUTE_MISSING
    common.PROG_TEMPLATE, common.COMPUTE_MISSING = "rsa-bridge figure {name}", False  # read results, never run a job
    try:
        quiet = "--quiet" in args.options
        options = [o for o in args.options if o != "--quiet"]
        with progress_switch(False if quiet else None):
            return int(module.main(options) or 0)
    finally:
        common.PROG_TEMPLATE, common.COMPUTE_MISSING = before
