"""Model comparison for one brain area: a bar per model (its best layer), 95% bootstrap CIs, the area's
noise ceiling, and brackets over the pairs of models that differ (two-sided paired bootstrap test, Holm-
corrected across pairs by default). The drawing is :func:`rsa_bridge.figures.model_comparison`.

With a single model in the results, its layers are compared instead. Only RSA stores the bootstrap samples
the pair test needs, so the figure draws RSA (``--measure cka`` / ``linear`` are refused; their scores are in
``layer_profile`` and ``layer_heatmap``); from results of several measures it writes
``model_comparison_rsa.png``.

    rsa-bridge compare --model alexnet --model vgg16 --model pixels --area IT --out out/
    rsa-bridge figure model_comparison --results out/ [--area IT] [--correction fdr]
"""
from __future__ import annotations

from rsa_bridge.app.argtypes import real

from typing import Sequence

from analyses.figures import common
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.figures import model_comparison
from rsa_bridge.corrections import CORRECTIONS
from rsa_bridge.figures.comparison import best_rows

NAME = "model_comparison"


def main(argv: Sequence[str] | None = None) -> int:
    p = common.parser(NAME, "Bars per model with bootstrap CIs, noise ceiling and pairwise-test brackets.")
    p.add_argument("--area", default=None, help="brain area (default: the first in the results)")
    p.add_argument("--rows", default=None,
                   help="comma-separated model:layer rows (default: each model's best layer; all layers of a "
                        "single model)")
    p.add_argument("--correction", type=CORRECTIONS.argparse_type, choices=CORRECTIONS.argparse_choices(),
                   default="holm", help="p-value correction across the pairs: "
                   + ", ".join(f"{c.name} ({c.label})" for c in CORRECTIONS.values()) + "; default holm")
    p.add_argument("--alpha", type=real("--alpha", 0, 1, open_ends=True), default=0.05, help="bracket pairs with corrected p below this (0.05)")
    p.add_argument("--width", default=None,
                   help="single, double or millimetres (default: single up to 10 bars, else double)")
    args = p.parse_args(argv)
    cached = common.load_or_compute(args)
    [(measure, _)] = common.measure_tables(cached, args.measure, supported=("rsa",),
                                         why=" (its pair tests need the bootstrap samples that only rsa stores)")
    if cached.results is None:
        raise RSABridgeError(f"{str(cached.folder)!r} holds no results.nc; run `rsa-bridge compare ... --out DIR`")
    areas = [str(a) for a in cached.results["area"].values]
    area = args.area or areas[0]
    if area not in areas:
        raise RSABridgeError(f"the results have no area {area!r}; they have {', '.join(areas)}")
    rows = [s.strip() for s in args.rows.split(",") if s.strip()] if args.rows else None
    sort = True
    if rows is None and len(best_rows(cached.results, area)) < 2:
        rows, sort = [str(r) for r in cached.results["model_layer"].values], False
    fig, _, _ = model_comparison(cached.results, area, rows=rows, correction=args.correction, alpha=args.alpha,
                                 sort=sort, width=args.width)
    for path in common.save(fig, args.out, common.figure_name(NAME, measure, cached), args.dpi):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(common.run(main))
