"""Subjects as the unit of resampling: ceilings, SEM and the bootstrap over RDMs against rsatoolbox and by hand."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

from rsa_bridge import load_dataset
from rsa_bridge.app.cli import main
from rsa_bridge.compare import RSATOOLBOX_NAMES, compare_vectors
from rsa_bridge.datasets import area_rdms
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.app.pipeline import StatsOptions, compare_precomputed
from rsa_bridge.rdm import COL, ROW
from rsa_bridge.stats import bootstrap_similarity, noise_ceiling
from rsa_bridge.stats.grouping import (drawn_units, group_bootstrap_indices, group_mean_sem, resampling_unit)
from rsa_bridge.stats.resample import as_generator, bootstrap_rdms, bootstrap_stimuli

from _stats_reference import Feeder, model_like, real_rdms, vectors


@pytest.fixture(scope="module")
def dataset():
    return load_dataset("kriegeskorte2008_92images")


@pytest.fixture(scope="module")
def layer_rdms(dataset):
    ids = [str(s) for s in dataset[ROW].values]
    it, _ = real_rdms()
    values = model_like(it[0], 3, seed=3)
    return xr.DataArray(values, dims=("layer", ROW, COL),
                        coords={"layer": ["l1", "l2", "l3"], ROW: ids, COL: ids}, attrs={"metric": "test"})


def test_resampling_unit_choices(dataset):
    auto = resampling_unit(dataset["hIT"])
    assert auto.name == "subject" and auto.n_units == 4 and auto.n_rdms == 8 and auto.grouped
    # labels follow area_rdms' replicate order
    reps = area_rdms(dataset, "hIT")["replicate"].values
    assert [r.split("|")[0].split("=")[1] for r in reps] == list(auto.labels)
    assert auto.describe() == "subject (4 subjects, 2 RDMs each)"
    none = resampling_unit(dataset["hIT"], "none")
    assert none.name == "rdm" and none.n_units == 8 and not none.grouped
    session = resampling_unit(dataset["hIT"], "session")
    assert session.n_units == 2 and list(session.labels) == ["1", "2"] * 4
    assert resampling_unit(dataset["IT"]).describe() == "single RDM"
    with pytest.raises(RSABridgeError, match="no such replicate coordinate"):
        resampling_unit(dataset["hIT"], "animal")
    one_subject = dataset["hIT"].isel(subject=[0])
    with pytest.raises(RSABridgeError, match="one subject"):
        resampling_unit(one_subject, "subject")
    assert resampling_unit(one_subject).name == "rdm"  # auto falls back to the sessions


def test_non_dimension_animal_coordinate_groups_sessions(dataset):
    hit = dataset["hIT"].stack(recording=("subject", "session")).transpose("recording", ROW, COL)
    animal = [str(s) for s, _ in hit["recording"].values]
    rdms = xr.DataArray(hit.values, dims=("session", ROW, COL),
                        coords={"session": [f"s{k}" for k in range(8)], "animal": ("session", animal)})
    unit = resampling_unit(rdms)
    assert unit.name == "animal" and unit.n_units == 4 and list(unit.labels) == animal


def test_grouped_ceiling_in_compare_equals_rsatoolbox_and_the_issue_numbers(dataset, layer_rdms):
    from rsatoolbox.inference import boot_noise_ceiling
    from rsatoolbox.rdm import RDMs

    t = compare_precomputed(layer_rdms, ["hIT"], dataset="kriegeskorte2008_92images").table
    vecs = vectors(area_rdms(dataset, "hIT").values)
    rdms = RDMs(vecs, rdm_descriptors={"subject": np.repeat(["BE", "KO", "SN", "TI"], 2)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lower, upper = boot_noise_ceiling(rdms, method="spearman", rdm_descriptor="subject")
    assert t["ceiling_lower"].iloc[0] == pytest.approx(lower, abs=1e-10)
    assert t["ceiling_upper"].iloc[0] == pytest.approx(upper, abs=1e-10)
    assert round(t["ceiling_lower"].iloc[0], 3) == 0.306  # issue 15: 0.328 when sessions are left out
    t_none = compare_precomputed(layer_rdms, ["hIT"], stats=StatsOptions(group_by="none")).table
    assert round(t_none["ceiling_lower"].iloc[0], 3) == 0.328
    assert (t["resampling_unit"] == "subject").all() and (t["n_units"] == 4).all() and (t["n_rdms"] == 8).all()
    assert (t_none["resampling_unit"] == "rdm").all() and (t_none["n_units"] == 8).all()


def test_sem_uses_the_number_of_subjects(dataset, layer_rdms):
    t = compare_precomputed(layer_rdms, ["hIT"]).table
    sims = compare_vectors(vectors(layer_rdms.values), vectors(area_rdms(dataset, "hIT").values), "spearman")
    subject_means = sims.reshape(3, 4, 2).mean(axis=2)  # (layer, subject): sessions of a subject are adjacent
    np.testing.assert_allclose(t["similarity"], subject_means.mean(axis=1), rtol=0, atol=1e-12)
    np.testing.assert_allclose(t["sem"], subject_means.std(axis=1, ddof=1) / 2.0, rtol=0, atol=1e-12)
    t_none = compare_precomputed(layer_rdms, ["hIT"], stats=StatsOptions(group_by="none")).table
    np.testing.assert_allclose(t_none["sem"], sims.std(axis=1, ddof=1) / np.sqrt(8), rtol=0, atol=1e-12)


def test_group_mean_sem_unbalanced_by_hand():
    sims = np.array([[1.0, 3.0, 5.0, 10.0]])
    mean, sem = group_mean_sem(sims, np.array(["a", "a", "a", "b"]))
    assert mean[0] == pytest.approx((3.0 + 10.0) / 2) and sem[0] == pytest.approx(np.std([3.0, 10.0], ddof=1) / np.sqrt(2))


def test_group_index_sets_draw_whole_units_balanced():
    rng = np.random.default_rng(4)
    labels = np.array(["x", "x", "x", "y"])
    idx = group_bootstrap_indices(labels, 50, rng)
    assert idx.shape == (50, 6)  # lcm(3, 1) = 3 entries per drawn unit
    for row, units in zip(idx, drawn_units(labels, idx)):
        counts = np.bincount(row, minlength=4)
        n_x, n_y = units.count("x"), units.count("y")
        assert list(counts) == [n_x, n_x, n_x, 3 * n_y]
    # one RDM per unit: the same index sets as the plain RDM bootstrap
    np.testing.assert_array_equal(group_bootstrap_indices(np.array(["a", "b", "c"]), 20, np.random.default_rng(1)),
                                  bootstrap_rdms(3, 20, np.random.default_rng(1)))


def test_bootstrap_over_subjects_equals_rsatoolbox_eval_bootstrap_rdm(dataset, layer_rdms, monkeypatch):
    from rsatoolbox.inference import eval_bootstrap_rdm
    from rsatoolbox.model import ModelFixed
    from rsatoolbox.rdm import RDMs

    result = compare_precomputed(layer_rdms, ["hIT"], stats=StatsOptions(bootstrap=25, bootstrap_over="rdms", seed=7))
    boot = result.statistics["kriegeskorte2008_92images"].boot
    drawn = bootstrap_rdms(4, 25, as_generator(7))  # the subject draws of the documented order
    labels = resampling_unit(dataset["hIT"]).labels
    for row, units in zip(boot.rdm_indices["hIT"], drawn_units(labels, boot.rdm_indices["hIT"])):
        assert sorted(set(units)) == sorted({labels[i] for i in row})
    subjects = np.repeat(["BE", "KO", "SN", "TI"], 2)
    rdms = RDMs(vectors(area_rdms(dataset, "hIT").values), rdm_descriptors={"subject": subjects})
    models = [ModelFixed(f"m{k}", RDMs(vectors(layer_rdms.values[k])[None])) for k in range(3)]
    with monkeypatch.context() as patch, warnings.catch_warnings():
        patch.setattr(np.random, "randint", Feeder(list(drawn)))
        warnings.simplefilter("ignore")
        theirs = eval_bootstrap_rdm(models, rdms, method=RSATOOLBOX_NAMES["spearman"], N=25,
                                    rdm_descriptor="subject", boot_noise_ceil=False)
    np.testing.assert_allclose(boot.samples[:, :, 0], theirs.evaluations, rtol=0, atol=1e-10)
    assert result.results.attrs["resampling_unit_hIT"] == "subject (4 subjects, 2 RDMs each)"


def test_group_by_none_reproduces_the_ungrouped_bootstrap_bit_for_bit(dataset, layer_rdms):
    result = compare_precomputed(layer_rdms, ["IT", "hIT"],
                                 stats=StatsOptions(bootstrap=20, bootstrap_over="both", seed=3, group_by="none"))
    neural = {a: area_rdms(dataset, a) for a in ("IT", "hIT")}
    ref = bootstrap_similarity(layer_rdms, neural, n_samples=20, over="both", seed=as_generator(3))
    np.testing.assert_array_equal(result.statistics["kriegeskorte2008_92images"].boot.samples, ref.samples)
    assert result.table.loc[result.table["area"] == "hIT", "ceiling_lower"].iloc[0] == noise_ceiling(neural["hIT"]).lower


def test_grouped_both_draws_stimuli_first_then_subjects(dataset, layer_rdms):
    result = compare_precomputed(layer_rdms, ["hIT"], stats=StatsOptions(bootstrap=10, bootstrap_over="both", seed=9))
    boot = result.statistics["kriegeskorte2008_92images"].boot
    rng = as_generator(9)
    np.testing.assert_array_equal(boot.stimulus_indices, bootstrap_stimuli(92, 10, rng))
    np.testing.assert_array_equal(boot.rdm_indices["hIT"],
                                  group_bootstrap_indices(resampling_unit(dataset["hIT"]).labels, 10, rng))


def test_cli_group_by(layer_rdms, tmp_path, capsys):
    path = tmp_path / "layers.nc"
    xr.Dataset({"rdm": layer_rdms}).to_netcdf(path, engine="h5netcdf")
    assert main(["compare", "--model-rdms", str(path), "--area", "IT", "--area", "hIT", "--bootstrap", "0"]) == 0
    out = capsys.readouterr().out
    assert "unit of resampling (ceiling, SEM, bootstrap over RDMs): IT single RDM; hIT subject (n = 4 subjects, " \
           "8 RDMs)" in out
    assert main(["compare", "--model-rdms", str(path), "--area", "hIT", "--bootstrap", "0", "--group-by", "none"]) == 0
    assert "hIT RDM (n = 8)" in capsys.readouterr().out
    assert main(["compare", "--model-rdms", str(path), "--area", "hIT", "--group-by", "animal"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "animal" in err[0]
