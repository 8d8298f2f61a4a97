"""Group comparisons (rsa_bridge.stats.groups): joint draws checked by a hand loop (scipy), tests by rsatoolbox."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy.stats import spearmanr
from scipy.stats import t as t_dist

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.stats.grouping import group_bootstrap_indices
from rsa_bridge.stats.groups import GroupOptions, compare_groups
from rsa_bridge.stats.resample import bootstrap_stimuli

N = 14


def _rdm(x):
    d = 1.0 - np.corrcoef(x)
    np.fill_diagonal(d, 0.0)
    return d


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    ids = [f"s{k:02d}" for k in range(N)]
    signal = rng.normal(size=(N, 12))
    a = np.stack([_rdm(signal + 1.0 * rng.normal(size=(N, 12))) for _ in range(5)])  # 5 subjects
    b = np.stack([[_rdm(signal + 2.0 * rng.normal(size=(N, 12))) for _ in range(2)] for _ in range(4)])  # 4 x 2
    models = np.stack([_rdm(signal + 0.5 * rng.normal(size=(N, 12))), _rdm(rng.normal(size=(N, 12)))])
    coords = {"stimulus_row": ids, "stimulus_col": ids}
    sets = {"A": xr.DataArray(a, dims=("subject", "stimulus_row", "stimulus_col"),
                              coords={"subject": [f"a{k}" for k in range(5)], **coords}),
            "B": xr.DataArray(b, dims=("subject", "session", "stimulus_row", "stimulus_col"),
                              coords={"subject": [f"b{k}" for k in range(4)], "session": [1, 2], **coords})}
    model_da = xr.DataArray(models, dims=("model_layer", "stimulus_row", "stimulus_col"),
                            coords={"model_layer": ["good", "random"], **coords})
    options = GroupOptions(n_bootstrap=60, seed=11)
    return model_da, sets, options, compare_groups(model_da, sets, options)


def _pairs(idx):
    i, j = np.triu_indices(idx.size, k=1)
    keep = idx[i] != idx[j]  # a stimulus with its own copy: dropped
    return idx[i][keep], idx[j][keep]


def test_draws_equal_a_hand_loop_on_the_same_indices(data):
    models, sets, options, res = data
    rng = np.random.default_rng(options.seed)
    stim = bootstrap_stimuli(N, options.n_bootstrap, rng)
    flat = {"A": sets["A"].values, "B": sets["B"].values.reshape(8, N, N)}
    labels = {"A": np.array([f"a{k}" for k in range(5)]), "B": np.repeat([f"b{k}" for k in range(4)], 2)}
    rdm_idx = {g: group_bootstrap_indices(labels[g], options.n_bootstrap, rng) for g in ("A", "B")}
    for b in (0, 7, 31):
        r, c = _pairs(stim[b])
        for gi, g in enumerate(("A", "B")):
            for li in range(2):
                want = np.mean([spearmanr(models.values[li][r, c], flat[g][k][r, c])[0] for k in rdm_idx[g][b]])
                assert res["samples"].values[b, li, gi] == pytest.approx(want, abs=1e-10)


def test_observed_is_the_mean_over_subjects_of_session_means(data):
    models, sets, _, res = data
    m = models.values[0][np.triu_indices(N, 1)]
    b = sets["B"].values
    want = np.mean([np.mean([spearmanr(m, b[s, k][np.triu_indices(N, 1)])[0] for k in range(2)]) for s in range(4)])
    assert float(res["similarity"].sel(model_layer="good", group="B")) == pytest.approx(want, abs=1e-12)


def test_t_tests_equal_rsatoolbox_result_on_the_same_draws(data):
    pytest.importorskip("rsatoolbox")
    from rsatoolbox.inference.result import Result
    from rsatoolbox.model import ModelFixed

    models, _, _, res = data
    fixed = [ModelFixed(str(k), models.values[i][np.triu_indices(N, 1)]) for i, k in enumerate(models.model_layer.values)]
    for group, n_units in (("A", 5), ("B", 4)):
        evals = res["samples"].sel(group=group).values
        nc = res["ceiling_samples"].sel(group=group).values.T  # (2, B)
        variances = np.cov(np.concatenate([evals.T, nc]))
        result = Result(fixed, evals, method="spearman", cv_method="bootstrap", noise_ceiling=nc,
                        variances=variances, dof=min(n_units, N) - 1, n_rdm=n_units, n_pattern=N)
        p_pair, p_zero, p_noise = result.test_all(test_type="t-test")
        np.testing.assert_allclose(res["p_zero"].sel(group=group).values, p_zero, atol=1e-8)
        np.testing.assert_allclose(res["p_ceiling"].sel(group=group).values, p_noise, atol=1e-8)
        np.testing.assert_allclose(res["p_pairwise"].sel(group=group).values, p_pair, atol=1e-8)
        assert res.attrs[f"group_dof_{group}"] == min(n_units, N) - 1


def test_group_difference_against_scipy_and_rsatoolbox_bootstrap_p(data):
    pytest.importorskip("rsatoolbox")
    from rsatoolbox.util.inference_util import bootstrap_pair_tests

    _, _, _, res = data
    evals = res["samples"].values
    dof = min(res.attrs["group_dof_A"], res.attrs["group_dof_B"])
    for i in range(2):
        d = evals[:, i, 0] - evals[:, i, 1]
        t = d.mean() / np.sqrt(d.var(ddof=1) * (dof + 1) / dof)
        assert float(res["p_difference"][i]) == pytest.approx(2 * t_dist.sf(abs(t), dof), abs=1e-10)
        boot_p = bootstrap_pair_tests(evals[:, i, :])[0, 1]
        assert float(res["p_difference_bootstrap"][i]) == pytest.approx(boot_p, abs=1e-12)
    good = res["similarity"].sel(model_layer="good")
    assert float(good.sel(group="A")) > float(good.sel(group="B"))  # the less noisy set agrees more
    assert float(res["p_zero"].sel(model_layer="good", group="A")) < 0.05
    assert res.attrs["group_units_B"] == "subject (4 subjects, 2 RDMs each)"


@pytest.mark.parametrize("change, message", [
    (lambda m, s: ({"A": s["A"]}, m), "exactly two sets"),
    (lambda m, s: ({**s, "C": s["A"]}, m), "exactly two sets"),
    (lambda m, s: ({"A": s["A"].isel(stimulus_row=slice(1, None), stimulus_col=slice(1, None)), "B": s["B"]}, m),
     "other stimuli"),
    (lambda m, s: ({"A": s["A"].copy(data=np.where(np.eye(N, dtype=bool), 0, 1.0) + 0 * s["A"].values), "B": s["B"]},
                   m), "constant RDM"),
    (lambda m, s: ({"A": s["A"].copy(data=np.where(s["A"].values > 1.2, np.nan, s["A"].values)), "B": s["B"]}, m),
     "NaN"),
    (lambda m, s: (s, m.copy(data=np.where(np.eye(N, dtype=bool), 0, 1.0)[None].repeat(2, 0))), "constant"),
    (lambda m, s: (s, m.assign_coords(stimulus_row=[f"x{k}" for k in range(N)], stimulus_col=[f"x{k}" for k in range(N)])),
     "other stimuli"),
])
def test_hostile_sets_are_refused(data, change, message):
    models, sets, _, _ = data
    new_sets, new_models = change(models, sets)
    with pytest.raises(RSABridgeError, match=message):
        compare_groups(new_models, new_sets, GroupOptions(n_bootstrap=20))


def test_too_few_draws_or_stimuli_are_refused(data):
    models, sets, _, _ = data
    with pytest.raises(RSABridgeError, match="at least 20"):
        GroupOptions(n_bootstrap=5)
    small = {k: v.isel(stimulus_row=slice(0, 3), stimulus_col=slice(0, 3)) for k, v in sets.items()}
    with pytest.raises(RSABridgeError, match="at least 4 stimuli"):
        compare_groups(models.isel(stimulus_row=slice(0, 3), stimulus_col=slice(0, 3)), small, GroupOptions(n_bootstrap=20))


def test_a_single_rdm_set_is_stimuli_only_without_ceiling(data):
    models, sets, _, _ = data
    one = {"A": sets["A"].isel(subject=0), "B": sets["B"]}
    res = compare_groups(models, one, GroupOptions(n_bootstrap=20, seed=1))
    assert np.isnan(res["p_ceiling"].sel(group="A").values).all()
    assert res.attrs["group_units_A"] == "single RDM" and res.attrs["group_dof_A"] == N - 1
    assert np.isfinite(res["p_zero"].values).all()


@pytest.fixture(scope="module")
def group_files(data, tmp_path_factory):
    from rsa_bridge.datasets import save_dataset

    models, sets, _, _ = data
    tmp = tmp_path_factory.mktemp("groups")
    ds = xr.Dataset({"A": sets["A"].rename(subject="animal"), "B": sets["B"]}, attrs={"name": "two_sets"})
    save_dataset(ds, tmp / "sets.nc")
    xr.Dataset({"rdm": models.rename(model_layer="layer")}).to_netcdf(tmp / "models.nc", engine="h5netcdf")
    return tmp


def test_cli_groups_prints_and_writes_what_compare_groups_gives(data, group_files, capsys):
    import pandas as pd

    from rsa_bridge.app.cli import main

    models, sets, _, _ = data
    code = main(["groups", "--dataset", str(group_files / "sets.nc"), "--set", "A", "--set", "B", "--model-rdms",
                 str(group_files / "models.nc"), "--bootstrap", "40", "--seed", "3", "--out", str(group_files / "out")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "spearman similarity (rsa) against A (animal (5 animals, 1 RDMs each)) and B (subject (4 subjects" in out
    want = compare_groups(models, {"A": sets["A"].rename(subject="animal"), "B": sets["B"]},
                          GroupOptions(n_bootstrap=40, seed=3))
    table = pd.read_csv(group_files / "out" / "groups.csv")
    row = table[(table["model"] == "good") & (table["set"] == "B")].iloc[0]
    assert row["measure"] == "rsa" and row["method"] == "spearman"
    assert row["similarity"] == pytest.approx(float(want["similarity"].sel(model_layer="good", group="B")), abs=1e-12)
    assert row["p_zero"] == pytest.approx(float(want["p_zero"].sel(model_layer="good", group="B")), abs=1e-12)
    saved = xr.open_dataset(group_files / "out" / "groups.nc", engine="h5netcdf").load()
    assert saved.attrs["group_seed"] == 3 and saved.attrs["group_bootstrap"] == 40
    np.testing.assert_allclose(saved["samples"].values, want["samples"].values, atol=1e-12)


@pytest.mark.parametrize("extra, message", [
    (["--set", "A"], "exactly two sets"),
    (["--set", "A", "--set", "A"], "the same area"),
    (["--set", "A", "--set", "C"], "C"),
    (["--set", "A", "--set", "B", "--no-models"], "--model-rdms FILE and/or --control"),
    (["--set", "A", "--set", "B", "--control", "pixels"], "ships no stimuli"),
])
def test_cli_groups_refusals_are_one_line(group_files, capsys, extra, message):
    from rsa_bridge.app.cli import main

    models = [] if "--no-models" in extra else ["--model-rdms", str(group_files / "models.nc")]
    if "--control" in extra:
        models = []
    extra = [e for e in extra if e != "--no-models"]
    code = main(["groups", "--dataset", str(group_files / "sets.nc"), *extra, *models, "--bootstrap", "20"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1


def test_cli_groups_refuses_too_few_draws(group_files, capsys):
    from rsa_bridge.app.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["groups", "--set", "A", "--set", "B", "--bootstrap", "5"])
    assert stop.value.code == 2 and "--bootstrap" in capsys.readouterr().err


def test_pairwise_fdr_equals_scipy_false_discovery_control():
    from scipy.stats import false_discovery_control

    from rsa_bridge.stats.groups import _pairs_fdr

    rng = np.random.default_rng(0)
    p = rng.uniform(0, 0.2, (4, 4))
    p = (p + p.T) / 2
    np.fill_diagonal(p, 1.0)
    iu = np.triu_indices(4, 1)
    adjusted = _pairs_fdr(p)
    np.testing.assert_allclose(adjusted[iu], false_discovery_control(p[iu]), atol=1e-12)
    np.testing.assert_allclose(adjusted, adjusted.T)
    assert np.all(np.diag(adjusted) == 1.0)
