"""Layer names: list a model's aliases and module paths, and resolve requested names to modules."""
from __future__ import annotations

import difflib
from collections.abc import Sequence

from torch import nn

from extractors.models import build_skeleton, model_info
from rsa_bridge.errors import RSABridgeError, preview


def module_paths(model: nn.Module) -> list[str]:
    """Every named submodule path of ``model`` in definition order (``features``, ``features.0``, ...)."""
    return [name for name, _ in model.named_modules() if name]


def list_layers(model_or_name: nn.Module | str, *, modules: bool | None = None) -> list[tuple[str, str]]:
    """The layer names a model accepts, as ``(name, module path)`` pairs.

    Args:
        model_or_name: a module, or a torchvision builder name (built on the meta device: no weights
            are allocated or downloaded).
        modules: also list every module path (as ``(path, path)``) after the aliases. None: only
            the aliases when the model has any, else every module path.

    Returns:
        Aliases first, in network order, then (if asked) module paths.
    """
    model = build_skeleton(model_or_name) if isinstance(model_or_name, str) else model_or_name
    aliases = list(model_info(model).aliases.items())
    if modules is None:
        modules = not aliases
    return aliases + ([(p, p) for p in module_paths(model)] if modules else [])


def _split(layers: Sequence[str] | str) -> list[str]:
    if isinstance(layers, str):
        layers = layers.split(",")
    return [str(name).strip() for name in layers if str(name).strip()]


def resolve_layers(model: nn.Module, layers: Sequence[str] | str | None) -> list[tuple[str, str]]:
    """Map requested layer names (aliases or module paths) to ``(name as given, module path)``.

    Args:
        model: the module (aliases come from ``model.rsa_bridge_info`` or its torchvision family).
        layers: names in the order wanted; a string is split at commas; None: the model's default
            layers.

    Raises:
        RSABridgeError: an unknown name (the message lists close valid names and the
            ``rsa-bridge layers`` command), a name given twice, or None for a model without defaults.
    """
    info = model_info(model)
    paths = module_paths(model)
    if layers is None:
        if not info.default_layers:
            raise RSABridgeError(
                f"{info.name} has no default layer list; name the layers (--layers / layers=) as module paths "
                f"such as {preview(paths, 4)}; `rsa-bridge layers --model {info.name} --all` lists them"
            )
        names = list(info.default_layers)
    else:
        names = _split(layers)
        if not names:
            raise RSABridgeError("no layers were named; give aliases or module paths, e.g. conv1 or features.0")
    known = set(paths)
    resolved: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise RSABridgeError(f"layer {name!r} is requested twice; name each layer once")
        seen.add(name)
        if name in info.aliases:
            resolved.append((name, info.aliases[name]))
        elif name in known:
            resolved.append((name, name))
        else:
            candidates = list(info.aliases) + paths
            close = difflib.get_close_matches(name, candidates, n=4, cutoff=0.6)
            shown = close + [c for c in candidates if c not in close][: 6 - len(close)]
            raise RSABridgeError(
                f"unknown layer {name!r} for {info.name}; valid names include {preview(shown, 6)}; "
                f"`rsa-bridge layers --model {info.name}` lists them all"
            )
    return resolved
