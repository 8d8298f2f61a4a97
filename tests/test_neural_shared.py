"""Real data from ../shared/data: shipped V4 files equal a recomputation, fMRI importers, the Net2Brain reference
case reproduced to 1e-6, and the V1 importer (import only: never shipped). Skips when ../shared is absent."""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import pdist, squareform

from rsa_bridge.datasets import DATA_DIR, SHIPPED, load_dataset
from rsa_bridge.model_rdms import stack_rdms
from rsa_bridge.neural import schema as S
from rsa_bridge.neural.conventions import evaluate
from rsa_bridge.neural.exporters import to_array
from rsa_bridge.neural.importers import from_array
from rsa_bridge.neural.load import SHIPPED_RATES, read_neural
from rsa_bridge.neural.published import read_algonauts2019, read_henaff_v1, read_net2brain
from rsa_bridge.neural.rdms import rates_to_rdm, repeat_average
from rsa_bridge.rdm import ROW, rdm_dataarray

N2B = "algonauts2019_78images_net2brain"


def test_cowley_raw_import_averages_to_the_published_means(shared_data):
    src = shared_data / "cowley2023_v4"
    raw = np.load(src / "responses_raw" / "responses_210325.npy")
    rates = from_array(raw, stimulus_ids="image{n:04d}", region="V4")
    assert rates.sizes[S.PRESENTATION] == int((~np.isnan(raw[0])).sum())
    mean, ids = repeat_average(rates)
    np.testing.assert_array_equal(mean.T, np.load(src / "responses_repeat_averaged" / "responses_210325.npy"))
    assert ids[0] == "image0001" and ids[-1] == "image0640"


def test_shipped_rates_are_the_raw_counts(shared_data):
    raw = np.load(shared_data / "cowley2023_v4" / "responses_raw" / "responses_210325.npy")
    rates = read_neural("cowley2023_v4_210325_rates").data
    assert rates.dtype == np.float32 and rates.attrs["units"] == "spike count (100 ms bin)"
    array, stim, neur = to_array(rates)
    np.testing.assert_array_equal(array, raw)  # NaN padding in the same slots, counts exact
    assert stim == load_dataset("cowley2023_v4_210325")[ROW].values.tolist() and neur[0] == "210325_n000"


@pytest.mark.parametrize("session", ["190923", "201025", "210225", "210224"])
def test_shipped_session_rdms_equal_recomputation(shared_data, session):
    rates = np.load(shared_data / "cowley2023_v4" / "responses_repeat_averaged" / f"responses_{session}.npy")
    ds = load_dataset(f"cowley2023_v4_{session}")
    assert ds["V4"].dtype == np.float32
    np.testing.assert_allclose(ds["V4"].values, squareform(pdist(rates.T, "correlation")), atol=3e-7, rtol=0)
    manifest = pd.read_csv(SHIPPED[f"cowley2023_v4_{session}"].stimuli / "manifest.csv", dtype=str)
    assert manifest["stimulus_id"].tolist() == ds[ROW].values.tolist()


def test_no_unlicensed_data_is_shipped():
    shipped = [p.name.lower() for p in DATA_DIR.rglob("*")]
    assert not any("henaff" in n or "goris" in n or "algonauts" in n or "net2brain" in n for n in shipped)
    assert all(p.is_file() for p in SHIPPED_RATES.values())


def reference_case(shared_data):
    base = shared_data / N2B
    ds = read_net2brain(base).data
    ids = [str(s) for s in ds[ROW].values]
    layers = {}
    for layer in ("layer3.1.conv2", "layer4.1.bn2"):
        matrix = np.load(base / "reference_case1_resnet18" / f"{layer}.npz")["arr_0"]
        matrix = (matrix + matrix.T) / 2.0
        np.fill_diagonal(matrix, 0.0)  # Net2Brain's file has ~2e-16 on the diagonal
        layers[layer] = rdm_dataarray(matrix, ids)
    return stack_rdms(layers), ds


