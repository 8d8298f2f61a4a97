"""The shipped datasets equal a fresh computation from the original files in ../shared/data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.io as sio
from scipy.spatial.distance import pdist, squareform

from rsa_bridge import load_dataset
from rsa_bridge.datasets import SHIPPED
from rsa_bridge.rdm import ROW


def test_v4_rdm_is_correlation_distance_of_rates(shared_data):
    rates = np.load(shared_data / "cowley2023_v4" / "responses_repeat_averaged" / "responses_210325.npy")
    ds = load_dataset("cowley2023_v4_210325")
    np.testing.assert_allclose(ds["V4"].values, squareform(pdist(rates.T, "correlation")), atol=1e-10)
    assert ds[ROW].values[0] == "image0001" and ds[ROW].values[-1] == "image0640"


def test_monkey_and_human_it_equal_source(shared_data):
    src = shared_data / "kriegeskorte2008_92images"
    ds = load_dataset("kriegeskorte2008_92images")
    model_rdms = sio.loadmat(src / "92_modelRDMs.mat")["Models"][0]
    mit = next(m for m in model_rdms if str(m["name"][0]) == "monkeyIT")["RDM"]
    np.testing.assert_array_equal(ds["IT"].values, mit)
    brain = sio.loadmat(src / "92_brainRDMs.mat")["RDMs"]
    np.testing.assert_array_equal(ds["hIT"].sel(subject="KO", session=2).values, brain[0, 1, 1]["RDM"])


@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_stimuli_match_dataset_ids(name):
    entry = SHIPPED[name]
    manifest = pd.read_csv(entry.stimuli / "manifest.csv", dtype=str)
    ds = load_dataset(name)
    assert manifest["stimulus_id"].tolist() == [str(s) for s in ds[ROW].values]
    assert all((entry.stimuli / f).is_file() for f in manifest["filename"])
    assert (entry.path.parent / "LICENSE").is_file() and (entry.path.parent / "SOURCE.md").is_file()
