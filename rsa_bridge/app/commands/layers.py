"""``rsa-bridge layers --model NAME``: the layer names (aliases and module paths) a model accepts.

The model is built on the meta device (no weights are allocated or downloaded), so listing works
offline for every torchvision builder.
"""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``layers`` sub-command."""
    parser = subparsers.add_parser(
        "layers",
        help="list a model's layer aliases and module paths",
        description=(
            "List the layer names a model accepts in --layers: readable aliases (conv1, fc6, ...) with "
            "the module path each names, marking the default layers. Any module path works too; --all lists them."
        ),
    )
    parser.add_argument("--model", required=True, help="torchvision model name, e.g. alexnet, vgg16, resnet50")
    parser.add_argument("--all", action="store_true", help="also list every module path of the model")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the table; returns the exit code."""
    from extractors import build_skeleton, list_layers

    model = build_skeleton(args.model)
    info = model.rsa_bridge_info
    rows = list_layers(model, modules=True if args.all else None)
    modules = dict(model.named_modules())
    defaults = set(info.default_layers)
    aliases = [(name, path) for name, path in rows if name in info.aliases]
    paths = [path for name, path in rows if name not in info.aliases]
    if aliases:
        print(f"# {info.name}: {len(aliases)} layer aliases; * = default layer (used when --layers is not given)")
        width = max(len("alias"), *(len(name) for name, _ in aliases))
        path_width = max(len("module path"), *(len(path) for _, path in aliases))
        print(f"  {'alias':<{width}}  {'module path':<{path_width}}  module")
        for name, path in aliases:
            mark = "*" if name in defaults else " "
            print(f"{mark} {name:<{width}}  {path:<{path_width}}  {type(modules[path]).__name__}")
    else:
        print(f"# {info.name}: no aliases and no default layers; pass --layers with module paths from this list")
    if paths:
        print(f"# {len(paths)} module paths (each works in --layers)")
        path_width = max(len("module path"), *(len(path) for path in paths))
        print(f"  {'module path':<{path_width}}  module")
        for path in paths:
            print(f"  {path:<{path_width}}  {type(modules[path]).__name__}")
    else:
        print(f"# any module path works too: rsa-bridge layers --model {info.name} --all")
    return 0
