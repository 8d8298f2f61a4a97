"""Firing rates out, in the same shapes the importers read: a NaN-padded numpy array, ``.npz``, ``.mat``
(v5 via scipy.io or v7.3/HDF5 via h5py), a long CSV table, a Brain-Score NetCDF assembly and an
rsatoolbox Dataset file. Every writer is atomic (temporary file in the target folder, then rename).
Writers are looked up by format name in :data:`RATE_WRITERS`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import xarray as xr

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.io import atomic_path, write_netcdf
from rsa_bridge.neural import schema as S
from stimuli.csv_cells import frame_to_csv


def to_array(rates: xr.DataArray) -> tuple[np.ndarray, list[str], list[str]]:
    """The rates as a (neuroid, stimulus, repetition[, time_bin]) float64 array, NaN-padded.

    Repetition numbers are labels, never sizes: slot k holds the k-th smallest repetition number in the
    data (so the number itself when they run 0..K-1, padding need not be trailing). When the numbers are
    sparse — more distinct numbers than any stimulus has showings, e.g. 0 and 10**12 — slot k holds each
    stimulus's k-th showing in repetition order, so the array never outgrows the presentations.
    Stimuli are in order of first appearance. Returns (array, stimulus_ids, neuroid_ids).
    """
    S.validate_rates(rates)
    flat = S.flat_coords(rates).transpose(S.PRESENTATION, S.NEUROID, ...)
    stim = [str(s) for s in flat[S.STIMULUS_ID].values]
    order = list(dict.fromkeys(stim))
    where = {s: k for k, s in enumerate(order)}
    reps = np.asarray(flat[S.REPETITION].values, dtype=np.int64)
    if reps.min() < 0:
        raise RSABridgeError("negative repetition numbers cannot be laid out as array slots")
    values = np.asarray(flat.values, dtype=np.float64)
    rows = np.fromiter((where[s] for s in stim), np.int64, len(stim))
    slots = _repetition_slots(rows, reps)
    shape = (values.shape[1], len(order), int(slots.max()) + 1) + values.shape[2:]
    out = np.full(shape, np.nan)
    out[:, rows, slots] = np.moveaxis(values, 0, 1)
    return out, order, [str(n) for n in flat[S.NEUROID_ID].values]


def _repetition_slots(rows: np.ndarray, reps: np.ndarray) -> np.ndarray:
    """The array slot of each presentation: the dense rank of its repetition number, or (sparse numbers) its
    rank among its stimulus's showings. ``rows``: stimulus index per presentation; linear-log time."""
    _, slots = np.unique(reps, return_inverse=True)
    per_stimulus = np.bincount(rows)
    if slots.max() + 1 <= per_stimulus.max():
        return slots.reshape(-1)
    by = np.lexsort((reps, rows))  # by stimulus, then repetition number
    start = np.concatenate(([0], np.cumsum(per_stimulus)[:-1]))
    ranks = np.empty_like(rows)
    ranks[by] = np.arange(rows.size) - start[rows[by]]
    return ranks


def _neuroid_table(rates: xr.DataArray) -> dict[str, np.ndarray]:
    flat = S.flat_coords(rates)
    return {c: np.asarray([str(v) for v in flat[c].values]) for c in (S.NEUROID_ID, S.REGION, S.ANIMAL, S.SESSION)
            if c in flat.coords}


def write_numpy(rates: xr.DataArray, path: str | os.PathLike) -> Path:
    """``.npz`` with ``rates`` (neuroid, stimulus, repetition[, time_bin]), ``stimulus_ids`` and the
    neuroid labels; read back with ``read_numpy(path, variable='rates', stimulus_ids=...)``."""
    array, stim, _ = to_array(rates)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, rates=array, stimulus_ids=np.asarray(stim), units=str(rates.attrs.get("units")),
                                **_neuroid_table(rates))
    return Path(path)


def write_mat(rates: xr.DataArray, path: str | os.PathLike, version: str = "5") -> Path:
    """``.mat`` with ``rates`` (neuroid x stimulus x repetition[ x time_bin], MATLAB axis order, NaN
    padding) and cell arrays of ids; ``version`` ``'5'`` (scipy.io) or ``'7.3'`` (HDF5 via h5py)."""
    array, stim, _ = to_array(rates)
    labels = _neuroid_table(rates)
    with atomic_path(path) as tmp:
        if version == "5":
            import scipy.io as sio

            content = {"rates": array, "stimulus_ids": np.asarray(stim, dtype=object),
                       "units": str(rates.attrs.get("units"))}
            content.update({k: np.asarray(v, dtype=object) for k, v in labels.items()})
            sio.savemat(tmp, content)
        elif version == "7.3":
            import h5py

            with h5py.File(tmp, "w", userblock_size=512) as handle:
                data = handle.create_dataset("rates", data=np.transpose(array))  # MATLAB is column-major
                data.attrs["MATLAB_class"] = np.bytes_("double")
            with open(tmp, "r+b") as handle:  # MATLAB's 128-byte text header in the user block
                handle.write(b"MATLAB 7.3 MAT-file, written by rsa-bridge".ljust(116) + b"\x00" * 8 + b"\x00\x02IM")
        else:
            raise RSABridgeError(f"unknown .mat version {version!r}; use '5' or '7.3'")
    return Path(path)


