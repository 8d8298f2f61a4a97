"""``extract_to_disk`` / ``rsa-bridge extract``: per-layer files equal ``extractors.extract``; preprocessing;
the overwrite rule (a failed run leaves the old result); one-line refusals."""
from __future__ import annotations

import re
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torchvision.transforms import functional as TF

import extractors.to_disk as to_disk
from extractors import extract, load_model
from extractors.to_disk import ExtractOptions, PreprocessOptions, build_transform, extract_to_disk, read_activations
from rsa_bridge.app.cli import main
from rsa_bridge.errors import RSABridgeError
from tests.helpers import make_stimuli


@pytest.fixture(scope="module")
def stimuli(tmp_path_factory):
    root = tmp_path_factory.mktemp("extract") / "stimuli"
    make_stimuli(root, n=7)
    return root


@pytest.fixture(scope="module")
def rt():
    return load_model("cornet_rt", "none", seed=0)


def test_files_equal_extract_on_the_same_inputs(rt, stimuli, tmp_path):
    pre = PreprocessOptions(resize=40, center_crop=32)
    files = extract_to_disk(rt, stimuli, "V1@0,IT@all,decoder", tmp_path / "acts",
                            ExtractOptions(batch_size=3, preprocess=pre, progress=False))
    assert list(files) == ["V1@0", "IT@0", "IT@1", "decoder"]
    transform, _ = build_transform(pre, rt.rsa_bridge_info.transform)
    want = extract(rt, stimuli, "V1@0,IT@0,IT@1,decoder", transform=transform, batch_size=3, progress=False)
    for name, path in files.items():
        got = read_activations(path)
        assert got.name == name and got.dims == ("presentation", "neuroid")
        np.testing.assert_array_equal(got.values, want[name].values)
        assert list(got["stimulus_id"].values) == list(want[name]["stimulus_id"].values)
        for key in ("model", "weights", "layer", "module_path", "preprocessing", "seed", "stimulus_set"):
            assert str(got.attrs[key]) == str(want[name].attrs[key]), key
        assert got.attrs["preprocess"] == "custom" and int(got.attrs["preprocess_resize"]) == 40
        assert int(got.attrs["preprocess_center_crop"]) == 32
        assert got.attrs["preprocess_normalize"] == "mean=0.485,0.456,0.406;std=0.229,0.224,0.225"
    assert int(read_activations(files["IT@1"]).attrs["time_step"]) == 1
    index = (tmp_path / "acts" / "layers.csv").read_text().splitlines()
    assert index[0] == "layer,file,module_path,time_step,n_units,unit_shape" and index[3].startswith("IT@1,IT@1.nc,IT@1,1,")


def test_weights_mode_and_a_tensor_input(tmp_path):
    net = nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU(), nn.Flatten()).eval()
    x = torch.rand(5, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    files = extract_to_disk(net, x, ["0", "2"], tmp_path / "t", ExtractOptions(batch_size=2, progress=False))
    want = extract(net, x, ["0", "2"], batch_size=2, progress=False)
    for name in ("0", "2"):
        got = read_activations(files[name])
        np.testing.assert_array_equal(got.values, want[name].values)
        assert got.attrs["preprocess"] == "weights" and got.attrs["preprocess_resize"] == "unknown"
    with pytest.raises(RSABridgeError, match="not to an already preprocessed tensor"):
        extract_to_disk(net, x, ["0"], tmp_path / "u", ExtractOptions(preprocess=PreprocessOptions(resize=8)))
    assert not (tmp_path / "u").exists()


def test_nan_activations_are_refused_and_nothing_is_published(tmp_path):
    x = torch.rand(4, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    x[2, 0, 0, 0] = float("nan")
    net = nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten()).eval()
    with pytest.raises(RSABridgeError, match=r"NaN or inf for stimuli '2'"):
        extract_to_disk(net, x, ["0"], tmp_path / "n", ExtractOptions(batch_size=2, progress=False))
    assert list(tmp_path.iterdir()) == []


def test_custom_transform_matches_a_hand_made_one():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 50, 3), dtype=np.uint8))
    transform, attrs = build_transform(PreprocessOptions(resize=20, center_crop=0, normalize="0.5,0.25"), None)
    hand = (TF.to_tensor(TF.resize(image, 20, antialias=True)) - 0.5) / 0.25
    torch.testing.assert_close(transform(image), hand)
    assert attrs == {"preprocess": "custom", "preprocess_resize": 20, "preprocess_center_crop": "none",
                     "preprocess_normalize": "mean=0.5,0.5,0.5;std=0.25,0.25,0.25"}
    _, weights = build_transform(PreprocessOptions(mode="custom"), load_model("cornet_s", "none").rsa_bridge_info.transform)
    assert weights["preprocess_resize"] == 256 and weights["preprocess_center_crop"] == 224


