"""Importers and exporters: numpy, .mat (v5 and v7.3), long CSV, Brain-Score NetCDF, rsatoolbox objects."""
from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.io as sio
import xarray as xr

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.neural import schema as S
from rsa_bridge.neural.exporters import export_rates, to_array, to_brainscore, to_long_table
from rsa_bridge.neural.importers import from_array, read_brainscore, read_csv, read_mat, read_numpy
from rsa_bridge.neural.load import read_neural
from rsa_bridge.neural.rsatoolbox_io import (from_rsatoolbox_dataset, rdms_from_rsatoolbox, rdms_to_rsatoolbox,
                                             read_rsatoolbox, to_rsatoolbox_dataset)
from rsa_bridge.rdm import COL, ROW, compute_rdm
from rsa_bridge.neural.schema import RatesOptions


def padded(rng, n_neur=4, n_stim=6, n_rep=5):
    """neurons x images x repeats spike counts with trailing NaN padding (2..5 repeats per image)."""
    array = rng.poisson(3.0, size=(n_neur, n_stim, n_rep)).astype(float)
    shown = rng.integers(2, n_rep + 1, size=n_stim)
    for j, r in enumerate(shown):
        array[:, j, r:] = np.nan
    return array, shown


def same_rates(a: xr.DataArray, b: xr.DataArray) -> None:
    np.testing.assert_array_equal(np.asarray(a.values), np.asarray(b.values))
    for c in (S.STIMULUS_ID, S.REPETITION, S.NEUROID_ID, S.REGION, S.ANIMAL, S.SESSION):
        assert [str(v) for v in S.flat_coords(a)[c].values] == [str(v) for v in S.flat_coords(b)[c].values], c
    assert a.attrs["units"] == b.attrs["units"]


def test_from_array_drops_padding_and_keeps_repeats(rng):
    array, shown = padded(rng)
    rates = from_array(array, stimulus_ids="img{n:02d}", region="V4", units="spike count")
    assert rates.sizes[S.PRESENTATION] == shown.sum()
    assert not np.isnan(rates.values).any()
    ids = [str(s) for s in rates[S.STIMULUS_ID].values]
    assert [ids.count(f"img{j + 1:02d}") for j in range(6)] == shown.tolist()
    back, stim, neur = to_array(rates)
    np.testing.assert_array_equal(back[:, :, : array.shape[2]], array[:, :, : back.shape[2]])
    assert stim == [f"img{j + 1:02d}" for j in range(6)] and neur[0] == "V4_n000"


def test_from_array_layouts_and_non_trailing_padding(rng):
    array, _ = padded(rng)
    array[:, 0, 1] = np.nan  # a gap in the middle: the slot keeps its number
    a = from_array(array, stimulus_ids=[f"i{j}" for j in range(6)], region="V1")
    b = from_array(np.transpose(array, (2, 1, 0)), layout="repetition,stimulus,neuroid",
                   stimulus_ids=[f"i{j}" for j in range(6)], region="V1")
    same_rates(a, b)
    reps = a[S.REPETITION].values[np.asarray(a[S.STIMULUS_ID].values) == "i0"]
    assert 1 not in reps.tolist() and 0 in reps.tolist()
    mean2d = from_array(np.nanmean(array, axis=2), layout="neuroid,stimulus", stimulus_ids="i{i}", region="V1")
    assert mean2d.sizes[S.PRESENTATION] == 6 and set(mean2d[S.REPETITION].values) == {0}


def test_from_array_bad_input(rng):
    array, _ = padded(rng)
    with pytest.raises(RSABridgeError, match="5 stimulus ids for 6 in the data"):
        from_array(array, stimulus_ids=[f"i{j}" for j in range(5)], region="V4")
    with pytest.raises(RSABridgeError, match="never matches stimuli by position"):
        from_array(array, region="V4")
    with pytest.raises(RSABridgeError, match="layout"):
        from_array(array, layout="neuroid,stimulus", stimulus_ids="i{i}", region="V4")
    array[2, 1, 0] = np.nan  # one neuron missing where the others have a value
    with pytest.raises(RSABridgeError, match="NaN beyond repeat padding"):
        from_array(array, stimulus_ids="i{i}", region="V4")
    rates = from_array(array, stimulus_ids="i{i}", region="V4", options=RatesOptions(allow_missing=True))
    assert np.isnan(rates.values).sum() == 1


