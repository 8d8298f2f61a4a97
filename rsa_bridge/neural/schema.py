"""Firing rates as an ``xarray.DataArray`` in Brain-Score's NeuroidAssembly layout, and its NetCDF file.

Schema (what :func:`make_rates` builds and :func:`validate_rates` checks):

- dims ``(presentation, neuroid)`` or ``(presentation, neuroid, time_bin)``; one presentation is one
  showing of one stimulus (one repetition);
- ``presentation`` coordinates: ``stimulus_id`` (str), ``repetition`` (int, 0-based, unique per
  stimulus), any others you add (e.g. ``session``);
- ``neuroid`` coordinates: ``neuroid_id`` (str, unique), ``region`` (``V1``, ``V4``, ``IT`` ...),
  ``animal`` (Brain-Score's name; human data put the subject there) and ``session``;
- ``time_bin`` coordinates (optional dim): ``time_bin_start``, ``time_bin_end`` (ms after onset);
- values: float rates or spike counts in the unit named by ``attrs['units']`` (one unit per array);
  finite. ``NaN`` marks a missing observation of one neuroid in one presentation and is allowed only
  when ``attrs['missing'] == 'allowed'`` (a unit lost for part of a recording; importers say so).
  A repetition that no neuroid has is not a presentation at all (NaN padding is dropped on import).

Coordinates may be plain coordinates (what the importers produce) or MultiIndex levels (what
Brain-Score builds); :func:`save_rates` writes MultiIndex levels as plain variables and records them,
and :func:`load_rates` rebuilds the MultiIndex, so both round-trip.
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
from rsa_bridge.neural.rates_options import RATES_OPTIONS, RatesOptions  # noqa: F401 (re-exported)
from rsa_bridge.provenance import clean_attrs, package_version
from rsa_bridge.value_checks import real_numbers, whole_numbers

PRESENTATION = "presentation"
NEUROID = "neuroid"
TIME_BIN = "time_bin"
STIMULUS_ID = "stimulus_id"
REPETITION = "repetition"
NEUROID_ID = "neuroid_id"
REGION = "region"
ANIMAL = "animal"
SESSION = "session"
TIME_BIN_START = "time_bin_start"
TIME_BIN_END = "time_bin_end"
UNKNOWN = "unknown"
RATES_NAME = "rates"
#: attrs key that marks a firing-rate NetCDF file written by :func:`save_rates`
KIND_ATTR = "rsa_bridge_kind"
KIND_RATES = "firing_rates"
_MULTIINDEX_ATTR = "rsa_bridge_multiindex_"


class NeuralDataWarning(UserWarning):
    """Something in the neural data was dropped or changed on the way in (the message counts it)."""


def _labels(values, n: int, what: str, default: str | None = None) -> list[str]:
    """One string label per element: a scalar is repeated, a sequence must have length n."""
    if values is None:
        if default is None:
            raise RSABridgeError(f"{what} is required")
        return [default] * n
    if isinstance(values, (str, int, np.integer)):
        return [str(values)] * n
    out = [str(v) for v in np.asarray(values, dtype=object).ravel()]
    if len(out) != n:
        raise RSABridgeError(f"{len(out)} {what} values for {n} entries; give one per entry or a single value")
    return out


def _single_unit(units, neuroid_ids: list[str]) -> str:
    """The one unit of a rate array; per-neuroid units that differ are an error naming them."""
    if units is None:
        return UNKNOWN
    if isinstance(units, str):
        return units
    per = _labels(units, len(neuroid_ids), "units")
    distinct = list(dict.fromkeys(per))
    if len(distinct) > 1:
        parts = [f"{u!r} ({preview([n for n, v in zip(neuroid_ids, per) if v == u], 3)})" for u in distinct]
        raise RSABridgeError("mixed units: " + "; ".join(parts)
                             + ". Convert every neuroid to one unit (e.g. spikes/s) before importing")
    return distinct[0]


def make_rates(
    values: np.ndarray,
    *,
    stimulus_ids: Sequence[str],
    repetitions: Sequence[int],
    neuroid_ids: Sequence[str],
    region: str | Sequence[str],
    animal: str | Sequence[str] | None = None,
    session: str | Sequence[str] | None = None,
    units: str | Sequence[str] | None = None,
    options: RatesOptions | None = None,
    **stray,
) -> xr.DataArray:
    """Build and validate a firing-rate DataArray.

    Args:
        values: (n_presentations, n_neuroids) or (n_presentations, n_neuroids, n_time_bins) rates.
        stimulus_ids, repetitions: per presentation (length n_presentations).
        neuroid_ids: per neuroid, unique.
        region, animal, session: one value for all neuroids or one per neuroid (animal/session
            default ``'unknown'``).
        units: the unit of ``values`` (e.g. ``'spikes/s'``, ``'spike count (100 ms)'``); a per-neuroid
            sequence must hold a single distinct value (mixed units raise).
        options: time bins, further coordinates, attrs, allow_missing, drop_constant (:class:`RatesOptions`;
            None: its defaults). Those keywords on their own (``attrs=`` ...) are a TypeError naming the field.

    Raises:
        RSABridgeError: shapes that do not match the ids, duplicate ids or (stimulus, repetition)
            pairs, NaN without ``allow_missing``, inf, mixed units.

    Example::

        >>> rates = make_rates(np.arange(8.0).reshape(4, 2), stimulus_ids=["a", "b", "a", "b"],
        ...                    repetitions=[0, 0, 1, 1], neuroid_ids=["n0", "n1"], region="V4", units="spikes/s",
        ...                    options=RatesOptions(attrs={"source": "by hand"}))
        >>> rates.dims, rates.attrs["source"]
        (('presentation', 'neuroid'), 'by hand')
    """
    refuse_keywords("make_rates", stray, RatesOptions)
    opts = options if options is not None else RatesOptions()
    if not isinstance(opts, RatesOptions):
        raise RSABridgeError(f"make_rates: options must be a RatesOptions; got {type(opts).__name__}")
    time_bins, presentation_coords, neuroid_coords = opts.time_bins, opts.presentation_coords, opts.neuroid_coords
    attrs, allow_missing, drop_constant = opts.attrs, opts.allow_missing, opts.drop_constant
    data = np.asarray(values)
    if data.ndim not in (2, 3):
        raise RSABridgeError(f"rates must be (presentations, neuroids[, time_bins]); got shape {data.shape}")
    data = real_numbers(data, "rates")  # complex, text or objects: one line naming a position
    reps = whole_numbers(np.asarray(repetitions).ravel(), "repetition", MAX_REPETITION)  # NaN, 1.5, 1e30: one line
    n_pres, n_neur = data.shape[:2]
    stim = _labels(stimulus_ids, n_pres, "stimulus_id")
    if reps.size != n_pres:
        raise RSABridgeError(f"{reps.size} repetition values for {n_pres} presentations")
    neuroid_ids = _labels(neuroid_ids, n_neur, "neuroid_id")
    unit = _single_unit(units, neuroid_ids)
    coords: dict[str, Any] = {
        STIMULUS_ID: (PRESENTATION, np.asarray(stim, dtype=object)),
        REPETITION: (PRESENTATION, reps.astype(np.int64)),
        NEUROID_ID: (NEUROID, np.asarray(neuroid_ids, dtype=object)),
        REGION: (NEUROID, np.asarray(_labels(region, n_neur, "region"), dtype=object)),
        ANIMAL: (NEUROID, np.asarray(_labels(animal, n_neur, "animal", UNKNOWN), dtype=object)),
        SESSION: (NEUROID, np.asarray(_labels(session, n_neur, "session", UNKNOWN), dtype=object)),
    }
    for dim, extra, n in ((PRESENTATION, presentation_coords, n_pres), (NEUROID, neuroid_coords, n_neur)):
        for key, vals in (extra or {}).items():
            vals = np.asarray(vals)
            if vals.shape != (n,):
                raise RSABridgeError(f"coordinate {key!r} has {vals.size} values for {n} {dim}s")
            coords[key] = (dim, vals.astype(object) if vals.dtype.kind in "OUS" else vals)
    dims = [PRESENTATION, NEUROID]
    if data.ndim == 3:
        dims.append(TIME_BIN)
        bins = list(time_bins) if time_bins is not None else [(np.nan, np.nan)] * data.shape[2]
        if len(bins) != data.shape[2]:
            raise RSABridgeError(f"{len(bins)} time bins for {data.shape[2]} in the data")
        coords[TIME_BIN_START] = (TIME_BIN, real_numbers([b[0] for b in bins], "time_bin_start"))
        coords[TIME_BIN_END] = (TIME_BIN, real_numbers([b[1] for b in bins], "time_bin_end"))
    meta = {"units": unit, KIND_ATTR: KIND_RATES, "rsa_bridge_version": package_version(), **(attrs or {})}
    meta["units"] = unit
    if allow_missing and np.isnan(data).any():
        meta["missing"] = "allowed"
    rates = xr.DataArray(data, dims=dims, coords=coords, name=RATES_NAME, attrs=clean_attrs(meta))
    validate_rates(rates)
    if drop_constant:
        rates = drop_constant_neuroids(rates)
    return rates


def _coord(rates: xr.DataArray, name: str) -> np.ndarray:
    return np.asarray(rates[name].values)


#: the largest repetition number: a label, never a size; beyond 2**53 a float no longer holds every whole number
MAX_REPETITION = 2 ** 53


def _duplicates(keys: list) -> list:
    """The keys seen more than once, in first-seen order; linear (:func:`rsa_bridge.duplicates.duplicates`)."""
    from rsa_bridge.duplicates import duplicates

    return duplicates(keys)


def validate_rates(rates: xr.DataArray, where: str = "firing rates") -> xr.DataArray:
    """Check a firing-rate DataArray against the schema; returns it unchanged.

    Raises:
        RSABridgeError: wrong dims, a missing coordinate, duplicate ``neuroid_id`` or
            (``stimulus_id``, ``repetition``), mixed units, inf, NaN where missing values are not
            allowed, or a presentation in which no neuroid was observed.
    """
    if not isinstance(rates, xr.DataArray):
        raise RSABridgeError(f"{where} must be an xarray.DataArray; got {type(rates).__name__}")
    dims = set(rates.dims)
    if dims not in ({PRESENTATION, NEUROID}, {PRESENTATION, NEUROID, TIME_BIN}):
        raise RSABridgeError(f"{where} must have dims (presentation, neuroid[, time_bin]); got {rates.dims}. "
                             "Use an importer in rsa_bridge.neural to convert your data")
    for name, dim in ((STIMULUS_ID, PRESENTATION), (REPETITION, PRESENTATION), (NEUROID_ID, NEUROID),
                      (REGION, NEUROID)):
        if name not in rates.coords or rates[name].dims != (dim,):
            hint = ""
            if name == STIMULUS_ID and "image_id" in rates.coords and rates["image_id"].dims == (dim,):
                hint = ("; it has the older Brain-Score name 'image_id': rename it with "
                        "rates.rename(image_id='stimulus_id') (the file importer, --format brainscore, does this)")
            raise RSABridgeError(f"{where} has no {name!r} coordinate along {dim!r}{hint}")
    ids = [str(s) for s in _coord(rates, NEUROID_ID)]
    dup = _duplicates(ids)
    if dup:
        raise RSABridgeError(f"{where}: duplicate neuroid_id {preview(dup)}; every neuroid needs its own id")
    reps = whole_numbers(_coord(rates, REPETITION), f"{where}: repetition", MAX_REPETITION)  # one line
    pairs = list(zip(map(str, _coord(rates, STIMULUS_ID)), reps.tolist()))
    dup = _duplicates(pairs)
    if dup:
        raise RSABridgeError(f"{where}: stimulus {dup[0][0]!r} has repetition {dup[0][1]} more than once "
                             f"({len(dup)} duplicated presentations); give each showing its own repetition")
    if "units" in rates.coords:
        _single_unit([str(u) for u in _coord(rates, "units")], ids)
    values = real_numbers(rates.transpose(PRESENTATION, NEUROID, ...).values, where)
    if np.isinf(values).any():
        raise RSABridgeError(f"{where} contain inf")
    nan = np.isnan(values)
    if nan.any():
        if rates.attrs.get("missing") != "allowed":
            raise_nan_error(nan, rates, where)
        empty = nan.reshape(nan.shape[0], -1).all(axis=1)
        if empty.any():
            raise RSABridgeError(f"{where}: {int(empty.sum())} presentations have no observed neuroid; drop them")
    return rates


def raise_nan_error(nan: np.ndarray, rates: xr.DataArray, where: str) -> None:
    """One error that says where NaN values sit beyond repeat padding and what to do."""
    per_neuroid = nan.reshape(nan.shape[0], nan.shape[1], -1).any(axis=2).sum(axis=0)
    bad = np.flatnonzero(per_neuroid)
    names = [str(_coord(rates, NEUROID_ID)[k]) for k in bad]
    first = int(bad[0])
    pres = int(np.flatnonzero(nan.reshape(nan.shape[0], nan.shape[1], -1)[:, first].any(axis=1))[0])
    raise RSABridgeError(
        f"{where} contain NaN beyond repeat padding: {int(nan.sum())} values in {len(bad)} neuroids "
        f"({preview(names, 3)}), e.g. neuroid {names[0]!r} at stimulus "
        f"{str(_coord(rates, STIMULUS_ID)[pres])!r} repetition {int(_coord(rates, REPETITION)[pres])} while "
        "other neuroids have a value there. If these are observations that are really missing (a unit lost "
        "for part of the recording), import with allow_missing=True (--allow-missing); otherwise fix the data"
    )


def drop_constant_neuroids(rates: xr.DataArray) -> xr.DataArray:
    """The rates without neuroids whose observed values are all equal (warns with the count)."""
    values = np.asarray(rates.transpose(PRESENTATION, NEUROID, ...).values, dtype=np.float64)
    flat = np.moveaxis(values, 1, 0).reshape(values.shape[1], -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        spread = np.nanmax(flat, axis=1) - np.nanmin(flat, axis=1)
    constant = ~(spread > 0)
    if not constant.any():
        return rates
    names = [str(s) for s in _coord(rates, NEUROID_ID)[constant]]
    if constant.all():
        raise RSABridgeError(f"every neuroid has zero variance ({preview(names, 3)}); the rates carry no information")
    warnings.warn(f"excluded {int(constant.sum())} of {constant.size} neuroids with zero variance across "
                  f"presentations: {preview(names, 5)}", NeuralDataWarning, stacklevel=3)
    kept = rates.isel({NEUROID: np.flatnonzero(~constant)})
    kept.attrs["excluded_zero_variance"] = int(constant.sum()) + int(rates.attrs.get("excluded_zero_variance", 0))
    return kept


def is_rates(obj) -> bool:
    """Whether ``obj`` looks like a firing-rate DataArray (presentation x neuroid)."""
    return isinstance(obj, xr.DataArray) and PRESENTATION in obj.dims and NEUROID in obj.dims


def as_multiindex(rates: xr.DataArray) -> xr.DataArray:
    """Brain-Score layout: every coordinate of ``presentation`` / ``neuroid`` / ``time_bin`` becomes a level
    of that dim's MultiIndex (so ``rates.sel(region='V4')`` works as in Brain-Score)."""
    out = rates
    for dim in (PRESENTATION, NEUROID, TIME_BIN):
        if dim not in out.dims or isinstance(out.indexes.get(dim), pd.MultiIndex):
            continue
        levels = [str(c) for c in out.coords if out[c].dims == (dim,) and c != dim]
        if levels:
            out = out.set_index({dim: levels})
    return out


