"""Cache entries carry a checksum of their content, verified on read: an entry edited into another valid
NetCDF (or one without a checksum) is a warning, is removed and recomputed, never served."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from rsa_bridge.app.cache import META, RDMCache
from rsa_bridge.integrity import content_sha256
from rsa_bridge.rdm import COL, ROW

DESCRIPTION = {"model": {"name": "toy", "weights": "none"}, "layers": [["l1", "0"], ["l2", "1"]],
               "stimuli": {"name": "toyset", "n": 4}}


def _rdms() -> xr.DataArray:
    rng = np.random.default_rng(0)
    x = rng.random((2, 4, 4))
    x = (x + x.transpose(0, 2, 1)) / 2
    x[:, range(4), range(4)] = 0
    ids = ["a", "b", "c", "d"]
    return xr.DataArray(x, dims=("layer", ROW, COL), coords={"layer": ["l1", "l2"], ROW: ids, COL: ids,
                                                              "module_path": ("layer", ["0", "1"])},
                        attrs={"metric": "correlation", "reduce": "none", "n": 3, "layers": ["l1", "l2"]})


def _rewrite(path, change) -> None:
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        ds = ds.load()
    change(ds)
    path.unlink()
    ds.to_netcdf(path, engine="h5netcdf")


def test_round_trip_keeps_the_checksum(tmp_path):
    cache = RDMCache(tmp_path)
    rdms = _rdms()
    cache.put("k" * 64, rdms, DESCRIPTION)
    got = cache.get("k" * 64)
    assert got is not None and content_sha256(got) == content_sha256(rdms)
    np.testing.assert_array_equal(got.values, rdms.values)


@pytest.mark.parametrize("edit", ["value", "id", "attr", "drop checksum"])
def test_edited_entry_is_dropped_with_a_warning(tmp_path, edit):
    cache = RDMCache(tmp_path)
    key = "e" * 64
    path = cache.put(key, _rdms(), DESCRIPTION)

    def change(ds):
        if edit == "value":
            ds["rdms"].values[0, 0, 1] = ds["rdms"].values[0, 1, 0] = 0.123
        elif edit == "id":
            ds["rdms"] = ds["rdms"].assign_coords({ROW: ["a", "b", "c", "z"]})
        elif edit == "attr":
            ds["rdms"].attrs["metric"] = "euclidean"
        else:
            del ds.attrs[f"{META}content_sha256"]

    _rewrite(path, change)
    with xr.open_dataset(path, engine="h5netcdf") as ds:  # still a valid NetCDF with the right key
        assert ds.attrs[f"{META}key"] == key
    with pytest.warns(RuntimeWarning, match="checksum"):
        assert cache.get(key) is None
    assert not path.exists()  # dropped, so the next run recomputes and stores a good entry


def test_checksum_sees_every_part():
    base = content_sha256(_rdms())
    changed = [_rdms().copy(data=_rdms().values + 1e-15), _rdms().assign_attrs(metric="cosine"),
               _rdms().assign_coords(layer=["l1", "lX"]), _rdms().transpose("layer", COL, ROW)]
    assert all(content_sha256(c) != base for c in changed)
    assert content_sha256(_rdms().copy()) == base
