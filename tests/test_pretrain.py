"""``rsa-bridge pretrain``: seeded crops, the lr schedule, exact resume, weights usable by load_model."""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from analyses.pretrain import PretrainConfig, pretrain
from analyses.pretrain.data import CroppedImages, class_labels, crop_offset
from rsa_bridge.errors import RSABridgeError
from stimuli import load_stimulus_set


@pytest.fixture
def tiny_set(tmp_path):
    """12 greyscale 40x40 images of 3 categories (a bright band at a category-specific row), ids c{k}_{i}."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for k in range(3):
        for i in range(4):
            array = rng.integers(0, 60, size=(40, 40)).astype(np.uint8)
            array[8 + 10 * k: 14 + 10 * k] = 220
            name = f"c{k}_{i}.png"
            Image.fromarray(array).save(folder / name)
            rows.append({"stimulus_id": f"c{k}_{i}", "filename": name, "category": k})
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)
    return folder


def small(**kw) -> PretrainConfig:
    base = dict(model="resnet18", num_classes=1000, epochs=2, lr=0.05, milestones=(1,), batch_size=4, crop=32,
                steps_per_epoch=2, seed=3)
    return PretrainConfig(**{**base, **kw})


def test_crops_are_seeded_per_epoch_and_normalised(tiny_set):
    stim = load_stimulus_set(tiny_set)
    labels = class_labels(stim, "category")
    assert labels.classes == ["0", "1", "2"] and labels.targets.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    data = CroppedImages(stim, labels.targets, 32, 0.2, 0.5, seed=3)
    data.set_epoch(1)
    x, y = data[5]
    top, left = crop_offset(40, 40, 32, 3, 1, 5)
    raw = np.asarray(Image.open(stim.paths[5]), dtype=np.float32) / 255.0
    expected = (raw[top: top + 32, left: left + 32] - 0.2) / 0.5
    assert y == 1 and x.shape == (3, 32, 32)
    for channel in range(3):
        assert np.allclose(x[channel].numpy(), expected, atol=1e-6)
    assert torch.equal(data[5][0], x)  # same (seed, epoch, index): same crop
    offsets = {crop_offset(40, 40, 32, 3, epoch, 5) for epoch in range(20)}
    assert len(offsets) > 5  # crops move between epochs
    big = CroppedImages(stim, labels.targets, 48, 0.0, 1.0, seed=0)  # larger than the image: black padding
    assert big[0][0].shape == (3, 48, 48) and float(big[0][0][:, 40:, :].abs().max()) == 0.0


@pytest.mark.slow
def test_resume_gives_exactly_the_uninterrupted_weights_and_schedule(tiny_set, tmp_path):
    whole = pretrain(tiny_set, tmp_path / "whole", small())
    assert whole.epochs_run == [1, 2]
    assert whole.log["lr"].tolist() == pytest.approx([0.05, 0.005])  # x gamma after milestone 1
    assert whole.log["images"].tolist() == [8, 8]  # 2 steps of 4
    part = pretrain(tiny_set, tmp_path / "part", small(epochs=1))
    assert part.epochs_run == [1]
    resumed = pretrain(tiny_set, tmp_path / "part", small())
    assert resumed.epochs_run == [2]
    a = torch.load(tmp_path / "whole" / "weights.pt", weights_only=True)
    b = torch.load(tmp_path / "part" / "weights.pt", weights_only=True)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert pd.read_csv(tmp_path / "part" / "log.csv")["loss"].tolist() == pytest.approx(whole.log["loss"].tolist())
    init = small()
    from analyses.pretrain import build_model

    fresh = build_model("resnet18", 1000, init.seed).state_dict()
    assert not torch.equal(fresh["conv1.weight"], a["conv1.weight"])  # training changed the weights
    assert pretrain(tiny_set, tmp_path / "whole", small()).epochs_run == []  # already done


def test_weights_load_in_compare_models_loader_and_settings_must_match(tiny_set, tmp_path):
    pretrain(tiny_set, tmp_path / "run", small(epochs=1, steps_per_epoch=1))
    from extractors import extract, load_model

    model = load_model("resnet18", tmp_path / "run" / "weights.pt")
    assert model.rsa_bridge_info.weights_sha256
    acts = extract(model, torch.zeros(3, 3, 32, 32), ["avgpool"], progress=False)
    assert acts["avgpool"].shape == (3, 512)
    with pytest.raises(RSABridgeError, match="other settings .*lr"):
        pretrain(tiny_set, tmp_path / "run", small(epochs=2, lr=0.1))
    with pytest.raises(RSABridgeError, match="has no label column 'kind'"):
        pretrain(tiny_set, tmp_path / "other", small(label="kind"))
    with pytest.raises(RSABridgeError, match="3 classes but the model 2 outputs"):
        pretrain(tiny_set, tmp_path / "other", small(num_classes=2))


def test_pretrain_cli_runs_and_resumes(tiny_set, tmp_path, capsys):
    from analyses.pretrain import cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    argv = ["pretrain", "--model", "resnet18", "--stimuli", str(tiny_set), "--out", str(tmp_path / "cli"),
            "--epochs", "1", "--batch-size", "4", "--crop", "32", "--steps-per-epoch", "1", "--milestones", "1"]
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    assert "epoch 1/1" in capsys.readouterr().out
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "resuming from" in printed and "nothing to do" in printed
    for name in ("checkpoint.pt", "weights.pt", "log.csv", "pretrain.json"):
        assert (tmp_path / "cli" / name).is_file()
