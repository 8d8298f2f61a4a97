"""``rsa-bridge datasets``: the shipped neural RDM datasets, their areas and stimulus counts.

Printed from the catalogue index (:mod:`rsa_bridge.catalogue`), so it answers without loading NetCDF.
"""
from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "datasets", help="list shipped neural datasets and their areas",
        description="List the neural RDM datasets shipped with rsa-bridge: name, areas, stimulus count, source. "
                    "Use a name with `rsa-bridge compare --dataset NAME`, or give a NetCDF path there instead.")
    p.set_defaults(func=run)


def run(args) -> int:
    from rsa_bridge.catalogue import format_rows, read_index

    print(format_rows(read_index()))
    return 0
