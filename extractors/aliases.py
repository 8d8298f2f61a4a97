"""Readable layer names (aliases) for torchvision model families, and their default layer lists.

An alias names the output of one module: ``conv1`` of AlexNet is the output of ``features.0``
(before its in-place ReLU), ``relu1`` the output of ``features.1``. Tables are looked up by the
model's class (:data:`FAMILIES`, a registry), so a model built by hand with
``torchvision.models.alexnet()`` gets the same aliases as one from :func:`extractors.load_model`.
Every table is checked against the actual module tree (path exists, module type fits the alias);
a model whose layout differs from torchvision's gets no aliases rather than wrong ones.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from torch import nn
from torchvision import models as tvm


@dataclass(frozen=True)
class AliasTable:
    """Aliases of one model.

    Attributes:
        aliases: alias -> module path, in network order (``{"conv1": "features.0", ...}``).
        defaults: the aliases (or, for a model without aliases, the module paths) used when no
            layers are requested.
        presets: named groups of aliases usable in ``--layers`` (``blocks``; ``all`` and
            ``default`` are added by :func:`extractors.layers.resolve_layers`).
    """

    aliases: dict[str, str] = field(default_factory=dict)
    defaults: list[str] = field(default_factory=list)
    presets: dict[str, list[str]] = field(default_factory=dict)


#: alias prefix -> module types an alias with that prefix may name (checked against the model)
_EXPECTED_TYPES: dict[str, tuple[type[nn.Module], ...]] = {
    "conv": (nn.Conv2d,),
    "bn": (nn.BatchNorm2d,),
    "relu": (nn.ReLU,),
    "pool": (nn.MaxPool2d, nn.AvgPool2d),
    "fc": (nn.Linear,),
    "layer": (nn.Sequential,),
    "avgpool": (nn.AdaptiveAvgPool2d,),
}


def _alexnet(model: nn.Module) -> AliasTable:
    """torchvision AlexNet: ``conv*`` before the in-place ReLUs, ``fc6``/``fc7`` before theirs."""
    aliases = {
        "conv1": "features.0", "relu1": "features.1", "pool1": "features.2",
        "conv2": "features.3", "relu2": "features.4", "pool2": "features.5",
        "conv3": "features.6", "relu3": "features.7",
        "conv4": "features.8", "relu4": "features.9",
        "conv5": "features.10", "relu5": "features.11", "pool5": "features.12",
        "fc6": "classifier.1", "relu6": "classifier.2",
        "fc7": "classifier.4", "relu7": "classifier.5",
        "fc8": "classifier.6",
    }  # fmt: skip
    defaults = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
    return AliasTable(aliases, defaults, {"blocks": defaults})


def _vgg(model: nn.Module) -> AliasTable:
    """torchvision VGG (any depth, with or without batch norm), read off the module tree.

    ``conv{block}_{i}`` / ``bn{block}_{i}`` / ``relu{block}_{i}`` count the convolutions inside a
    block, ``pool{block}`` ends a block (Simonyan & Zisserman's naming); ``fc6``, ``fc7``, ``fc8``
    are the classifier's Linear layers before their ReLUs, ``relu6``, ``relu7`` after.
    """
    aliases: dict[str, str] = {}
    block, conv = 1, 0
    for index, module in enumerate(model.features):
        path = f"features.{index}"
        if isinstance(module, nn.Conv2d):
            conv += 1
            aliases[f"conv{block}_{conv}"] = path
        elif isinstance(module, nn.BatchNorm2d):
            aliases[f"bn{block}_{conv}"] = path
        elif isinstance(module, nn.ReLU):
            aliases[f"relu{block}_{conv}"] = path
        elif isinstance(module, nn.MaxPool2d):
            aliases[f"pool{block}"] = path
            block, conv = block + 1, 0
    fc = 6
    for index, module in enumerate(model.classifier):
        path = f"classifier.{index}"
        if isinstance(module, nn.Linear):
            aliases[f"fc{fc}"] = path
            fc += 1
        elif isinstance(module, nn.ReLU):
            aliases[f"relu{fc - 1}"] = path
    defaults = [f"pool{b}" for b in range(1, block)] + [f"fc{i}" for i in range(6, fc)]
    return AliasTable(aliases, defaults, {"blocks": defaults})


def _resnet(model: nn.Module) -> AliasTable:
    """torchvision ResNet / ResNeXt / Wide ResNet: stem, the four stages, pooling, classifier."""
    aliases = {
        "conv1": "conv1", "bn1": "bn1", "relu1": "relu", "pool1": "maxpool",
        "layer1": "layer1", "layer2": "layer2", "layer3": "layer3", "layer4": "layer4",
        "avgpool": "avgpool", "fc": "fc",
    }  # fmt: skip
    defaults = ["pool1", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc"]
    return AliasTable(aliases, defaults, {"blocks": ["layer1", "layer2", "layer3", "layer4"]})


#: family name -> (torchvision model class, alias builder); looked up with isinstance
FAMILIES: dict[str, tuple[type[nn.Module], Callable[[nn.Module], AliasTable]]] = {
    "alexnet": (tvm.AlexNet, _alexnet),
    "vgg": (tvm.VGG, _vgg),
    "resnet": (tvm.ResNet, _resnet),
}


def _fits(model: nn.Module, table: AliasTable) -> bool:
    """True when every alias names an existing module of a type its prefix allows."""
    modules = dict(model.named_modules())
    for alias, path in table.aliases.items():
        if path not in modules:
            return False
        prefix = alias.rstrip("0123456789_")
        expected = _EXPECTED_TYPES.get(prefix)
        if expected and not isinstance(modules[path], expected):
            return False
    return all(d in table.aliases for d in table.defaults)


def alias_table(model: nn.Module) -> AliasTable:
    """The alias table of ``model``'s family, checked against its modules.

    Families here (AlexNet, VGG, ResNet) and in :mod:`extractors.families` (every other torchvision
    classifier) get aliases; any other module gets no aliases and its top-level children as defaults.
    """
    from extractors.families import family_table

    for cls, build in FAMILIES.values():
        if isinstance(model, cls):
            table = build(model)
            return table if _fits(model, table) else _children_table(model)
    table = family_table(model)
    return table if table.aliases else _children_table(model)


def _children_table(model: nn.Module) -> AliasTable:
    """No aliases; defaults = the model's top-level children (module paths), a sensible first look."""
    children = [name for name, _ in model.named_children()]
    return AliasTable({}, children, {"blocks": children})
