"""One entry point for neural data in any supported shape: :func:`read_neural`.

``src`` may be a shipped name (an RDM dataset in :data:`rsa_bridge.datasets.SHIPPED`, or firing rates
in :data:`SHIPPED_RATES`), or a file/folder in one of the formats of :data:`FORMATS`. The result is an
:class:`~rsa_bridge.neural.published.Imported`: firing rates (``presentation x neuroid``) or an RDM
dataset, plus a stimulus manifest when the source knows its images.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import xarray as xr

from rsa_bridge.datasets import DATA_DIR, SHIPPED, areas, load_dataset
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.io import reading
from rsa_bridge.neural import schema as S
from rsa_bridge.neural.importers import RATE_READERS, guess_format
from rsa_bridge.neural.nwb import read_nwb
from rsa_bridge.neural.published import PUBLISHED_READERS, Imported
from rsa_bridge.neural.rsatoolbox_io import rdms_from_rsatoolbox, read_rsatoolbox, rsatoolbox_file_type
from rsa_bridge.registry import resolve_name

#: shipped firing-rate files (repeat-level), by name
SHIPPED_RATES: dict[str, Path] = {
    "cowley2023_v4_210325_rates": DATA_DIR / "cowley2023_v4" / "rates_210325.nc",
}


def _rdm_netcdf(path, **unused) -> Imported:
    """An RDM dataset written by rsa-bridge (``save_dataset``, ``neural rdm``, ``neural import``)."""
    return Imported(load_dataset(path))


def _rsatoolbox_rdms(path, *, region: str | None = None, allow_pickle: bool = False, **unused) -> Imported:
    """RDMs saved by rsatoolbox (``RDMs.save``: ``.hdf5``; ``.pkl`` only with ``allow_pickle``) as one area ``region`` (required)."""
    from rsatoolbox.rdm import load_rdm

    kind = rsatoolbox_file_type(Path(path), allow_pickle=allow_pickle)  # refuses a pickle unless allowed
    with reading(path, "rsatoolbox RDMs") as path:
        rdms = load_rdm(str(path), file_type=kind)
    if region is None:
        raise RSABridgeError("say which area the RDMs are of: region= (--region)")
    stacked = rdms_from_rsatoolbox(rdms)
    ds = xr.Dataset({region: stacked.drop_attrs() if hasattr(stacked, "drop_attrs") else stacked},
                    attrs={"name": path.stem, "source": str(path)})
    ds[region].attrs = {"region": region, "metric": stacked.attrs.get("metric", "unknown")}
    return Imported(ds)


def _wrap(reader: Callable[..., xr.DataArray]) -> Callable[..., Imported]:
    def read(path, **options) -> Imported:
        return Imported(reader(path, **options))

    read.__doc__ = reader.__doc__
    return read


#: format name -> reader(path, **options) -> Imported
FORMATS: dict[str, Callable[..., Imported]] = {
    **{name: _wrap(reader) for name, reader in RATE_READERS.items()},
    "rsatoolbox": _wrap(read_rsatoolbox),
    "rsatoolbox-rdms": _rsatoolbox_rdms,
    "rdm-netcdf": _rdm_netcdf,
    "nwb": _wrap(read_nwb),
    **PUBLISHED_READERS,
}


#: formats that can hold a Python pickle (read only with ``allow_pickle=True``)
_PICKLING = ("rsatoolbox", "rsatoolbox-rdms")

#: formats whose readers label neuroids with ``region`` when the source has none
_LABELLING = ("numpy", "mat", "csv", "brainscore", "rsatoolbox", "rsatoolbox-rdms", "nwb")


def _keep_region(imported: Imported, region: str | None) -> Imported:
    """Select ``region`` where the source already had regions (rates) or areas (RDM datasets)."""
    if region is None:
        return imported
    data = imported.data
    if isinstance(data, xr.Dataset):
        region = resolve_name("area", region, areas(data), hint="the data has these areas")
        return Imported(data[[region]].assign_attrs(data.attrs), imported.manifest)
    return Imported(S.select_region(data, region), imported.manifest)


def read_neural(src: str | os.PathLike, format: str | None = None, *, region: str | None = None,
                allow_pickle: bool = False, **options) -> Imported:
    """Read neural data from a shipped name, a file or a folder.

    Args:
        src: shipped name, file or folder.
        format: one of :data:`FORMATS` (default: from the suffix; NetCDF files are told apart by content).
        region: label for neuroids whose source names no region; where the source has regions (or an
            RDM dataset has areas) the one to keep — a region not in the data is an error.
        allow_pickle: let rsatoolbox formats load a Python pickle (``.pkl``). Loading a pickle RUNS ANY CODE
            in the file: only for files you trust. Default False: a pickle is refused with a line saying how to
            convert it to rsatoolbox's HDF5.
        options: passed to the reader (stimulus_ids, neuroid_ids, layout, variable, animal, session,
            units, allow_missing, metric ...).
    """
    key = str(src)
    if format is None and key in SHIPPED_RATES:
        return _keep_region(Imported(S.load_rates(SHIPPED_RATES[key])), region)
    if format is None and key in SHIPPED:
        return _keep_region(Imported(load_dataset(key)), region)
    path = Path(src)
    if not path.exists():
        known = ", ".join([*SHIPPED, *SHIPPED_RATES])
        raise RSABridgeError(f"no such file or folder {key!r}, and not a shipped name ({known})")
    if format is None:
        if path.is_dir():
            raise RSABridgeError(f"{key!r} is a folder; say which format it is (--format net2brain or henaff2021-v1-rdms)")
        format = guess_format(path)
    format = resolve_name("format", format, FORMATS)
    given = {k: v for k, v in options.items() if v is not None}
    if format in _PICKLING:
        given["allow_pickle"] = bool(allow_pickle)
    elif path.is_file() and path.suffix.lower() in (".pkl", ".pickle"):
        raise RSABridgeError(f"{key!r} is a pickle; format {format!r} does not read pickles (loading one runs its "
                             "code); convert it to HDF5 or NetCDF")
    if format in _LABELLING:
        imported = FORMATS[format](path, region=region, **given)
    else:
        imported = FORMATS[format](path, **given)
    return _keep_region(imported, region)


def describe_rates(rates: xr.DataArray) -> dict:
    """Counts for ``neural info``: per region/animal/session, repetitions per stimulus, NaN shares."""
    flat = S.flat_coords(rates)
    stim = [str(s) for s in flat[S.STIMULUS_ID].values]
    _, counts = np.unique(stim, return_counts=True)
    max_rep = int(np.asarray(flat[S.REPETITION].values).max()) + 1
    values = np.asarray(rates.values)
    groups = {}
    for key in zip(*(list(map(str, flat[c].values)) for c in (S.REGION, S.ANIMAL, S.SESSION))):
        groups[key] = groups.get(key, 0) + 1
    return {
        "n_presentations": int(rates.sizes[S.PRESENTATION]), "n_neuroids": int(rates.sizes[S.NEUROID]),
        "n_stimuli": int(counts.size), "repetitions_min": int(counts.min()),
        "repetitions_median": float(np.median(counts)), "repetitions_max": int(counts.max()),
        "padding_share": float(1.0 - counts.sum() / (counts.size * max_rep)),
        "missing_share": float(np.isnan(values).mean()), "units": str(rates.attrs.get("units", S.UNKNOWN)),
        "groups": groups, "time_bins": int(rates.sizes.get(S.TIME_BIN, 0)),
    }