def test_numpy_files_round_trip_and_corrupt(rng, tmp_path):
    array, _ = padded(rng)
    np.save(tmp_path / "r.npy", array)
    rates = read_numpy(tmp_path / "r.npy", stimulus_ids="i{i}", region="V4", units="spike count")
    export_rates(rates, tmp_path / "r.npz", "numpy")
    content = np.load(tmp_path / "r.npz")
    back = read_numpy(tmp_path / "r.npz", variable="rates", stimulus_ids=list(content["stimulus_ids"]),
                      neuroid_ids=list(content["neuroid_id"]), region="V4", units=str(content["units"]))
    same_rates(rates, back)
    with pytest.raises(RSABridgeError, match="say which with variable"):
        read_numpy(tmp_path / "r.npz", stimulus_ids="i{i}", region="V4")
    raw = (tmp_path / "r.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(RSABridgeError, match="corrupt, truncated"):
        read_numpy(tmp_path / "cut.npy", stimulus_ids="i{i}", region="V4")


@pytest.mark.parametrize("version", ["5", "7.3"])
def test_mat_round_trip(rng, tmp_path, version):
    array, _ = padded(rng)
    rates = from_array(array, stimulus_ids="i{i}", region="IT", animal="M", session="s1", units="spikes/s")
    path = export_rates(rates, tmp_path / f"r{version}.mat", "mat") if version == "5" else None
    if version == "7.3":
        from rsa_bridge.neural.exporters import write_mat

        path = write_mat(rates, tmp_path / "r73.mat", version="7.3")
        assert h5py.is_hdf5(path)
    else:
        assert sio.loadmat(path)["rates"].shape == array.shape
    back = read_mat(path, variable="rates", stimulus_ids="i{i}", region="IT", animal="M", session="s1",
                    units="spikes/s", neuroid_ids="IT_n{i:03d}")
    same_rates(rates.assign_coords({S.NEUROID_ID: (S.NEUROID, [f"IT_n{k:03d}" for k in range(4)])}), back)


def test_mat_v73_written_like_matlab_reads_in_matlab_order(rng, tmp_path):
    array = rng.normal(size=(3, 4, 2))  # neuron x image x repeat, as MATLAB would hold it
    with h5py.File(tmp_path / "m.mat", "w", userblock_size=512) as handle:
        handle.create_dataset("resp", data=array.T)  # MATLAB writes column-major: h5py sees the axes reversed
    rates = read_mat(tmp_path / "m.mat", stimulus_ids="i{i}", region="V1")
    np.testing.assert_array_equal(to_array(rates)[0], array)


def test_mat_corrupt(tmp_path):
    (tmp_path / "bad.mat").write_bytes(b"MATLAB 5.0 MAT-file" + b"\x00" * 50)
    with pytest.raises(RSABridgeError, match="cannot read"):
        read_mat(tmp_path / "bad.mat", stimulus_ids="i{i}", region="V1")


def test_csv_round_trip(rng, tmp_path):
    array, _ = padded(rng)
    rates = from_array(array, stimulus_ids="i{i}", region="V4", animal="M", session="s", units="spikes/s")
    export_rates(rates, tmp_path / "r.csv", "csv")
    table = pd.read_csv(tmp_path / "r.csv")
    assert list(table.columns) == ["stimulus_id", "repetition", "neuroid_id", "region", "animal", "session", "rate",
                                   "units"]
    same_rates(rates, read_csv(tmp_path / "r.csv"))


def test_csv_bad_input(tmp_path):
    rows = pd.DataFrame({"stimulus_id": ["a", "a", "b", "b"], "neuroid_id": ["x", "y", "x", "y"],
                         "repetition": [0, 0, 0, 0], "rate": [1.0, 2.0, 3.0, 5.0]})
    rows.assign(units=["spikes/s", "spikes/s", "spike count", "spikes/s"]).to_csv(tmp_path / "u.csv", index=False)
    with pytest.raises(RSABridgeError, match=r"mixed units: 'spikes/s' \('x', 'y'\); 'spike count' \('x'\)"):
        read_csv(tmp_path / "u.csv", region="V4")
    pd.concat([rows, rows.iloc[:1]]).to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(RSABridgeError, match="1 rows repeat"):
        read_csv(tmp_path / "d.csv", region="V4")
    rows.iloc[:3].to_csv(tmp_path / "gap.csv", index=False)  # y never seen for b: NaN beyond padding
    with pytest.raises(RSABridgeError, match="NaN beyond repeat padding"):
        read_csv(tmp_path / "gap.csv", region="V4")
    rows.drop(columns="rate").to_csv(tmp_path / "norate.csv", index=False)
    with pytest.raises(RSABridgeError, match="lacks column"):
        read_csv(tmp_path / "norate.csv", region="V4")
    rows.assign(region=["V4", "IT", "IT", "IT"]).to_csv(tmp_path / "reg.csv", index=False)
    with pytest.raises(RSABridgeError, match="neuroid 'x' has more than one region"):
        read_csv(tmp_path / "reg.csv")
    (tmp_path / "broken.csv").write_bytes(b'stimulus_id,neuroid_id\n"a,b\n')
    with pytest.raises(RSABridgeError, match="cannot read"):
        read_csv(tmp_path / "broken.csv")


def test_brainscore_assembly_as_brainio_writes_it(rng, tmp_path):
    """BrainIO writes ``assembly.reset_index(list(assembly.indexes)).to_netcdf(...)``; older ones say image_id."""
    array, _ = padded(rng)
    rates = from_array(array, stimulus_ids="i{i}", region="V4", animal="M", units="spikes/s")
    assembly = to_brainscore(rates)
    assert isinstance(assembly.indexes[S.NEUROID], pd.MultiIndex)
    flat = assembly.reset_index(list(assembly.indexes)).rename({S.STIMULUS_ID: "image_id"})
    flat = flat.assign_coords(image_id=(S.PRESENTATION, [str(v) for v in flat["image_id"].values]))
    flat.attrs = {"stimulus_set_identifier": "toy"}
    flat.name = None
    flat.to_netcdf(tmp_path / "assy.nc", engine="h5netcdf")
    back = read_brainscore(tmp_path / "assy.nc", units="spikes/s")
    same_rates(rates, back)
    assert back.attrs["stimulus_set_identifier"] == "toy"
    export_rates(rates, tmp_path / "ours.nc", "brainscore")
    assert read_neural(tmp_path / "ours.nc").data.sizes == rates.sizes  # told apart from an RDM dataset by content


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")  # inside rsatoolbox
def test_rsatoolbox_dataset_both_ways(rng, tmp_path):
    from rsatoolbox.rdm import calc_rdm

    array, _ = padded(rng)
    rates = from_array(array, stimulus_ids="i{i}", region="V4", units="spikes/s")
    dataset = to_rsatoolbox_dataset(rates)
    assert dataset.measurements.shape == (rates.sizes[S.PRESENTATION], 4)
    same_rates(rates, from_rsatoolbox_dataset(dataset))
    rsa_rdm = calc_rdm(dataset, method="correlation", descriptor="stimulus_id")
    ours = compute_rdm(np.nanmean(array, axis=2).T, "correlation", stimulus_ids=[f"i{j}" for j in range(6)])
    np.testing.assert_allclose(rsa_rdm.get_matrices()[0], ours.values, atol=1e-12)
    export_rates(rates, tmp_path / "ds.hdf5", "rsatoolbox")
    same_rates(rates, read_rsatoolbox(tmp_path / "ds.hdf5"))
    (tmp_path / "bad.hdf5").write_bytes(b"nope")
    with pytest.raises(RSABridgeError, match="cannot read|refusing to load .*not HDF5"):
        read_rsatoolbox(tmp_path / "bad.hdf5")


def test_rsatoolbox_rdms_both_ways(rng):
    ids = [f"s{k}" for k in range(5)]
    rdms = xr.concat([compute_rdm(rng.normal(size=(5, 8)), stimulus_ids=ids) for _ in range(3)], dim="subject")
    rdms = rdms.assign_coords(subject=["a", "b", "c"])
    rsa = rdms_to_rsatoolbox(rdms)
    assert rsa.n_rdm == 3 and list(rsa.rdm_descriptors["subject"]) == ["a", "b", "c"]
    np.testing.assert_array_equal(rsa.get_matrices(), rdms.values)
    back = rdms_from_rsatoolbox(rsa, replicate_descriptor="subject")
    np.testing.assert_array_equal(back.values, rdms.values)
    assert list(back[ROW].values) == ids and list(back[COL].values) == ids
    rsa.pattern_descriptors.pop("stimulus_id")
    with pytest.raises(RSABridgeError, match="no stimulus ids"):
        rdms_from_rsatoolbox(rsa)


def test_long_table_leaves_out_missing(rng):
    array, shown = padded(rng)
    array[1, 0, 0] = np.nan
    rates = from_array(array, stimulus_ids="i{i}", region="V4", options=RatesOptions(allow_missing=True))
    assert len(to_long_table(rates)) == 4 * shown.sum() - 1


def test_read_neural_region_selection_and_unknown(rng, tmp_path):
    array, _ = padded(rng)
    rates = from_array(array, stimulus_ids="i{i}", region=["V4", "V4", "IT", "IT"])
    S.save_rates(rates, tmp_path / "r.nc")
    assert read_neural(tmp_path / "r.nc", region="IT").data.sizes[S.NEUROID] == 2
    with pytest.raises(RSABridgeError, match="no neuroids in region 'V1'"):
        read_neural(tmp_path / "r.nc", region="V1")
    with pytest.raises(RSABridgeError, match="not a shipped name"):
        read_neural(tmp_path / "absent.nc")
