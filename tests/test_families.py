"""Default layers of every torchvision classification family, globs and presets, shapes on the meta device."""
from __future__ import annotations

import argparse
import math

import pytest
import torch
from torchvision import models as tvm

from extractors import build_skeleton, extract, resolve_layers
from extractors.families import SPECS
from extractors.shapes import output_shapes
from rsa_bridge.errors import RSABridgeError

#: the smallest builder of each family in extractors.families.SPECS (+ the v2 variant of EfficientNet)
ONE_PER_FAMILY = ["mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "efficientnet_v2_s", "convnext_tiny",
                  "regnet_x_400mf", "densenet121", "googlenet", "inception_v3", "squeezenet1_1",
                  "shufflenet_v2_x0_5", "mnasnet0_5", "vit_b_16", "swin_t", "maxvit_t"]


def test_every_family_is_covered():
    covered = {type(build_skeleton(name)) for name in ONE_PER_FAMILY}
    assert all(any(issubclass(c, spec.classes) for c in covered) for spec in SPECS.values())


@pytest.mark.parametrize("name", ONE_PER_FAMILY)
def test_family_defaults_are_the_stem_blocks_pooled_and_logits(name):
    model = build_skeleton(name)
    info = model.rsa_bridge_info
    assert info.default_layers[0] == "stem" and info.default_layers[-1] == "logits"
    blocks = info.presets["blocks"]
    assert len(blocks) >= 3 and all(b in info.default_layers for b in blocks)
    shapes = output_shapes(model)
    paths = [info.aliases[a] for a in info.default_layers]
    assert all(isinstance(shapes[p], tuple) for p in paths), {p: shapes.get(p) for p in paths}
    # logits: what the whole network outputs (its own forward, independent of our hooks)
    size = 299 if name == "inception_v3" else 224
    with torch.no_grad():
        out = model(torch.empty(1, 3, size, size, device="meta"))
    assert math.prod(shapes[info.aliases["logits"]]) == math.prod(out.shape[1:]) == 1000
    # pooled: the classifier's input width (first Linear after it)
    if "pooled" in info.aliases and name not in ("vit_b_16",):
        after = list(shapes)[list(shapes).index(info.aliases["pooled"]) + 1:]  # forward order
        linear = next(model.get_submodule(p) for p in after if isinstance(model.get_submodule(p), torch.nn.Linear))
        assert math.prod(shapes[info.aliases["pooled"]]) == linear.in_features
    # stem and blocks come in network order: hook order of a forward pass
    order = list(shapes)
    positions = [order.index(p) for p in paths]
    assert positions == sorted(positions)


def test_aliases_equal_direct_module_outputs_on_a_real_network():
    net = tvm.mobilenet_v3_small(weights=None).eval()
    net.rsa_bridge_info = build_skeleton("mobilenet_v3_small").rsa_bridge_info  # aliases only; no transform use
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    acts = extract(net, x, ["stem", "pooled", "logits"], progress=False)
    with torch.no_grad():
        stem = net.features[0](x)
        pooled = net.avgpool(net.features(x))
        logits = net(x)
    torch.testing.assert_close(torch.from_numpy(acts["stem"].values), stem.flatten(1), rtol=0, atol=1e-5)
    torch.testing.assert_close(torch.from_numpy(acts["pooled"].values), pooled.flatten(1), rtol=0, atol=1e-5)
    torch.testing.assert_close(torch.from_numpy(acts["logits"].values), logits, rtol=0, atol=1e-5)


def test_globs_and_presets():
    model = build_skeleton("mobilenet_v2")
    children = resolve_layers(model, "features.*")
    assert [p for _, p in children] == [f"features.{i}" for i in range(19)]  # * stays within one name
    deep = resolve_layers(model, "features.1.**")
    assert all(p.startswith("features.1.") for _, p in deep) and len(deep) > 3
    blocks = resolve_layers(model, "blocks")
    assert [n for n, _ in blocks] == [f"block{i}" for i in range(1, 18)]
    assert [n for n, _ in resolve_layers(model, "all")] == list(model.rsa_bridge_info.aliases)
    assert resolve_layers(model, "stem,blocks")[0] == ("stem", "features.0")
    with pytest.raises(RSABridgeError, match="matches no layer"):
        resolve_layers(model, "nothing.*")


def test_custom_module_defaults_to_children_and_hint_does_not_name_a_bad_command():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
            self.pool = torch.nn.AdaptiveAvgPool2d(1)

        def forward(self, x):
            return self.pool(self.body(x))

    net = Net().eval()
    assert resolve_layers(net, None) == [("body", "body"), ("pool", "pool")]
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    acts = extract(net, x, None, progress=False)
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(acts["pool"].values), net(x).flatten(1))
    with pytest.raises(RSABridgeError) as err:
        resolve_layers(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)), ["nope"])
    assert "rsa-bridge layers --model sequential" not in str(err.value)
    assert "extractors.list_layers(model)" in str(err.value)


def test_layers_command_prints_shapes_and_units(capsys):
    from rsa_bridge.app.commands import layers as layers_cmd

    assert layers_cmd.run(argparse.Namespace(model="mobilenet_v2", all=False)) == 0
    out = capsys.readouterr().out
    real = tvm.mobilenet_v2(weights=None).eval()
    with torch.no_grad():
        stem = real.features[0](torch.zeros(1, 3, 224, 224))
    c, h, w = stem.shape[1:]
    line = next(line for line in out.splitlines() if line.startswith("* stem"))
    assert f"{c}x{h}x{w}" in line and f"{c * h * w:,}" in line
    assert "block17" in out and "logits" in out and "1,000" in out
