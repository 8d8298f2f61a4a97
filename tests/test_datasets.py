"""Neural RDM datasets: schema validation, loading, corrupt files, area lookup."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy.spatial.distance import squareform

from rsa_bridge import RSABridgeError, list_datasets, load_dataset, save_dataset
from rsa_bridge.datasets import area_rdms, find_area
from rsa_bridge.rdm import COL, ROW


def make_dataset(rng, n=6, ids=None):
    ids = ids or [f"s{i}" for i in range(n)]
    rdm = squareform(rng.random(n * (n - 1) // 2))
    subj = np.stack([squareform(rng.random(n * (n - 1) // 2)) for _ in range(3)])
    return xr.Dataset(
        {"V4": ((ROW, COL), rdm, {"metric": "correlation"}),
         "IT": (("subject", ROW, COL), subj, {"metric": "correlation"})},
        coords={ROW: ids, COL: ids, "subject": ["a", "b", "c"]}, attrs={"name": "toy"},
    )


def test_roundtrip_and_replicates(tmp_path, rng):
    ds = make_dataset(rng)
    path = save_dataset(ds, tmp_path / "toy.nc")
    back = load_dataset(path)
    np.testing.assert_array_equal(back["IT"].values, ds["IT"].values)
    stacked = area_rdms(back, "IT")
    assert stacked.dims == ("replicate", ROW, COL) and list(stacked["replicate"].values) == [
        "subject=a", "subject=b", "subject=c"]
    assert area_rdms(back, "V4").sizes["replicate"] == 1


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda ds: ds.assign(V4=ds["V4"] + np.triu(np.ones((6, 6)), 1)), "not symmetric"),
        (lambda ds: ds.assign(V4=ds["V4"] + np.eye(6)), "non-zero diagonal"),
        (lambda ds: ds.assign(V4=ds["V4"].where(ds["V4"] > 0.05)), "NaN"),
        (lambda ds: ds.assign_coords({ROW: ["s0", "s1", "s2", "s3", "s4", "s0"],
                                      COL: ["s0", "s1", "s2", "s3", "s4", "s0"]}), "duplicate"),
        (lambda ds: ds.rename({COL: "other"}), "no 'stimulus_col'"),
    ],
)
def test_validation_errors(tmp_path, rng, corrupt, message):
    bad = corrupt(make_dataset(rng))
    bad.to_netcdf(tmp_path / "bad.nc", engine="h5netcdf")
    with pytest.raises(RSABridgeError, match=message):
        load_dataset(tmp_path / "bad.nc")
    with pytest.raises(RSABridgeError):
        save_dataset(bad, tmp_path / "never.nc")
    assert not (tmp_path / "never.nc").exists()


def test_corrupt_and_missing_files(tmp_path):
    bad = tmp_path / "corrupt.nc"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 100)
    with pytest.raises(RSABridgeError, match="cannot read"):
        load_dataset(bad)
    with pytest.raises(RSABridgeError, match="no dataset"):
        load_dataset(tmp_path / "nope.nc")


def test_shipped_datasets_listed_and_found():
    table = list_datasets()
    assert {"V4", "IT", "hIT"} <= set(table["area"])
    assert table.query("dataset == 'cowley2023_v4_210325'").set_index("area").loc["V4", "n_stimuli"] == 640
    assert find_area("V4").startswith("cowley2023_v4")
    with pytest.raises(RSABridgeError, match="unknown area 'V9'; choose one of .*V4.*IT.*did you mean 'V4'"):
        find_area("V9")
    ds = load_dataset("kriegeskorte2008_92images")
    assert ds["hIT"].dims == ("subject", "session", ROW, COL)
