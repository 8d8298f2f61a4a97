"""The compare job end to end against an independent computation (torchvision + scipy)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats
from scipy.spatial.distance import pdist, squareform
from torchvision.models.feature_extraction import create_feature_extractor

import extractors
from rsa_bridge import RSABridgeError, load_dataset
from rsa_bridge.datasets import area_rdms
from rsa_bridge.app.pipeline import RDMOptions, compare_model
from rsa_bridge.rdm import ROW
from tests.helpers import make_rdm_dataset, make_stimuli


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    ids = make_stimuli(root / "stimuli")
    make_rdm_dataset(root / "toy.nc", ids)
    return root, ids


@pytest.fixture(scope="module")
def alexnet():
    return extractors.load_model("alexnet", weights="none")


def test_compare_equals_torchvision_and_scipy(toy, alexnet):
    root, ids = toy
    result = compare_model("alexnet", dataset=str(root / "toy.nc"), layers=["conv1", "fc8"], model=alexnet,
                           rdm=RDMOptions(batch_size=4), progress=False)
    # independent path: torchvision's own feature extraction, scipy's distances and correlations
    transform = alexnet.rsa_bridge_info.transform
    x = torch.stack([transform(Image.open(root / "stimuli" / f"{s}.png").convert("RGB")) for s in ids])
    # conv1 straight from the module; fc8 from torchvision's FX feature extractor. (Asking that extractor
    # for features.0 together with a later layer returns conv1 *after* AlexNet's in-place ReLU.)
    fx = create_feature_extractor(alexnet, {"classifier.6": "fc8"})
    with torch.no_grad():
        feats = {"conv1": alexnet.features[0](x).flatten(1).double().numpy(),
                 "fc8": fx(x)["fc8"].flatten(1).double().numpy()}
    ds = load_dataset(root / "toy.nc")
    for area in ("V1", "IT"):
        neural = area_rdms(ds, area).sel(stimulus_row=ids, stimulus_col=ids).values
        for layer in ("conv1", "fc8"):
            model_vec = pdist(feats[layer], "correlation")
            expected = np.mean([stats.spearmanr(model_vec, squareform(n, checks=False)).statistic for n in neural])
            row = result.table.query("layer == @layer and area == @area").iloc[0]
            assert row["similarity"] == pytest.approx(expected, abs=1e-5)  # float32 activations
            assert row["n_stimuli"] == len(ids) and row["weights"] == "none"
    assert result.table.loc[0, "module_path"] == "features.0"
    assert result.results.attrs["model"] == "alexnet" and result.results.attrs["weights"] == "none"


def test_shuffled_dataset_file_changes_nothing(toy, alexnet, tmp_path):
    root, ids = toy
    base = compare_model("alexnet", dataset=str(root / "toy.nc"), layers=["conv2"], model=alexnet, progress=False)
    order = np.random.default_rng(5).permutation(len(ids))
    import shutil

    shutil.copytree(root / "stimuli", tmp_path / "stimuli")  # a dataset names images inside its own folder
    make_rdm_dataset(tmp_path / "shuffled.nc", ids, stimuli_rel="stimuli", order=order)
    assert [str(s) for s in load_dataset(tmp_path / "shuffled.nc")[ROW].values] != ids
    shuffled = compare_model("alexnet", dataset=str(tmp_path / "shuffled.nc"), layers=["conv2"], model=alexnet,
                             progress=False)
    np.testing.assert_array_equal(base.table["similarity"].to_numpy(), shuffled.table["similarity"].to_numpy())
    np.testing.assert_array_equal(base.table["sem"].to_numpy(), shuffled.table["sem"].to_numpy())


def test_mismatched_stimuli_name_ids(toy, alexnet, tmp_path):
    root, ids = toy
    other = make_stimuli(tmp_path / "other", n=10, seed=3)
    (tmp_path / "other" / "stim_03.png").rename(tmp_path / "other" / "odd_one.png")
    import pandas as pd

    manifest = pd.read_csv(tmp_path / "other" / "manifest.csv")
    manifest.loc[manifest["stimulus_id"] == "stim_03", ["stimulus_id", "filename"]] = ["odd_one", "odd_one.png"]
    manifest.to_csv(tmp_path / "other" / "manifest.csv", index=False)
    with pytest.raises(RSABridgeError, match=r"only in stimulus set 'other' \('odd_one'\).*only in dataset.*'stim_03'"):
        compare_model("alexnet", dataset=str(root / "toy.nc"), stimuli=tmp_path / "other", layers=["conv1"],
                      model=alexnet, progress=False)
    assert sorted(other) == sorted(ids)


def test_area_and_dataset_errors():
    with pytest.raises(RSABridgeError, match="unknown area 'V2'.*no shipped dataset has it"):
        compare_model("alexnet", ["V2"], weights="none")
    with pytest.raises(RSABridgeError, match="--area"):
        compare_model("alexnet", None, weights="none")
