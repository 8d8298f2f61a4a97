"""Default layers of every torchvision classification family, by one rule applied to a small record.

Each family is described once by a :class:`FamilySpec` (a registry entry, not a hand list of layers):
where its stem ends, which container holds its blocks or stages (and which of that container's
children count), its last feature map (``head``), its pooled features and its classifier output.
One rule turns a spec into aliases, in network order:

- ``stem``: output of the stem (before the first block);
- ``block1..N`` (families whose blocks sit in one flat list: MobileNet, GoogLeNet, Inception,
  SqueezeNet, ViT) or ``stage1..N`` (families built of stage containers: EfficientNet, ConvNeXt,
  RegNet, DenseNet, ShuffleNet, MNASNet, Swin, MaxViT): output of each;
- ``head``: the last feature map where the family has a final convolution/normalisation;
- ``pooled``: the pooled feature vector (or map) the classifier reads, where a module outputs it;
- ``logits``: the classifier's output (1000 ImageNet classes for the shipped weights).

The default layers are all of these; presets ``blocks`` (the block/stage outputs) and ``all``
(every alias) name groups. The same names work for every depth and width of a family
(``efficientnet_b0`` ... ``b7``, ``convnext_tiny`` ... ``large``), because the rule reads the
module tree. Peers: thingsvision and Net2Brain ship per-model hand lists of module names;
Brain-Score's model-tools ask the submitter for layer names.

    >>> from torchvision.models import mobilenet_v2
    >>> table = family_table(mobilenet_v2())
    >>> table.aliases["stem"], table.aliases["block1"], table.aliases["logits"]
    ('features.0', 'features.1', 'classifier.1')
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Union

from torch import nn
from torchvision import models as tvm
from torchvision.models import squeezenet as _squeezenet

#: which children of a container are blocks: a slice, a glob on child names, or a module class
Pick = Union[slice, str, type]


@dataclass(frozen=True)
class FamilySpec:
    """Where a family's layers are.

    Attributes:
        classes: the torchvision model class(es) of the family.
        stem: module path whose output ends the stem.
        container: module path holding the blocks (``""`` = the model itself).
        pick: which of the container's children are blocks (slice, name glob, or module class).
        kind: ``"block"`` or ``"stage"`` (the alias prefix).
        head: last feature map before pooling, or None (``features.-1``: the container's last child).
        pooled: module path outputting the pooled features, or None when pooling is functional.
        logits: module path outputting the class scores.
        layout: glob on module paths -> activation layout (``tokens``: (B, tokens, dim) with a class
            token first; ``nhwc``: channels-last maps), for ``--tokens cls|mean|all``.
    """

    classes: tuple[type[nn.Module], ...]
    stem: str
    container: str
    pick: Pick
    kind: str
    head: str | None
    pooled: str | None
    logits: str
    layout: dict[str, str] = field(default_factory=dict)


#: family name -> spec (aliases for AlexNet, VGG and ResNet live in :mod:`extractors.aliases`)
SPECS: dict[str, FamilySpec] = {
    "mobilenet_v2": FamilySpec((tvm.MobileNetV2,), "features.0", "features", slice(1, -1), "block",
                               "features.-1", "classifier.0", "classifier.1"),
    "mobilenet_v3": FamilySpec((tvm.MobileNetV3,), "features.0", "features", slice(1, -1), "block",
                               "features.-1", "avgpool", "classifier.3"),
    "efficientnet": FamilySpec((tvm.EfficientNet,), "features.0", "features", slice(1, -1), "stage",
                               "features.-1", "avgpool", "classifier.1"),
    "convnext": FamilySpec((tvm.ConvNeXt,), "features.0", "features", slice(1, None, 2), "stage",
                           None, "avgpool", "classifier.2"),
    "regnet": FamilySpec((tvm.RegNet,), "stem", "trunk_output", slice(None), "stage", None, "avgpool", "fc"),
    "densenet": FamilySpec((tvm.DenseNet,), "features.pool0", "features", "denseblock*", "stage",
                           "features.norm5", None, "classifier"),
    "googlenet": FamilySpec((tvm.GoogLeNet,), "maxpool2", "", "inception*", "block", None, "avgpool", "fc"),
    "inception": FamilySpec((tvm.Inception3,), "maxpool2", "", "Mixed_*", "block", None, "avgpool", "fc"),
    "squeezenet": FamilySpec((tvm.SqueezeNet,), "features.2", "features", _squeezenet.Fire, "block",
                             None, None, "classifier.3"),
    "shufflenet": FamilySpec((tvm.ShuffleNetV2,), "maxpool", "", "stage*", "stage", "conv5", None, "fc"),
    "mnasnet": FamilySpec((tvm.MNASNet,), "layers.7", "layers", slice(8, 14), "stage", "layers.-1",
                          "classifier.0", "classifier.1"),
    "vit": FamilySpec((tvm.VisionTransformer,), "conv_proj", "encoder.layers", slice(None), "block", None,
                      "encoder.ln", "heads.head", layout={"encoder*": "tokens"}),
    "swin": FamilySpec((tvm.SwinTransformer,), "features.0", "features", slice(1, None, 2), "stage", "norm",
                       "avgpool", "head", layout={"features*": "nhwc", "norm": "nhwc"}),
    "maxvit": FamilySpec((tvm.MaxVit,), "stem", "blocks", slice(None), "stage", None, "classifier.2",
                         "classifier.5"),
}


def _blocks(model: nn.Module, spec: FamilySpec) -> list[str]:
    """Module paths of the blocks, in order."""
    container = model.get_submodule(spec.container) if spec.container else model
    children = list(container.named_children())
    if isinstance(spec.pick, slice):
        chosen = children[spec.pick]
    elif isinstance(spec.pick, str):
        chosen = [(n, m) for n, m in children if fnmatch.fnmatchcase(n, spec.pick)]
    else:
        chosen = [(n, m) for n, m in children if isinstance(m, spec.pick)]
    prefix = f"{spec.container}." if spec.container else ""
    return [prefix + name for name, _ in chosen]


def spec_for(model: nn.Module) -> FamilySpec | None:
    """The spec of ``model``'s family, or None."""
    for spec in SPECS.values():
        if isinstance(model, spec.classes):
            return spec
    return None


def family_aliases(model: nn.Module, spec: FamilySpec) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(alias -> module path in network order, presets) by the one rule of the module docstring."""
    blocks = _blocks(model, spec)
    aliases = {"stem": spec.stem}
    aliases.update({f"{spec.kind}{i}": path for i, path in enumerate(blocks, 1)})
    for name in ("head", "pooled", "logits"):
        path = getattr(spec, name)
        if path is not None and path.endswith(".-1"):  # the last child, whatever the depth of the variant
            parent = path[:-3]
            path = f"{parent}.{list(model.get_submodule(parent).named_children())[-1][0]}"
        if path is not None:
            aliases[name] = path
    presets = {"blocks": [f"{spec.kind}{i}" for i in range(1, len(blocks) + 1)]}
    return aliases, presets


def layout_of(spec: FamilySpec | None, path: str) -> str | None:
    """The declared activation layout of a module path (``tokens``, ``nhwc``), or None."""
    if spec is None:
        return None
    for pattern, layout in spec.layout.items():
        if fnmatch.fnmatchcase(path, pattern):
            return layout
    return None


def family_table(model: nn.Module):
    """The :class:`extractors.aliases.AliasTable` of a model of a family in :data:`SPECS` (else empty)."""
    from extractors.aliases import AliasTable

    spec = spec_for(model)
    if spec is None:
        return AliasTable()
    modules = dict(model.named_modules())
    try:
        aliases, presets = family_aliases(model, spec)
    except AttributeError:  # a container missing: not torchvision's layout
        return AliasTable()
    if any(path not in modules for path in aliases.values()):
        return AliasTable()
    return AliasTable(aliases, list(aliases), presets)


__all__ = ["SPECS", "FamilySpec", "family_aliases", "family_table", "layout_of", "spec_for"]