def to_long_table(rates: xr.DataArray) -> pd.DataFrame:
    """One row per (presentation, neuroid): stimulus_id, repetition, neuroid_id, region, animal, session,
    rate, units (time bins add time_bin_start/time_bin_end columns). Missing observations are left out."""
    S.validate_rates(rates)
    flat = S.flat_coords(rates).transpose(S.PRESENTATION, S.NEUROID, ...)
    values = np.asarray(flat.values, dtype=np.float64)
    n_pres, n_neur = values.shape[:2]
    n_time = values.shape[2] if values.ndim == 3 else 1
    values = values.reshape(n_pres, n_neur, n_time)
    p, n, t = np.meshgrid(np.arange(n_pres), np.arange(n_neur), np.arange(n_time), indexing="ij")
    table = {S.STIMULUS_ID: np.asarray([str(s) for s in flat[S.STIMULUS_ID].values])[p.ravel()],
             S.REPETITION: np.asarray(flat[S.REPETITION].values)[p.ravel()]}
    for key, labels in _neuroid_table(rates).items():
        table[key] = labels[n.ravel()]
    if values.ndim == 3 and S.TIME_BIN in flat.dims:
        table[S.TIME_BIN_START] = np.asarray(flat[S.TIME_BIN_START].values)[t.ravel()]
        table[S.TIME_BIN_END] = np.asarray(flat[S.TIME_BIN_END].values)[t.ravel()]
    table["rate"] = values.ravel()
    table["units"] = str(rates.attrs.get("units", S.UNKNOWN))
    frame = pd.DataFrame(table)
    return frame[frame["rate"].notna()].reset_index(drop=True)


def write_csv(rates: xr.DataArray, path: str | os.PathLike) -> Path:
    """The long table of :func:`to_long_table` as CSV (rates as written by ``repr``, so lossless)."""
    if S.TIME_BIN in rates.dims:
        raise RSABridgeError("the long CSV format holds one value per (presentation, neuroid); "
                             "select or average time bins first")
    frame = to_long_table(rates)
    with atomic_path(path) as tmp:
        frame_to_csv(frame, tmp, index=False, float_format="%.17g")  # formula cells quoted, numbers as they are
    return Path(path)


def to_brainscore(rates: xr.DataArray) -> xr.DataArray:
    """The rates in Brain-Score's in-memory layout: MultiIndex ``presentation``/``neuroid``/``time_bin``."""
    return S.as_multiindex(S.flat_coords(rates))


def write_brainscore(rates: xr.DataArray, path: str | os.PathLike) -> Path:
    """A NetCDF file as BrainIO writes a NeuroidAssembly: one DataArray, index levels as plain coordinates."""
    S.validate_rates(rates)
    flat = S.flat_coords(rates)
    for name in list(flat.coords):
        if flat[name].dtype.kind in "OU":
            flat = flat.assign_coords({name: (flat[name].dims, np.asarray([str(v) for v in flat[name].values],
                                                                           dtype=object))})
    attrs = {k: v for k, v in flat.attrs.items() if k != S.KIND_ATTR}
    flat = flat.copy()
    flat.attrs = attrs
    return write_netcdf(flat, path)


def write_rsatoolbox(rates: xr.DataArray, path: str | os.PathLike) -> Path:
    """An rsatoolbox Dataset file (HDF5, or pickle for a ``.pkl`` path), readable by
    ``rsatoolbox.data.load_dataset``."""
    from rsa_bridge.neural.rsatoolbox_io import to_rsatoolbox_dataset

    dataset = to_rsatoolbox_dataset(rates)
    kind = "pkl" if Path(path).suffix == ".pkl" else "hdf5"
    with atomic_path(path) as tmp:
        dataset.save(str(tmp), file_type=kind, overwrite=True)
    return Path(path)


#: format name -> writer(rates, path) -> path
RATE_WRITERS: dict[str, Callable[[xr.DataArray, str | os.PathLike], Path]] = {
    "netcdf": S.save_rates,
    "numpy": write_numpy,
    "mat": write_mat,
    "csv": write_csv,
    "brainscore": write_brainscore,
    "rsatoolbox": write_rsatoolbox,
}


def export_rates(rates: xr.DataArray, path: str | os.PathLike, format: str = "netcdf") -> Path:
    """Write rates in one of :data:`RATE_WRITERS`' formats."""
    from rsa_bridge.registry import resolve_name

    return RATE_WRITERS[resolve_name("export format", format, RATE_WRITERS)](rates, path)
