"""Firing rates in, from the shapes neuroscientists keep them in: numpy arrays, ``.mat`` files, long CSV
tables, Brain-Score NetCDF assemblies and rsa-bridge's own NetCDF (rsatoolbox objects: :mod:`.rsatoolbox_io`).

Every reader returns a validated firing-rate DataArray (see :mod:`.schema`) and raises
:class:`~rsa_bridge.errors.RSABridgeError` with one clear message for a corrupt or truncated file,
ids that do not match the array's shape, NaN beyond repeat padding, duplicate ids or mixed units.
Readers are looked up by format name in :data:`rsa_bridge.neural.formats.FORMATS`.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from rsa_bridge.data_paths import text_attr
from rsa_bridge.errors import RSABridgeError, preview
from stimuli.keywords import refuse_keywords
from rsa_bridge.io import reading
from rsa_bridge.neural import schema as S
from rsa_bridge.value_checks import real_numbers, whole_numbers
from rsa_bridge.neural.id_patterns import format_ids
from stimuli.csv_cells import unescape_frame

#: axis names a numpy/.mat array's layout may use
AXES = ("neuroid", "stimulus", "repetition", "time_bin")
DEFAULT_LAYOUT = "neuroid,stimulus,repetition"


def expand_ids(ids: str | Sequence[str] | None, n: int, what: str) -> list[str] | None:
    """Ids from a list, a text file (one per line) or a pattern with ``{i}`` (0-based) / ``{n}`` (1-based)."""
    if ids is None:
        return None
    if isinstance(ids, (str, os.PathLike)):
        text = str(ids)
        if "{" in text:
            return format_ids(text, n, what)  # checked first: plain fields, bounded widths (id_patterns.py)
        path = Path(text)
        if not path.is_file():
            raise RSABridgeError(f"{what}: {text!r} is neither a file with one id per line nor a pattern with {{n}}")
        ids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    ids = [str(s) for s in ids]
    if len(ids) != n:
        raise RSABridgeError(f"{len(ids)} {what} for {n} in the data: the ids do not match the array's shape")
    return ids


def _parse_layout(layout: str, ndim: int) -> list[str]:
    axes = [a.strip() for a in layout.split(",") if a.strip()]
    if len(axes) != len(set(axes)) or not set(axes) <= set(AXES) or not {"neuroid", "stimulus"} <= set(axes):
        raise RSABridgeError(f"layout {layout!r} must name each axis once from {', '.join(AXES)} "
                             "and include neuroid and stimulus")
    if len(axes) != ndim:
        raise RSABridgeError(f"layout {layout!r} has {len(axes)} axes but the array has {ndim} "
                             "(a repeat-averaged array is 'neuroid,stimulus')")
    return axes


def from_array(
    array: np.ndarray,
    *,
    layout: str = DEFAULT_LAYOUT,
    stimulus_ids: str | Sequence[str] | None = None,
    neuroid_ids: str | Sequence[str] | None = None,
    region: str | Sequence[str] | None = None,
    animal: str | Sequence[str] | None = None,
    session: str | Sequence[str] | None = None,
    units: str | None = None,
    options: S.RatesOptions | None = None,
    **stray,
) -> xr.DataArray:
    """Rates from an array such as neurons x images x repeats, NaN for repeats that were not shown.

    Args:
        array: the data, axes named by ``layout`` (default ``neuroid,stimulus,repetition``; a 2-D
            ``neuroid,stimulus`` array is one repetition per stimulus, e.g. repeat-averaged rates).
        stimulus_ids: one per stimulus (list, file with one per line, or a pattern ``'image{n:04d}'``).
            Required: rsa-bridge never matches stimuli by position on its own.
        neuroid_ids: one per neuroid (default ``<session or region>_n000`` ...).
        region, animal, session, units: see :func:`rsa_bridge.neural.schema.make_rates`.
        options: :class:`rsa_bridge.neural.schema.RatesOptions` — ``time_bins``, ``attrs``, ``allow_missing``
            (keep NaN of single neuroids in a repetition other neuroids have; else an error) ...; the file
            readers (:func:`read_numpy`, :func:`read_mat`) take those as keywords and group them.

    A (stimulus, repetition) slot where every neuroid is NaN is padding and is dropped; a stimulus with
    no repetition at all is dropped with a warning.

    Example::

        >>> raw = np.arange(12.0).reshape(2, 3, 2)            # 2 neurons x 3 images x 2 repeats
        >>> rates = from_array(raw, stimulus_ids="img{i}", region="V4", options=S.RatesOptions(allow_missing=True))
        >>> rates.sizes["presentation"], list(rates["stimulus_id"].values[:3])
        (6, ['img0', 'img0', 'img1'])
    """
    refuse_keywords("from_array", stray, S.RatesOptions)
    options = options if options is not None else S.RatesOptions()
    time_bins = options.time_bins
    data = real_numbers(array, "the array")  # complex, text or objects: one line naming a position
    axes = _parse_layout(layout, data.ndim)
    order = [a for a in ("neuroid", "stimulus", "repetition", "time_bin") if a in axes]
    data = np.transpose(data, [axes.index(a) for a in order]).astype(np.float64, copy=False)
    if "repetition" not in order:
        data = data[:, :, None]
    if "time_bin" not in order:
        data = data[..., None]
    n_neur, n_stim, n_rep, n_time = data.shape
    if region is None:
        raise RSABridgeError("say which brain region the neuroids are in (region='V4', --region V4)")
    stim = expand_ids(stimulus_ids, n_stim, "stimulus ids")
    if stim is None:
        raise RSABridgeError(f"give the ids of the {n_stim} stimuli (stimulus_ids=list, file or 'image{{n:04d}}'); "
                             "rsa-bridge never matches stimuli by position on its own")
    prefix = session if isinstance(session, str) else region if isinstance(region, str) else "n"
    neur = expand_ids(neuroid_ids, n_neur, "neuroid ids") or [f"{prefix}_n{k:03d}" for k in range(n_neur)]
    nan = np.isnan(data)
    slot_empty = nan.all(axis=(0, 3))  # (stimulus, repetition): padding
    s_idx, r_idx = np.nonzero(~slot_empty)
    values = data[:, s_idx, r_idx, :].transpose(1, 0, 2)  # (presentation, neuroid, time)
    missing_stim = np.flatnonzero(slot_empty.all(axis=1))
    if missing_stim.size:
        warnings.warn(f"dropped {missing_stim.size} stimuli with no repetition at all: "
                      f"{preview([stim[k] for k in missing_stim])}", S.NeuralDataWarning, stacklevel=2)
    if n_time == 1 and time_bins is None:
        values = values[..., 0]
    reps = r_idx.astype(np.int64)  # the slot along the repetition axis (padding need not be trailing)
    return S.make_rates(values, stimulus_ids=[stim[s] for s in s_idx], repetitions=reps, neuroid_ids=neur,
                        region=region, animal=animal, session=session, units=units, options=options)


def _grouped(options: dict) -> dict:
    """A reader's keywords with those of :class:`rsa_bridge.neural.schema.RatesOptions` (``attrs``,
    ``allow_missing``, ``time_bins`` ...) grouped into one ``options=`` for :func:`from_array`."""
    moved = {k: options.pop(k) for k in list(options) if k in S.RATES_OPTIONS}
    return {**options, "options": S.RatesOptions(**moved)} if moved else options


def _attrs_for(path: Path, fmt: str, extra: dict | None = None) -> dict:
    return {"source_file": str(path), "source_format": fmt, **(extra or {})}


def read_numpy(path: str | os.PathLike, *, variable: str | None = None, **options) -> xr.DataArray:
    """Rates from a ``.npy`` file, or one array of an ``.npz`` (``variable``; default: the only one)."""
    path = Path(path)
    try:
        loaded = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise RSABridgeError(f"no such file: {str(path)!r}") from None
    except Exception as err:  # truncated / corrupt .npy raise ValueError, EOFError, OSError, zipfile errors
        raise RSABridgeError(f"cannot read {str(path)!r} as a numpy file ({type(err).__name__}: {err}); "
                             "it is corrupt, truncated or not .npy/.npz") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            names = list(loaded.files)
            name = _pick(names, variable, path)
            try:
                array = loaded[name]
            except Exception as err:
                raise RSABridgeError(f"cannot read {name!r} from {str(path)!r} ({type(err).__name__}: {err})") from None
    else:
        array = loaded
    options.setdefault("attrs", {})
    options["attrs"] = {**_attrs_for(path, "numpy"), **options["attrs"]}
    return from_array(array, **_grouped(options))


def _pick(names: list[str], variable: str | None, path: Path) -> str:
    if variable is not None:
        if variable not in names:
            raise RSABridgeError(f"{str(path)!r} has no variable {variable!r}; it has {preview(names)}")
        return variable
    if len(names) != 1:
        raise RSABridgeError(f"{str(path)!r} holds {preview(names)}; say which with variable= (--variable)")
    return names[0]


def _mat_arrays(path: Path) -> dict[str, np.ndarray]:
    """Numeric arrays of a .mat file in MATLAB axis order (v5 via scipy.io, v7.3 via h5py, transposed)."""
    import h5py
    import scipy.io as sio

    if not path.is_file():
        raise RSABridgeError(f"no such file: {str(path)!r}")
    if h5py.is_hdf5(path):  # reading() refuses a file that reads other files (rsa_bridge.hdf5_guard)
        with reading(path, "a MATLAB v7.3 file") as path, h5py.File(path, "r") as handle:
            out = {}
            for name, item in handle.items():
                if isinstance(item, h5py.Dataset) and item.dtype.kind in "fiu" and item.ndim >= 2:
                    out[name] = np.transpose(item[()])  # h5py sees MATLAB's column-major axes reversed
            return out
    try:
        content = sio.loadmat(path)
    except Exception as err:  # scipy raises ValueError/TypeError/MatReadError for damaged files
        raise RSABridgeError(f"cannot read {str(path)!r} as a .mat file ({type(err).__name__}: {err}); "
                             "it is corrupt, truncated or not MATLAB") from None
    return {k: v for k, v in content.items() if not k.startswith("__") and isinstance(v, np.ndarray)
            and v.dtype.kind in "fiu" and v.ndim >= 2}


def read_mat(path: str | os.PathLike, *, variable: str | None = None, **options) -> xr.DataArray:
    """Rates from a MATLAB ``.mat`` file (v5 and v7.3/HDF5): one numeric variable, axes in MATLAB order
    named by ``layout`` (default ``neuroid,stimulus,repetition``); other options as :func:`from_array`."""
    path = Path(path)
    arrays = _mat_arrays(path)
    if not arrays:
        raise RSABridgeError(f"{str(path)!r} holds no numeric array of 2 or more dimensions")
    name = _pick(sorted(arrays), variable, path)
    options["attrs"] = {**_attrs_for(path, "mat", {"source_variable": name}), **options.get("attrs", {})}
    return from_array(arrays[name], **_grouped(options))


CSV_REQUIRED = (S.STIMULUS_ID, S.NEUROID_ID, S.REPETITION, "rate")
_ALIASES = {"subject": S.ANIMAL, "unit": "units"}


def read_csv(path: str | os.PathLike, *, region: str | None = None, animal: str | None = None,
             session: str | None = None, units: str | None = None, allow_missing: bool = False,
             attrs: dict | None = None, sep: str = ",", **unused) -> xr.DataArray:
    """Rates from a long table: one row per (stimulus_id, neuroid_id, repetition) with its ``rate``;
    optional columns ``region``, ``animal`` (or ``subject``), ``session``, ``units``.

    Arguments fill columns the table lacks. A neuroid whose ``region``/``animal``/``session`` differs
    between rows, a row given twice, a non-numeric rate or more than one unit is an error.
    """
    _reject_unused(unused, "csv")
    with reading(path, "CSV") as path:  # ParserError, EmptyDataError, UnicodeDecodeError -> one clear error
        table = pd.read_csv(path, sep=sep, dtype={S.STIMULUS_ID: str, S.NEUROID_ID: str})
    table = unescape_frame(table, [c for c in table.columns if c not in ("rate", S.REPETITION)])  # '=x -> =x
    table = table.rename(columns={k: v for k, v in _ALIASES.items() if k in table.columns and v not in table.columns})
    missing = [c for c in CSV_REQUIRED if c not in table.columns]
    if missing:
        raise RSABridgeError(f"{str(path)!r} lacks column(s) {', '.join(missing)}; a long table needs "
                             f"{', '.join(CSV_REQUIRED)} (optional: region, animal, session, units)")
    if table.empty:
        raise RSABridgeError(f"{str(path)!r} has no rows")
    rate = pd.to_numeric(table["rate"], errors="coerce")
    bad = rate.isna() & table["rate"].notna()
    if bad.any():
        raise RSABridgeError(f"{str(path)!r}: non-numeric rate {str(table['rate'][bad].iloc[0])!r} "
                             f"in row {int(np.flatnonzero(bad)[0]) + 2}")
    reps = pd.to_numeric(table[S.REPETITION], errors="coerce")
    bad = reps.isna() | ~np.isfinite(reps) | (reps != np.round(reps)) | (reps.abs() > 2 ** 53)
    if bad.any():  # a label, never a size; beyond 2**53 floats lose whole numbers
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise RSABridgeError(f"{str(path)!r}: repetition must be a whole number (at most 2**53 in size) in every "
                             f"row; row {row + 2} holds {str(table[S.REPETITION].iloc[row])[:40]!r}")
    table = table.assign(rate=rate.astype(np.float64), repetition=reps.astype(np.int64))
    key = [S.STIMULUS_ID, S.REPETITION, S.NEUROID_ID]
    dup = table.duplicated(key)
    if dup.any():
        row = table[dup].iloc[0]
        raise RSABridgeError(f"{str(path)!r}: {int(dup.sum())} rows repeat a (stimulus_id, repetition, neuroid_id); "
                             f"e.g. {row[S.STIMULUS_ID]!r}, {row[S.REPETITION]}, {row[S.NEUROID_ID]!r}")
    if "units" in table.columns:
        per = table.groupby("units", sort=False)[S.NEUROID_ID].unique()
        if len(per) > 1:
            parts = [f"{u!r} ({preview(list(ids), 3)})" for u, ids in per.items()]
            raise RSABridgeError(f"{str(path)!r} has mixed units: " + "; ".join(parts)
                                 + ". Convert every row to one unit before importing")
        units = str(per.index[0])
    neuroids = list(dict.fromkeys(table[S.NEUROID_ID]))
    labels: dict[str, Any] = {}
    for column, given in ((S.REGION, region), (S.ANIMAL, animal), (S.SESSION, session)):
        if column in table.columns:
            per = table.groupby(S.NEUROID_ID, sort=False)[column].nunique(dropna=False)
            if (per > 1).any():
                raise RSABridgeError(f"{str(path)!r}: neuroid {str(per.index[per > 1][0])!r} has more than one "
                                     f"{column}; a neuroid belongs to one {column}")
            labels[column] = table.groupby(S.NEUROID_ID, sort=False)[column].first().reindex(neuroids).astype(str).tolist()
        else:
            labels[column] = given
    if labels[S.REGION] is None:
        raise RSABridgeError(f"{str(path)!r} has no region column; say which region with region= (--region)")
    pres = table[[S.STIMULUS_ID, S.REPETITION]].drop_duplicates()
    wide = table.pivot(index=[S.STIMULUS_ID, S.REPETITION], columns=S.NEUROID_ID, values="rate")
    wide = wide.reindex(index=pd.MultiIndex.from_frame(pres), columns=neuroids)
    return S.make_rates(wide.to_numpy(dtype=np.float64), stimulus_ids=pres[S.STIMULUS_ID].tolist(),
                        repetitions=pres[S.REPETITION].to_numpy(), neuroid_ids=neuroids, region=labels[S.REGION],
                        animal=labels[S.ANIMAL], session=labels[S.SESSION], units=units,
                        options=S.RatesOptions(allow_missing=allow_missing,
                                               attrs={**_attrs_for(path, "csv"), **(attrs or {})}))


def _reject_unused(unused: dict, fmt: str) -> None:
    given = [k for k, v in unused.items() if v is not None and v is not False]
    if given:
        raise RSABridgeError(f"option(s) {', '.join(given)} do not apply to format {fmt!r}")


def read_brainscore(path: str | os.PathLike, *, region: str | None = None, animal: str | None = None,
                    session: str | None = None, units: str | None = None, allow_missing: bool = False,
                    attrs: dict | None = None, **unused) -> xr.DataArray:
    """Rates from a Brain-Score / BrainIO NeuroidAssembly NetCDF (levels stored as plain coordinates).

    ``image_id`` (older assemblies) is taken as ``stimulus_id``; a missing ``repetition`` is numbered
    per stimulus in file order; ``region``/``animal``/``session`` fill coordinates the file lacks.
    """
    _reject_unused(unused, "brainscore")
    path = Path(path)
    ds = S._read_netcdf(path)
    candidates = [v for v in ds.data_vars if {S.PRESENTATION, S.NEUROID} <= set(ds[v].dims)]
    if len(candidates) != 1:
        raise RSABridgeError(f"{str(path)!r} is not a NeuroidAssembly: expected one variable with dims "
                             f"(presentation, neuroid[, time_bin]); found {preview(list(ds.data_vars))}")
    da = ds[candidates[0]]
    extra = [d for d in da.dims if d not in (S.PRESENTATION, S.NEUROID, S.TIME_BIN)]
    if extra:
        raise RSABridgeError(f"{str(path)!r}: unexpected dims {extra}; a NeuroidAssembly has presentation, "
                             "neuroid and optionally time_bin")
    da = da.transpose(S.PRESENTATION, S.NEUROID, ...)
    coords = {c: np.asarray(da[c].values) for c in da.coords}
    stim = coords.get(S.STIMULUS_ID, coords.get("image_id"))
    if stim is None:
        raise RSABridgeError(f"{str(path)!r} has neither stimulus_id nor image_id along presentation")
    stim = [str(s) for s in stim]
    if S.REPETITION in coords:
        reps = whole_numbers(coords[S.REPETITION], f"{str(path)!r}: repetition")  # NaN or 1.5: one line
    else:
        reps = np.zeros(len(stim), dtype=np.int64)
        counts: dict[str, int] = {}
        for k, s in enumerate(stim):
            reps[k] = counts.get(s, 0)
            counts[s] = reps[k] + 1
    if S.NEUROID_ID not in coords:
        raise RSABridgeError(f"{str(path)!r} has no neuroid_id along neuroid")
    pres_extra = {c: v for c, v in coords.items() if da[c].dims == (S.PRESENTATION,)
                  and c not in (S.STIMULUS_ID, S.REPETITION, S.PRESENTATION)}
    neur_extra = {c: v for c, v in coords.items() if da[c].dims == (S.NEUROID,)
                  and c not in (S.NEUROID_ID, S.REGION, S.ANIMAL, S.SESSION, S.NEUROID)}
    labels = {c: ([str(v) for v in coords[c]] if c in coords else given)
              for c, given in ((S.REGION, region), (S.ANIMAL, animal), (S.SESSION, session))}
    if labels[S.REGION] is None:
        raise RSABridgeError(f"{str(path)!r} has no region coordinate; say which region with region= (--region)")
    bins = None
    if S.TIME_BIN in da.dims:
        start = coords.get(S.TIME_BIN_START, np.full(da.sizes[S.TIME_BIN], np.nan))
        end = coords.get(S.TIME_BIN_END, np.full(da.sizes[S.TIME_BIN], np.nan))
        bins = list(zip(np.asarray(start, dtype=float), np.asarray(end, dtype=float)))
    meta = {k: v for k, v in ds.attrs.items()}
    meta.update(da.attrs)
    text_attr(meta, "units", repr(str(path)))
    unit = units or meta.pop("units", None)
    return S.make_rates(da.values, stimulus_ids=stim, repetitions=reps, neuroid_ids=coords[S.NEUROID_ID],
                        region=labels[S.REGION], animal=labels[S.ANIMAL], session=labels[S.SESSION], units=unit,
                        options=S.RatesOptions(time_bins=bins, presentation_coords=pres_extra,
                                               neuroid_coords=neur_extra, allow_missing=allow_missing,
                                               attrs={**meta, **_attrs_for(path, "brainscore"), **(attrs or {})}))


def read_netcdf(path: str | os.PathLike, **unused) -> xr.DataArray:
    """Rates from rsa-bridge's own NetCDF (written by :func:`rsa_bridge.neural.save_rates`)."""
    _reject_unused(unused, "netcdf")
    return S.load_rates(path)