def flat_coords(rates: xr.DataArray) -> xr.DataArray:
    """The rates with MultiIndex dims turned back into plain coordinates (level names kept)."""
    multi = [d for d in rates.dims if isinstance(rates.indexes.get(d), pd.MultiIndex)]
    return rates.reset_index(multi) if multi else rates


def save_rates(rates: xr.DataArray, path: str | os.PathLike) -> Path:
    """Validate and write firing rates to NetCDF atomically (MultiIndex levels are recorded and restored
    by :func:`load_rates`; values keep their dtype, compressed with zlib)."""
    validate_rates(rates)
    attrs = dict(rates.attrs)
    for dim in rates.dims:
        index = rates.indexes.get(dim)
        if isinstance(index, pd.MultiIndex):
            attrs[_MULTIINDEX_ATTR + dim] = ",".join(str(n) for n in index.names)
    attrs[KIND_ATTR] = KIND_RATES
    flat = flat_coords(rates)
    for name in list(flat.coords):
        if flat[name].dtype == object or flat[name].dtype.kind == "U":
            flat = flat.assign_coords({name: (flat[name].dims, np.asarray([str(v) for v in flat[name].values],
                                                                           dtype=object))})
    ds = flat.to_dataset(name=RATES_NAME)
    ds.attrs = clean_attrs(attrs)
    ds[RATES_NAME].attrs = {}
    encoding = {RATES_NAME: {"zlib": True, "complevel": 4, "shuffle": True}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return write_netcdf_encoded(ds, path, encoding)


def write_netcdf_encoded(ds: xr.Dataset, path: str | os.PathLike, encoding: dict) -> Path:
    """:func:`rsa_bridge.io.write_netcdf` with per-variable encoding (compression)."""
    from rsa_bridge.io import write_netcdf

    return write_netcdf(ds, path, encoding=encoding)


def _read_netcdf(path: Path) -> xr.Dataset:
    """:func:`rsa_bridge.io.read_netcdf` (the one NetCDF reader)."""
    from rsa_bridge.io import read_netcdf

    return read_netcdf(path)


def rates_from_dataset(ds: xr.Dataset, where: str) -> xr.DataArray:
    """The firing-rate DataArray of a NetCDF dataset written by :func:`save_rates`."""
    if RATES_NAME not in ds.data_vars:
        raise RSABridgeError(f"{where} holds no {RATES_NAME!r} variable; is it an RDM dataset or a Brain-Score "
                             "assembly? (use --format brainscore for the latter)")
    rates = ds[RATES_NAME]
    attrs = dict(ds.attrs)
    for key in (KIND_ATTR, "units", "missing", "name"):
        text_attr(attrs, key, where)
    for key in [k for k in attrs if k.startswith(_MULTIINDEX_ATTR)]:
        dim = key[len(_MULTIINDEX_ATTR):]
        levels = text_attr(attrs, key, where, "text (comma-separated coordinate names)").split(",")
        attrs.pop(key)
        unknown = [name for name in levels if name not in rates.coords or dim not in rates.dims
                   or rates[name].dims != (dim,)]
        if unknown:
            raise RSABridgeError(f"{where}: attribute {key!r} names {preview(unknown)}, which are not coordinates "
                                 f"along {dim!r}; fix or delete the attribute")
        rates = rates.set_index({dim: levels})
    for name in list(rates.coords):
        if rates[name].dtype.kind == "O" and not isinstance(rates.indexes.get(name), pd.MultiIndex):
            rates = rates.assign_coords({name: (rates[name].dims, np.asarray([str(v) for v in rates[name].values],
                                                                               dtype=object))})
    rates.attrs = attrs
    rates.name = RATES_NAME
    return validate_rates(rates, where)


def load_rates(path: str | os.PathLike) -> xr.DataArray:
    """Firing rates from a NetCDF file written by :func:`save_rates` (validated; MultiIndex restored)."""
    path = Path(path)
    ds = _read_netcdf(path)
    rates = rates_from_dataset(ds, repr(str(path)))
    rates.attrs.setdefault("path", str(path))
    return rates


def select_region(rates: xr.DataArray, region: str | None) -> xr.DataArray:
    """The neuroids of one region (None: all); a region not in the data lists the regions there are."""
    if region is None:
        return rates
    regions = [str(r) for r in _coord(rates, REGION)]
    if region not in regions:
        raise RSABridgeError(f"no neuroids in region {region!r}; the data have "
                             f"{', '.join(dict.fromkeys(regions))}")
    keep = np.flatnonzero(np.asarray(regions) == region)
    return rates.isel({NEUROID: keep})
