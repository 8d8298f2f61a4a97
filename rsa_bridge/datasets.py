"""Neural RDM datasets: one square RDM per brain area over one stimulus set, stored as NetCDF.

Schema (an ``xarray.Dataset``):

- one data variable per area (``V4``, ``IT``, ``hIT`` ...), float64, dims
  ``(*replicate_dims, stimulus_row, stimulus_col)``; replicate dims (``subject``, ``session``,
  ``animal`` ...) hold several RDMs of the same area;
- index coordinates ``stimulus_row`` and ``stimulus_col``: the same stimulus ids in the same order;
- dataset attrs: ``name``, ``title``, ``source``, ``citation``, ``licence``, ``stimulus_set``
  (folder of the stimuli relative to the file, when shipped; it must lie inside the file's folder: an
  absolute path, a ``..`` that climbs out or a symbolic link that leads out is refused, see
  :mod:`rsa_bridge.data_paths`);
- variable attrs: ``region``, ``metric``, ``species``, ``description``.

Loading validates every RDM: square, symmetric, zero diagonal, finite, unique ids; text attributes
(``name``, ``stimulus_set``, an area's ``region``, ``metric``, ``repeat_rates``) must be text. The file itself
must be self-contained (:mod:`rsa_bridge.hdf5_guard`, checked by :func:`rsa_bridge.io.reading`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from rsa_bridge.condensed import check_square
from rsa_bridge.data_paths import inside_folder, text_attr
from rsa_bridge.duplicates import duplicates
from rsa_bridge.errors import RSABridgeError, preview
from rsa_bridge.io import read_netcdf, reading, write_netcdf
from rsa_bridge.rdm import COL, ROW
from rsa_bridge.registry import resolve_name

DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class ShippedDataset:
    """A dataset that ships with rsa-bridge: its NetCDF file and its stimulus folder."""

    name: str
    path: Path
    stimuli: Path | None
    description: str


#: shipped datasets, in the order ``--area`` searches them
SHIPPED: dict[str, ShippedDataset] = {
    d.name: d
    for d in (
        ShippedDataset(
            "cowley2023_v4_210325",
            DATA_DIR / "cowley2023_v4" / "rdm_210325.nc",
            DATA_DIR / "cowley2023_v4" / "stimuli_210325",
            "macaque V4, 50 neurons x 640 images (Cowley et al. 2023, session 210325)",
        ),
        *(
            ShippedDataset(
                f"cowley2023_v4_{session}",
                DATA_DIR / "cowley2023_v4" / f"rdm_{session}.nc",
                DATA_DIR / "cowley2023_v4" / f"stimuli_{session}",
                f"macaque V4, {neurons} neurons x {images} images (Cowley et al. 2023, session {session}, "
                f"animal {animal}; float32)",
            )
            for session, neurons, images, animal in (
                ("190923", 33, 1200, "WE"), ("201025", 89, 1200, "PE"), ("210225", 55, 1200, "PE"),
                ("210224", 67, 800, "PE"),
            )
        ),
        ShippedDataset(
            "kriegeskorte2008_92images",
            DATA_DIR / "kriegeskorte2008_92images" / "rdms_92images.nc",
            DATA_DIR / "kriegeskorte2008_92images" / "stimuli",
            "macaque IT (674 neurons) and human IT (fMRI, 4 subjects x 2 sessions), 92 images",
        ),
    )
}


def areas(dataset: xr.Dataset) -> list[str]:
    """Names of the area variables of an RDM dataset."""
    return [str(v) for v in dataset.data_vars if {ROW, COL} <= set(dataset[v].dims)]


def validate_rdm_dataset(dataset: xr.Dataset, where: str = "dataset", atol: float = 1e-8) -> xr.Dataset:
    """Check the schema and every RDM; return the dataset unchanged.

    ``atol`` (name kept for callers) is the *relative* tolerance of :func:`rsa_bridge.condensed.check_square`:
    symmetry per entry (``|d_ij - d_ji| <= atol max(|d_ij|, |d_ji|)``) and a zero diagonal relative to the
    median |off-diagonal| entry of its row; a similarity matrix (diagonal 1, entries in [-1, 1]) is named.

    Raises:
        RSABridgeError: missing stimulus dims, ids that differ between rows and columns or repeat,
            or an RDM that is not square, symmetric, zero on the diagonal and finite (the message
            names the area).
    """
    for name in check_schema(dataset, where):
        # in the stored dtype, one RDM and one row panel at a time (condensed.check_square): a 22,000-stimulus
        # float32 RDM is checked with ~100 MB of temporaries, not as a float64 copy and its transpose (~14 GiB)
        values = np.asarray(dataset[name].transpose(..., ROW, COL).values)
        stack = values.reshape(-1, *values.shape[-2:])
        for k in range(stack.shape[0]):
            try:
                check_square(stack[k], name, atol)
            except RSABridgeError as err:
                raise RSABridgeError(f"{where}: {err}") from None
    return dataset


def check_schema(dataset: xr.Dataset, where: str = "dataset") -> list[str]:
    """The area names of an RDM dataset after checking its schema without reading its values: both stimulus
    dims, the same ids in rows and columns, no repeated id, at least one RDM variable (one-line errors)."""
    for dim in (ROW, COL):
        if dim not in dataset.dims:
            raise RSABridgeError(f"{where} has no {dim!r} dimension; see docs/guide/neural-data.md, 'Neural RDM datasets'")
    rows = [str(s) for s in dataset[ROW].values]
    cols = [str(s) for s in dataset[COL].values]
    if rows != cols:
        raise RSABridgeError(f"{where}: stimulus_row and stimulus_col ids differ or are in another order")
    if len(set(rows)) != len(rows):
        dup = duplicates(rows)
        raise RSABridgeError(f"{where} has duplicate stimulus ids: {preview(dup)}")
    names = areas(dataset)
    if not names:
        raise RSABridgeError(f"{where} holds no RDM variable with dims (..., {ROW}, {COL})")
    return names


#: attrs key: why a dataset's ``stimulus_set`` was not followed (it leads out of the file's folder); the error is
#: raised only when the images are needed and no stimulus folder is named (``--stimuli``)
STIMULI_REFUSED = "stimulus_set_refused"


def load_dataset(name_or_path: str | os.PathLike | xr.Dataset) -> xr.Dataset:
    """A validated neural RDM dataset, by shipped name (see :data:`SHIPPED`), NetCDF path, or in memory.

    The dataset's attrs gain ``name`` (if absent) and ``path`` (``"in memory"`` for an ``xarray.Dataset``,
    which is validated and returned as a shallow copy); a shipped dataset's stimulus folder is in
    ``attrs['stimuli_path']``.

    Examples:
        >>> ds = load_dataset("kriegeskorte2008_92images")
        >>> list(ds.data_vars)
        ['IT', 'hIT']
        >>> ds["hIT"].dims, ds["hIT"].shape      # 4 subjects x 2 sessions of 92 x 92 RDMs
        (('subject', 'session', 'stimulus_row', 'stimulus_col'), (4, 2, 92, 92))
    """
    if isinstance(name_or_path, xr.Dataset):
        dataset = name_or_path.copy()
        dataset.attrs.setdefault("name", "in-memory dataset")
        dataset.attrs.setdefault("path", "in memory")
        return validate_rdm_dataset(dataset, where=f"dataset {dataset.attrs['name']!r}")
    key, path, name = _locate(name_or_path)
    dataset = read_netcdf(path, "a NetCDF RDM dataset")
    _check_file_attrs(dataset, path, name)
    dataset.attrs.pop("stimuli_path", None)  # only ever set here, from SHIPPED or a confined stimulus_set
    dataset.attrs.pop(STIMULI_REFUSED, None)
    if key in SHIPPED:
        if SHIPPED[key].stimuli is not None:
            dataset.attrs["stimuli_path"] = str(SHIPPED[key].stimuli)
    else:
        where = f"dataset {str(path)!r}"
        folder = text_attr(dataset.attrs, "stimulus_set", where, "text (the stimulus folder relative to the file)")
        if folder:
            where = f"{where}: attribute 'stimulus_set'"
            try:
                dataset.attrs["stimuli_path"] = str(inside_folder(path.parent, folder, where))
            except RSABridgeError as err:  # refused when the images are needed and --stimuli names none
                dataset.attrs[STIMULI_REFUSED] = str(err)
    dataset.attrs["path"] = str(path)
    return validate_rdm_dataset(dataset, where=f"dataset {key!r}")


def _check_file_attrs(dataset: xr.Dataset, path: Path, default_name: str) -> None:
    """The text attributes of a dataset read from ``path`` are text (one line naming the attribute if not);
    ``name`` defaults to ``default_name``."""
    where = f"dataset {str(path)!r}"
    if text_attr(dataset.attrs, "name", where, "text (the dataset's name)") is None:
        dataset.attrs["name"] = default_name
    text_attr(dataset.attrs, "stimulus_set", where, "text (the stimulus folder relative to the file)")
    for var in areas(dataset):
        for key in ("region", "metric", "repeat_rates"):
            text_attr(dataset[var].attrs, key, f"{where}, area {var!r}")


def _locate(name_or_path: str | os.PathLike) -> tuple[str, Path, str]:
    """``(key, file, default name)`` of a shipped dataset name or a NetCDF path; one line when it names neither."""
    if name_or_path is None or not isinstance(name_or_path, (str, os.PathLike)) or not str(name_or_path).strip():
        raise RSABridgeError(f"say which dataset: a shipped name ({', '.join(SHIPPED)}) or a NetCDF path; "
                             f"got {name_or_path!r}")
    key = str(name_or_path)
    if key in SHIPPED:
        return key, SHIPPED[key].path, SHIPPED[key].name
    path = Path(name_or_path)
    if not path.exists():
        raise RSABridgeError(f"no dataset {key!r}: not a shipped dataset ({', '.join(SHIPPED)}) and no such file")
    return key, path, path.stem


def dataset_header(name_or_path: str | os.PathLike | xr.Dataset) -> xr.Dataset:
    """A dataset's dims, sizes, variable names, index coordinates and attrs, without reading or validating
    its RDMs: for planning a run (which areas, how many stimuli) before :func:`load_dataset` reads it.

    The schema is checked (:func:`check_schema`), the values are not: read the RDMs with :func:`load_dataset`
    (the header's file is closed; its data variables are not meant to be read). An in-memory Dataset is
    returned as it is. At 22,000 stimuli this takes milliseconds where :func:`load_dataset` reads and checks
    1.9 GB.

    Examples:
        >>> dataset_header("kriegeskorte2008_92images").sizes["stimulus_row"]
        92
    """
    if isinstance(name_or_path, xr.Dataset):
        return name_or_path
    key, path, name = _locate(name_or_path)
    with reading(path, "a NetCDF RDM dataset") as p, xr.open_dataset(p) as handle:
        header = handle
    check_schema(header, where=f"dataset {key!r}")
    _check_file_attrs(header, path, name)
    return header


def save_dataset(dataset: xr.Dataset, path: str | os.PathLike) -> Path:
    """Validate and write an RDM dataset to NetCDF atomically."""
    validate_rdm_dataset(dataset, where=str(path))
    return write_netcdf(dataset, path)


def list_datasets() -> pd.DataFrame:
    """The shipped datasets: name, areas, number of stimuli, RDMs per area, description."""
    rows = []
    for entry in SHIPPED.values():
        ds = load_dataset(entry.name)
        for area in areas(ds):
            var = ds[area]
            rows.append(
                {
                    "dataset": entry.name,
                    "area": area,
                    "n_stimuli": int(ds.sizes[ROW]),
                    "n_rdms": int(np.prod([var.sizes[d] for d in var.dims if d not in (ROW, COL)] or [1])),
                    "metric": var.attrs.get("metric", ds.attrs.get("metric", "")),
                    "description": var.attrs.get("description", entry.description),
                }
            )
    return pd.DataFrame(rows)


def resolve_area(dataset: xr.Dataset, area: str) -> str:
    """The area of ``dataset`` that ``area`` names (exactly, or differing only in case: ``it`` -> ``IT``).

    Raises:
        RSABridgeError: ``unknown area ...; choose one of ...; did you mean ...?`` naming the dataset.
    """
    have = areas(dataset)
    return resolve_name("area", area, have, hint=f"dataset {dataset.attrs.get('name', '')!r} has these areas")


def locate_area(area: str) -> tuple[str, str]:
    """``(dataset name, area name)`` of the first shipped dataset that has ``area``.

    An exact name wins; otherwise a name differing only in case (``it`` -> ``IT``); an unknown area
    lists the shipped areas with a close match (``did you mean 'IT'?``).
    """
    from rsa_bridge.catalogue import read_index

    found: dict[str, str] = {}
    for row in read_index():  # the shipped datasets' areas, in SHIPPED order, without opening any NetCDF file
        found.setdefault(row["area"], row["dataset"])
    canonical = resolve_name("area", area, found,
                             hint="no shipped dataset has it: pass --dataset PATH.nc; see `rsa-bridge datasets`")
    return found[canonical], canonical


def find_area(area: str) -> str:
    """The first shipped dataset that has ``area`` (see :func:`locate_area`)."""
    return locate_area(area)[0]


def area_rdms(dataset: xr.Dataset, area: str) -> xr.DataArray:
    """One area's RDMs stacked over a ``replicate`` dim: (replicate, stimulus_row, stimulus_col).

    Replicate labels join the replicate coordinates (``subject=BE|session=1``); a single RDM gets
    the label ``'all'``.
    """
    area = resolve_area(dataset, area)
    var = dataset[area].transpose(..., ROW, COL)
    extra = [d for d in var.dims if d not in (ROW, COL)]
    if not extra:
        return var.expand_dims(replicate=["all"])
    tmp = "_stacked_replicate"  # a dim may itself be called 'replicate' (what rdms_from_rsatoolbox writes)
    stacked = var.stack({tmp: extra})
    labels = ["|".join(f"{d}={v}" for d, v in zip(extra, np.atleast_1d(key))) for key in stacked[tmp].values]
    stacked = stacked.drop_vars([tmp, *extra]).rename({tmp: "replicate"}).assign_coords(replicate=labels)
    return stacked.transpose("replicate", ROW, COL)
