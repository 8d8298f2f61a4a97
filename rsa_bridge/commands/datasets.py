"""``rsa-bridge datasets``: the shipped neural RDM datasets, their areas and stimulus counts."""
from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("datasets", help="list shipped neural datasets and their areas")
    p.set_defaults(func=run)


def run(args) -> int:
    from rsa_bridge.datasets import list_datasets

    print(list_datasets().to_string(index=False))
    return 0
