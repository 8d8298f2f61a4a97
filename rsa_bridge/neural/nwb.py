"""Firing rates from an NWB file (Neurodata Without Borders, the format of the DANDI archive), with pynwb.

What is read:

- the **units table** (``nwbfile.units``): one neuroid per unit, its ``spike_times`` (s). Coordinates:
  ``neuroid_id`` from a ``unit_name``/``name`` column or the unit id; ``region`` from a ``location``
  column of the units table, else the ``location`` of the unit's first electrode (electrodes table),
  else its electrode group's location, else the ``region`` you pass (``unknown`` without one);
  ``animal`` from ``subject.subject_id``; ``session`` from ``session_id`` (else the file identifier);
- a **presentations table**: ``trials`` (default), ``epochs``, or any table in ``intervals`` by name.
  One row is one presentation; a column names its stimulus (``stimulus_column``; by default the first
  of :data:`STIMULUS_COLUMNS` that exists); stimulus onset is ``start_time`` or an ``onset_column``.

Rates: for each presentation and unit, spikes in [onset + start, onset + stop) ms, cut into bins of
``bin_width`` ms (default: one bin), counted with a binary search in the sorted spike times and
divided by the bin duration: **spikes/s**. A window that begins before its trial's ``start_time``
or ends after its ``stop_time`` is an error (spikes there belong to another presentation).
Repetitions are counted per stimulus in presentation (time) order, 0-based.

Peers: the NWB/pynwb tutorials (``units.to_dataframe()``, ``trials``), Brain-Score's
``NeuroidAssembly`` layout (what we produce), DANDI's NWB conventions. The reader only reads arrays:
no code from the file runs.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import xarray as xr

from rsa_bridge.errors import RSABridgeError, preview
from rsa_bridge.hdf5_guard import check_self_contained
from rsa_bridge.neural.schema import RatesOptions, make_rates
from rsa_bridge.value_checks import finite_times

#: columns searched, in order, for the stimulus of each presentation when none is named
STIMULUS_COLUMNS = ("stimulus_id", "stimulus", "image_id", "image", "stim_id", "stimulus_name", "image_name",
                    "condition")
UNITS = "spikes/s"


def _open(path: Path):
    try:
        from pynwb import NWBHDF5IO
    except ImportError:
        raise RSABridgeError("reading NWB files needs pynwb: pip install 'rsa-bridge[nwb]' (or pip install pynwb)") \
            from None
    if not path.is_file():
        raise RSABridgeError(f"no such NWB file: {str(path)!r}")
    try:
        check_self_contained(path)  # an NWB file is HDF5: no external links, external storage or virtual datasets
        io = NWBHDF5IO(str(path), "r")
        return io, io.read()
    except RSABridgeError:
        raise
    except Exception as err:  # h5py / hdmf raise many types for a corrupt or non-NWB file
        raise RSABridgeError(f"cannot read {str(path)!r} as an NWB file ({type(err).__name__}: {err})") from None


def _table(nwb, intervals: str):
    if intervals == "trials":
        table = nwb.trials
    elif intervals == "epochs":
        table = nwb.epochs
    else:
        table = nwb.intervals.get(intervals) if nwb.intervals else None
    if table is None or len(table) == 0:
        have = [name for name in ("trials", "epochs") if getattr(nwb, name) is not None]
        have += [n for n in (nwb.intervals or {}) if n not in have]
        raise RSABridgeError(f"the NWB file has no {intervals!r} table of stimulus presentations"
                             + (f"; it has {', '.join(have)} (pass --intervals NAME)" if have else
                                "; it needs a trials or epochs table naming the stimulus of each presentation"))
    return table


def _column(table, name: str | None, candidates, what: str) -> np.ndarray:
    columns = list(table.colnames)
    if name is None:
        found = [c for c in candidates if c in columns]
        if not found:
            raise RSABridgeError(f"the presentations table has no {what} column (looked for {', '.join(candidates)}); "
                                 f"its columns are {', '.join(columns)}: name one with --stimulus-column")
        name = found[0]
    elif name not in columns:
        raise RSABridgeError(f"the presentations table has no column {name!r}; its columns are {', '.join(columns)}")
    values = table[name][:]
    return np.asarray([v.decode() if isinstance(v, bytes) else v for v in values])


def _unit_region(units, i: int, fallback: str) -> str:
    cols = list(units.colnames)
    if "location" in cols:
        return str(units["location"][i])
    if "electrodes" in cols:
        rows = units["electrodes"][i]
        if "location" in getattr(rows, "columns", []) and len(rows):
            return str(rows["location"].iloc[0])
    if "electrode_group" in cols:
        location = getattr(units["electrode_group"][i], "location", None)
        if location:
            return str(location)
    return fallback


#: the most time bins one NWB read may count (a 10 s window in 1 ms bins)
MAX_TIME_BINS = 10_000


def _edges_ms(start: float, stop: float, bin_width: float | None) -> np.ndarray:
    if not (np.isfinite(start) and np.isfinite(stop)) or stop <= start:
        raise RSABridgeError(f"the window must end after it starts; got start {start} ms, stop {stop} ms")
    if bin_width is None:
        return np.array([start, stop], dtype=float)
    if not np.isfinite(bin_width) or bin_width <= 0:
        raise RSABridgeError(f"the bin width must be a positive number of ms; got {bin_width}")
    n = (stop - start) / bin_width
    if n > MAX_TIME_BINS:
        raise RSABridgeError(f"bins of {bin_width:g} ms over {start:g}-{stop:g} ms are {n:,.0f} time bins, more than "
                             f"the limit of {MAX_TIME_BINS:,}; use a wider --bin-width or a shorter window")
    if abs(n - round(n)) > 1e-9:
        raise RSABridgeError(f"the bin width {bin_width} ms does not divide the window {start}-{stop} ms")
    return start + bin_width * np.arange(int(round(n)) + 1)


def spike_counts(spike_times: np.ndarray, onsets: np.ndarray, edges_ms: np.ndarray) -> np.ndarray:
    """Spikes per presentation and bin: (n_presentations, n_bins) int64.

    Bins are [onset + edges[k], onset + edges[k+1]) in seconds (edges in ms), counted by binary search.
    """
    times = np.sort(np.asarray(spike_times, dtype=float))
    edges = np.asarray(onsets, dtype=float)[:, None] + np.asarray(edges_ms, dtype=float)[None, :] / 1000.0
    return np.diff(np.searchsorted(times, edges, side="left"), axis=1)


def read_nwb(path: str | os.PathLike, *, start: float = 0.0, stop: float | None = None,
             bin_width: float | None = None, stimulus_column: str | None = None, onset_column: str | None = None,
             intervals: str = "trials", region: str | None = None, **unused) -> xr.DataArray:
    """Firing rates (presentation, neuroid[, time_bin]) in spikes/s from an NWB file's units and trials.

    Args:
        path: the .nwb file.
        start, stop: the window in ms relative to stimulus onset (``stop`` is required).
        bin_width: bin width in ms (None: one bin over the whole window, no time_bin dim).
        stimulus_column: the column naming the stimulus (default: see :data:`STIMULUS_COLUMNS`).
        onset_column: a column of onset times in s (default: the row's ``start_time``).
        intervals: ``trials``, ``epochs`` or the name of another intervals table.
        region: region of units whose location the file does not say.

    Returns:
        rates validated by :func:`rsa_bridge.neural.schema.make_rates`; attrs name the file, window and
        tables. Example: ``read_nwb("sub-1.nwb", start=50, stop=250, bin_width=50)``.

    Raises:
        RSABridgeError: no units table / spike times, no presentations table or stimulus column,
            a window outside its trial, a bad window or an unreadable file.
    """
    path = Path(path)
    if stop is None:
        raise RSABridgeError("say which window to count spikes in: stop (--window-stop MS after onset), "
                             "and optionally start and bin width")
    edges = _edges_ms(float(start), float(stop), None if bin_width is None else float(bin_width))
    io, nwb = _open(path)
    try:
        units = nwb.units
        if units is None or len(units) == 0:
            raise RSABridgeError(f"{str(path)!r} has no units table (sorted spikes); rsa-bridge reads spike times "
                                 "from nwbfile.units")
        if "spike_times" not in units.colnames:
            raise RSABridgeError(f"the units table of {str(path)!r} has no spike_times column")
        table = _table(nwb, intervals)
        stimuli = _column(table, stimulus_column, STIMULUS_COLUMNS, "stimulus")
        # NaN or text times would count no spike at all (or raise deep inside numpy): one line naming the row
        t_start = finite_times(table["start_time"][:], f"{str(path)!r}: {intervals} start_time")
        t_stop = finite_times(table["stop_time"][:], f"{str(path)!r}: {intervals} stop_time")
        onsets = t_start if onset_column is None else finite_times(
            _column(table, onset_column, (), "onset"), f"{str(path)!r}: {intervals} {onset_column}")
        lo, hi = onsets + edges[0] / 1000.0, onsets + edges[-1] / 1000.0
        outside = np.flatnonzero((lo < t_start - 1e-9) | (hi > t_stop + 1e-9))
        if outside.size:
            raise RSABridgeError(
                f"the window {edges[0]:g}-{edges[-1]:g} ms after onset lies outside {outside.size} of {len(onsets)} "
                f"presentations (rows {preview(outside.tolist())}; e.g. trial {t_start[outside[0]]:g}-"
                f"{t_stop[outside[0]]:g} s, onset {onsets[outside[0]]:g} s); choose a window inside every trial")
        order = np.argsort(onsets, kind="stable")
        counts = np.stack([spike_counts(units["spike_times"][i], onsets[order], edges) for i in range(len(units))],
                          axis=1)  # (P, N, B)
        rates = counts / (np.diff(edges) / 1000.0)
        names = next((c for c in ("unit_name", "name") if c in units.colnames), None)
        ids = [str(units[names][i]) for i in range(len(units))] if names else [str(i) for i in units.id[:]]
        regions = [_unit_region(units, i, region or "unknown") for i in range(len(units))]
        stim = [str(s) for s in stimuli[order]]
        seen: dict[str, int] = {}
        reps = []
        for s in stim:
            reps.append(seen.get(s, 0))
            seen[s] = reps[-1] + 1
        animal = getattr(getattr(nwb, "subject", None), "subject_id", None) or "unknown"
        session = nwb.session_id or nwb.identifier
        single = bin_width is None
        return make_rates(rates[:, :, 0] if single else rates, stimulus_ids=stim, repetitions=reps, neuroid_ids=ids,
                          region=regions, animal=str(animal), session=str(session), units=UNITS,
                          options=RatesOptions(
                              time_bins=None if single else list(zip(edges[:-1], edges[1:])),
                              presentation_coords={"onset_time": onsets[order]},
                              attrs={"source_file": str(path), "source_format": "nwb", "name": path.stem,
                                     "window_ms": f"{edges[0]:g}-{edges[-1]:g} after stimulus onset",
                                     "bin_width_ms": float(edges[1] - edges[0]), "presentations_table": intervals,
                                     "onset": onset_column or "start_time", "nwb_identifier": str(nwb.identifier)}))
    finally:
        io.close()
