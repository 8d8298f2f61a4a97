"""Cross-temporal RSA heatmaps: model layer x brain time, and brain time x brain time, per time-resolved area.

Reads a ``rsa-bridge compare --out`` folder of a time-resolved dataset run with ``--cross-temporal``; draws
:func:`rsa_bridge.figures.time_course.cross_temporal_figure`.

    rsa-bridge figure cross_temporal --results compare_out/
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence

import xarray as xr

from analyses.figures import common
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.figures.time_course import cross_temporal_figure

NAME = "cross_temporal"


def time_results(args: argparse.Namespace, variable: str, option: str) -> xr.Dataset:
    """The ``results.nc`` of ``--results``, refused in one line unless it holds ``variable`` (from ``option``)."""
    if args.results is None:
        raise RSABridgeError(f"say which results to draw: --results DIR (a `rsa-bridge compare ... {option} --out DIR`)")
    cached = common.read_results(args.results)
    if cached.results is None or "similarity_time" not in cached.results:
        raise RSABridgeError(f"{str(args.results)!r} holds no time-resolved results; compare a dataset with a "
                             "time_bin dim (`rsa-bridge neural rdm --time-resolved`)")
    if variable not in cached.results:
        raise RSABridgeError(f"{str(args.results)!r} has no {variable}; rerun compare with {option}")
    return cached.results


def main(argv: Sequence[str] | None = None) -> int:
    p = common.parser(NAME, "Model layer x brain time and brain time x time similarity per area.", compare=False)
    args = p.parse_args(argv)
    results = time_results(args, "cross_temporal", "--cross-temporal")
    fig, _, _ = cross_temporal_figure(results)
    for path in common.save(fig, args.out, NAME, args.dpi):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(common.run(main))
