"""The hook layer: captured outputs equal un-hooked computations, early exit, inputs and ids, errors."""
from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from PIL import Image
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor

from extractors import extract, extract_batches, load_model, record, run_recorded
from rsa_bridge.errors import RSABridgeError
from stimuli import StimulusError, load_stimulus_set


@pytest.fixture(scope="module")
def alexnet() -> nn.Module:
    return load_model("alexnet", weights="none")


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.randn(4, 3, 224, 224, generator=torch.Generator().manual_seed(1))


def _images(folder, names, size=48, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        path = folder / f"{name}.png"
        Image.fromarray(rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def _grid(acts, name, n):
    return torch.from_numpy(acts[name].values.reshape(n, *acts[name].attrs["unit_shape"]))


# --- captured outputs equal computations without hooks ------------------------------------------

def test_conv1_is_cloned_before_the_inplace_relu(alexnet, x):
    acts = extract(alexnet, x, ["conv1", "relu1"], progress=False)
    with torch.no_grad():
        conv1 = alexnet.features[0](x)  # no hooks, no ReLU after it
    assert conv1.min() < 0  # pre-ReLU output has negative values ...
    torch.testing.assert_close(_grid(acts, "conv1", 4), conv1, rtol=0, atol=1e-6)
    torch.testing.assert_close(_grid(acts, "relu1", 4), conv1.clamp(min=0), rtol=0, atol=1e-6)
    # ... which a stored reference (no clone) loses: the in-place ReLU overwrites it
    kept = {}
    handle = alexnet.features[0].register_forward_hook(lambda m, a, out: kept.setdefault("ref", out))
    try:
        with torch.no_grad():
            alexnet(x)
    finally:
        handle.remove()
    assert kept["ref"].min() >= 0


def test_fc_layers_equal_manual_classifier(alexnet, x):
    acts = extract(alexnet, x, ["fc6", "fc7", "relu7", "fc8"], progress=False)
    with torch.no_grad():
        flat = torch.flatten(alexnet.avgpool(alexnet.features(x)), 1)
        fc6 = alexnet.classifier[1](flat)  # dropout is the identity in eval mode
        fc7 = alexnet.classifier[4](torch.relu(fc6))
        fc8 = alexnet(x)
    torch.testing.assert_close(torch.from_numpy(acts["fc6"].values), fc6, rtol=0, atol=1e-6)
    torch.testing.assert_close(torch.from_numpy(acts["fc7"].values), fc7, rtol=0, atol=1e-6)
    torch.testing.assert_close(torch.from_numpy(acts["relu7"].values), torch.relu(fc7), rtol=0, atol=1e-6)
    torch.testing.assert_close(torch.from_numpy(acts["fc8"].values), fc8, rtol=0, atol=1e-6)
    assert fc6.min() < 0 and fc7.min() < 0


def test_equals_torchvision_feature_extractor(alexnet, x):
    layers = {"conv1": "features.0", "relu1": "features.1", "pool2": "features.5", "conv3": "features.6",
              "relu5": "features.11", "pool5": "features.12", "fc6": "classifier.1", "relu6": "classifier.2",
              "fc7": "classifier.4", "fc8": "classifier.6"}
    acts = extract(alexnet, x, list(layers), progress=False)
    # torchvision's FX extractor shares AlexNet's in-place bug when it returns several nodes, so run it on
    # a copy whose ReLUs are not in place (same weights, same arithmetic).
    clean = copy.deepcopy(alexnet)
    for module in clean.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = False
    fx = create_feature_extractor(clean, {path: name for name, path in layers.items()})
    with torch.no_grad():
        expected = fx(x)
    for name in layers:
        assert list(acts[name].attrs["unit_shape"]) == list(expected[name].shape[1:])
        torch.testing.assert_close(torch.from_numpy(acts[name].values), expected[name].flatten(1), rtol=0, atol=1e-5)


# --- early exit ---------------------------------------------------------------------------------

def test_early_exit_skips_later_modules(alexnet, x):
    calls = {"conv1": 0, "conv2": 0}

    def count(key):
        def hook(module, args):
            calls[key] += 1
        return hook

    handles = [alexnet.features[0].register_forward_pre_hook(count("conv1")),
               alexnet.features[3].register_forward_pre_hook(count("conv2"))]
    try:
        extract(alexnet, x, ["conv1"], batch_size=2, progress=False)
    finally:
        for handle in handles:
            handle.remove()
    # conv1 ran in the probe and in both batches; conv2 only in the (un-stopped) probe pass
    assert calls == {"conv1": 3, "conv2": 1}


def test_run_recorded_never_reaches_classifier(alexnet, x, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("the classifier must not run")

    monkeypatch.setattr(alexnet.classifier, "forward", boom)
    out = run_recorded(alexnet, x[:1], {"pool5": "features.12"}, stop_early=True)
    assert out["pool5"].shape == (1, 256, 6, 6)
    with pytest.raises(AssertionError, match="must not run"):
        run_recorded(alexnet, x[:1], {"pool5": "features.12"}, stop_early=False)


def test_record_context_swallows_the_stop(alexnet, x):
    reached = []
    with record(alexnet, {"conv2": "features.3"}, stop_early=True) as rec:
        alexnet(x[:1])
        reached.append("after")  # skipped: the pass was aborted inside the with-block
    assert rec.stopped and not reached
    assert rec.calls == {"features.3": 1} and rec.outputs["conv2"].shape == (1, 192, 27, 27)
    assert not alexnet.features[3]._forward_hooks  # hooks removed on exit


# --- generic use: any module, nested outputs ------------------------------------------------------

class _Pair(nn.Module):
    def forward(self, x):
        return x * 2, {"sum": x + 1}


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.pair = _Pair()
        self.act = nn.ReLU()
        self.unused = nn.Linear(2, 2)

    def forward(self, x, shift=0.0):
        doubled, extra = self.pair(x)
        doubled.mul_(0)  # in place, after the hook fired
        extra["sum"].add_(100)
        return self.act(x - shift) + self.act(x + shift)  # self.act runs twice


def test_nested_outputs_are_cloned_and_kwargs_forward():
    net = _Net()
    x = torch.tensor([[-1.0, 2.0]])
    out, result = run_recorded(net, {"x": x, "shift": 0.5}, {"pair": "pair"}, stop_early=False,
                               forward=lambda m, kw: m(**kw), return_output=True)
    doubled, extra = out["pair"]
    torch.testing.assert_close(doubled, x * 2)
    torch.testing.assert_close(extra["sum"], x + 1)
    torch.testing.assert_close(result, torch.relu(x - 0.5) + torch.relu(x + 0.5))


def test_shared_module_called_twice_is_an_error():
    with pytest.raises(RSABridgeError, match=r"'act'.*runs 2 times.*choose another module") as err:
        extract(_Net(), torch.zeros(2, 2), ["act"], progress=False)
    assert "\n" not in str(err.value)


def test_module_that_never_runs_is_an_error():
    with pytest.raises(RSABridgeError, match=r"'unused'.*does not run"):
        extract(_Net(), torch.zeros(2, 2), ["unused"], progress=False)


def test_tuple_output_is_not_an_activation():
    with pytest.raises(RSABridgeError, match=r"'pair'.*outputs a tuple"):
        extract(_Net(), torch.zeros(2, 2), ["pair"], progress=False)


# --- layer names ----------------------------------------------------------------------------------

def test_unknown_layer_names_it_and_the_command(alexnet, x):
    with pytest.raises(RSABridgeError, match=r"unknown layer 'conv9'.*'conv1'.*rsa-bridge layers --model alexnet") as err:
        extract(alexnet, x, ["conv1", "conv9"], progress=False)
    assert "\n" not in str(err.value)


def test_default_layers_and_module_paths(alexnet, x):
    acts = extract(alexnet, x[:2], progress=False)
    assert list(acts) == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
    by_path = extract(alexnet, x[:2], ["features.10", "classifier.6"], progress=False)
    np.testing.assert_array_equal(by_path["features.10"].values, acts["conv5"].values)
    assert by_path["classifier.6"].attrs["module_path"] == "classifier.6"


# --- batching, ids, inputs ------------------------------------------------------------------------

def test_batch_size_does_not_change_results(alexnet, x):
    runs = [extract(alexnet, x, ["conv2", "fc8"], batch_size=b, progress=False) for b in (1, 3, 4)]
    for other in runs[1:]:
        for name in ("conv2", "fc8"):
            np.testing.assert_allclose(other[name].values, runs[0][name].values, rtol=1e-5, atol=1e-5)


def test_attrs_and_netcdf_round_trip(alexnet, x, tmp_path):
    acts = extract(alexnet, x[:2], ["conv1", "fc6"], progress=False)
    conv1 = acts["conv1"]
    assert conv1.dims == ("presentation", "neuroid") and conv1.dtype == np.float32
    assert conv1.shape == (2, 64 * 55 * 55)
    assert conv1.attrs["unit_shape"] == [64, 55, 55] and acts["fc6"].attrs["unit_shape"] == [4096]
    assert conv1.attrs["model"] == "alexnet" and conv1.attrs["weights"] == "none" and conv1.attrs["seed"] == 0
    assert conv1.attrs["layer"] == "conv1" and conv1.attrs["module_path"] == "features.0"
    for key in ("weights_sha256", "preprocessing", "rsa_bridge_version"):
        assert key in conv1.attrs
    acts["fc6"].to_netcdf(tmp_path / "fc6.nc", engine="h5netcdf")
    back = xr.load_dataarray(tmp_path / "fc6.nc", engine="h5netcdf")
    np.testing.assert_array_equal(back.values, acts["fc6"].values)
    assert list(back["stimulus_id"].values) == ["0", "1"] and np.atleast_1d(back.attrs["unit_shape"]).tolist() == [4096]  # 1-element lists read back as scalars


def test_stimulus_set_order_and_subset(alexnet, tmp_path):
    folder = tmp_path / "stim"
    ids = ["img10", "b", "img2", "a"]
    _images(folder, ids)
    pd.DataFrame({"stimulus_id": ids, "filename": [f"{i}.png" for i in ids]}).to_csv(folder / "manifest.csv", index=False)
    stim = load_stimulus_set(folder)
    acts = extract(alexnet, stim, ["fc8"], batch_size=3, progress=False)
    assert list(acts["fc8"]["stimulus_id"].values) == ids
    assert acts["fc8"].attrs["stimulus_set"] == "stim"
    assert acts["fc8"].attrs["preprocessing"].startswith("ImageClassification(crop_size=[224]")
    # each row is that image's own activation, preprocessed by the weights' transforms
    transform = alexnet.rsa_bridge_info.transform
    with torch.no_grad():
        alone = alexnet(transform(Image.open(folder / "b.png").convert("RGB"))[None])
    np.testing.assert_allclose(acts["fc8"].sel(presentation=1).values, alone[0].numpy(), rtol=1e-5, atol=1e-5)
    sub = extract(alexnet, stim, ["fc8"], stimulus_ids=["a", "img10"], progress=False)
    assert list(sub["fc8"]["stimulus_id"].values) == ["a", "img10"]
    np.testing.assert_allclose(sub["fc8"].values, acts["fc8"].values[[3, 0]], rtol=1e-5, atol=1e-5)


def test_paths_batches_and_duplicate_stems(alexnet, tmp_path):
    paths = _images(tmp_path / "one", ["z", "y", "x"])
    batches = list(extract_batches(alexnet, paths, ["conv5", "fc7"], batch_size=2, progress=False))
    assert [ids for ids, _ in batches] == [["z", "y"], ["x"]]
    first = batches[0][1]["conv5"]
    assert first.shape == (2, 256 * 13 * 13) and first.dtype == torch.float32 and first.device.type == "cpu"
    assert not first.is_inference()  # usable like any tensor outside inference mode
    whole = extract(alexnet, paths, ["fc7"], progress=False)
    np.testing.assert_allclose(torch.cat([b["fc7"] for _, b in batches]).numpy(), whole["fc7"].values,
                               rtol=1e-5, atol=1e-5)
    twin = _images(tmp_path / "two", ["z"], seed=3)
    with pytest.raises(RSABridgeError, match="share the name 'z'"):
        extract(alexnet, [paths[0], twin[0]], ["fc8"], progress=False)


def test_tensor_ids(alexnet, x):
    acts = extract(alexnet, x[:2], ["fc8"], stimulus_ids=["cat", "dog"], progress=False)
    assert list(acts["fc8"]["stimulus_id"].values) == ["cat", "dog"]
    assert acts["fc8"].attrs["preprocessing"].startswith("tensor given")
    with pytest.raises(RSABridgeError, match="3 stimulus ids were given for 2"):
        extract(alexnet, x[:2], ["fc8"], stimulus_ids=["a", "b", "c"], progress=False)
    with pytest.raises(RSABridgeError, match="not to an already preprocessed tensor"):
        extract(alexnet, x[:2], ["fc8"], transform=lambda im: im, progress=False)


def test_unreadable_image_names_the_file(alexnet, tmp_path):
    good = _images(tmp_path, ["good"])[0]
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is not a png")
    with pytest.raises(StimulusError, match="broken.png"):
        extract(alexnet, [good, bad], ["conv1"], progress=False)
    with pytest.raises(StimulusError, match="missing.png"):
        extract(alexnet, [good, tmp_path / "missing.png"], ["conv1"], progress=False)


def test_plain_module_needs_a_transform(tmp_path):
    import torchvision

    plain = torchvision.models.alexnet()  # built by hand: aliases still known, preprocessing not
    paths = _images(tmp_path, ["p", "q"], size=72)
    with pytest.raises(RSABridgeError, match="no preprocessing is known.*pass transform="):
        extract(plain, paths, ["conv1"], progress=False)

    def transform(image):
        return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)

    acts = extract(plain, paths, ["conv1"], transform=transform, progress=False)
    with torch.no_grad():
        expected = plain.features[0](torch.stack([transform(Image.open(p).convert("RGB")) for p in paths]))
    torch.testing.assert_close(_grid(acts, "conv1", 2), expected, rtol=0, atol=1e-6)
    assert acts["conv1"].attrs["model"] == "alexnet" and acts["conv1"].attrs["weights"] == "user-module"


def test_progress_bar_and_bad_arguments(alexnet, x, capsys):
    extract(alexnet, x[:2], ["conv1"], batch_size=1, progress=True)
    assert "2/2" in capsys.readouterr().err
    with pytest.raises(RSABridgeError, match="batch size"):
        extract(alexnet, x[:2], ["conv1"], batch_size=0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_is_a_clear_error(alexnet, x):
    with pytest.raises(RSABridgeError, match="CUDA is not available"):
        extract(alexnet, x[:1], ["conv1"], device="cuda")
    with pytest.raises(RSABridgeError, match="CUDA is not available"):
        load_model("alexnet", "none", device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(x):
    cpu = load_model("alexnet", "none")
    gpu = load_model("alexnet", "none", device="cuda")
    a = extract(cpu, x, ["conv1", "fc8"], progress=False)
    b = extract(gpu, x, ["conv1", "fc8"], device="cuda", progress=False)
    for name in a:
        np.testing.assert_allclose(b[name].values, a[name].values, rtol=1e-3, atol=1e-3)
