"""``rsa-bridge layers --model NAME``: the layer names a model accepts, with output shapes and unit counts.

The model is built on the meta device (no weights are allocated or downloaded) and one forward pass
on a meta tensor gives every layer's output shape, so listing works offline for every torchvision
builder (and for sources such as ``timm:NAME`` whose libraries are installed).
"""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``layers`` sub-command."""
    parser = subparsers.add_parser(
        "layers",
        help="list a model's layer aliases and module paths, with output shapes",
        description=(
            "List the layer names a model accepts in --layers: readable aliases (stem, block3, stage2, pooled, "
            "logits, conv1, fc6, ...) with the module path each names, its output shape and unit count "
            "(inferred on the meta device: no weights), marking the default layers. Any module path works too "
            "(--all lists them), as do globs (features.*) and presets (default, blocks, all)."
        ),
    )
    parser.add_argument("--model", required=True,
                        help="torchvision model name (alexnet, mobilenet_v2, vit_b_16, ...) or SOURCE:NAME")
    parser.add_argument("--all", action="store_true", help="also list every module path of the model")
    parser.set_defaults(func=run)


def _row(mark: str, name: str, path: str, kind: str, shape, widths: tuple[int, int, int]) -> str:
    from extractors.shapes import unit_count

    if shape is None:
        text, units = "?", ""
    elif isinstance(shape, str):
        text, units = f"({shape}: not usable)", ""
    else:
        text, units = "x".join(map(str, shape)) or "scalar", f"{unit_count(shape):,}"
    w_name, w_path, w_kind = widths
    return f"{mark} {name:<{w_name}}  {path:<{w_path}}  {kind:<{w_kind}}  {text:<16} {units:>11}".rstrip()


def run(args: argparse.Namespace) -> int:
    """Print the table; returns the exit code."""
    from extractors import build_skeleton, list_layers
    from extractors.shapes import call_counts, input_size, output_shapes

    model = build_skeleton(args.model)
    info = model.rsa_bridge_info
    rows = list_layers(model, modules=True if args.all else None)
    modules = dict(model.named_modules())
    shapes = output_shapes(model)
    defaults = set(info.default_layers) | {d.partition("@")[0] for d in info.default_layers}  # V2@all marks V2
    aliases = [(name, path) for name, path in rows if name in info.aliases]
    paths = [path for name, path in rows if name not in info.aliases]
    size = input_size(model)
    where = f"output shapes for one {size}x{size} image, inferred on the meta device" if shapes else \
        "output shapes unknown (this model does not run on the meta device)"
    kind_w = max([len("module")] + [len(type(m).__name__) for m in modules.values()])
    if aliases:
        print(f"# {info.name}: {len(aliases)} layer aliases; * = default layer (used when --layers is not given); "
              f"{where}")
        widths = (max(len("alias"), *(len(n) for n, _ in aliases)),
                  max(len("module path"), *(len(p) for _, p in aliases)), kind_w)
        print(f"  {'alias':<{widths[0]}}  {'module path':<{widths[1]}}  {'module':<{kind_w}}  {'output':<16} "
              f"{'units':>11}")
        for name, path in aliases:
            print(_row("*" if name in defaults else " ", name, path, type(modules[path]).__name__,
                       shapes.get(path), widths))
    else:
        print(f"# {info.name}: no aliases; * = default layer (its top-level children); {where}")
    if paths:
        print(f"# {len(paths)} module paths (each works in --layers; globs such as features.* and the presets "
              "default, blocks, all too)")
        width = max(len("module path"), *(len(p) for p in paths))
        print(f"  {'module path':<{width}}  {'module':<{kind_w}}  {'output':<16} {'units':>11}")
        for path in paths:
            line = _row("*" if path in defaults and not aliases else " ", path, "", type(modules[path]).__name__,
                        shapes.get(path), (width, 0, kind_w))
            print(line.replace(f"{path:<{width}}    ", f"{path:<{width}}  ", 1))
    else:
        print(f"# any module path works too: rsa-bridge layers --model {args.model} --all")
    _print_calls(rows if aliases else [(p, p) for p in paths], call_counts(model))
    return 0


def _print_calls(rows: list, counts: dict[str, int]) -> None:
    """Lines for the listed layers whose module runs several times per pass (recurrent areas, shared modules)."""
    several = [(name, counts[path]) for name, path in rows if counts.get(path, 0) > 1]
    if not several:
        return
    print("# time steps: these modules run several times in one forward pass; read call t with NAME@t "
          "(0-based), every call with NAME@all (one layer per step)")
    width = max(len(name) for name, _ in several)
    for name, count in several:
        print(f"  {name:<{width}}  {count} steps: {name}@0 .. {name}@{count - 1}, {name}@all")
