"""A trained network end to end: torchvision's MobileNetV2 IMAGENET1K_V1 from ../shared/data/torchvision_weights.

(a) extract equals torchvision's own weights.transforms() + un-hooked forward; (b) compare runs offline with
that TORCH_HOME and scores what scipy scores; (c) the offline error for the DEFAULT (IMAGENET1K_V2, absent)
names the member whose file is in the cache. Skipped with a reason where the shared folder is absent.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from scipy import stats
from scipy.spatial.distance import pdist, squareform
from torchvision import models as tvm

import extractors
from rsa_bridge.app.cli import main
from rsa_bridge.datasets import area_rdms, find_area, load_dataset
from stimuli import load_stimulus_set

FILE = "hub/checkpoints/mobilenet_v2-b0353104.pth"


@pytest.fixture
def torch_home(shared_data, monkeypatch):
    home = shared_data / "torchvision_weights"
    if not (home / FILE).is_file():
        pytest.skip(f"{home / FILE} is absent (torchvision's MobileNetV2 IMAGENET1K_V1 file; see its SOURCE.md)")
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setenv("RSA_BRIDGE_OFFLINE", "1")
    return home


@pytest.fixture(scope="module")
def images():
    ds = load_dataset(find_area("IT"))
    stim = load_stimulus_set(ds.attrs["stimuli_path"])
    return ds, stim


def _torchvision_logits(paths) -> np.ndarray:
    """torchvision's own pipeline: the weights' transforms and a plain forward, no rsa-bridge code."""
    weights = tvm.MobileNet_V2_Weights.IMAGENET1K_V1
    net = tvm.mobilenet_v2(weights=weights).eval()
    pre = weights.transforms()
    with torch.no_grad():
        return torch.cat([net(torch.stack([pre(Image.open(p).convert("RGB")) for p in paths[i:i + 23]]))
                          for i in range(0, len(paths), 23)]).numpy()


@pytest.mark.shared
@pytest.mark.slow
def test_trained_mobilenet_end_to_end(torch_home, images, tmp_path, capsys):
    ds, stim = images
    expected = _torchvision_logits(stim.paths)
    # (a) extract on the trained network = torchvision's pipeline
    model = extractors.load_model("mobilenet_v2", weights="IMAGENET1K_V1")
    assert model.rsa_bridge_info.weights == "IMAGENET1K_V1"
    acts = extractors.extract(model, stim, ["logits"], batch_size=23, progress=False)
    np.testing.assert_allclose(acts["logits"].values, expected, rtol=0, atol=1e-4)
    assert list(acts["logits"]["stimulus_id"].values) == list(stim.stimulus_ids)
    top1 = expected.argmax(1)
    assert len(set(top1)) > 40  # a trained network tells the 92 images apart (untrained ones collapse)
    # (b) compare offline with that TORCH_HOME: the table's number is scipy's
    out = tmp_path / "out"
    code = main(["compare", "--model", "mobilenet_v2", "--weights", "IMAGENET1K_V1", "--area", "IT", "--layers",
                 "logits", "--bootstrap", "0", "--no-cache", "--quiet", "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "weights IMAGENET1K_V1" in printed.out and "untrained" not in printed.out
    row = pd.read_csv(out / "results.csv").iloc[0]
    model_vec = pdist(expected.astype(np.float64), "correlation")
    ids = [str(s) for s in stim.stimulus_ids]
    neural = area_rdms(ds, "IT")
    neural = neural.sel(stimulus_row=ids, stimulus_col=ids)
    per_rdm = [stats.spearmanr(model_vec, squareform(v, checks=False)).statistic for v in neural.values.reshape(-1, len(ids), len(ids))]
    assert row["weights"] == "IMAGENET1K_V1"
    assert row["similarity"] == pytest.approx(np.mean(per_rdm), abs=1e-4)


@pytest.mark.shared
def test_offline_default_names_the_cached_member(torch_home, capsys):
    code = main(["compare", "--model", "mobilenet_v2", "--weights", "default", "--area", "IT", "--bootstrap", "0",
                 "--no-cache", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "IMAGENET1K_V2 (the DEFAULT)" in err and "pass --weights IMAGENET1K_V1" in err
    assert "mobilenet_v2-7ebf99e0.pth" in err
