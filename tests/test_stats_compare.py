"""Statistics inside ``compare``: columns, seeds, noise ceiling, normalisation, two models, CLI, figure."""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from rsa_bridge import load_dataset
from rsa_bridge.app.cli import main
from rsa_bridge.app.commands import compare as compare_cmd
from rsa_bridge.datasets import area_rdms
from rsa_bridge.app.pipeline import StatsOptions, compare_models, compare_precomputed
from rsa_bridge.rdm import COL, ROW
from rsa_bridge.stats import bootstrap_similarity, noise_ceiling, permutation_test
from rsa_bridge.stats.resample import as_generator

from _stats_reference import model_like, real_rdms

STAT_COLUMNS = {"ci_low", "ci_high", "p_value", "p_holm", "p_fdr", "p_best", "is_best", "ceiling_lower",
                "ceiling_upper"}


@pytest.fixture(scope="module")
def layer_rdms():
    ds = load_dataset("kriegeskorte2008_92images")
    ids = [str(s) for s in ds[ROW].values]
    it, _ = real_rdms()
    values = model_like(it[0], 4, seed=8)
    return xr.DataArray(values, dims=("layer", ROW, COL),
                        coords={"layer": ["l1", "l2", "l3", "l4"], ROW: ids, COL: ids}, attrs={"metric": "test"})


def _run(layer_rdms, **options):
    return compare_precomputed(layer_rdms, ["IT", "hIT"], model_name="toy", stats=StatsOptions(**options))


def test_statistics_columns_equal_the_stats_functions_with_the_same_generator(layer_rdms):
    result = _run(layer_rdms, bootstrap=40, permutations=30, seed=5)
    t = result.table
    assert STAT_COLUMNS <= set(t.columns) and len(t) == 8
    ds = load_dataset("kriegeskorte2008_92images")
    neural = {a: area_rdms(ds, a) for a in ("IT", "hIT")}
    rng = as_generator(5)  # the documented order: bootstrap first, then permutations
    boot = bootstrap_similarity(layer_rdms, neural, n_samples=40, seed=rng)
    perm = permutation_test(layer_rdms, neural, n_permutations=30, seed=rng)
    low, high = boot.ci()
    for k, area in enumerate(("IT", "hIT")):
        rows = t[t["area"] == area]
        np.testing.assert_array_equal(rows["ci_low"], low[:, k])
        np.testing.assert_array_equal(rows["ci_high"], high[:, k])
        np.testing.assert_array_equal(rows["p_value"], perm.p_value[:, k])
        np.testing.assert_array_equal(rows["p_holm"], perm.corrected("holm")[:, k])
        np.testing.assert_array_equal(rows["p_fdr"], perm.corrected("fdr_bh")[:, k])
        np.testing.assert_allclose(rows["similarity"], boot.observed[:, k], rtol=0, atol=1e-12)
        assert rows["p_best"].sum() == pytest.approx(1.0) and rows["is_best"].sum() == 1
    ceiling = noise_ceiling(ds["hIT"], groups="subject")  # subjects are the unit of resampling (issue 15)
    hit = t[t["area"] == "hIT"]
    assert (hit["ceiling_lower"] == ceiling.lower).all() and (hit["ceiling_upper"] == ceiling.upper).all()
    assert t[t["area"] == "IT"]["ceiling_lower"].isna().all()  # one RDM: no ceiling
    res = result.results
    assert res.attrs["stats_seed"] == 5 and res.attrs["stats_bootstrap"] == 40
    assert res["similarity_bootstrap"].shape == (40, 4, 2)
    np.testing.assert_array_equal(res["ceiling_upper"].sel(area="hIT"), ceiling.upper)


