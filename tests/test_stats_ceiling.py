"""Noise ceilings (Nili / Algonauts) and split-half reliability against rsatoolbox, Net2Brain and by hand."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import xarray as xr
from scipy import stats
from scipy.spatial.distance import pdist

from rsa_bridge import load_dataset
from rsa_bridge.compare import METHODS, RSATOOLBOX_NAMES
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.stats import noise_ceiling, spearman_brown, split_half_reliability
from rsa_bridge.stats.resample import as_generator, split_halves

from _stats_reference import SHARED, vectors


def _rsatoolbox_ceiling(vecs, method, groups=None):
    from rsatoolbox.inference import boot_noise_ceiling
    from rsatoolbox.rdm import RDMs

    desc = {} if groups is None else {"group": np.asarray(groups)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return boot_noise_ceiling(RDMs(vecs, rdm_descriptors=desc or None), method=RSATOOLBOX_NAMES[method],
                                  rdm_descriptor="group" if groups is not None else "index")


@pytest.mark.parametrize("method", sorted(METHODS))
def test_nili_ceiling_of_human_it_equals_rsatoolbox(method):
    hit = load_dataset("kriegeskorte2008_92images")["hIT"]  # (subject 4, session 2, 92, 92)
    vecs = vectors(hit.transpose(..., "stimulus_row", "stimulus_col").values.reshape(8, 92, 92))
    ours = noise_ceiling(hit, method)
    lower, upper = _rsatoolbox_ceiling(vecs, method)
    assert ours.lower == pytest.approx(lower, abs=1e-10) and ours.upper == pytest.approx(upper, abs=1e-10)
    by_subject = noise_ceiling(hit, method, groups="subject")
    lower, upper = _rsatoolbox_ceiling(vecs, method, groups=np.repeat(np.arange(4), 2))
    assert by_subject.lower == pytest.approx(lower, abs=1e-10) and by_subject.upper == pytest.approx(upper, abs=1e-10)
    assert by_subject.n_groups == 4 and ours.n_groups == 8
    assert ours.lower < ours.upper


def test_nili_ceiling_equals_rsatoolbox_cv_noise_ceiling_with_leave_one_out_sets():
    from rsatoolbox.inference import cv_noise_ceiling
    from rsatoolbox.inference.crossvalsets import sets_leave_one_out_rdm
    from rsatoolbox.rdm import RDMs

    hit = load_dataset("kriegeskorte2008_92images")["hIT"]
    rdms = RDMs(vectors(hit.transpose(..., "stimulus_row", "stimulus_col").values.reshape(8, 92, 92)))
    _, test_set, ceil_set = sets_leave_one_out_rdm(rdms)
    lower, upper = cv_noise_ceiling(rdms, ceil_set, test_set, method="corr")
    ours = noise_ceiling(hit, "pearson")
    assert ours.lower == pytest.approx(lower, abs=1e-10) and ours.upper == pytest.approx(upper, abs=1e-10)


def _cichy(name):
    h5py = pytest.importorskip("h5py")
    path = SHARED / "cichy_algonauts2019_fmri_rdms" / name
    if not path.exists():
        pytest.skip(f"{path} is absent (shared data not mounted)")
    with h5py.File(path, "r") as handle:
        return {roi: np.transpose(handle[f"{roi}_RDMs"][()]) for roi in ("EVC", "IT")}


@pytest.mark.parametrize("file", ["target_fmri_92.mat", "target_fmri_118.mat"])
@pytest.mark.parametrize("method", ["spearman", "pearson", "whitened_pearson"])
def test_nili_ceiling_of_cichy_15_subjects_equals_rsatoolbox(file, method):
    for roi, rdms in _cichy(file).items():
        ours = noise_ceiling(rdms, method)
        lower, upper = _rsatoolbox_ceiling(vectors(rdms), method)
        assert ours.lower == pytest.approx(lower, abs=1e-10), roi
        assert ours.upper == pytest.approx(upper, abs=1e-10), roi
        assert ours.n_rdms == 15


def test_algonauts_ceiling_equals_net2brains_cached_values():
    folder = SHARED / "algonauts2019_78images_net2brain"
    if not folder.exists():
        pytest.skip(f"{folder} is absent (shared data not mounted)")
    cached = json.loads((folder / "noise_ceiling_log.json").read_text())
    for roi in ("EVC", "IT"):
        rdms = np.load(folder / f"fmri_{roi}_RDMs.npz")["arr_0"]
        ours = noise_ceiling(rdms, "spearman", "algonauts")
        ref = cached[f"fmri_{roi}_RDMs.npz"]["spearman"]
        assert ours.lower == pytest.approx(ref["lnc"], rel=1e-12)
        assert ours.upper == pytest.approx(ref["unc"], rel=1e-12)
        assert ours.units == "r^2" and ours.attrs()["ceiling_definition"] == "algonauts"


def test_algonauts_ceiling_by_hand():
    rng = np.random.default_rng(0)
    truth = rng.random(45)
    rdms = truth + rng.normal(0, 0.3, (5, 45))
    ours = noise_ceiling(rdms, "pearson", "algonauts")
    lower = np.mean([stats.pearsonr(rdms[s], np.delete(rdms, s, 0).mean(0))[0] ** 2 for s in range(5)])
    upper = np.mean([stats.pearsonr(rdms[s], rdms.mean(0))[0] ** 2 for s in range(5)])
    assert ours.lower == pytest.approx(lower, abs=1e-12) and ours.upper == pytest.approx(upper, abs=1e-12)


def test_vectors_and_matrices_give_the_same_ceiling_and_attrs_are_netcdf_safe():
    hit = load_dataset("kriegeskorte2008_92images")["hIT"]
    mats = hit.transpose(..., "stimulus_row", "stimulus_col").values.reshape(8, 92, 92)
    a, b = noise_ceiling(mats), noise_ceiling(vectors(mats))
    assert (a.lower, a.upper) == (b.lower, b.upper)
    xr.Dataset(attrs=a.attrs()).to_netcdf(engine="h5netcdf")  # serialisable
    assert set(a.attrs()) >= {"ceiling_lower", "ceiling_upper", "ceiling_definition", "ceiling_method"}


def test_bad_ceiling_inputs_are_clear_errors():
    rng = np.random.default_rng(0)
    rdms = rng.random((3, 10))
    with pytest.raises(RSABridgeError, match="at least 2"):
        noise_ceiling(rdms[:1])
    with pytest.raises(RSABridgeError, match="at least 2"):
        noise_ceiling(rdms, groups=["a", "a", "a"])
    bad = rdms.copy()
    bad[1, 3] = np.nan
    with pytest.raises(RSABridgeError, match="NaN"):
        noise_ceiling(bad)
    const = rdms.copy()
    const[2] = 0.5
    with pytest.raises(RSABridgeError, match="constant"):
        noise_ceiling(const)
    with pytest.raises(RSABridgeError, match="at least 3"):
        noise_ceiling(np.ones((3, 2, 2)) - np.eye(2))
    with pytest.raises(RSABridgeError, match="definition"):
        noise_ceiling(rdms, definition="brainscore")
    with pytest.raises(RSABridgeError, match="groups"):
        noise_ceiling(rdms, groups="subject")


def _rates(n_rep=6, n_stim=20, n_units=30, noise=1.0, seed=0):
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=(n_stim, n_units))
    return signal[None] + rng.normal(0, noise, (n_rep, n_stim, n_units))


def test_split_half_reliability_by_hand():
    rates = _rates(n_rep=5)  # odd: one repetition sits out per split
    ours = split_half_reliability(rates, n_splits=4, seed=3)
    halves = split_halves(np.tile(np.arange(20), 5), 4, as_generator(3))
    flat = rates.reshape(100, 30)
    stim = np.tile(np.arange(20), 5)
    expected = []
    for half in halves:
        rdms = []
        for h in (0, 1):
            means = np.stack([flat[(stim == s) & (half == h)].mean(0) for s in range(20)])
            rdms.append(pdist(means, "correlation"))
        expected.append(stats.spearmanr(rdms[0], rdms[1])[0])
    np.testing.assert_allclose(ours.per_split, expected, rtol=0, atol=1e-12)
    assert ours.corrected == pytest.approx(2 * np.mean(expected) / (1 + np.mean(expected)), abs=1e-12)
    expected = np.asarray(expected)
    assert ours.mean_corrected == pytest.approx(np.mean(2 * expected / (1 + expected)), abs=1e-12)
    assert ((halves == 0).sum(axis=1) == 40).all() and ((halves == -1).sum(axis=1) == 20).all()


def test_split_half_reliability_falls_with_noise_and_reads_brainscore_layout():
    clean = split_half_reliability(_rates(noise=0.5), n_splits=10, seed=0)
    noisy = split_half_reliability(_rates(noise=3.0), n_splits=10, seed=0)
    assert 0 < noisy.corrected < clean.corrected < 1
    rates = _rates()
    ids = [f"img{k:02d}" for k in range(20)]
    da = xr.DataArray(rates.reshape(120, 30), dims=("presentation", "neuroid"),
                      coords={"stimulus_id": ("presentation", ids * 6), "repetition": ("presentation", np.repeat(range(6), 20))})
    a = split_half_reliability(da, n_splits=5, seed=1)
    b = split_half_reliability(rates, n_splits=5, seed=1)
    np.testing.assert_allclose(a.per_split, b.per_split, rtol=0, atol=1e-12)
    assert a.attrs()["reliability_seed"] == 1
    assert spearman_brown(0.5) == pytest.approx(2 / 3)


def test_split_half_needs_two_repetitions_per_stimulus():
    rates = _rates(n_rep=2)
    da = xr.DataArray(rates.reshape(40, 30), dims=("presentation", "neuroid"),
                      coords={"stimulus_id": ("presentation", [f"s{k}" for k in range(20)] + [f"s{k}" for k in range(19)] + ["x"])})
    with pytest.raises(RSABridgeError, match="at least 2 repetitions"):
        split_half_reliability(da, n_splits=2)
    bad = rates.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(RSABridgeError, match="NaN"):
        split_half_reliability(bad)


def test_neural_rdm_reliability_and_stats_split_half_are_one_implementation():
    """rsa_bridge.neural.rdm_reliability and rsa_bridge.stats.split_half_reliability: same splits, same values."""
    from rsa_bridge.neural import rdm_reliability
    from rsa_bridge.neural.importers import from_array
    from rsa_bridge.neural.reliability import split_halves as neural_split_halves

    rng = np.random.default_rng(4)
    signal = rng.gamma(2.0, 2.0, size=(8, 12, 1))
    rates = from_array(rng.poisson(np.broadcast_to(signal, (8, 12, 5))).astype(float), stimulus_ids="s{i:02d}",
                       region="V4")  # (presentation 60, neuroid 8); 5 repetitions: one sits out per split
    ours = split_half_reliability(rates, method="pearson", n_splits=7, seed=9)
    theirs = rdm_reliability(rates, "correlation", method="pearson", n_splits=7, seed=9)
    np.testing.assert_allclose(ours.per_split, theirs.raw, rtol=0, atol=1e-12)
    assert ours.mean_corrected == pytest.approx(theirs.mean, abs=1e-12)
    codes = np.unique(rates["stimulus_id"].values, return_inverse=True)[1]
    np.testing.assert_array_equal(neural_split_halves(codes, 7, seed=9), split_halves(codes, 7, as_generator(9)))