def test_net2brain_reference_case_reproduced(shared_data):
    """Net2Brain's tests assert these numbers; rsa-bridge's own pieces with the net2brain convention give them."""
    model_rdms, ds = reference_case(shared_data)
    ours = evaluate(model_rdms, ds, ["IT", "EVC"], convention="net2brain")
    expected = pd.read_csv(shared_data / N2B / "reference_case1_resnet18" / "results.csv")
    assert len(ours) == len(expected) == 4
    for (_, row), (_, ref) in zip(ours.iterrows(), expected.iterrows()):
        assert f"fmri_{row['area']}_RDMs" in ref["ROI"] and row["layer"] in ref["Layer"]
        for ours_col, ref_col in (("score", "R2"), ("normalized", "%R2"), ("p_value", "Significance"),
                                  ("sem", "SEM"), ("ceiling_lower", "LNC"), ("ceiling_upper", "UNC")):
            assert row[ours_col] == pytest.approx(ref[ref_col], rel=1e-6, abs=0), (ours_col, ref["ROI"], ref["Layer"])
        per_subject = np.array(ref["R2_array"].strip("[]").split(), dtype=float)
        np.testing.assert_allclose(row["per_rdm"], per_subject, rtol=1e-6)
    log = json.loads((shared_data / N2B / "noise_ceiling_log.json").read_text())
    it = ours[ours["area"] == "IT"].iloc[0]
    assert it["ceiling_lower"] == pytest.approx(log["fmri_IT_RDMs.npz"]["spearman"]["lnc"], rel=1e-9)
    assert it["ceiling_upper"] == pytest.approx(log["fmri_IT_RDMs.npz"]["spearman"]["unc"], rel=1e-9)


def test_conventions_differ_as_documented(shared_data):
    model_rdms, ds = reference_case(shared_data)
    n2b = evaluate(model_rdms, ds, ["IT"], convention="net2brain").iloc[0]
    alg = evaluate(model_rdms, ds, ["IT"], convention="algonauts").iloc[0]
    rsa = evaluate(model_rdms, ds, ["IT"], convention="rsatoolbox").iloc[0]
    assert alg["score"] == n2b["score"]
    assert alg["normalized"] == pytest.approx(100 * n2b["score"] / n2b["ceiling_upper"])
    r = [stats.spearmanr(model_rdms.values[0][np.triu_indices(78, 1)], s[np.triu_indices(78, 1)])[0]
         for s in ds["IT"].values]
    assert rsa["score"] == pytest.approx(np.mean(r), abs=1e-12) and rsa["score_units"] == "r"
    assert np.isnan(rsa["normalized"]) and rsa["ceiling_definition"] == "nili"


@pytest.mark.parametrize("n, evc, it", [(92, 0.1589, 0.3075), (118, 0.1048, 0.0728)])
def test_algonauts_import_gives_the_challenge_noise_ceilings(shared_data, n, evc, it):
    """The Algonauts 2019 evaluation script hard-codes these noise ceilings (R^2) for its training sets."""
    from rsa_bridge.stats import noise_ceiling

    ds = read_algonauts2019(shared_data / "cichy_algonauts2019_fmri_rdms" / f"target_fmri_{n}.mat").data
    assert ds["IT"].shape == (15, n, n)
    assert noise_ceiling(ds["EVC"], definition="algonauts").upper == pytest.approx(evc, abs=5e-5)
    assert noise_ceiling(ds["IT"], definition="algonauts").upper == pytest.approx(it, abs=5e-5)


def test_cichy92_ids_follow_the_92_image_order(shared_data):
    imported = read_algonauts2019(shared_data / "cichy_algonauts2019_fmri_rdms" / "target_fmri_92.mat")
    hit = load_dataset("kriegeskorte2008_92images")["hIT"]
    iu = np.triu_indices(92, 1)
    rho = stats.spearmanr(imported.data["IT"].mean("subject").values[iu],
                          hit.mean(("subject", "session")).values[iu])[0]
    assert rho > 0.5  # 0.557; a wrong order gives ~0
    assert all(pd.Series(imported.manifest["filename"]).map(lambda f: os.path.isfile(f)))


def test_henaff_v1_recording(shared_data):
    import h5py

    path = shared_data / "henaff2021_v1_goris" / "V1_responses" / "ay2_u007_image_sequences.mat"
    imported = read_henaff_v1(path)
    rates = imported.data
    assert rates.sizes[S.NEUROID] == 16 and rates.attrs["missing"] == "allowed"
    assert set(rates[S.REGION].values) == {"V1"} and rates.attrs["units"] == "spike count (200 ms window)"
    with h5py.File(path, "r") as handle:
        natural = handle["naturalStruct"]["sortedResponses"][()][:, :, :, :, 0, :]  # (rep, unit, frame, movie, zoom)
    means = np.nanmean(natural, axis=0)  # (unit, frame, movie, zoom)
    expected = np.array([means[:, f, m, z] for z in range(2) for m in range(10) for f in range(11)])
    mean, ids = repeat_average(rates)
    assert ids[0] == "zoom1x_movie01_natural01" and ids[11] == "zoom1x_movie02_natural01"
    np.testing.assert_allclose(mean, expected, atol=1e-12)
    np.testing.assert_allclose(rates_to_rdm(rates, "correlation").values, squareform(pdist(expected, "correlation")),
                               atol=1e-12)
    assert imported.manifest["filename"].map(lambda f: os.path.isfile(f)).all()
