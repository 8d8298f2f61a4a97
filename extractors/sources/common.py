"""What the built-in sources share: weights arguments, strict state-dict loading, generic aliases, records."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from extractors.aliases import AliasTable
from extractors.models import (
    OFFLINE_ENV,
    ModelInfo,
    _BUILD_LOCK,
    _load_state_strict,
    read_state_dict,
)
from extractors.provenance import describe_transform, state_dict_sha256
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.provenance import file_sha256


def weights_kind(weights: Any) -> tuple[str, Path | None]:
    """("default", None) | ("none", None) | ("file", path); RSABridgeError for anything else."""
    if weights is None or (isinstance(weights, str) and weights.strip().lower() == "none"):
        return "none", None
    if isinstance(weights, str) and weights.strip().lower() == "default":
        return "default", None
    path = Path(str(weights))
    if not path.exists():
        raise RSABridgeError(f"weights {str(weights)!r} is neither default, none nor an existing state-dict file; "
                             "pass --weights default, --weights none or --weights PATH")
    return "file", path


def offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def hub_cache() -> str:
    """The Hugging Face hub cache folder (``$HF_HUB_CACHE`` / ``$HF_HOME/hub`` / ``~/.cache/huggingface/hub``)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    return str(Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub")


def seeded(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    """``build()`` under a private RNG seeded with ``seed`` (the global torch RNG is left as it was)."""
    with _BUILD_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:240]


def load_file(model: nn.Module, path: Path, label: str) -> str:
    """Load a state-dict file strictly into ``model``; returns its SHA-256."""
    _load_state_strict(model, read_state_dict(path), label, path)
    return file_sha256(path)


def generic_table(model: nn.Module) -> AliasTable:
    """Aliases by one rule for any transformer/CNN: ``block1..N`` = the children of the module list with
    the most children (a ViT's encoder layers, a ResNet stage list ...); defaults = those blocks."""
    best_path, best = "", []
    for path, module in model.named_modules():
        if isinstance(module, (nn.ModuleList, nn.Sequential)):
            children = [n for n, _ in module.named_children()]
            if len(children) > len(best):
                best_path, best = path, children
    if len(best) < 2:
        children = [n for n, _ in model.named_children()]
        return AliasTable({}, children, {"blocks": children})
    aliases = {f"block{i}": f"{best_path}.{n}" if best_path else n for i, n in enumerate(best, 1)}
    return AliasTable(aliases, list(aliases), {"blocks": list(aliases)})


def attach(model: nn.Module, *, name: str, weights: str, source: str, transform: Any, weights_sha256: str = "",
           seed: int | None = None, extra: dict | None = None) -> nn.Module:
    """Set ``model.rsa_bridge_info`` (aliases by :func:`generic_table`, state-dict hash recorded)."""
    table = generic_table(model)
    model.rsa_bridge_info = ModelInfo(
        name=name, weights=weights, weights_sha256=weights_sha256, transform=transform,
        preprocessing=describe_transform(transform), aliases=dict(table.aliases),
        default_layers=list(table.defaults), presets=dict(table.presets), seed=seed,
        state_sha256="" if any(t.device.type == "meta" for t in model.state_dict().values()) else
        state_dict_sha256(model),
        source=source, extra=dict(extra or {}))
    return model
