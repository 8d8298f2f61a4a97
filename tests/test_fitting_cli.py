"""``rsa-bridge fit`` / ``rsa-bridge partition`` on user data, checked against rsatoolbox and scikit-learn, and
the hostile inputs they refuse in one line (exit code 2) before any compute."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy.spatial.distance import pdist, squareform
from sklearn.linear_model import LinearRegression

from rsa_bridge.app.cli import main
from rsa_bridge.errors import RSABridgeError

N = 12
IDS = [f"im{i:02d}" for i in range(N)]


def _rdm(x):
    return squareform(pdist(x))


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(5, N, 4))
    models = np.stack([_rdm(f) for f in feats])
    brain = np.stack([_rdm(np.concatenate([feats[0], feats[1], rng.normal(size=(N, 4))], 1)) for _ in range(3)])
    dims = ("stimulus_row", "stimulus_col")
    ds = xr.Dataset({"X": (("subject",) + dims, brain)}, coords={"subject": ["s1", "s2", "s3"],
                                                                 "stimulus_row": IDS, "stimulus_col": IDS},
                    attrs={"name": "toy"})
    ds.to_netcdf(tmp_path / "brain.nc")
    ds.isel(subject=[0]).to_netcdf(tmp_path / "one.nc")
    m = xr.Dataset({"rdm": (("layer",) + dims, models)},
                   coords={"layer": ["a", "b", "c", "d", "e"], "stimulus_row": IDS, "stimulus_col": IDS})
    m.to_netcdf(tmp_path / "model_rdms.nc")
    return tmp_path, brain, models


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_fit_cli_weights_equal_rsatoolbox_and_files_carry_provenance(files, capsys):
    from rsatoolbox.model import ModelWeighted, fit_regress_nn
    from rsatoolbox.rdm import RDMs

    tmp, brain, models = files
    code, out, err = run(capsys, "fit", "--model-rdms", tmp / "model_rdms.nc", "--layers", "a,b,c", "--area", "X",
                         "--dataset", tmp / "brain.nc", "--scheme", "crossval", "--folds", "2", "--out", tmp / "o")
    assert code == 0, err
    iu = np.triu_indices(N, 1)
    ref = fit_regress_nn(ModelWeighted("w", RDMs(models[:3, iu[0], iu[1]] * 1e-3)),
                         RDMs(brain[:, iu[0], iu[1]]), method="corr")
    with xr.open_dataset(tmp / "o" / "fit.nc") as ds:
        np.testing.assert_allclose(ds["weights"].sel(model="weighted_nnls").values, ref, atol=1e-8)
        assert ds.attrs["measure"] == "pearson" and ds.attrs["scheme"] == "crossval" and ds.attrs["seed"] == 0
        assert ds.attrs["dataset"] == "toy" and ds.attrs["area"] == "X" and len(ds.attrs["model_rdms_sha256"]) == 64
        assert ds["evaluation"].shape == (1, 2)
        np.testing.assert_allclose(ds["mean"].values, ds["evaluation"].mean("fold").values)
    csv = (tmp / "o" / "fit.csv").read_text().splitlines()
    assert csv[0].startswith("model,kind,fitter,measure,scheme,mean") and "pearson" in csv[1]
    assert "weighted_nnls" in out


def test_fit_cli_bootstrap_runs_and_is_seeded(files, capsys):
    tmp, _, _ = files
    args = ["fit", "--model-rdms", tmp / "model_rdms.nc", "--area", "X", "--dataset", tmp / "brain.nc",
            "--model", "weighted", "--model", "select", "--model", "fixed", "--layers", "a,b", "--folds", "2",
            "--bootstrap", "6", "--seed", "3"]
    code, out1, err = run(capsys, *args)
    assert code == 0, err
    code, out2, _ = run(capsys, *args)
    assert out1 == out2 and "ci_low" in out1 and "select" in out1
    assert "fixed:a" in out1 and "fixed:b" in out1  # one fixed model per RDM, on the same folds and draws


def test_partition_cli_equals_sklearn(files, capsys):
    tmp, brain, models = files
    code, out, err = run(capsys, "partition", "--model-rdms", tmp / "model_rdms.nc", "--predictors", "a,b",
                         "--area", "X", "--dataset", tmp / "brain.nc", "--bootstrap", "20", "--out", tmp / "p")
    assert code == 0, err
    iu = np.triu_indices(N, 1)
    y = brain.mean(axis=0)[iu]
    X = models[:2, iu[0], iu[1]].T

    def r2(cols):
        return LinearRegression().fit(X[:, cols], y).score(X[:, cols], y)

    with xr.open_dataset(tmp / "p" / "partition.nc") as ds:
        comp = ds["component"].to_series()
        assert comp["unique:a"] == pytest.approx(r2([0, 1]) - r2([1]), abs=1e-10)
        assert comp["shared:a&b"] == pytest.approx(r2([0]) + r2([1]) - r2([0, 1]), abs=1e-10)
        assert comp["total"] == pytest.approx(r2([0, 1]), abs=1e-10)
        assert ds.attrs["measure"] == "r2_ols_intercept" and ds.attrs["seed"] == 0 and ds.attrs["n_boot"] == 20
    assert "r2_ols_intercept" in (tmp / "p" / "partition.csv").read_text()


def _bad_files(tmp, case):
    """Rewrite the model RDM file for one hostile case; returns the extra arguments."""
    m = xr.open_dataset(tmp / "model_rdms.nc").load()
    if case == "constant":
        m["rdm"][1] = 1 - np.eye(N)
    elif case == "ids":
        other = [f"zz{i:02d}" for i in range(N)]
        m = m.assign_coords(stimulus_row=other, stimulus_col=other)
    elif case == "nan":
        m["rdm"][0, 0, 1] = m["rdm"][0, 1, 0] = np.nan
    m.to_netcdf(tmp / "bad.nc")
    return tmp / "bad.nc"


@pytest.mark.parametrize("case, extra, match", [
    ("folds", ["--scheme", "crossval", "--folds", "5"], "at least 3"),
    ("folds_boot", ["--folds", "5"], "need at least 15 stimuli"),
    ("one_subject", ["--scheme", "dual_bootstrap", "--folds", "2"], "resamples subjects"),
    ("constant", ["--scheme", "crossval", "--folds", "2"], "constant"),
    ("ids", ["--scheme", "crossval", "--folds", "2"], "different stimuli"),
    ("nan", ["--scheme", "crossval", "--folds", "2"], "NaN"),
    ("layer", ["--layers", "a,zz"], "unknown model RDM 'zz'"),
    ("fitter", ["--model", "select", "--fitter", "nnls"], "fits none of the models"),
    ("method", ["--method", "spearman"], "fits for comparison methods cosine, pearson"),
    ("subject_folds", ["--subject-folds", "4", "--folds", "2"], "at least as many subjects"),
])
def test_fit_hostile_rows(files, capsys, case, extra, match):
    tmp, _, _ = files
    model_file = _bad_files(tmp, case) if case in ("constant", "ids", "nan") else tmp / "model_rdms.nc"
    dataset = tmp / ("one.nc" if case == "one_subject" else "brain.nc")
    code, out, err = run(capsys, "fit", "--model-rdms", model_file, "--area", "X", "--dataset", dataset, *extra)
    assert code == 2 and len(err.strip().splitlines()) == 1 and match in err, err


def test_fit_refuses_mat_model_rdms(files, capsys):
    tmp, _, _ = files
    (tmp / "m.mat").write_bytes(b"")
    code, _, err = run(capsys, "fit", "--model-rdms", tmp / "m.mat", "--area", "X", "--dataset", tmp / "brain.nc")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "without stimulus ids" in err


@pytest.mark.parametrize("predictors, match", [("a,b,c,d,e", "2 to 4"), ("a", "2 to 4"), ("a,q", "unknown")])
def test_partition_hostile_rows(files, capsys, predictors, match):
    tmp, _, _ = files
    code, _, err = run(capsys, "partition", "--model-rdms", tmp / "model_rdms.nc", "--predictors", predictors,
                       "--area", "X", "--dataset", tmp / "brain.nc")
    assert code == 2 and len(err.strip().splitlines()) == 1 and match in err, err


def test_core_refusals():
    from rsa_bridge.fitting import ModelSpec, crossval
    from rsa_bridge.fitting.evaluate import demo_data
    from rsa_bridge.fitting.folds import Fold

    d = demo_data()
    with pytest.raises(RSABridgeError, match="not in the fitted data"):
        crossval(d, [ModelSpec("w")], [Fold(("s1",), ("s2",), ("x1", "x2", "x3"), d.stimulus_ids[:3])])
    with pytest.raises(RSABridgeError, match="names repeat"):
        crossval(d, [ModelSpec("w"), ModelSpec("w", "select")], [])
    with pytest.raises(RSABridgeError, match="fitted by select"):
        crossval(d, [ModelSpec("s", "select", "nnls")], [])


def test_variance_partition_figure(files, capsys):
    import matplotlib.pyplot as plt

    from analyses.figures.variance_partition import partition_bars

    tmp, _, _ = files
    assert run(capsys, "partition", "--model-rdms", tmp / "model_rdms.nc", "--predictors", "a,b,c", "--area", "X",
               "--dataset", tmp / "brain.nc", "--bootstrap", "10", "--out", tmp / "p")[0] == 0
    with xr.open_dataset(tmp / "p" / "partition.nc") as ds:
        result = ds.load()
    fig, ax, handles = partition_bars(result)
    heights = [b.get_width() for b in handles["bars"]]
    np.testing.assert_allclose(heights, result["component"].values)
    assert "R²" in handles["xlabel"].get_text() and "OLS with intercept" in handles["xlabel"].get_text()
    plt.close(fig)
    with pytest.raises(RSABridgeError, match="not a variance partition"):
        partition_bars(xr.Dataset({"component": ("x", [1.0])}))
    code, out, err = run(capsys, "figure", "variance_partition", "--results", tmp / "p", "--out", tmp / "f")
    assert code == 0, err
    assert (tmp / "f" / "variance_partition.png").is_file()
    code, _, err = run(capsys, "figure", "variance_partition", "--results", tmp / "empty")
    assert code == 2 and len(err.strip().splitlines()) == 1
