"""The firing-rate schema: building, validating, NetCDF round trips (MultiIndex too), and bad input."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.neural import schema as S
from rsa_bridge.neural.schema import (NeuralDataWarning, as_multiindex, load_rates, make_rates, save_rates,
                                      select_region, validate_rates)
from rsa_bridge.neural.schema import RatesOptions


def toy(rng, n_stim=5, n_rep=3, regions=("V4", "V4", "IT", "IT"), **kw):
    ids = [f"s{k}" for k in range(n_stim) for _ in range(n_rep)]
    reps = [r for _ in range(n_stim) for r in range(n_rep)]
    values = rng.poisson(4.0, size=(len(ids), len(regions))).astype(float)
    return make_rates(values, stimulus_ids=ids, repetitions=reps, neuroid_ids=[f"n{k}" for k in range(len(regions))],
                      region=list(regions), animal="M1", session="day1", units="spikes/s", **kw)


def test_layout_and_coordinates(rng):
    rates = toy(rng)
    assert rates.dims == (S.PRESENTATION, S.NEUROID)
    assert list(rates[S.REGION].values) == ["V4", "V4", "IT", "IT"]
    assert rates[S.STIMULUS_ID].values[3] == "s1" and rates[S.REPETITION].values[3] == 0
    assert rates.attrs["units"] == "spikes/s" and rates.attrs[S.KIND_ATTR] == S.KIND_RATES


def test_netcdf_round_trip_plain_and_multiindex(rng, tmp_path):
    rates = toy(rng)
    save_rates(rates, tmp_path / "plain.nc")
    back = load_rates(tmp_path / "plain.nc")
    np.testing.assert_array_equal(back.values, rates.values)
    for c in (S.STIMULUS_ID, S.REPETITION, S.NEUROID_ID, S.REGION, S.ANIMAL, S.SESSION):
        assert [str(v) for v in back[c].values] == [str(v) for v in rates[c].values]
    multi = as_multiindex(rates)
    assert isinstance(multi.indexes[S.PRESENTATION], pd.MultiIndex)
    save_rates(multi, tmp_path / "multi.nc")
    back = load_rates(tmp_path / "multi.nc")
    assert list(back.indexes[S.PRESENTATION].names) == [S.STIMULUS_ID, S.REPETITION]
    assert list(back.indexes[S.NEUROID].names) == [S.NEUROID_ID, S.REGION, S.ANIMAL, S.SESSION]
    np.testing.assert_array_equal(back.sel(region="IT").values, rates.values[:, 2:])
    np.testing.assert_array_equal(back.sel(stimulus_id="s2").values, rates.values[6:9])


def test_time_bins_round_trip(rng, tmp_path):
    values = rng.normal(size=(4, 2, 3))
    rates = make_rates(values, stimulus_ids=["a", "a", "b", "b"], repetitions=[0, 1, 0, 1], neuroid_ids=["x", "y"],
                       region="V1", options=RatesOptions(time_bins=[(0, 50), (50, 100), (100, 150)]))
    save_rates(rates, tmp_path / "t.nc")
    back = load_rates(tmp_path / "t.nc")
    assert back.dims == (S.PRESENTATION, S.NEUROID, S.TIME_BIN)
    np.testing.assert_array_equal(back[S.TIME_BIN_END].values, [50, 100, 150])
    np.testing.assert_array_equal(back.values, values)


def test_shape_and_id_mismatch():
    with pytest.raises(RSABridgeError, match="3 stimulus_id values for 4"):
        make_rates(np.ones((4, 2)), stimulus_ids=["a", "b", "c"], repetitions=[0, 0, 0, 0], neuroid_ids=["x", "y"],
                   region="V1")
    with pytest.raises(RSABridgeError, match="1 neuroid_id values for 2"):
        make_rates(np.ones((2, 2)), stimulus_ids=["a", "b"], repetitions=[0, 0], neuroid_ids=["x"], region="V1")


def test_duplicates_rejected():
    with pytest.raises(RSABridgeError, match="duplicate neuroid_id 'x'"):
        make_rates(np.arange(8.0).reshape(4, 2), stimulus_ids=list("abcd"), repetitions=[0] * 4,
                   neuroid_ids=["x", "x"], region="V1")
    with pytest.raises(RSABridgeError, match="stimulus 'a' has repetition 0 more than once"):
        make_rates(np.arange(8.0).reshape(4, 2), stimulus_ids=list("aabc"), repetitions=[0] * 4,
                   neuroid_ids=["x", "y"], region="V1")


def test_nan_needs_allow_missing_and_inf_never(rng):
    values = rng.normal(size=(4, 3))
    values[1, 2] = np.nan
    kw = dict(stimulus_ids=list("aabb"), repetitions=[0, 1, 0, 1], neuroid_ids=["x", "y", "z"], region="V1")
    with pytest.raises(RSABridgeError, match=r"NaN beyond repeat padding.*neuroid 'z' at stimulus 'a' repetition 1"):
        make_rates(values, **kw)
    rates = make_rates(values, **kw, options=RatesOptions(allow_missing=True))
    assert rates.attrs["missing"] == "allowed" and np.isnan(rates.values[1, 2])
    values[0, 0] = np.inf
    with pytest.raises(RSABridgeError, match="inf"):
        make_rates(values, **kw, options=RatesOptions(allow_missing=True))


def test_zero_variance_neuroids_excluded_with_count(rng):
    values = rng.normal(size=(6, 4))
    values[:, 1] = 3.0
    values[:, 3] = 0.0
    with pytest.warns(NeuralDataWarning, match=r"excluded 2 of 4 neuroids with zero variance.*'y'.*'w'"):
        rates = make_rates(values, stimulus_ids=list("aabbcc"), repetitions=[0, 1] * 3,
                           neuroid_ids=["x", "y", "z", "w"], region="V1")
    assert list(rates[S.NEUROID_ID].values) == ["x", "z"] and rates.attrs["excluded_zero_variance"] == 2


def test_mixed_units_say_which():
    with pytest.raises(RSABridgeError, match=r"mixed units: 'spikes/s' \('x', 'y'\); 'spike count' \('z'\)"):
        make_rates(np.arange(12.0).reshape(4, 3), stimulus_ids=list("abcd"), repetitions=[0] * 4,
                   neuroid_ids=["x", "y", "z"], region="V1", units=["spikes/s", "spikes/s", "spike count"])


def test_region_not_in_data(rng):
    rates = toy(rng)
    assert select_region(rates, "IT").sizes[S.NEUROID] == 2
    with pytest.raises(RSABridgeError, match="no neuroids in region 'V1'; the data have V4, IT"):
        select_region(rates, "V1")


def test_corrupt_and_truncated_netcdf(rng, tmp_path):
    rates = toy(rng)
    good = save_rates(rates, tmp_path / "good.nc")
    truncated = tmp_path / "truncated.nc"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(RSABridgeError, match="corrupt, truncated or not NetCDF"):
        load_rates(truncated)
    (tmp_path / "junk.nc").write_text("not a netcdf file")
    with pytest.raises(RSABridgeError, match="cannot read"):
        load_rates(tmp_path / "junk.nc")
    rdm_like = xr.Dataset({"V4": (("stimulus_row", "stimulus_col"), np.zeros((3, 3)))})
    rdm_like.to_netcdf(tmp_path / "rdm.nc", engine="h5netcdf")
    with pytest.raises(RSABridgeError, match="holds no 'rates' variable"):
        load_rates(tmp_path / "rdm.nc")


def test_failed_save_leaves_nothing(rng, tmp_path):
    rates = toy(rng)
    bad = rates.assign_coords({S.NEUROID_ID: (S.NEUROID, ["n0", "n0", "n1", "n2"])})
    with pytest.raises(RSABridgeError, match="duplicate neuroid_id"):
        save_rates(bad, tmp_path / "out.nc")
    assert list(tmp_path.iterdir()) == []


def test_validate_rejects_other_layouts():
    with pytest.raises(RSABridgeError, match="dims"):
        validate_rates(xr.DataArray(np.zeros((2, 2)), dims=("stimulus", "unit")))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        da = xr.DataArray(np.zeros((2, 2)), dims=(S.PRESENTATION, S.NEUROID))
        with pytest.raises(RSABridgeError, match="no 'stimulus_id' coordinate"):
            validate_rates(da)
