"""`compare --precision/--reduce-units`: the options reach the model RDMs, are recorded, and key the cache."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from rsa_bridge.app.cli import main
from rsa_bridge.rdm import compute_rdm
from tests.helpers import cli_code, make_rdm_dataset, make_stimuli


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("rdm_options")
    ids = make_stimuli(root / "stimuli", n=8)
    make_rdm_dataset(root / "toy.nc", ids)
    return root


def _model_rdms(capsys, toy, out, cache, *extra):
    argv = ["compare", "--model", "alexnet", "--weights", "none", "--dataset", str(toy / "toy.nc"),
            "--layers", "conv1,fc6", "--bootstrap", "0", "--quiet", "--cache", str(cache), "--out", str(out), *extra]
    code = main(argv)
    _, err = capsys.readouterr()
    assert code == 0, err
    return xr.open_dataset(out / "model_rdms.nc", engine="h5netcdf").load()["rdm"], err


def test_reduce_units_and_precision_reach_the_rdms_and_key_the_cache(toy, tmp_path, capsys):
    cache = tmp_path / "cache"
    exact, _ = _model_rdms(capsys, toy, tmp_path / "exact", cache)
    assert exact.attrs["rdm_precision"] == "float64" and "reduce_units" not in exact.attrs
    sketched, err = _model_rdms(capsys, toy, tmp_path / "sketch", cache, "--reduce-units", "64")
    assert "read from" not in err          # not served from the exact run's cache entry
    assert int(sketched.attrs["reduce_units"]) == 64
    assert not np.allclose(sketched.sel(layer="conv1").values, exact.sel(layer="conv1").values)
    single, err = _model_rdms(capsys, toy, tmp_path / "f32", cache, "--precision", "float32")
    assert "read from" not in err and single.attrs["rdm_precision"] == "float32"
    np.testing.assert_allclose(single.values, exact.values, atol=1e-5)
    again, err = _model_rdms(capsys, toy, tmp_path / "again", cache)
    assert "read from" in err                # the exact run again is a hit, identical to the bit
    np.testing.assert_array_equal(again.values, exact.values)


def test_exact_model_rdm_equals_the_numpy_path(toy, tmp_path, capsys):
    """The streamed float64 RDM of fc6 equals compute_rdm on the same activations (extract)."""
    from extractors import extract, load_model
    from stimuli import load_stimulus_set

    exact, _ = _model_rdms(capsys, toy, tmp_path / "exact", tmp_path / "cache")
    model = load_model("alexnet", "none")
    acts = extract(model, load_stimulus_set(toy / "stimuli"), ["fc6"], progress=False)
    reference = compute_rdm(acts["fc6"], metric="correlation")
    ids = [str(i) for i in reference["stimulus_row"].values]
    np.testing.assert_allclose(exact.sel(layer="fc6").sel(stimulus_row=ids, stimulus_col=ids).values,
                               reference.values, atol=1e-10)


def test_bad_reduce_units_is_one_line(toy, tmp_path, capsys):
    code = cli_code(["compare", "--model", "alexnet", "--weights", "none", "--dataset", str(toy / "toy.nc"),
                     "--reduce-units", "0", "--out", str(tmp_path / "x")])
    _, err = capsys.readouterr()
    assert code == 2 and "--reduce-units" in err and not (tmp_path / "x").exists()
