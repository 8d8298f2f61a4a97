"""Model time steps and brain time bins: the ``time_step`` axis and an explicit pairing with ``time_bin``.

A recurrent network read per call (``IT@0``, ``IT@1``, ...; :mod:`extractors.hooks`) has a
``time_step`` axis: the call number of a module within one forward pass. It is named after the neural
``time_bin`` convention (Brain-Score's dimension names) but is kept a separate name on purpose: a step
counts iterations of the recurrence and has no unit of time, while a bin has a start and an end in
milliseconds after stimulus onset. Equating them is a modelling choice, so it is made here, explicitly,
and recorded:

- :func:`step_rdms` picks one area's per-step RDMs (``IT@0``, ``IT@1``, ...) out of a model RDM array as
  (time_step, stimulus_row, stimulus_col);
- :func:`step_bin_similarity` scores every step against every bin of a time-resolved neural RDM
  (time_bin, stimulus_row, stimulus_col), stimuli matched by ``stimulus_id``: a (time_step, time_bin) grid;
- :func:`pair_steps_with_bins` reads the grid two ways: the *stated* pairing (step t with bin
  ``first_bin + t * stride``) and, per step, the bin where the similarity peaks.

Example (two steps, three bins; the neural RDMs list the stimuli in another order):

    >>> import numpy as np, xarray as xr
    >>> from rsa_bridge.rdm import rdm_dataarray
    >>> d = [np.array([[0, a, b], [a, 0, c], [b, c, 0]], float) for a, b, c in [(1, 2, 3), (3, 2, 1), (1, 3, 2)]]
    >>> model = xr.concat([rdm_dataarray(d[0], ["x", "y", "z"]), rdm_dataarray(d[1], ["x", "y", "z"])], TIME_STEP)
    >>> brain = xr.concat([rdm_dataarray(m, ["x", "y", "z"]) for m in d], "time_bin").isel(
    ...     stimulus_row=[2, 0, 1], stimulus_col=[2, 0, 1])
    >>> grid = step_bin_similarity(model, brain, method="pearson")
    >>> grid.dims, [round(float(v), 3) for v in grid.sel(time_bin=0).values]
    (('time_step', 'time_bin'), [1.0, -1.0])
    >>> pairs = pair_steps_with_bins(grid, first_bin=0)
    >>> [int(v) for v in pairs["peak_bin"].values], [round(float(v), 3) for v in pairs["paired_similarity"].values]
    ([0, 1], [1.0, 1.0])
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import xarray as xr

from rsa_bridge.errors import RSABridgeError, preview

TIME_STEP = "time_step"
TIME_BIN = "time_bin"
_ROW, _COL = "stimulus_row", "stimulus_col"


def layer_steps(layers: Sequence[str]) -> list[int] | None:
    """The call number of each layer name (``IT@1`` -> 1, a plain name -> 0), or None when no name has one.

        >>> layer_steps(["V1", "V2@0", "V2@1"]), layer_steps(["conv1", "fc6"])
        ([0, 0, 1], None)
    """
    names = [str(n) for n in layers]
    steps = [int(n.rpartition("@")[2]) if n.rpartition("@")[2].isdigit() and "@" in n else None for n in names]
    return None if all(t is None for t in steps) else [0 if t is None else t for t in steps]


def step_rdms(rdms: xr.DataArray, area: str) -> xr.DataArray:
    """The per-step RDMs ``AREA@0``, ``AREA@1``, ... of a (layer, stimulus_row, stimulus_col) model RDM array.

    Returns:
        (time_step, stimulus_row, stimulus_col) with ``time_step`` = the call number and ``layer`` as a
        coordinate on it.

    Raises:
        RSABridgeError: no layer ``AREA@t`` (the message lists the layers there).
    """
    names = [str(n) for n in rdms["layer"].values]
    steps = sorted((int(n.rpartition("@")[2]), n) for n in names
                   if n.rpartition("@")[0] == area and n.rpartition("@")[2].isdigit())
    if not steps:
        raise RSABridgeError(f"no per-step layers {area}@0, {area}@1, ... among the model RDMs ({preview(names, 6)}); "
                             f"compute them with --layers {area}@all")
    out = rdms.sel(layer=[n for _, n in steps])
    out = out.assign_coords({TIME_STEP: ("layer", [t for t, _ in steps])}).swap_dims({"layer": TIME_STEP})
    return out.drop_vars([c for c in ("module_path", "n_units") if c in out.coords])


def step_bin_similarity(steps: xr.DataArray, bins: xr.DataArray, method: str = "spearman") -> xr.DataArray:
    """Similarity of every model step's RDM with every time bin's RDM of one brain area.

    Args:
        steps: (time_step, stimulus_row, stimulus_col) model RDMs (e.g. :func:`step_rdms`).
        bins: (time_bin, stimulus_row, stimulus_col) neural RDMs of one area (one subject, or their mean);
            ``time_bin_start``/``time_bin_end``/``time_bin_center`` coordinates (ms) are kept.
        method: an RDM comparison method (:data:`rsa_bridge.compare.METHODS`).

    Returns:
        (time_step, time_bin) float64 similarities, attrs ``method`` and ``pairing``. Stimuli are matched
        by ``stimulus_id`` (the neural RDMs are reordered to the model's ids).

    Raises:
        RSABridgeError: missing dims, differing stimulus ids, fewer than 3 stimuli, NaN, constant RDMs.
    """
    from rsa_bridge.align import check_same_ids, reorder_rdm
    from rsa_bridge.compare import compare_vectors
    from rsa_bridge.rdm import upper_triangle

    for what, arr, dim in (("model", steps, TIME_STEP), ("neural", bins, TIME_BIN)):
        if tuple(arr.dims) != (dim, _ROW, _COL):
            raise RSABridgeError(f"the {what} RDMs must have dims ({dim}, {_ROW}, {_COL}); got {tuple(arr.dims)}")
    ids = [str(s) for s in steps[_ROW].values]
    check_same_ids(ids, bins[_ROW].values, "the model step RDMs", "the neural time-bin RDMs")
    bins = reorder_rdm(bins, ids)
    a, b = upper_triangle(steps), upper_triangle(bins)
    for what, vectors in (("model step", a), ("neural time-bin", b)):
        if np.isfinite(vectors).all() and (np.ptp(vectors, axis=1) == 0).any():
            raise RSABridgeError(f"a {what} RDM is constant (all dissimilarities equal); it has no similarity to "
                                 "anything; drop that step or bin")
    grid = compare_vectors(a, b, method)
    coords = {TIME_STEP: steps[TIME_STEP].values, TIME_BIN: bins[TIME_BIN].values}
    coords.update({c: (TIME_BIN, bins[c].values) for c in bins.coords if c.startswith("time_bin_")})
    return xr.DataArray(grid, dims=(TIME_STEP, TIME_BIN), coords=coords, name="similarity",
                        attrs={"method": method, "measure": "rsa",
                               "pairing": "every model time_step with every neural time_bin"})


def pair_steps_with_bins(grid: xr.DataArray, first_bin: int = 0, stride: int = 1) -> xr.Dataset:
    """Read a (time_step, time_bin) grid as a pairing of model steps with brain bins.

    Args:
        grid: from :func:`step_bin_similarity`.
        first_bin: the bin (position along ``time_bin``) paired with step 0.
        stride: bins per model step.

    Returns:
        Dataset over ``time_step``: ``paired_bin`` (position ``first_bin + t * stride``; -1 when past the
        last bin), ``paired_similarity`` (NaN there), ``peak_bin`` (position of the best bin) and
        ``peak_similarity``; attrs record ``first_bin``, ``stride`` and the method.
    """
    if int(first_bin) < 0 or int(stride) < 1:
        raise RSABridgeError(f"first_bin must be >= 0 and stride >= 1; got {first_bin}, {stride}")
    values = np.asarray(grid.transpose(TIME_STEP, TIME_BIN).values, dtype=np.float64)
    n_steps, n_bins = values.shape
    paired = np.array([first_bin + t * stride for t in range(n_steps)])
    valid = paired < n_bins
    paired_sim = np.where(valid, values[np.arange(n_steps), np.minimum(paired, n_bins - 1)], np.nan)
    peak = np.argmax(values, axis=1)
    return xr.Dataset(
        {"paired_bin": (TIME_STEP, np.where(valid, paired, -1)), "paired_similarity": (TIME_STEP, paired_sim),
         "peak_bin": (TIME_STEP, peak), "peak_similarity": (TIME_STEP, values[np.arange(n_steps), peak])},
        coords={TIME_STEP: grid[TIME_STEP].values},
        attrs={"first_bin": int(first_bin), "stride": int(stride), "method": grid.attrs.get("method", "unknown"),
               "measure": grid.attrs.get("measure", "unknown"),
               "pairing": f"model step t <-> neural time_bin position {int(first_bin)} + t * {int(stride)}"},
    )


__all__: Sequence[str] = ("TIME_STEP", "layer_steps", "pair_steps_with_bins", "step_bin_similarity", "step_rdms")
