"""`rsa-bridge cache info|clear`, and `compare --cache DIR / --no-cache` end to end."""
from __future__ import annotations

import argparse
import os
import time

import pandas as pd
import pytest
import xarray as xr

from rsa_bridge.app.cache import RDMCache
from rsa_bridge.app.commands import cache as cache_cmd
from rsa_bridge.app.commands import compare as compare_cmd
from tests.helpers import make_rdm_dataset, make_stimuli


def cli(capsys, *argv):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    cache_cmd.register(sub)
    compare_cmd.register(sub)
    args = parser.parse_args(list(argv))
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache_cli")
    ids = make_stimuli(root / "stimuli", n=8)
    make_rdm_dataset(root / "toy.nc", ids)
    return root


def compare(capsys, toy, out, *extra):
    return cli(capsys, "compare", "--model", "alexnet", "--weights", "none", "--dataset", str(toy / "toy.nc"),
               "--layers", "conv1,fc6", "--bootstrap", "20", "--out", str(out), "--quiet", *extra)


@pytest.mark.slow
def test_second_compare_reads_the_cache_and_writes_identical_results(toy, tmp_path, capsys):
    cache = tmp_path / "cache"
    code, out, err = compare(capsys, toy, tmp_path / "a", "--cache", str(cache))
    assert code == 0 and "read from" not in err
    code, out, err = compare(capsys, toy, tmp_path / "b", "--cache", str(cache))
    assert code == 0 and f"read from {cache}" in err
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a" / "results.csv"), pd.read_csv(tmp_path / "b" / "results.csv"))
    for name in ("results.nc", "model_rdms.nc"):
        a = xr.open_dataset(tmp_path / "a" / name, engine="h5netcdf").load()
        b = xr.open_dataset(tmp_path / "b" / name, engine="h5netcdf").load()
        xr.testing.assert_identical(a, b)
    code, out, err = cli(capsys, "cache", "--cache", str(cache), "info")
    assert code == 0 and f"cache: {cache} (--cache)" in out and "entries: 1," in out
    assert "alexnet" in out and "conv1,fc6" in out and "toy" in out


def test_no_cache_writes_nothing(toy, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RSA_BRIDGE_CACHE", str(tmp_path / "env_cache"))
    code, out, err = compare(capsys, toy, tmp_path / "a", "--no-cache")
    assert code == 0 and not (tmp_path / "env_cache").exists()
    code, out, err = cli(capsys, "cache", "info")
    assert f"cache: {tmp_path / 'env_cache'} ($RSA_BRIDGE_CACHE)" in out and "entries: 0," in out


def test_clear_older_than_and_all(tmp_path, capsys):
    store = RDMCache(tmp_path / "c")
    store.folder.mkdir(parents=True)
    old, new = store.folder / "a.nc", store.folder / "b.nc"
    for path in (old, new):  # entries as the cache writes them: their stored key is their name
        xr.Dataset({"rdms": xr.DataArray([[0.0]])}, attrs={"rsa_bridge_cache_model": "m", "rsa_bridge_cache_key":
                                                            path.stem}).to_netcdf(path, engine="h5netcdf")
    ten_days = time.time() - 10 * 86400
    os.utime(old, (ten_days, ten_days))
    stale_tmp = tmp_path / "c" / "rdms" / f".{'0' * 64}.nc.abc12345.tmp"  # an interrupted write's temp file
    stale_tmp.write_bytes(b"half")
    os.utime(stale_tmp, (ten_days, ten_days))
    code, out, err = cli(capsys, "cache", "--cache", str(tmp_path / "c"), "info")
    assert "entries: 2," in out and "1 temporary file(s)" in out
    code, out, err = cli(capsys, "cache", "--cache", str(tmp_path / "c"), "clear", "--older-than", "7")
    assert code == 0 and "removed 1 entry unused for 7 days" in out
    assert not old.exists() and new.exists() and not stale_tmp.exists()
    code, out, err = cli(capsys, "cache", "--cache", str(tmp_path / "c"), "clear")
    assert "removed 1 entry " in out and store.entries() == []
