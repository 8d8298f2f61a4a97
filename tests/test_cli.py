"""The command line: outputs written, and each user error = one line on stderr, exit 2, nothing written."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from rsa_bridge.app.cli import main
from tests.helpers import make_rdm_dataset, make_stimuli

EXPECTED_COLUMNS = {"model", "weights", "layer", "area", "dataset", "method", "similarity", "n_stimuli"}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    ids = make_stimuli(root / "stimuli", n=8)
    make_rdm_dataset(root / "toy.nc", ids)
    return root


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_compare_writes_all_outputs_and_reuses_model_rdms(toy, tmp_path, capsys):
    out_dir = tmp_path / "out"
    code, out, err = run_cli(capsys, "compare", "--model", "alexnet", "--weights", "none", "--dataset",
                             str(toy / "toy.nc"), "--layers", "conv1,fc6", "--out", str(out_dir), "--quiet")
    assert code == 0, err
    assert "weights none (untrained" in out and "conv1" in out and "fc6" in out
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(
        [".rsa-bridge-complete", "model_rdms.nc", "profile.pdf", "profile.png", "results.csv", "results.nc"])
    table = pd.read_csv(out_dir / "results.csv")
    assert EXPECTED_COLUMNS <= set(table.columns) and len(table) == 4  # 2 layers x 2 areas
    results = xr.open_dataset(out_dir / "results.nc", engine="h5netcdf").load()
    np.testing.assert_allclose(results["similarity"].sel(area="V1").values,
                               table.query("area == 'V1'")["similarity"].values)
    assert results.attrs["weights"] == "none" and results.attrs["rsa_bridge_version"]
    # the written model RDMs, compared again as precomputed RDMs, give the same numbers
    code, out, err = run_cli(capsys, "compare", "--model-rdms", str(out_dir / "model_rdms.nc"), "--dataset",
                             str(toy / "toy.nc"), "--out", str(tmp_path / "again"))
    assert code == 0, err
    again = pd.read_csv(tmp_path / "again" / "results.csv")
    np.testing.assert_allclose(again["similarity"].values, table["similarity"].values, atol=1e-12)
    assert (out_dir / "profile.png").stat().st_size > 1000


def _corrupt_netcdf(root, tmp_path):
    bad = tmp_path / "corrupt.nc"
    bad.write_bytes((root / "toy.nc").read_bytes()[:300])
    return ["--dataset", str(bad), "--stimuli", str(root / "stimuli")]


def _unreadable_image(root, tmp_path):
    stim = tmp_path / "stim"
    make_stimuli(stim, n=8)
    victim = sorted(stim.glob("*.png"))[3]
    victim.write_bytes(b"not a png at all")
    return ["--dataset", str(root / "toy.nc"), "--stimuli", str(stim)], victim.name


@pytest.mark.parametrize("case", ["ids", "area", "layer", "netcdf", "image"])
def test_user_errors_one_line_exit_2_nothing_written(case, toy, tmp_path, capsys):
    expected = {"ids": "stimulus ids of", "area": "unknown area 'V9'", "layer": "conv9",
                "netcdf": "cannot read", "image": "cannot read image"}[case]
    args = ["compare", "--model", "alexnet", "--weights", "none", "--layers", "conv1", "--quiet"]
    if case == "ids":
        make_stimuli(tmp_path / "other", n=9)
        args += ["--dataset", str(toy / "toy.nc"), "--stimuli", str(tmp_path / "other")]
    elif case == "area":
        args += ["--dataset", str(toy / "toy.nc"), "--area", "V9"]
    elif case == "layer":
        args = [a if a != "conv1" else "conv9" for a in args] + ["--dataset", str(toy / "toy.nc")]
    elif case == "netcdf":
        args += _corrupt_netcdf(toy, tmp_path)
    else:
        extra, name = _unreadable_image(toy, tmp_path)
        args += extra
        expected = name
    out_dir = tmp_path / "out"
    code, out, err = run_cli(capsys, *args, "--out", str(out_dir))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rsa-bridge compare: error:"), err
    assert expected in lines[0]
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_datasets_and_layers_commands(capsys):
    code, out, _ = run_cli(capsys, "datasets")
    assert code == 0 and "cowley2023_v4_210325" in out and "hIT" in out
    code, out, _ = run_cli(capsys, "layers", "--model", "alexnet")
    assert code == 0 and "conv1" in out and "features.0" in out and "classifier.6" in out


def test_console_script_missing_weights_offline(tmp_path):
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch"), "RSA_BRIDGE_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "rsa_bridge", "compare", "--model", "alexnet", "--area", "IT"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--weights" in lines[0] and str(tmp_path / "torch") in lines[0], proc.stderr
    assert proc.stdout == ""
