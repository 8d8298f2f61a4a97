"""One entry point for neural data in any supported shape: :func:`read_neural`.

``src`` may be a shipped name (an RDM dataset in :data:`rsa_bridge.datasets.SHIPPED`, or firing rates
in :data:`SHIPPED_RATES`), or a file/folder in one of the formats of
:data:`rsa_bridge.neural.formats.FORMATS` (or one added by ``register_format`` / an entry point). The result
is an :class:`~rsa_bridge.neural.published.Imported`: firing rates (``presentation x neuroid``) or an RDM
dataset, plus a stimulus manifest when the source knows its images.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import xarray as xr

from rsa_bridge.datasets import DATA_DIR, SHIPPED, areas, load_dataset
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.io import check_regular_file, reading
from rsa_bridge.neural import schema as S
from rsa_bridge.neural.formats import FORMATS, all_formats, guess_format
from rsa_bridge.neural.importers import read_csv
from rsa_bridge.neural.published import Imported
from rsa_bridge.neural.rsatoolbox_io import rdms_from_rsatoolbox, rsatoolbox_file_type
from rsa_bridge.registry import resolve_name

__all__ = ["FORMATS", "SHIPPED_RATES", "describe_rates", "read_neural", "read_rdm_netcdf", "read_rsatoolbox_rdms",
           "read_tsv"]

#: shipped firing-rate files (repeat-level), by name
SHIPPED_RATES: dict[str, Path] = {
    "cowley2023_v4_210325_rates": DATA_DIR / "cowley2023_v4" / "rates_210325.nc",
}


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
        format: a name of :func:`rsa_bridge.neural.formats.all_formats` (default: from the suffix; NetCDF files
            are told apart by content).
        region: label for neuroids whose source names no region (formats that take one); where the source
            has regions (or an RDM dataset has areas) the one to keep — a region not in the data is an error.
        allow_pickle: let a format that may hold a pickle (rsatoolbox's) load a Python pickle (``.pkl``).
            Loading a pickle RUNS ANY CODE in the file: only for files you trust. Default False: a pickle is
            refused with a line saying how to convert it to rsatoolbox's HDF5. Any other format refuses it.
        options: passed to the reader (stimulus_ids, neuroid_ids, layout, variable, animal, session,
            units, allow_missing, metric ...); None values are left out.

    Example::

        >>> read_neural("cowley2023_v4_210325_rates", region="V4").data.dims
        ('presentation', 'neuroid')
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
    if not path.is_dir():
        check_regular_file(path, "neural data file")  # a FIFO or device would block the reader
    formats = all_formats()
    if format is None:
        if path.is_dir():
            folders = ", ".join(name for name, fmt in formats.items() if fmt.folder)
            raise RSABridgeError(f"{key!r} is a folder; say which format it is (--format {folders})")
        format = guess_format(path, formats)
    fmt = formats.get_record(format)
    imported = fmt.read(path, region=region, allow_pickle=allow_pickle, **options)
    return _keep_region(imported, region)


def describe_rates(rates: xr.DataArray) -> dict:
    """Counts for ``neural info``: per region/animal/session, repetitions per stimulus, NaN shares."""
    flat = S.flat_coords(rates)
    stim = [str(s) for s in flat[S.STIMULUS_ID].values]
    _, counts = np.unique(stim, return_counts=True)
    # repetition numbers are labels, never sizes: the slots of the exported array (exporters.to_array)
    n_labels = np.unique(np.asarray(flat[S.REPETITION].values)).size
    max_rep = n_labels if n_labels <= counts.max() else int(counts.max())
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


# -- readers and content checks named by records of rsa_bridge.neural.formats --------------------------------

def read_tsv(path: str | os.PathLike, **options) -> xr.DataArray:
    """Rates from a tab-separated long table (the columns of ``csv``)."""
    return read_csv(path, sep="\t", **options)


def read_rdm_netcdf(path: str | os.PathLike, **unused) -> Imported:
    """An RDM dataset written by rsa-bridge (``save_dataset``, ``neural rdm``, ``neural import``)."""
    return Imported(load_dataset(path))


def read_rsatoolbox_rdms(path: str | os.PathLike, *, region: str | None = None, allow_pickle: bool = False,
                         **unused) -> Imported:
    """RDMs saved by rsatoolbox (``RDMs.save``: ``.hdf5``; ``.pkl`` only with ``allow_pickle``) as one area ``region`` (required)."""
    from rsatoolbox.rdm import load_rdm

    path = Path(path)
    kind = rsatoolbox_file_type(path, allow_pickle=allow_pickle)  # refuses a pickle unless allowed
    with reading(path, "rsatoolbox RDMs") as opened:
        rdms = load_rdm(str(opened), file_type=kind)
    if region is None:
        raise RSABridgeError("say which area the RDMs are of: region= (--region)")
    stacked = rdms_from_rsatoolbox(rdms)
    ds = xr.Dataset({region: stacked.drop_attrs() if hasattr(stacked, "drop_attrs") else stacked},
                    attrs={"name": path.stem, "source": str(path)})
    ds[region].attrs = {"region": region, "metric": stacked.attrs.get("metric", "unknown")}
    return Imported(ds)


@functools.lru_cache(maxsize=8)
def _netcdf_header(path: str, mtime_ns: int, size: int) -> tuple[object, tuple[str, ...]]:
    """(rsa-bridge kind attribute, dims) of a NetCDF file, read once per version of the file."""
    from rsa_bridge.data_paths import text_attr

    ds = S._read_netcdf(Path(path))
    return text_attr(ds.attrs, S.KIND_ATTR, repr(str(path))), tuple(map(str, ds.dims))


def _header(path: Path) -> tuple[object, tuple[str, ...]]:
    stat = Path(path).stat()
    return _netcdf_header(str(path), stat.st_mtime_ns, stat.st_size)


def is_rates_netcdf(path: Path) -> bool:
    """Whether a NetCDF file holds rsa-bridge firing rates (written by ``save_rates``)."""
    return _header(path)[0] == S.KIND_RATES


def is_rdm_netcdf(path: Path) -> bool:
    """Whether a NetCDF file holds an RDM dataset (a ``stimulus_row`` dim)."""
    return "stimulus_row" in _header(path)[1]
