"""Layer aliases of AlexNet, VGG16 and ResNet50 against their modules, listing, and `rsa-bridge layers`."""
from __future__ import annotations

import argparse

import pytest
import torch
import torchvision
from torch import nn

from extractors import extract, list_layers, load_model, resolve_layers
from rsa_bridge.errors import RSABridgeError

# written out from the issue text and torchvision's AlexNet definition
ALEXNET = {
    "conv1": "features.0", "relu1": "features.1", "pool1": "features.2", "conv2": "features.3",
    "relu2": "features.4", "pool2": "features.5", "conv3": "features.6", "relu3": "features.7",
    "conv4": "features.8", "relu4": "features.9", "conv5": "features.10", "relu5": "features.11",
    "pool5": "features.12", "fc6": "classifier.1", "relu6": "classifier.2", "fc7": "classifier.4",
    "relu7": "classifier.5", "fc8": "classifier.6",
}
# written out from torchvision's VGG cfg "D" ([64, 64, M, 128, 128, M, 256 x3, M, 512 x3, M, 512 x3, M])
VGG16 = {
    "conv1_1": "features.0", "relu1_1": "features.1", "conv1_2": "features.2", "relu1_2": "features.3",
    "pool1": "features.4",
    "conv2_1": "features.5", "relu2_1": "features.6", "conv2_2": "features.7", "relu2_2": "features.8",
    "pool2": "features.9",
    "conv3_1": "features.10", "relu3_1": "features.11", "conv3_2": "features.12", "relu3_2": "features.13",
    "conv3_3": "features.14", "relu3_3": "features.15", "pool3": "features.16",
    "conv4_1": "features.17", "relu4_1": "features.18", "conv4_2": "features.19", "relu4_2": "features.20",
    "conv4_3": "features.21", "relu4_3": "features.22", "pool4": "features.23",
    "conv5_1": "features.24", "relu5_1": "features.25", "conv5_2": "features.26", "relu5_2": "features.27",
    "conv5_3": "features.28", "relu5_3": "features.29", "pool5": "features.30",
    "fc6": "classifier.0", "relu6": "classifier.1", "fc7": "classifier.3", "relu7": "classifier.4",
    "fc8": "classifier.6",
}


def _close(acts, name, expected):
    got = torch.from_numpy(acts[name].values.reshape(expected.shape))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_alexnet_aliases_and_defaults():
    assert dict(list_layers("alexnet")) == ALEXNET
    assert list(dict(list_layers("alexnet"))) == list(ALEXNET)  # network order
    plain = torchvision.models.alexnet()  # no rsa_bridge_info: aliases come from the class
    assert resolve_layers(plain, None) == [(n, ALEXNET[n]) for n in
                                           ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]]
    assert resolve_layers(plain, "conv1, features.4,fc8") == [("conv1", "features.0"), ("features.4", "features.4"),
                                                              ("fc8", "classifier.6")]
    with pytest.raises(RSABridgeError, match="requested twice"):
        resolve_layers(plain, ["fc8", "fc8"])
    everything = list_layers("alexnet", modules=True)
    assert everything[: len(ALEXNET)] == list(ALEXNET.items())
    assert ("classifier.3", "classifier.3") in everything[len(ALEXNET):]


def test_model_without_aliases_lists_module_paths_and_defaults_to_its_children():
    custom = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten())
    rows = list_layers(custom)
    assert rows[0] == ("0", "0") and ("2", "2") in rows
    assert resolve_layers(custom, None) == [("0", "0"), ("1", "1"), ("2", "2")]  # its top-level children
    skeleton = torchvision.models.squeezenet1_1()  # a family of extractors.families: aliases now
    assert resolve_layers(skeleton, ["stem", "logits"]) == [("stem", "features.2"), ("logits", "classifier.3")]
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    acts = extract(skeleton.eval(), x, ["features.0"], progress=False)
    with torch.no_grad():
        _close(acts, "features.0", skeleton.features[0](x))


