"""Time-resolved RDMs: one RDM per time bin, or per sliding window, of firing rates with a ``time_bin`` dim.

Rates ``(presentation, neuroid, time_bin)`` with ``time_bin_start`` / ``time_bin_end`` (ms after
stimulus onset) give, per window, the RDM of the rates averaged over the bins inside the window
(then averaged over repetitions, then the metric; exactly :func:`rsa_bridge.neural.rdms.rates_to_rdm`
with ``time='mean'`` on those bins).

Windows (:func:`time_windows`):

- ``width=None``: every bin is its own window;
- ``width=W, step=S`` (ms): windows [t, t + W) for t = first bin start, + S, ... while t + W does not
  pass the last bin end; a window takes the bins that lie wholly inside it (at least one).

The result is an RDM dataset (:mod:`rsa_bridge.datasets` schema) whose area variables have a leading
``time_bin`` dim (coordinates ``time_bin_start``, ``time_bin_end``, ``time_bin_center`` in ms);
``compare`` scores every layer against every bin (:mod:`rsa_bridge.stats.time_course`).
Peers: MNE-RSA / rsatoolbox ``calc_rdm_movie`` (one RDM per time point of a temporal dataset).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import xarray as xr

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.neural import schema as S
from rsa_bridge.provenance import clean_attrs, package_version

TIME = S.TIME_BIN


#: the most sliding windows one time-resolved RDM may have (each is one n x n RDM)
MAX_WINDOWS = 10_000


def time_windows(starts: Sequence[float], ends: Sequence[float], width: float | None = None,
                 step: float | None = None) -> list[tuple[float, float, np.ndarray]]:
    """The windows over bins [starts[k], ends[k]) (ms): (start, end, indices of the bins inside).

    Examples:
        >>> [(a, b, list(i)) for a, b, i in time_windows([0, 10, 20], [10, 20, 30], width=20, step=10)]
        [(0.0, 20.0, [0, 1]), (10.0, 30.0, [1, 2])]
    """
    starts, ends = np.asarray(starts, dtype=float), np.asarray(ends, dtype=float)
    if width is None:
        if step is not None:
            raise RSABridgeError("a window step needs a window width (--window W --step S)")
        return [(float(a), float(b), np.array([k])) for k, (a, b) in enumerate(zip(starts, ends))]
    step = width if step is None else step
    if not (np.isfinite(width) and width > 0 and np.isfinite(step) and step > 0):
        raise RSABridgeError(f"window width and step must be positive numbers of ms; got width {width}, step {step}")
    n_windows = np.floor((float(ends.max()) - float(starts.min()) - width) / step + 1e-9) + 1
    if n_windows > MAX_WINDOWS:
        raise RSABridgeError(f"windows of {width:g} ms every {step:g} ms over {starts.min():g}-{ends.max():g} ms are "
                             f"{n_windows:,.0f} windows, more than the limit of {MAX_WINDOWS:,}; use a larger --step")
    out, t = [], float(starts.min())
    while t + width <= float(ends.max()) + 1e-9:
        inside = np.flatnonzero((starts >= t - 1e-9) & (ends <= t + width + 1e-9))
        if inside.size:
            out.append((t, t + width, inside))
        t += step
    if not out:
        raise RSABridgeError(f"no window of {width} ms fits in the bins ({starts.min():g}-{ends.max():g} ms)")
    return out


def _bin_edges(rates: xr.DataArray) -> tuple[np.ndarray, np.ndarray]:
    if TIME not in rates.dims:
        raise RSABridgeError("time-resolved RDMs need rates with a time_bin dimension (presentation x neuroid x "
                             "time_bin); these have none")
    flat = S.flat_coords(rates)
    if S.TIME_BIN_START in flat.coords and S.TIME_BIN_END in flat.coords:
        return (np.asarray(flat[S.TIME_BIN_START].values, dtype=float),
                np.asarray(flat[S.TIME_BIN_END].values, dtype=float))
    n = rates.sizes[TIME]
    return np.arange(n, dtype=float), np.arange(1, n + 1, dtype=float)


def time_resolved_rdms(rates: xr.DataArray, metric: str = "correlation", *, region: str | None = None,
                       width: float | None = None, step: float | None = None, **options) -> xr.DataArray:
    """RDMs over time: (time_bin, stimulus_row, stimulus_col), one per bin or window.

    Args:
        rates: (presentation, neuroid, time_bin) firing rates with ``time_bin_start``/``time_bin_end`` (ms).
        metric: RDM metric (see :func:`rsa_bridge.neural.rdms.rates_to_rdm`); region: only its neuroids.
        width, step: sliding window width and step in ms (None: one RDM per bin).
        options: passed to :func:`rsa_bridge.neural.rdms.rates_to_rdm`.

    Returns:
        DataArray with coords ``time_bin`` (0..T-1), ``time_bin_start``, ``time_bin_end``,
        ``time_bin_center`` (ms); attrs say the windows.
    """
    from rsa_bridge.neural.rdms import rates_to_rdm

    rates = S.select_region(rates, region)
    starts, ends = _bin_edges(rates)
    windows = time_windows(starts, ends, width, step)
    rdms = [rates_to_rdm(rates.isel({TIME: idx}), metric, time="mean", **options) for _, _, idx in windows]
    out = xr.concat(rdms, dim=TIME, combine_attrs="override")
    lo = np.array([w[0] for w in windows])
    hi = np.array([w[1] for w in windows])
    out = out.assign_coords({TIME: np.arange(len(windows)), S.TIME_BIN_START: (TIME, lo),
                             S.TIME_BIN_END: (TIME, hi), "time_bin_center": (TIME, (lo + hi) / 2)})
    out.attrs.update(clean_attrs({"time": "one RDM per " + ("bin" if width is None else
                                                             f"window of {width:g} ms every {step or width:g} ms"),
                                  "time_units": "ms after stimulus onset"}))
    return out


def time_resolved_dataset(rates: xr.DataArray, metric: str = "correlation", *, regions: Sequence[str] | None = None,
                          width: float | None = None, step: float | None = None, name: str | None = None,
                          **options) -> xr.Dataset:
    """An RDM dataset with one time-resolved variable per region (dims time_bin, stimulus_row, stimulus_col)."""
    present = list(dict.fromkeys(str(r) for r in S.flat_coords(rates)[S.REGION].values))
    variables = {region: time_resolved_rdms(rates, metric, region=region, width=width, step=step, **options)
                 for region in (list(regions) if regions else present)}
    ids = [list(v["stimulus_row"].values) for v in variables.values()]
    if any(i != ids[0] for i in ids):
        raise RSABridgeError("the regions cover different stimuli; build one dataset per region")
    ds = xr.Dataset(variables, attrs=clean_attrs({"name": name or rates.attrs.get("name"), "metric": metric,
                                                  "source": rates.attrs.get("source_file"),
                                                  "time_resolved": 1, "rsa_bridge_version": package_version()}))
    for region in variables:
        ds[region].attrs.setdefault("region", region)
    return ds
