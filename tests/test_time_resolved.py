"""Time-resolved RSA: RDMs per bin/window by hand, similarity per bin vs scipy, CIs, peak latency, compare + CLI."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats
from scipy.spatial.distance import pdist

from rsa_bridge.app.cli import main
from rsa_bridge.datasets import area_rdms, save_dataset
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.neural import save_rates
from rsa_bridge.neural.synthetic_time import LatencyDesign, planted_latency_rates
from rsa_bridge.neural.time_resolved import time_resolved_dataset, time_resolved_rdms, time_windows
from rsa_bridge.app.pipeline import StatsOptions, compare_precomputed
from rsa_bridge.rdm import COL, ROW
from rsa_bridge.stats import bootstrap_similarity
from rsa_bridge.stats.time_course import peak_latency, time_averaged, time_course


@pytest.fixture(scope="module")
def planted():
    return planted_latency_rates({"V4": 80.0, "IT": 160.0}, seed=1,
                                 design=LatencyDesign(n_stimuli=30, n_neuroids=25, width=20.0))


def _models(model: xr.DataArray, seed=0):
    rng = np.random.default_rng(seed)
    noisy = model.values + np.abs(rng.normal(0, 0.3, model.shape))
    noisy = (noisy + noisy.T) / 2
    np.fill_diagonal(noisy, 0)
    ids = list(model[ROW].values)
    return xr.DataArray(np.stack([model.values, noisy]), dims=("layer", ROW, COL),
                        coords={"layer": ["features", "noisy"], ROW: ids, COL: ids})


def test_time_windows_by_hand():
    assert [(a, b, list(i)) for a, b, i in time_windows([0, 10, 20, 30], [10, 20, 30, 40])] == \
        [(0.0, 10.0, [0]), (10.0, 20.0, [1]), (20.0, 30.0, [2]), (30.0, 40.0, [3])]
    assert [(a, b, list(i)) for a, b, i in time_windows([0, 10, 20, 30], [10, 20, 30, 40], width=20, step=10)] == \
        [(0.0, 20.0, [0, 1]), (10.0, 30.0, [1, 2]), (20.0, 40.0, [2, 3])]
    assert [list(i) for _, _, i in time_windows([0, 10, 20, 30], [10, 20, 30, 40], width=30)] == [[0, 1, 2]]
    with pytest.raises(RSABridgeError, match="positive"):
        time_windows([0], [10], width=-5)
    with pytest.raises(RSABridgeError, match="no window"):
        time_windows([0, 10], [10, 20], width=50)
    with pytest.raises(RSABridgeError, match="needs a window width"):
        time_windows([0], [10], step=5)


def test_rdm_per_bin_and_per_window_equal_scipy(planted):
    rates, _ = planted
    v4 = rates.isel(neuroid=np.flatnonzero(rates["region"].values == "V4"))
    values = v4.transpose("presentation", "neuroid", "time_bin").values
    codes, _ = pd.factorize(v4["stimulus_id"].values)
    per_bin = time_resolved_rdms(rates, region="V4")
    assert per_bin.sizes["time_bin"] == 30 and float(per_bin["time_bin_center"][8]) == 85.0
    for k in (0, 8, 29):
        means = pd.DataFrame(values[:, :, k]).groupby(codes).mean().values
        np.testing.assert_allclose(per_bin.isel(time_bin=k).values[np.triu_indices(30, 1)], pdist(means, "correlation"),
                                   atol=1e-12)
    windows = time_resolved_rdms(rates, region="V4", width=30, step=20)
    assert list(windows["time_bin_start"].values[:3]) == [0.0, 20.0, 40.0]
    means = pd.DataFrame(values[:, :, 2:5].mean(axis=2)).groupby(codes).mean().values  # [20, 50) ms = bins 2..4
    np.testing.assert_allclose(windows.isel(time_bin=1).values[np.triu_indices(30, 1)], pdist(means, "correlation"),
                               atol=1e-12)
    with pytest.raises(RSABridgeError, match="time_bin dimension"):
        time_resolved_rdms(rates.isel(time_bin=0, drop=True))


def test_time_course_equals_scipy_and_bootstrap_per_bin(planted):
    rates, model = planted
    ds = time_resolved_dataset(rates)
    layers = _models(model).rename(layer="model_layer")
    tc = time_course(layers, ds, method="spearman", n_bootstrap=30, seed=4)
    iu = np.triu_indices(30, 1)
    for area in ("V4", "IT"):
        for k in (3, 15):
            r = stats.spearmanr(layers.values[1][iu], ds[area].isel(time_bin=k).values[iu])[0]
            assert float(tc["similarity_time"].sel(area=area, model_layer="noisy", time_bin=k)) == pytest.approx(r, abs=1e-12)
    # every bin uses the same stimulus samples: bin 15 of IT alone with the same seed gives the same samples
    alone = bootstrap_similarity(layers, {"IT": area_rdms(ds.isel(time_bin=15), "IT")}, n_samples=30, seed=4)
    low, high = alone.ci()
    assert float(tc["similarity_time_ci_low"].sel(area="IT", time_bin=15, model_layer="features")) == pytest.approx(low[0, 0], abs=1e-12)
    assert float(tc["similarity_time_ci_high"].sel(area="IT", time_bin=15, model_layer="noisy")) == pytest.approx(high[1, 0], abs=1e-12)
    centers = tc["time_bin_center"].values
    sim = tc["similarity_time"].values
    np.testing.assert_array_equal(tc["peak_latency"].values, centers[np.argmax(sim, axis=-1)])
    lat = tc["peak_latency_bootstrap"].values
    assert float(tc["peak_latency_ci_low"].sel(area="V4", model_layer="features")) == \
        pytest.approx(np.quantile(lat[:, 0, 0], 0.025))


def test_peak_latency_by_hand():
    sim = np.array([[0.1, 0.5, 0.3], [np.nan, np.nan, np.nan]])
    out = peak_latency(sim, np.array([5.0, 15.0, 25.0]))
    assert out[0] == 15.0 and np.isnan(out[1])


def test_compare_recovers_the_planted_latencies(planted, tmp_path, capsys):
    rates, model = planted
    ds = time_resolved_dataset(rates, name="planted")
    save_dataset(ds, tmp_path / "planted.nc")
    layers = _models(model)
    result = compare_precomputed(layers, dataset=str(tmp_path / "planted.nc"), model_name="toy",
                                 stats=StatsOptions(bootstrap=100, seed=0))
    res = result.results
    assert res["similarity_time"].dims == ("model_layer", "area", "time_bin") and res.sizes["time_bin"] == 30
    v4 = res["peak_latency"].sel(area="V4", model_layer="toy:features")
    it = res["peak_latency"].sel(area="IT", model_layer="toy:features")
    assert abs(float(v4) - 80) <= 10 and abs(float(it) - 160) <= 10
    assert float(res["peak_latency_ci_high"].sel(area="V4", model_layer="toy:features")) < \
        float(res["peak_latency_ci_low"].sel(area="IT", model_layer="toy:features"))  # the CIs separate the areas
    # the table scores the time-averaged RDM
    mean_rdm = time_averaged(ds)["V4"]
    iu = np.triu_indices(30, 1)
    r = stats.spearmanr(layers.values[0][iu], mean_rdm.values[iu])[0]
    t = result.table.set_index(["area", "layer"])
    assert t.loc[("V4", "features"), "similarity"] == pytest.approx(r, abs=1e-12)
    # the CLI prints the peaks and writes the time-course figure; results.nc keeps time_bin
    path = tmp_path / "layers.nc"
    xr.Dataset({"rdm": layers}).to_netcdf(path, engine="h5netcdf")
    code = main(["compare", "--model-rdms", str(path), "--dataset", str(tmp_path / "planted.nc"), "--bootstrap", "50",
                 "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "V4 is time-resolved (30 bins; table: its time-averaged RDM); peak latency ms [CI]: features" in out
    assert (tmp_path / "out" / "time_course.png").is_file() and (tmp_path / "out" / "time_course.pdf").is_file()
    saved = xr.open_dataset(tmp_path / "out" / "results.nc", engine="h5netcdf").load()
    assert "time_bin" in saved["similarity_time"].dims and "peak_latency_ci_low" in saved


def test_figure_draws_a_line_per_layer_and_the_peaks(planted):
    from rsa_bridge.figures.time_course import time_course_figure

    rates, model = planted
    tc = time_course(_models(model).rename(layer="model_layer"), time_resolved_dataset(rates), n_bootstrap=20)
    fig, axes, handles = time_course_figure(tc)
    assert len(axes) == 2 and {"V4 features", "IT noisy", "IT features peak"} <= set(handles)
    np.testing.assert_array_equal(handles["V4 features"].get_ydata(),
                                  tc["similarity_time"].sel(area="V4", model_layer="features").values)
    assert handles["IT features peak"].get_xdata()[0] == float(tc["peak_latency"].sel(area="IT", model_layer="features"))


def test_cli_neural_rdm_time_resolved(planted, tmp_path, capsys):
    rates, _ = planted
    save_rates(rates, tmp_path / "rates.nc")
    assert main(["neural", "rdm", str(tmp_path / "rates.nc"), "--time-resolved", "--window", "20", "--step", "10",
                 "--out", str(tmp_path / "rdms.nc")]) == 0
    ds = xr.open_dataset(tmp_path / "rdms.nc", engine="h5netcdf").load()
    assert ds["V4"].dims == ("time_bin", ROW, COL) and ds.sizes["time_bin"] == 29
    capsys.readouterr()
    assert main(["neural", "rdm", str(tmp_path / "rates.nc"), "--window", "20", "--out", str(tmp_path / "x.nc")]) == 2
    assert "--time-resolved" in capsys.readouterr().err
