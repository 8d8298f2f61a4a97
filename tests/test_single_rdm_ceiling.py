"""Ceilings of single-RDM areas from repeat-level rates (split-half, Spearman-Brown), checked by hand with scipy."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats
from scipy.spatial.distance import pdist

from rsa_bridge import load_dataset
from rsa_bridge.app.cli import main
from rsa_bridge.datasets import save_dataset
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.neural import load_rates, make_rates, rates_to_rdm_dataset, rdm_reliability, save_rates
from rsa_bridge.neural.ceiling import single_rdm_ceiling, with_repeat_rates
from rsa_bridge.app.pipeline import StatsOptions, compare_precomputed
from rsa_bridge.rdm import COL, ROW
from rsa_bridge.stats.resample import split_halves


def _toy_rates(n_stim=12, n_rep=4, n_neur=15, noise=1.0, seed=0, ids=None):
    rng = np.random.default_rng(seed)
    signal = rng.normal(0, 1, (n_stim, n_neur))
    ids = ids or [f"s{k:02d}" for k in range(n_stim)]
    values = np.concatenate([signal + rng.normal(0, noise, signal.shape) for _ in range(n_rep)])
    return make_rates(values, stimulus_ids=ids * n_rep, repetitions=np.repeat(np.arange(n_rep), n_stim),
                      neuroid_ids=[f"n{k}" for k in range(n_neur)], region="V4", units="spikes/s")


@pytest.fixture()
def toy_dataset(tmp_path):
    rates = _toy_rates()
    save_rates(rates, tmp_path / "rates.nc")
    ds = rates_to_rdm_dataset(rates, "correlation", name="toy")
    ds["V4"].attrs["repeat_rates"] = "rates.nc"
    save_dataset(ds, tmp_path / "toy.nc")
    return tmp_path / "toy.nc", rates


def _model(ids, seed=1, n_layers=2):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n_layers, len(ids), 5))
    rdms = np.stack([1 - np.corrcoef(v) for v in x])
    for r in rdms:
        np.fill_diagonal(r, 0.0)
    return xr.DataArray(rdms, dims=("layer", ROW, COL),
                        coords={"layer": [f"l{k}" for k in range(n_layers)], ROW: ids, COL: ids})


def _by_hand(rates: xr.DataArray, n_splits: int, seed: int, which) -> list[float]:
    """Spearman-Brown corrected split-half Spearman r of correlation RDMs, by pandas + scipy."""
    ids = [str(s) for s in rates["stimulus_id"].values]
    codes, uniques = pd.factorize(np.asarray(ids))  # first-appearance order, like rsa_bridge
    halves = split_halves(codes, n_splits, np.random.default_rng(seed))
    values = np.asarray(rates.values, dtype=float)
    out = []
    for s in which:
        means = [pd.DataFrame(values[halves[s] == h]).groupby(codes[halves[s] == h]).mean().values for h in (0, 1)]
        r = stats.spearmanr(pdist(means[0], "correlation"), pdist(means[1], "correlation"))[0]
        out.append(2 * r / (1 + r))
    return out


def test_user_dataset_with_repeat_rates_gets_a_split_half_ceiling(toy_dataset):
    path, rates = toy_dataset
    ids = [str(s) for s in load_dataset(path)[ROW].values]
    t = compare_precomputed(_model(ids), dataset=str(path), stats=StatsOptions(normalize_by_ceiling="upper")).table
    rel = rdm_reliability(rates, "correlation", method="spearman", n_splits=100, seed=0)
    assert t["ceiling_lower"].iloc[0] == pytest.approx(rel.mean, abs=1e-12)
    assert t["ceiling_upper"].iloc[0] == pytest.approx(np.sqrt(rel.mean), abs=1e-12)
    np.testing.assert_allclose(rel.corrected[[0, 7, 42]], _by_hand(rates, 100, 0, [0, 7, 42]), rtol=0, atol=1e-10)
    assert (t["ceiling_definition"] == "split-half").all()
    assert "Spearman-Brown, 100 splits, seed 0" in t["ceiling_note"].iloc[0]
    np.testing.assert_allclose(t["similarity_normalized"], t["similarity"] / np.sqrt(rel.mean), rtol=1e-12)
    assert 0 < rel.mean < 1


def test_split_half_ceiling_follows_the_compare_seed(toy_dataset):
    path, rates = toy_dataset
    ids = [str(s) for s in load_dataset(path)[ROW].values]
    t = compare_precomputed(_model(ids), dataset=str(path), stats=StatsOptions(seed=3)).table
    assert t["ceiling_lower"].iloc[0] == pytest.approx(rdm_reliability(rates, n_splits=100, seed=3).mean, abs=1e-12)
    assert "seed 3" in t["ceiling_note"].iloc[0]


def test_area_without_repeat_rates_says_why_not(toy_dataset):
    path, _ = toy_dataset
    ds = load_dataset(path)
    del ds["V4"].attrs["repeat_rates"]
    ceiling, note = single_rdm_ceiling(ds, "V4", "spearman")
    assert ceiling is None and note == "1 RDM, no repeat-level rates"


def test_cached_result_is_used_only_for_the_same_settings(toy_dataset):
    path, rates = toy_dataset
    ds = with_repeat_rates(load_dataset(path), "V4", "rates.nc", n_splits=10, seed=3)
    assert ds["V4"].attrs["split_half_n_splits"] == 10 and ds["V4"].attrs["split_half_seed"] == 3
    ds["V4"].attrs["split_half_per_split"] = np.full(10, 0.25)  # a planted cache value
    hit, _ = single_rdm_ceiling(ds, "V4", "spearman", n_splits=10, seed=3)
    assert (hit.lower, hit.upper) == (0.25, 0.5)
    fresh, _ = single_rdm_ceiling(ds, "V4", "pearson", n_splits=10, seed=3)  # another method: recomputed
    ref = rdm_reliability(rates, "correlation", method="pearson", n_splits=10, seed=3)
    assert fresh.lower == pytest.approx(ref.mean, abs=1e-12)


def test_rates_of_other_stimuli_are_an_error(tmp_path):
    rates = _toy_rates()
    save_rates(_toy_rates(ids=[f"x{k:02d}" for k in range(12)]), tmp_path / "other.nc")
    ds = rates_to_rdm_dataset(rates, "correlation", name="toy")
    ds["V4"].attrs["repeat_rates"] = "other.nc"
    save_dataset(ds, tmp_path / "toy.nc")
    with pytest.raises(RSABridgeError, match="other stimuli"):
        single_rdm_ceiling(load_dataset(tmp_path / "toy.nc"), "V4", "spearman")
    ds["V4"].attrs["repeat_rates"] = "missing.nc"
    save_dataset(ds, tmp_path / "toy2.nc")
    with pytest.raises(RSABridgeError, match="do not exist"):
        single_rdm_ceiling(load_dataset(tmp_path / "toy2.nc"), "V4", "spearman")


def test_shipped_v4_carries_its_split_half_ceiling():
    ds = load_dataset("cowley2023_v4_210325")
    assert ds["V4"].attrs["repeat_rates"] == "rates_210325.nc"
    ceiling, note = single_rdm_ceiling(ds, "V4", "spearman")
    per_split = np.asarray(ds["V4"].attrs["split_half_per_split"])
    rates = load_rates(ds.attrs["path"].replace("rdm_210325.nc", "rates_210325.nc"))
    np.testing.assert_allclose(per_split[[0, 99]], _by_hand(rates, 100, 0, [0, 99]), rtol=0, atol=1e-8)
    assert ceiling.lower == pytest.approx(per_split.mean(), abs=1e-15)
    assert round(ceiling.lower, 4) == 0.7838 and round(ceiling.upper, 4) == 0.8853


def test_cli_prints_the_v4_ceiling_and_the_it_reason(tmp_path, capsys):
    ids = [str(s) for s in load_dataset("cowley2023_v4_210325")[ROW].values]
    path = tmp_path / "layers.nc"
    xr.Dataset({"rdm": _model(ids)}).to_netcdf(path, engine="h5netcdf")
    code = main(["compare", "--model-rdms", str(path), "--area", "V4", "--bootstrap", "0", "--normalize-by-ceiling",
                 "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "V4 [0.7838, 0.8853] split-half: split-half reliability of the RDM" in out and "NORMALIZED" in out
    results = xr.open_dataset(tmp_path / "out" / "results.nc", engine="h5netcdf").load()
    assert str(results["ceiling_definition"].sel(area="V4").values) == "split-half"
    assert np.isfinite(results["similarity_normalized"]).all()
    it_ids = [str(s) for s in load_dataset("kriegeskorte2008_92images")[ROW].values]
    xr.Dataset({"rdm": _model(it_ids)}).to_netcdf(tmp_path / "it.nc", engine="h5netcdf")
    assert main(["compare", "--model-rdms", str(tmp_path / "it.nc"), "--area", "IT", "--bootstrap", "0"]) == 0
    assert "IT n/a (1 RDM, no repeat-level rates)" in capsys.readouterr().out
