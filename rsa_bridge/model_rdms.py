"""Model RDMs as one DataArray ``(layer, stimulus_row, stimulus_col)``: building, reading, writing.

Precomputed model RDMs come from a NetCDF file (written by ``rsa-bridge compare --out``, or any
RDM dataset whose variables are layers) or a MATLAB ``.mat`` file (an rsatoolbox-MATLAB style
struct array with ``RDM`` and a name field, or plain variables holding square matrices or
condensed vectors). A ``.mat`` file carries no stimulus ids, so the caller must say what its rows
are (``stimulus_ids``): rsa-bridge never matches stimuli by position on its own.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import scipy.io as sio
import xarray as xr
from scipy.spatial.distance import squareform

from rsa_bridge.datasets import areas, validate_rdm_dataset
from rsa_bridge.duplicates import duplicates
from rsa_bridge.errors import RSABridgeError, preview
from rsa_bridge.io import read_netcdf
from rsa_bridge.rdm import COL, ROW

LAYER = "layer"


def stack_rdms(rdms: Mapping[str, xr.DataArray], attrs: dict | None = None) -> xr.DataArray:
    """Stack per-layer RDMs (same ids, same order) into ``(layer, stimulus_row, stimulus_col)``.

    Per-layer attrs that differ (module path, unit count) become coordinates on ``layer``.
    """
    names = list(rdms)
    first = rdms[names[0]]
    for name in names[1:]:
        if not np.array_equal(rdms[name][ROW].values, first[ROW].values):
            raise RSABridgeError(f"layer {name!r} RDM covers other stimuli than layer {names[0]!r}")
    stacked = xr.concat([rdms[n].drop_attrs() if hasattr(rdms[n], "drop_attrs") else rdms[n] for n in names],
                        dim=LAYER, coords="minimal", compat="override")
    stacked = stacked.assign_coords({LAYER: names})
    for key in ("module_path", "n_units"):
        if all(key in rdms[n].attrs for n in names):
            stacked = stacked.assign_coords({key: (LAYER, [rdms[n].attrs[key] for n in names])})
    stacked.attrs = dict(attrs or {})
    return stacked


def as_model_rdms(rdms: xr.DataArray, name: str = "rdm") -> xr.DataArray:
    """Model RDMs ``(layer, stimulus_row, stimulus_col)`` from any RDM DataArray: one leading dim of another
    name (``replicate`` from :func:`rsa_bridge.neural.rdms_from_rsatoolbox`, ``model`` ...) becomes
    ``layer``; a single (n, n) RDM becomes one layer called ``name``.

    Raises:
        RSABridgeError: no ``stimulus_row``/``stimulus_col`` dims, or more than one other dim.
    """
    if not isinstance(rdms, xr.DataArray) or not {ROW, COL} <= set(rdms.dims):
        raise RSABridgeError(f"model RDMs must be a DataArray with dims (layer, {ROW}, {COL}); "
                             f"got {getattr(rdms, 'dims', type(rdms).__name__)}")
    other = [d for d in rdms.dims if d not in (ROW, COL)]
    if not other:
        return rdms.expand_dims({LAYER: [name]}).transpose(LAYER, ROW, COL)
    if len(other) > 1:
        raise RSABridgeError(f"model RDMs have several leading dims {other}; stack them into one 'layer' dim "
                             "(e.g. rdms.stack(layer=[...]))")
    if other[0] != LAYER:
        rdms = rdms.rename({other[0]: LAYER})
    if LAYER not in rdms.coords:
        rdms = rdms.assign_coords({LAYER: [str(i) for i in range(rdms.sizes[LAYER])]})
    check_layer_names(rdms, "model RDMs")
    return rdms.transpose(LAYER, ROW, COL)


def _from_mat(path: Path) -> dict[str, np.ndarray]:
    try:
        content = sio.loadmat(path, squeeze_me=False)
    except NotImplementedError:
        raise RSABridgeError(f"{str(path)!r} is a MATLAB v7.3 file; save it with -v7 or convert to NetCDF") from None
    except Exception as err:
        raise RSABridgeError(f"cannot read {str(path)!r} as a .mat file ({type(err).__name__}: {err})") from None
    found: dict[str, np.ndarray] = {}
    for key, value in content.items():
        if key.startswith("__"):
            continue
        if isinstance(value, np.ndarray) and value.dtype.names and "RDM" in value.dtype.names:
            name_field = next((f for f in ("reprName", "name") if f in value.dtype.names), None)
            for k, entry in enumerate(value.ravel()):
                label = str(np.ravel(entry[name_field])[0]) if name_field else f"{key}_{k}"
                if "measModelName" in value.dtype.names:
                    meas = str(np.ravel(entry["measModelName"])[0])
                    if meas != "complete":
                        label = f"{label}:{meas}"
                if label in found:
                    raise RSABridgeError(f"{str(path)!r}: two model RDMs are named {label!r}; give every RDM its "
                                         "own name (reprName)")
                found[label] = _real(entry["RDM"], label)
        elif isinstance(value, np.ndarray) and value.dtype.kind in "fiuc" and value.ndim == 2 and min(value.shape) > 1:
            if key in found:
                raise RSABridgeError(f"{str(path)!r}: two model RDMs are named {key!r}; give every RDM its own name")
            found[key] = _real(value, key)  # a complex matrix is named in one line, never taken as its real part
    if not found:
        raise RSABridgeError(f"{str(path)!r} holds no RDMs (a struct array with an 'RDM' field, or square matrices)")
    return found


def _real(values, label: str) -> np.ndarray:
    """float64 values of model RDM ``label``; complex or text values are one line (rsa_bridge.value_checks)."""
    from rsa_bridge.value_checks import real_numbers

    return real_numbers(values, f"model RDM {label!r}").astype(np.float64, copy=False)


def _square(values: np.ndarray, label: str) -> np.ndarray:
    values = _real(values, label)
    if values.ndim == 2 and values.shape[0] == values.shape[1]:
        return values
    flat = values.ravel()
    try:
        return squareform(flat, checks=False)
    except ValueError:
        raise RSABridgeError(f"model RDM {label!r} is neither square nor a condensed vector ({values.shape})") from None


def read_model_rdms(path: str | os.PathLike, stimulus_ids: Sequence[str] | None = None) -> xr.DataArray:
    """Precomputed model RDMs as ``(layer, stimulus_row, stimulus_col)``.

    Args:
        path: ``.nc`` (a ``model_rdms.nc`` from rsa-bridge, with a ``rdm`` variable over ``layer``, or an RDM
            dataset whose variables are layers) or ``.mat``.
        stimulus_ids: the stimulus ids of the rows, in file order. Required for ``.mat`` files, which carry
            none; for NetCDF files the file's own ids are used and this must be None.
    """
    path = Path(path)
    if not path.is_file():
        raise RSABridgeError(f"model RDM file {str(path)!r} does not exist")
    if path.suffix.lower() == ".mat":
        mats = {label: _square(v, label) for label, v in _from_mat(path).items()}
        sizes = {m.shape[0] for m in mats.values()}
        if len(sizes) != 1:
            raise RSABridgeError(f"RDMs in {str(path)!r} differ in size: {sorted(sizes)}")
        n = sizes.pop()
        if stimulus_ids is None:
            raise RSABridgeError(
                f"{str(path)!r} stores {n}x{n} RDMs without stimulus ids; say what its rows are with "
                "--stimulus-ids FILE (one id per line) or --stimulus-ids dataset (rows are in the dataset's order)"
            )
        ids = [str(s) for s in stimulus_ids]
        if len(ids) != n:
            raise RSABridgeError(f"{len(ids)} stimulus ids given for {n}x{n} RDMs in {str(path)!r}")
        rdm = xr.DataArray(
            np.stack(list(mats.values())), dims=(LAYER, ROW, COL),
            coords={LAYER: list(mats), ROW: ids, COL: ids},
            attrs={"source_file": str(path), "stimulus_ids_from": "given by the user"},
        )
    else:
        if stimulus_ids is not None:
            raise RSABridgeError("--stimulus-ids is only for .mat files; NetCDF model RDMs carry their own ids")
        ds = read_netcdf(path, "NetCDF model RDMs")
        if "rdm" in ds.data_vars and LAYER in ds["rdm"].dims:
            rdm = ds["rdm"]
            validate_rdm_dataset(xr.Dataset({"rdm": rdm}), where=str(path))
        else:
            validate_rdm_dataset(ds, where=str(path))
            names = areas(ds)
            rdm = xr.concat([ds[n] for n in names], dim=LAYER).assign_coords({LAYER: names})
        rdm.attrs = {**ds.attrs, **rdm.attrs, "source_file": str(path)}
    check_layer_names(rdm, str(path))
    check = xr.Dataset({"rdm": rdm})
    validate_rdm_dataset(check, where=str(path))
    return rdm


def check_layer_names(rdms: xr.DataArray, where: str) -> None:
    """Refuse model RDMs whose ``layer`` labels repeat (a layer is looked up by its name); linear time."""
    if LAYER not in rdms.coords:
        return
    names = [str(v) for v in np.ravel(rdms[LAYER].values)]
    dup = duplicates(names)
    if dup:
        raise RSABridgeError(f"{where}: duplicate layer names {preview(dup)} in the model RDMs; "
                             "give every layer its own name")