@pytest.mark.slow  # building VGG16's 138 M random weights takes seconds
def test_vgg16_aliases_match_modules_and_outputs():
    model = load_model("vgg16", weights="none")
    info = model.rsa_bridge_info
    assert info.aliases == VGG16
    assert info.default_layers == ["pool1", "pool2", "pool3", "pool4", "pool5", "fc6", "fc7", "fc8"]
    # 64x64 inputs: five poolings leave 2x2, the adaptive average pool brings it to 7x7
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    acts = extract(model, x, ["conv1_1", "relu3_3", "pool5", "fc6", "relu7", "fc8"], progress=False)
    with torch.no_grad():
        conv1_1 = model.features[0](x)
        relu3_3 = model.features[:16](x)
        pool5 = model.features(x)
        fc6 = model.classifier[0](torch.flatten(model.avgpool(pool5), 1))
        relu7 = torch.relu(model.classifier[3](torch.relu(fc6)))
        fc8 = model(x)
    assert conv1_1.min() < 0
    for name, expected in [("conv1_1", conv1_1), ("relu3_3", relu3_3), ("pool5", pool5), ("fc6", fc6),
                           ("relu7", relu7), ("fc8", fc8)]:
        _close(acts, name, expected)
    assert acts["pool5"].attrs["unit_shape"] == [512, 2, 2]


def test_vgg_bn_variant_aliases():
    table = dict(list_layers("vgg16_bn"))
    assert (table["conv1_1"], table["bn1_1"], table["relu1_1"], table["pool1"]) == (
        "features.0", "features.1", "features.2", "features.6")
    assert (table["pool5"], table["fc6"], table["fc8"]) == ("features.43", "classifier.0", "classifier.6")


def test_resnet50_aliases_match_modules_and_outputs():
    model = load_model("resnet50", weights="none")
    info = model.rsa_bridge_info
    assert info.aliases == {"conv1": "conv1", "bn1": "bn1", "relu1": "relu", "pool1": "maxpool",
                            "layer1": "layer1", "layer2": "layer2", "layer3": "layer3", "layer4": "layer4",
                            "avgpool": "avgpool", "fc": "fc"}
    assert info.default_layers == ["pool1", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc"]
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    acts = extract(model, x, progress=False)
    with torch.no_grad():
        pool1 = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        layer1 = model.layer1(pool1)
        layer4 = model.layer4(model.layer3(model.layer2(layer1)))
        avgpool = model.avgpool(layer4)
        fc = model(x)
    for name, expected in [("pool1", pool1), ("layer1", layer1), ("layer4", layer4), ("avgpool", avgpool),
                           ("fc", fc)]:
        _close(acts, name, expected)
    assert acts["layer4"].attrs["unit_shape"] == [2048, 2, 2]
    # the ReLU inside a bottleneck block runs three times per pass: an error naming it and its block
    with pytest.raises(RSABridgeError, match=r"'layer1.0.relu'.*runs 3 times.*'layer1.0'"):
        extract(model, x, ["layer1.0.relu"], progress=False)


def _run_cli(argv):
    from rsa_bridge.app.commands import layers

    parser = argparse.ArgumentParser()
    layers.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_layers_command_prints_aliases_and_defaults(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # listing needs no weights at all
    monkeypatch.setenv("RSA_BRIDGE_OFFLINE", "1")
    assert _run_cli(["layers", "--model", "alexnet"]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = {line[2:].split()[0]: (line[0], line[2:].split()[1:]) for line in out if not line.startswith("#")}
    rows = {k: (mark, cols[:2], cols[2:]) for k, (mark, cols) in rows.items()}
    assert rows["conv1"][:2] == ("*", ["features.0", "Conv2d"]) and rows["relu1"][:2] == (" ", ["features.1", "ReLU"])
    assert rows["conv1"][2] == ["64x55x55", "193,600"]  # AlexNet's conv1: 64 maps of 55x55 for 224 px
    assert rows["fc8"][:2] == ("*", ["classifier.6", "Linear"]) and rows["pool5"][0] == " "
    assert sum(mark == "*" for mark, _, _ in rows.values()) == 8
    assert _run_cli(["layers", "--model", "resnet50", "--all"]) == 0
    text = capsys.readouterr().out
    assert "* layer4" in text and "layer1.0.conv1" in text
    assert not list(tmp_path.rglob("*.pth"))
    with pytest.raises(RSABridgeError, match="unknown model 'vgg17'"):
        _run_cli(["layers", "--model", "vgg17"])


def test_alias_table_is_dropped_when_the_layout_differs():
    class OddAlexNet(torchvision.models.AlexNet):
        def __init__(self):
            super().__init__()
            self.features[0] = nn.Identity()  # conv1 is no longer a Conv2d

    assert list_layers(OddAlexNet())[0] == ("features", "features")
