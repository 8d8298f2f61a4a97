"""The one NetCDF reader/writer (rsa_bridge.io) and its error policy, as every reader of rsa-bridge sees it."""
from __future__ import annotations

import re

import numpy as np
import pytest
import xarray as xr

from rsa_bridge.datasets import load_dataset
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.io import read_netcdf, write_netcdf
from rsa_bridge.model_rdms import read_model_rdms
from rsa_bridge.neural.schema import load_rates


def test_round_trip_with_encoding_and_attrs_only(tmp_path):
    ds = xr.Dataset({"a": ("x", np.arange(5.0))}, attrs={"name": "toy"})
    path = write_netcdf(ds, tmp_path / "a.nc", encoding={"a": {"zlib": True, "complevel": 4}})
    back = read_netcdf(path)
    xr.testing.assert_identical(back, ds)
    assert back["a"].encoding.get("zlib") or back["a"].encoding.get("compression") == "gzip"
    only = read_netcdf(path, attrs_only=True)
    assert dict(only.attrs) == {"name": "toy"} and not only.data_vars
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temporary file


def test_netcdf3_is_read_too(tmp_path):
    xr.Dataset({"a": ("x", np.arange(3.0))}).to_netcdf(tmp_path / "n3.nc", engine="scipy")
    np.testing.assert_array_equal(read_netcdf(tmp_path / "n3.nc")["a"].values, [0.0, 1.0, 2.0])


@pytest.mark.parametrize("reader", [load_dataset, read_model_rdms, load_rates, read_netcdf])
def test_one_error_policy_for_every_reader(reader, tmp_path):
    bad = tmp_path / "bad.nc"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 20)
    with pytest.raises(RSABridgeError, match=r"cannot read '.*bad\.nc' as .*corrupt, truncated or not .*NetCDF"):
        reader(bad)
    with pytest.raises(RSABridgeError, match="no such file|does not exist|no dataset"):
        reader(tmp_path / "missing.nc")


def test_reading_is_the_one_policy_for_other_readers_too(tmp_path):
    from rsa_bridge.io import reading

    with pytest.raises(RSABridgeError, match="no such file"):
        with reading(tmp_path / "none.mat", "a MATLAB file"):
            pass
    (tmp_path / "x.mat").write_bytes(b"junk")
    with pytest.raises(RSABridgeError, match=r"cannot read .*x\.mat' as a MATLAB file \(ValueError: bad\); the file is "
                                             "corrupt, truncated or not a MATLAB file"):
        with reading(tmp_path / "x.mat", "a MATLAB file"):
            raise ValueError("bad")
    with pytest.raises(RSABridgeError, match="^own message$"):  # a reader's own user error passes unchanged
        with reading(tmp_path / "x.mat", "a MATLAB file"):
            raise RSABridgeError("own message")


@pytest.mark.parametrize("fmt,what", [("csv", "CSV"), ("algonauts2019", "a MATLAB v7.3 file"),
                                      ("henaff2021-v1", "a Henaff et al. 2021 recording")])
def test_other_readers_share_the_policy(fmt, what, tmp_path):
    from rsa_bridge.neural.load import read_neural

    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"\x00\xff\xfe garbage \x00" * 10)
    with pytest.raises(RSABridgeError, match=rf"cannot read '.*bad\.bin' as {re.escape(what)}.*corrupt, truncated"):
        read_neural(bad, fmt, region="V1")
    with pytest.raises(RSABridgeError, match="no such file"):
        read_neural(tmp_path / "missing.bin", fmt)