def test_layer_a_versus_layer_b_from_a_compare_result(layer_rdms):
    from rsa_bridge.errors import RSABridgeError
    from rsa_bridge.stats import paired_difference

    result = _run(layer_rdms, bootstrap=60, seed=2, ci_level=0.9)
    stats = result.statistics["kriegeskorte2008_92images"]
    diff = stats.layer_difference("l1", "l4", "hIT")
    ref = paired_difference(stats.boot, "toy:l1", "toy:l4", "hIT", level=0.9)
    assert (diff.a, diff.b) == ("toy:l1", "toy:l4")
    assert (diff.difference, diff.ci_low, diff.ci_high, diff.p_value) == (ref.difference, ref.ci_low, ref.ci_high,
                                                                          ref.p_value)
    t = result.table.set_index(["area", "layer"])
    assert diff.difference == pytest.approx(t.loc[("hIT", "l1"), "similarity"] - t.loc[("hIT", "l4"), "similarity"],
                                            abs=1e-12)
    assert diff.ci_low > 0 and diff.p_value < 0.05  # l1 is the least noisy copy of the IT-like RDM
    with pytest.raises(RSABridgeError, match="not scored"):
        stats.layer_difference("l1", "conv9", "hIT")
    with pytest.raises(RSABridgeError, match="needs bootstrap"):
        _run(layer_rdms).statistics["kriegeskorte2008_92images"].layer_difference("l1", "l2", "hIT")


def test_same_seed_same_table_other_seed_differs(layer_rdms):
    a = _run(layer_rdms, bootstrap=30, permutations=20, seed=1).table
    b = _run(layer_rdms, bootstrap=30, permutations=20, seed=1).table
    c = _run(layer_rdms, bootstrap=30, permutations=20, seed=2).table
    pd.testing.assert_frame_equal(a, b)
    assert not np.array_equal(a["ci_low"], c["ci_low"])


def test_defaults_keep_the_old_columns_and_add_only_the_ceiling(layer_rdms):
    t = compare_precomputed(layer_rdms, ["hIT"]).table
    assert {"ci_low", "p_value", "p_best"}.isdisjoint(t.columns)
    assert t["ceiling_upper"].notna().all()


@pytest.mark.parametrize("bound", ["upper", "lower"])
def test_normalize_by_ceiling(layer_rdms, bound):
    with pytest.warns(RuntimeWarning, match="no noise ceiling for area.*IT"):  # IT has one RDM
        t = _run(layer_rdms, bootstrap=20, normalize_by_ceiling=bound).table
    hit, it = t[t["area"] == "hIT"], t[t["area"] == "IT"]
    np.testing.assert_allclose(hit["similarity_normalized"], hit["similarity"] / hit[f"ceiling_{bound}"])
    np.testing.assert_allclose(hit["ci_low_normalized"], hit["ci_low"] / hit[f"ceiling_{bound}"])
    assert it["similarity_normalized"].isna().all() and (t["normalized_by"] == f"ceiling_{bound}").all()


def test_two_models_share_the_bootstrap_and_get_a_paired_difference(tmp_path):
    import extractors
    from tests.helpers import make_rdm_dataset, make_stimuli

    ids = make_stimuli(tmp_path / "stimuli", n=10)
    make_rdm_dataset(tmp_path / "toy.nc", ids)
    nets = [extractors.load_model("alexnet", weights="none") for _ in range(2)]
    torch = pytest.importorskip("torch")
    with torch.no_grad():  # make the two untrained copies differ
        for p in nets[1].parameters():
            p.mul_(-1.0)
    result = compare_models(["a", "b"], dataset=str(tmp_path / "toy.nc"), layers=["conv1", "fc8"], models=nets,
                            progress=False, stats=StatsOptions(bootstrap=60, seed=3))
    diffs = result.model_differences
    assert len(diffs) == 2 and set(diffs["area"]) == {"V1", "IT"}
    best = result.best[result.best["is_best"]]
    assert len(best) == 4  # per model x area
    # recompute: both models' layers in one bootstrap with the same generator
    stacked = xr.concat([r.rename(layer="model_layer").assign_coords(model_layer=[f"{m}:{l}" for l in r["layer"].values])
                         .drop_vars([c for c in r.coords if c not in ("layer", ROW, COL)], errors="ignore")
                         for m, r in zip(["a", "b"], [result.model_rdms["a|toy"], result.model_rdms["b|toy"]])],
                        dim="model_layer")
    ds = load_dataset(tmp_path / "toy.nc")
    boot = bootstrap_similarity(stacked, {a: area_rdms(ds, a) for a in ("V1", "IT")}, n_samples=60, seed=3)
    row = diffs[diffs["area"] == "IT"].iloc[0]
    i, j = boot.labels.index(f"a:{row.layer_a}"), boot.labels.index(f"b:{row.layer_b}")
    assert row.difference == pytest.approx(boot.observed[i, 1] - boot.observed[j, 1], abs=1e-12)
    samples = boot.samples[:, i, 1] - boot.samples[:, j, 1]
    assert row.ci_low == pytest.approx(np.quantile(samples, 0.025), abs=1e-12)
    assert "model_difference" in result.results and result.results.attrs["model"] == "a,b"