@pytest.mark.parametrize("options, message", [
    (PreprocessOptions(normalize="1,2,3"), "give imagenet, none, MEAN,STD"),
    (PreprocessOptions(normalize="0.5,0"), "standard deviation must be > 0"),
    (PreprocessOptions(normalize="nan,1"), "finite numbers"),
    (PreprocessOptions(resize=0), "resize must be a whole number"),
    (PreprocessOptions(center_crop=-1), "center_crop must be"),
    (PreprocessOptions(resize=8, mode="weights"), "--preprocess weights uses the weights' own transform"),
])
def test_bad_preprocessing_is_refused(options, message):
    with pytest.raises(RSABridgeError, match=message):
        options.check()


def test_overwrite_rule_and_a_failed_run_leaves_the_old_result(rt, stimuli, tmp_path, monkeypatch):
    out = tmp_path / "acts"
    options = ExtractOptions(batch_size=4, preprocess=PreprocessOptions(resize=32), progress=False)
    first = extract_to_disk(rt, stimuli, "V1@0", out, options)
    before = read_activations(first["V1@0"]).values
    with pytest.raises(RSABridgeError, match="already exists"):
        extract_to_disk(rt, stimuli, "V1@1", out, options)
    module = sys.modules["extractors.extract"]  # the module (the package's attribute is the function)
    real_run_plan = module.run_plan

    def dying(plan, *args, **kwargs):  # the second batch never comes
        for k, item in enumerate(real_run_plan(plan, *args, **kwargs)):
            if k == 1:
                raise RuntimeError("killed mid-run")
            yield item

    monkeypatch.setattr(module, "run_plan", dying)
    again = ExtractOptions(batch_size=4, preprocess=PreprocessOptions(resize=32), overwrite=True, progress=False)
    with pytest.raises(RuntimeError, match="killed mid-run"):
        extract_to_disk(rt, stimuli, "V1@1", out, again)
    assert sorted(p.name for p in out.iterdir()) == [".rsa-bridge-complete", "V1@0.nc", "layers.csv"]
    np.testing.assert_array_equal(read_activations(out / "V1@0.nc").values, before)
    assert [p.name for p in tmp_path.iterdir()] == ["acts"]  # no staging folder left behind
    monkeypatch.undo()
    files = extract_to_disk(rt, stimuli, "V1@1", out, again)
    assert sorted(p.name for p in out.iterdir()) == [".rsa-bridge-complete", "V1@1.nc", "layers.csv"]
    assert int(read_activations(files["V1@1"]).attrs["time_step"]) == 1
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(RSABridgeError, match="notes.txt"):
        extract_to_disk(rt, stimuli, "V1@0", foreign, again)


def test_disk_space_is_checked_before_the_first_batch(rt, stimuli, tmp_path, monkeypatch):
    monkeypatch.setattr(to_disk.shutil, "disk_usage", lambda _: type("U", (), {"free": 10})())
    with pytest.raises(RSABridgeError, match="GiB but the disk has"):
        extract_to_disk(rt, stimuli, "V1@0", tmp_path / "x", ExtractOptions(preprocess=PreprocessOptions(resize=32)))
    assert not (tmp_path / "x").exists()


def test_command_line(stimuli, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["extract", "--model", "cornet_s", "--weights", "none", "--stimuli", str(stimuli), "--layers",
                 "V1,V2@all", "--out", str(out), "--resize", "32", "--no-center-crop", "--normalize", "none", "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert "wrote 3 layer file(s)" in capsys.readouterr().out
    v1 = read_activations(out / "V1.nc")
    assert v1.attrs["preprocess_normalize"] == "none" and v1.attrs["preprocess_center_crop"] == "none"
    for argv, message in [
        (["--layers", "V2"], "runs 2 times.*V2@0 .. V2@1"),
        (["--layers", "V1", "--preprocess", "weights", "--resize", "8"], "--preprocess weights"),
        (["--layers", "V1", "--normalize", "x"], "--normalize 'x'"),
    ]:
        code = main(["extract", "--model", "cornet_s", "--weights", "none", "--stimuli", str(stimuli),
                     "--out", str(tmp_path / "bad"), "--quiet", *argv])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1, err
        assert re.search(message, err[0]), err[0]
    assert not (tmp_path / "bad").exists()
    with pytest.raises(SystemExit):
        main(["extract", "--help"])
    text = capsys.readouterr().out
    for option in ("--resize", "--center-crop", "--no-center-crop", "--normalize", "--preprocess", "--layers"):
        assert option in text
