"""Model sources beyond torchvision (timm, OpenCLIP, Hugging Face, plugins) and transformer token pooling.

Architectures only (no pretrained weights exist on these machines): timm pretrained=False, OpenCLIP without
a pretrained tag, transformers from a config saved to a folder. Each number is checked against the
library's own forward pass.
"""
from __future__ import annotations

import dataclasses
from importlib import metadata

import pytest
import torch

import extractors
from extractors.sources import registry
from rsa_bridge.app.cli import main
from rsa_bridge.errors import RSABridgeError

timm = pytest.importorskip("timm", reason="timm not installed (pip install 'rsa-bridge[timm]')")


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("RSA_BRIDGE_OFFLINE", "1")  # never wait on a network in tests


def _x(n=3, size=32, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _hooked(model, path, x):
    """A module's output by a plain torch hook (independent of rsa-bridge's hooks)."""
    seen = {}

    def store(module, inputs, output):
        seen.setdefault("o", output)

    handle = model.get_submodule(path).register_forward_hook(store)
    with torch.no_grad():
        model(x)
    handle.remove()
    return seen["o"]


def test_timm_untrained_vit_blocks_tokens_and_preprocessing():
    from timm.data import create_transform, resolve_data_config

    model = extractors.load_model("timm:test_vit", weights="none")
    info = model.rsa_bridge_info
    assert info.weights == "none" and info.seed == 0 and info.source == "timm" and info.name == "timm:test_vit"
    assert repr(info.transform) == repr(create_transform(**resolve_data_config({}, model=model)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the same seeded initialisation, built by hand
        again = timm.create_model("test_vit", pretrained=False).eval()
    from extractors.provenance import state_dict_sha256
    assert state_dict_sha256(again) == info.state_sha256
    x = _x(size=resolve_data_config({}, model=model)["input_size"][-1])
    last = info.default_layers[-1]
    expected = _hooked(model, info.aliases[last], x)  # (B, tokens, dim)
    for mode, want in (("all", expected.flatten(1)), ("cls", expected[:, 0]),
                       ("mean", expected[:, model.num_prefix_tokens:].mean(1))):
        model.rsa_bridge_info.extra["token_pooling"] = mode
        acts = extractors.extract(model, x, [last], progress=False)
        torch.testing.assert_close(torch.from_numpy(acts[last].values), want, rtol=0, atol=1e-5)
        assert acts[last].attrs["token_pooling"] == mode


def test_timm_pretrained_offline_is_one_line_never_random(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(RSABridgeError, match=r"not in the Hugging Face cache at .*--weights none") as err:
        extractors.load_model("timm:test_vit", weights="default")
    assert "\n" not in str(err.value)


def test_hf_model_from_a_config_folder_equals_transformers(tmp_path):
    transformers = pytest.importorskip("transformers", reason="transformers not installed (rsa-bridge[hf])")
    config = transformers.ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                    intermediate_size=64, image_size=32, patch_size=8)
    torch.manual_seed(3)
    reference = transformers.ViTModel(config).eval()
    reference.save_pretrained(tmp_path)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    model = extractors.load_model(f"hf:{tmp_path}", weights="default")
    info = model.rsa_bridge_info
    assert info.weights == f"hf:{tmp_path}" and list(info.aliases) == ["block1", "block2"]
    x = _x(size=32)
    with torch.no_grad():
        hidden = reference(pixel_values=x, output_hidden_states=True).hidden_states  # transformers' own
    acts = extractors.extract(model, x, ["block1", "block2"], progress=False)
    torch.testing.assert_close(torch.from_numpy(acts["block2"].values), hidden[2].flatten(1), rtol=0, atol=1e-5)
    model.rsa_bridge_info.extra["token_pooling"] = "cls"
    acts = extractors.extract(model, x, ["block1"], progress=False)
    torch.testing.assert_close(torch.from_numpy(acts["block1"].values), hidden[1][:, 0], rtol=0, atol=1e-5)
    # a layer that returns a tuple: one clear error
    with pytest.raises(RSABridgeError, match="outputs a tuple, not a tensor"):
        extractors.extract(model, x, ["layers.0.attention"], progress=False)
    # a checkpoint whose keys do not match the architecture
    other = transformers.ViTConfig(hidden_size=48, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                   image_size=32, patch_size=8)
    torch.save(transformers.ViTModel(other).state_dict(), tmp_path / "wrong.pt")
    with pytest.raises(RSABridgeError, match="does not fit"):
        extractors.load_model(f"hf:{tmp_path}", weights=str(tmp_path / "wrong.pt"))


def test_openclip_image_tower_without_tag():
    open_clip = pytest.importorskip("open_clip", reason="open_clip not installed (rsa-bridge[openclip])")
    model = extractors.load_model("openclip:RN50", weights="none")
    info = model.rsa_bridge_info
    _, _, preprocess = open_clip.create_model_and_transforms("RN50", pretrained=None)
    assert info.weights == "none" and repr(info.transform) == repr(preprocess) and info.source == "openclip"
    with pytest.raises(RSABridgeError, match="names no pretrained tag"):
        extractors.load_model("openclip:RN50", weights="default")


def test_torchvision_vit_tokens_and_swin_maps():
    vit = extractors.load_model("vit_b_16", weights="none")
    x = _x(n=2, size=224)
    expected = _hooked(vit, "encoder.layers.encoder_layer_0", x)
    vit.rsa_bridge_info.extra["token_pooling"] = "mean"
    acts = extractors.extract(vit, x, ["block1", "logits"], progress=False)
    torch.testing.assert_close(torch.from_numpy(acts["block1"].values), expected[:, 1:].mean(1), rtol=0, atol=1e-5)
    assert acts["logits"].shape == (2, 1000)  # not a token layer: left whole


def test_bad_sources_are_one_line_exit_2(capsys, tmp_path, monkeypatch):
    for spec, text in (("foo:bar", "unknown model source 'foo'"), ("timm:no_such_net", "unknown model 'no_such_net'")):
        code = main(["compare", "--model", spec, "--weights", "none", "--area", "IT", "--bootstrap", "0", "--no-cache"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and text in err, err
    # a missing library names the extra
    missing = dataclasses.replace(registry.SOURCES["timm"], library="no_such_library_xyz")
    monkeypatch.setitem(registry.SOURCES, "timm", missing)
    with pytest.raises(RSABridgeError, match=r"pip install 'rsa-bridge\[timm\]'"):
        extractors.load_model("timm:test_vit", weights="none")


def test_plugins_through_the_entry_point_group(tmp_path, monkeypatch):
    (tmp_path / "good_plugin.py").write_text(
        "import torch\n"
        "from extractors.sources import ModelSource\n"
        "from extractors.sources.common import attach\n"
        "def _load(name, weights, device, seed):\n"
        "    return attach(torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.Flatten()), name='lab:' + name,\n"
        "                  weights='lab-file', source='lab', transform=None)\n"
        "SOURCE = ModelSource(name='lab', load=_load, skeleton=lambda n: _load(n, 'none', 'cpu', 0),\n"
        "                     weights_cache='/lab/weights', preprocessing='none', offline='ask the lab')\n")
    (tmp_path / "bad_plugin.py").write_text("raise ImportError('broken plugin on purpose')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = [metadata.EntryPoint(name="lab", value="good_plugin:SOURCE", group=registry.ENTRY_POINT_GROUP),
           metadata.EntryPoint(name="broken", value="bad_plugin:SOURCE", group=registry.ENTRY_POINT_GROUP)]
    monkeypatch.setattr(registry.metadata, "entry_points", lambda group=None: [e for e in eps if e.group == group])
    monkeypatch.delitem(registry.SOURCES, "lab", raising=False)
    model = extractors.load_model("lab:tiny", weights="none")
    assert model.rsa_bridge_info.source == "lab" and model.rsa_bridge_info.weights == "lab-file"
    assert extractors.resolve_layers(model, None) == [("block1", "0"), ("block2", "1")]
    registry.SOURCES.pop("lab", None)
    with pytest.raises(RSABridgeError, match="plugin 'broken' .* failed to load: ImportError: broken plugin"):
        extractors.load_model("broken:x", weights="none")
