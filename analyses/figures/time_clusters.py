"""Similarity over time per layer with its significant clusters and the noise ceiling of every time bin.

Reads a ``rsa-bridge compare --out`` folder of a time-resolved dataset run with ``--cluster-threshold`` (and,
for the grey band, ``--time-ceiling`` or any time option); draws :func:`rsa_bridge.figures.time_course_figure`.

    rsa-bridge figure time_clusters --results compare_out/ [--alpha 0.05]
"""
from __future__ import annotations

from collections.abc import Sequence

from analyses.figures import common
from analyses.figures.cross_temporal import time_results
from rsa_bridge.app.argtypes import real
from rsa_bridge.figures.time_course import time_course_figure

NAME = "time_clusters"


def main(argv: Sequence[str] | None = None) -> int:
    p = common.parser(NAME, "Time course per layer with clusters (p < --alpha) and the per-bin noise ceiling.",
                      compare=False)
    p.add_argument("--alpha", type=real("--alpha", 0, 1, open_ends=True), default=0.05,
                   help="mark clusters with a cluster p below this (default 0.05)")
    args = p.parse_args(argv)
    results = time_results(args, "cluster_p", "--cluster-threshold P")
    fig, _, _ = time_course_figure(results, alpha=args.alpha)
    for path in common.save(fig, args.out, NAME, args.dpi):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(common.run(main))
