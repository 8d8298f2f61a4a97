"""The ``rsa-bridge`` command line: parses arguments, calls the library, prints. No science here.

Sub-commands live in their own modules, looked up lazily in :data:`COMMANDS` (a registry from
command name to module path). Each module defines ``register(subparsers)``, which adds its parser
and sets ``func`` to a callable ``(args) -> int``. User errors (:data:`rsa_bridge.errors.USER_ERRORS`)
become one line on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

#: command name -> module that defines ``register(subparsers)``
COMMANDS: dict[str, str] = {
    "compare": "rsa_bridge.commands.compare",
    "layers": "rsa_bridge.commands.layers",
    "datasets": "rsa_bridge.commands.datasets",
    "stimuli": "rsa_bridge.commands.stimuli_cmd",
    "neural": "rsa_bridge.commands.neural",
    "missed-detections": "analyses.missed_detections.cli",
    "depth-mask": "analyses.depth_mask.cli",
    "cache": "rsa_bridge.commands.cache",
    "units": "analyses.unit_attributes.cli",
    "pretrain": "analyses.pretrain.cli",
    "figure": "rsa_bridge.commands.figure",
}


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every registered sub-command."""
    from rsa_bridge.provenance import package_version

    parser = argparse.ArgumentParser(
        prog="rsa-bridge",
        description="Compare deep-network layers with primate visual cortex by representational similarity.",
    )
    parser.add_argument("--version", action="version", version=f"rsa-bridge {package_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMANDS.values():
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rsa-bridge`` script; returns the exit code."""
    from rsa_bridge.errors import USER_ERRORS

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as err:
        print(f"rsa-bridge {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `rsa-bridge datasets | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"rsa-bridge {args.command}: interrupted; nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
