"""Control-model RDMs equal scipy's pdist on the control features, shaped like network layer RDMs."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.spatial.distance import pdist, squareform

from rsa_bridge.control_rdms import CONTROL_WEIGHTS, control_model_names, control_model_rdms, is_control_model
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.rdm import COL, ROW
from stimuli import control_features, load_stimulus_set

N = 7


@pytest.fixture
def image_set(tmp_path):
    """7 RGB 48x48 images: noise at several contrasts and two gratings, with a manifest in a shuffled order."""
    rng = np.random.default_rng(4)
    folder = tmp_path / "imgs"
    folder.mkdir()
    y, x = np.mgrid[0:48, 0:48] / 48.0
    arrays = [rng.uniform(0.5 - c, 0.5 + c, size=(48, 48, 3)) for c in (0.1, 0.2, 0.3, 0.45, 0.25)]
    arrays += [np.repeat((0.5 + 0.4 * np.sin(2 * np.pi * f * x))[..., None], 3, axis=2) for f in (3, 9)]
    ids = [f"im{i}" for i in range(N)]
    for i, array in zip(ids, arrays):
        Image.fromarray(np.uint8(np.round(array * 255))).save(folder / f"{i}.png")
    order = [3, 0, 6, 1, 5, 2, 4]
    pd.DataFrame({"stimulus_id": [ids[k] for k in order], "filename": [f"{ids[k]}.png" for k in order]}).to_csv(
        folder / "manifest.csv", index=False)
    return folder


@pytest.mark.parametrize("name, params", [
    ("pixels", {"size": 16}),
    ("pixels", {"size": 16, "grey": True}),
    ("luminance_contrast", {}),
    ("spatial_frequency", {"size": 32}),
    ("gabor", {"size": 32, "frequencies": (4.0, 8.0)}),
])
@pytest.mark.parametrize("metric", ["correlation", "euclidean", "cosine"])
def test_control_rdm_equals_pdist_of_the_features(image_set, name, params, metric):
    stim = load_stimulus_set(image_set)
    rdms = control_model_rdms(name, stim, metric, **params)
    features = control_features(name, stim, **params)
    expected = squareform(pdist(features.values, metric))
    assert rdms.dims == ("layer", ROW, COL)
    assert list(rdms["layer"].values) == [name]
    assert list(rdms[ROW].values) == stim.stimulus_ids == features.stimulus_ids
    assert np.allclose(rdms.values[0], expected, rtol=1e-9, atol=1e-12)
    assert int(rdms["n_units"].values[0]) == features.values.shape[1]
    assert str(rdms["module_path"].values[0]) == f"control:{name}"
    assert rdms.attrs["weights"] == CONTROL_WEIGHTS and rdms.attrs["model"] == name
    assert rdms.attrs["metric"] == metric


def test_folder_is_accepted_and_ids_follow_the_manifest(image_set):
    rdms = control_model_rdms("pixels", image_set, size=8)
    assert list(rdms[ROW].values) == ["im3", "im0", "im6", "im1", "im5", "im2", "im4"]


def test_control_names():
    assert control_model_names() == ["pixels", "luminance_contrast", "spatial_frequency", "gabor"]
    assert is_control_model("gabor") and is_control_model("pixels")
    assert not is_control_model("alexnet") and not is_control_model("Pixels")


def test_unknown_control_and_bad_input(image_set):
    with pytest.raises(RSABridgeError, match="unknown control model 'alexnet'"):
        control_model_rdms("alexnet", image_set)
    with pytest.raises(RSABridgeError, match="unknown RDM metric"):
        control_model_rdms("pixels", image_set, "manhattan")
    with pytest.raises(RSABridgeError, match="needs a stimulus set"):
        control_model_rdms("pixels", [1, 2, 3])
