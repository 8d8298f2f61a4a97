"""Layer profile per area: one measure's model-brain score by layer, one panel per area, with the bootstrap CI
(error bars), the area's ceiling (RSA: a band in the area's colour; cka/linear: a dashed line on the score's
scale) and image-statistics controls as labelled reference lines. The drawing is
:func:`rsa_bridge.figures.layer_profile` (``by="area"``). One figure per measure (``--measure``, or every
measure in the results: ``layer_profile_rsa.png``, ``layer_profile_cka.png``... when there are several).

    rsa-bridge figure layer_profile --results compare_out/ [--by model] [--measure cka]
    python -m analyses.figures.layer_profile --out figures/ [--results compare_out/]
"""
from __future__ import annotations

from typing import Sequence

import pandas as pd

from analyses.figures import common
from rsa_bridge.figures import layer_profile

NAME = "layer_profile"


def profile_per_area(table: pd.DataFrame, width: str | float | None = None, height_mm: float | None = None):
    """:func:`rsa_bridge.figures.layer_profile` with one panel per area (kept for existing callers)."""
    fig, axes, handles = layer_profile(table, by="area", width=width, height_mm=height_mm)
    return fig, (axes if isinstance(axes, list) else [axes]), handles


def main(argv: Sequence[str] | None = None) -> int:
    p = common.parser(NAME, "Layer profile per area with bootstrap CIs, ceilings and controls, one measure each.")
    p.add_argument("--width", default=None, help="single, double or millimetres (default: by number of panels)")
    p.add_argument("--by", choices=("area", "model"), default="area",
                   help="a panel per area (default; a line per network) or per network (a line per area)")
    args = p.parse_args(argv)
    cached = common.load_or_compute(args)
    for measure, table in common.measure_tables(cached, args.measure):
        fig, _, _ = layer_profile(table, by=args.by, width=args.width)
        for path in common.save(fig, args.out, common.figure_name(NAME, measure, cached), args.dpi):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(common.run(main))
