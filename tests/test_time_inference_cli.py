"""compare's time options end to end (results.nc, report line, figures) and their one-line refusals (exit 2)."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from rsa_bridge.app.cli import main
from rsa_bridge.datasets import save_dataset
from rsa_bridge.neural.synthetic_time import LatencyDesign, planted_latency_rates
from rsa_bridge.neural.time_resolved import time_resolved_dataset
from rsa_bridge.rdm import COL, ROW
from rsa_bridge.stats.clusters import ClusterOptions
from rsa_bridge.stats.time_inference import TimeInferenceOptions, time_inference


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("timeinf")
    rates, model = planted_latency_rates({"IT": 125.0}, seed=2,
                                         design=LatencyDesign(n_stimuli=14, n_neuroids=12, t_max=200.0, bin_ms=20.0))
    ds = time_resolved_dataset(rates, name="planted_small")
    save_dataset(ds, tmp / "planted.nc")
    ids = list(model[ROW].values)
    layers = xr.DataArray(model.values[None], dims=("layer", ROW, COL), coords={"layer": ["features"], ROW: ids, COL: ids})
    xr.Dataset({"rdm": layers}).to_netcdf(tmp / "layers.nc", engine="h5netcdf")
    return tmp, ds, layers


def _run(files, *extra, out="out"):
    tmp, _, _ = files
    return main(["compare", "--model-rdms", str(tmp / "layers.nc"), "--dataset", str(tmp / "planted.nc"),
                 "--bootstrap", "0", "--quiet", *extra, *(["--out", str(tmp / out)] if out else [])])


def test_cli_writes_clusters_cross_temporal_and_their_provenance(files, capsys):
    tmp, ds, layers = files
    code = _run(files, "--cluster-threshold", "0.05", "--cluster-permutations", "200", "--cross-temporal",
                "--seed", "4")
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "IT clusters over time (rsa, spearman; cluster-forming p 0.05, stimulus-label permutation (200" in out
    saved = xr.open_dataset(tmp / "out" / "results.nc", engine="h5netcdf").load()
    assert saved.attrs["cluster_threshold_p"] == 0.05 and saved.attrs["cluster_permutations"] == 200
    assert saved.attrs["cluster_seed"] == 4 and saved.attrs["time_inference_measure"] == "rsa"
    want = time_inference(layers.rename(layer="model_layer"), ds, ["IT"], "spearman",
                          TimeInferenceOptions(cluster=ClusterOptions(0.05, 200, 4), cross_temporal=True))
    np.testing.assert_allclose(saved["cluster_p"].sel(area="IT").values[0], want["cluster_p"].values[0, 0],
                               equal_nan=True, atol=1e-12)
    np.testing.assert_allclose(saved["cross_temporal"].sel(area="IT").values, want["cross_temporal"].values[0],
                               atol=1e-12)
    for name in ("time_course.png", "cross_temporal.png", "cross_temporal.pdf"):
        assert (tmp / "out" / name).is_file()
    assert main(["figure", "time_clusters", "--results", str(tmp / "out"), "--out", str(tmp / "figs")]) == 0
    assert main(["figure", "cross_temporal", "--results", str(tmp / "out"), "--out", str(tmp / "figs")]) == 0
    assert (tmp / "figs" / "time_clusters.png").is_file() and (tmp / "figs" / "cross_temporal.png").is_file()


def test_figures_mark_clusters_and_ceiling_band(files):
    from rsa_bridge.figures.time_course import cross_temporal_figure, time_course_figure
    from rsa_bridge.stats.time_course import time_course

    _, ds, layers = files
    two = xr.concat([ds.assign_coords(subject="a"), ds.assign_coords(subject="b")], "subject")
    two["IT"] = two["IT"].transpose("subject", ...)
    model = layers.rename(layer="model_layer")
    res = time_course(model, two).merge(time_inference(model, two, ["IT"], "spearman", TimeInferenceOptions(
        cluster=ClusterOptions(0.05, 100, 0), test="stimulus-permutation", cross_temporal=True)))
    fig, _, handles = time_course_figure(res)
    bars = handles["IT features clusters"]
    significant = np.flatnonzero(res["cluster_p"].values[0, 0] < 0.05)
    assert len(bars) >= 1 and significant.size
    assert "IT ceiling" in handles  # two identical "subjects": ceiling 1 in every bin
    _, _, handles = cross_temporal_figure(res)
    np.testing.assert_allclose(handles["IT brain"].get_array(), res["cross_temporal"].values[0])


@pytest.mark.parametrize("extra, message", [
    (("--cluster-threshold", "0.05", "--cluster-test", "sign-flip"), "at least 2 subjects"),
    (("--cluster-threshold", "0.7"), "--cluster-threshold"),
    (("--cluster-threshold", "0.05", "--cluster-permutations", "0"), "--cluster-permutations"),
])
def test_cli_refusals_are_one_line_exit_2(files, capsys, extra, message):
    try:
        code = _run(files, *extra, out=None)
    except SystemExit as stop:  # argparse's own refusal of a number
        code = stop.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_cli_refuses_time_options_without_time_bins_and_too_few_bins(files, capsys, tmp_path):
    _, ds, _ = files
    flat = ds.isel(time_bin=0, drop=True).drop_vars([c for c in ds.coords if str(c).startswith("time_bin")],
                                                    errors="ignore")
    save_dataset(flat, tmp_path / "flat.nc")
    save_dataset(ds.isel(time_bin=[0, 1]), tmp_path / "two.nc")
    for path, message in ((tmp_path / "flat.nc", "need a time-resolved area"), (tmp_path / "two.nc", "at least 3")):
        code = main(["compare", "--model-rdms", str(files[0] / "layers.nc"), "--dataset", str(path), "--bootstrap", "0",
                     "--cross-temporal"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and message in err and len(err.splitlines()) == 1


def _timed_92(n_bins: int) -> xr.Dataset:
    """The shipped human IT RDMs as a toy time course: bin k = the RDMs scaled by k + 1 plus a little noise."""
    from rsa_bridge.datasets import load_dataset

    ds = load_dataset("kriegeskorte2008_92images")
    rng = np.random.default_rng(0)
    hit = ds["hIT"]
    bins = []
    for k in range(n_bins):
        noise = np.abs(rng.normal(0, 0.05, hit.shape))
        noise = (noise + np.swapaxes(noise, -1, -2)) / 2 * (1 - np.eye(hit.shape[-1]))
        bins.append(hit * (k + 1) + noise)
    timed = xr.concat(bins, "time_bin").transpose("subject", "session", "time_bin", ...)
    return xr.Dataset({"hIT": timed.assign_coords(time_bin=np.arange(n_bins))}, attrs={"name": "hit_timed"})


def test_network_path_checks_before_the_forward_pass_and_scores_clusters(tmp_path, capsys):
    from rsa_bridge.app.network import NetworkOptions
    from rsa_bridge.app.pipeline import compare_models
    from rsa_bridge.datasets import SHIPPED, save_dataset
    from rsa_bridge.options import StatsOptions

    stimuli = SHIPPED["kriegeskorte2008_92images"].stimuli
    save_dataset(_timed_92(2), tmp_path / "two.nc")
    for argv, message in ((["--dataset", str(tmp_path / "two.nc"), "--stimuli", str(stimuli)], "at least 3"),
                          (["--area", "IT"], "need a time-resolved area")):
        code = main(["compare", "--model", "pixels", *argv, "--bootstrap", "0", "--quiet", "--cluster-threshold", "0.05"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and message in err and len(err.splitlines()) == 1
    ds = _timed_92(3)
    options = TimeInferenceOptions(cluster=ClusterOptions(0.05, 30, seed=2), test="sign-flip")
    result = compare_models(["pixels"], dataset=ds, network=NetworkOptions(stimuli=stimuli), progress=False,
                            stats=StatsOptions(time=options, ceiling=False))
    res = result.results
    rdm = result.model_rdms[f"pixels|{res.attrs['datasets']}"].rename(layer="model_layer")
    want = time_inference(rdm, ds, ["hIT"], "spearman", options)
    np.testing.assert_allclose(res["time_statistic"].sel(area="hIT").values[0], want["time_statistic"].values[0, 0],
                               atol=1e-12)
    assert res.attrs["cluster_test_hIT"] == "sign-flip over subjects (exact, all 2^4)"


def test_cluster_test_choices_are_the_registry():
    from rsa_bridge.app.cli import build_parser
    from rsa_bridge.stats.time_inference import TESTS

    compare = next(a for a in build_parser()._subparsers._group_actions[0].choices.items() if a[0] == "compare")[1]
    (action,) = [a for a in compare._actions if a.dest == "cluster_test"]
    assert tuple(action.choices) == tuple(TESTS)