def test_cli_statistics_and_outputs(layer_rdms, tmp_path, capsys):
    path = tmp_path / "layers.nc"
    xr.Dataset({"rdm": layer_rdms}).to_netcdf(path, engine="h5netcdf")
    code = main(["compare", "--model-rdms", str(path), "--area", "IT", "--area", "hIT", "--bootstrap", "50",
                 "--permutations", "50", "--seed", "4", "--normalize-by-ceiling", "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "noise ceiling (lower, upper)" in out and "Nili et al. 2014" in out and "best layer for hIT" in out and "NORMALIZED" in out
    assert "95% percentile bootstrap CI, 50 samples over stimuli (seed 4)" in out
    table = pd.read_csv(tmp_path / "out" / "results.csv")
    assert STAT_COLUMNS | {"similarity_normalized"} <= set(table.columns)
    results = xr.open_dataset(tmp_path / "out" / "results.nc", engine="h5netcdf").load()
    assert results.attrs["stats_seed"] == 4 and results.attrs["stats_normalize_by_ceiling"] == "upper"


@pytest.mark.parametrize("argv,expected", [(["--bootstrap", "-1"], "--bootstrap"), (["--ci-level", "1.5"], "--ci-level"),
                                            (["--seed", "-3"], "--seed"), (["--method", "tau"], "unknown comparison")])
def test_cli_bad_statistics_options(layer_rdms, tmp_path, capsys, argv, expected):
    path = tmp_path / "layers.nc"
    xr.Dataset({"rdm": layer_rdms}).to_netcdf(path, engine="h5netcdf")
    from tests.helpers import cli_code

    code = cli_code(["compare", "--model-rdms", str(path), "--area", "hIT", "--bootstrap", "5", *argv])
    _, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and expected in lines[0], err


def test_registered_parser_accepts_repeated_models():
    parser = argparse.ArgumentParser()
    compare_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["compare", "--model", "alexnet", "--model", "vgg16", "--area", "IT"])
    assert args.model == ["alexnet", "vgg16"] and args.bootstrap == 1000 and args.permutations == 0


def test_profile_figure_draws_the_ceiling_band_and_ci_bars(layer_rdms):
    from matplotlib.patches import Rectangle

    from rsa_bridge.figures import layer_profile

    t = _run(layer_rdms, bootstrap=20).table
    fig, ax, handles = layer_profile(t)
    bands = [p for p in ax.patches if isinstance(p, Rectangle)]
    hit = t[t["area"] == "hIT"].iloc[0]
    assert any(np.isclose(p.get_y(), hit["ceiling_lower"]) and np.isclose(p.get_y() + p.get_height(),
                                                                        hit["ceiling_upper"]) for p in bands)
    assert "bootstrap CI" in ax.get_legend().get_title().get_text()
    assert {"toy IT", "toy hIT"} <= set(handles)  # lines per (model, area); ci, ceiling, legend also given
