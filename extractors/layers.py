"""Layer names: list a model's aliases and module paths, and resolve requested names to modules.

``--layers`` takes, comma-separated and in the order wanted: aliases (``conv1``, ``stage2``), module
paths (``features.3``), globs over both (``features.*``: ``*`` stays within one dotted segment, ``**``
crosses dots, so ``features.*`` is the children of ``features``), and presets: ``default`` (the
model's default list), ``blocks`` (each block/stage output) and ``all`` (every alias; every leaf
module for a model without aliases). A name given twice is an error; a layer reached twice through
a glob or preset is kept once.

A module that runs several times in one forward pass (a recurrent block such as CORnet's ``V2``, a
shared ReLU) is read per call: ``V2@1`` is its call 1 (0-based, in call order), ``V2@all`` every call
(expanded to ``V2@0``, ``V2@1``, ... once a probe pass has counted them; see :mod:`extractors.hooks`).
The suffix works after aliases, module paths, globs and presets alike (``blocks@all``).
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from torch import nn

from extractors.hooks import split_call
from extractors.models import ModelInfo, build_skeleton, model_info
from rsa_bridge.errors import RSABridgeError, preview

#: preset names accepted in ``--layers``
PRESETS = ("default", "blocks", "all")


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


def glob_regex(pattern: str) -> re.Pattern:
    """``*`` = any run of characters without a dot, ``**`` = any run, ``?`` = one non-dot character."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append(r"[^.]*")
            i += 1
        elif pattern[i] == "?":
            out.append(r"[^.]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def _is_glob(name: str) -> bool:
    return any(c in name for c in "*?")


def _hint(info: ModelInfo) -> str:
    if info.source == "user":
        return "extractors.list_layers(model) lists them"
    return f"`rsa-bridge layers --model {info.name} --all` lists them"


def _preset(model: nn.Module, info: ModelInfo, name: str) -> list[str]:
    if name == "default":
        return list(info.default_layers)
    if name == "blocks":
        return list(info.presets.get("blocks") or [n for n, _ in model.named_children()])
    # all: every alias, or every leaf module of a model without aliases
    return list(info.aliases) or [n for n, m in model.named_modules() if n and not list(m.children())]


def resolve_layers(model: nn.Module, layers: Sequence[str] | str | None) -> list[tuple[str, str]]:
    """Map requested layer names (aliases, module paths, globs, presets) to ``(name, module path)``.

    Args:
        model: the module (aliases come from ``model.rsa_bridge_info`` or its torchvision family).
        layers: names in the order wanted; a string is split at commas; None: the model's default
            layers (for a module without aliases: its top-level children).

    Raises:
        RSABridgeError: an unknown name or a glob matching nothing (the message lists close valid
            names and how to list them all), a name given twice, no layers at all.
    """
    info = model_info(model)
    paths = module_paths(model)
    names = ["default"] if layers is None else _split(layers)
    if not names:
        raise RSABridgeError("no layers were named; give aliases or module paths, e.g. conv1 or features.0")
    known = set(paths)
    resolved: list[tuple[str, str]] = []
    seen: set[str] = set()
    for request in names:
        if request in seen:
            raise RSABridgeError(f"layer {request!r} is requested twice; name each layer once")
        seen.add(request)
        name, call = split_call(request) if request not in known else (request, None)
        suffix = "" if call is None else f"@{call}"
        if name in info.aliases or name in known:
            expanded = [name]
        elif name in PRESETS:
            expanded = _preset(model, info, name)
            if not expanded:
                raise RSABridgeError(f"{info.name} has no layers in preset {name!r}; name module paths, "
                                     f"e.g. {preview(paths, 4)}; {_hint(info)}")
        elif _is_glob(name):
            regex = glob_regex(name)
            expanded = [c for c in dict.fromkeys([*info.aliases, *paths]) if regex.match(c)]
            if not expanded:
                raise RSABridgeError(f"--layers pattern {name!r} matches no layer of {info.name} (* stays within "
                                     f"one dotted name, ** crosses dots); {_hint(info)}")
        else:
            candidates = list(info.aliases) + paths
            close = difflib.get_close_matches(name, candidates, n=4, cutoff=0.6)
            shown = close + [c for c in candidates if c not in close][: 6 - len(close)]
            raise RSABridgeError(
                f"unknown layer {name!r} for {info.name}; valid names include {preview(shown, 6)} "
                f"(or a glob such as features.*, or a preset: {', '.join(PRESETS)}); {_hint(info)}"
            )
        for item in expanded:
            base, own = split_call(item) if item not in known else (item, None)  # presets may hold V2@all
            tail = suffix or ("" if own is None else f"@{own}")
            label, path = base + tail, info.aliases.get(base, base) + tail
            if label not in [n for n, _ in resolved]:
                resolved.append((label, path))
    return resolved
