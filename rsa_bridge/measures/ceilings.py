"""Ceilings of CKA and of linear predictivity from repeated presentations (split halves of repetitions).

Splits: :func:`rsa_bridge.stats.resample.split_halves` (each stimulus's presentations shuffled with a
seeded generator; ``floor(r/2)`` to each half, one sits out when r is odd). Per split, the half means of
every stimulus and neuroid (NaN-aware) are formed; then

- **per-neuroid ceiling** (Brain-Score's internal consistency): Pearson r across stimuli between the two
  half means of a neuroid, Spearman-Brown corrected ``2r / (1 + r)``, mean over splits
  (:func:`rsa_bridge.neural.reliability.neuroid_reliability`); the area's ceiling is the median over
  neuroids. Linear predictivity is reported raw and as ``score / ceiling`` (as Brain-Score does);
  neuroids whose ceiling is NaN or not positive are left out of both medians, with a warning naming them.
- **CKA ceiling**: the mean over splits of CKA(half-A Gram, half-B Gram) of the neural data (linear
  kernels of the half means; the same CKA kind as the score). No Spearman-Brown correction: CKA is not a
  correlation of averages, so the correction has no exact meaning; the value is the agreement of two
  independent halves and so is conservative (a lower bound on what the full data would reach).

Example::

    >>> from rsa_bridge.neural.load import read_neural
    >>> rates = read_neural("cowley2023_v4_210325_rates").data   # doctest: +SKIP
    >>> cka_ceiling(rates, n_splits=10, seed=0)                   # doctest: +SKIP
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import xarray as xr

from rsa_bridge.errors import RSABridgeError, preview
from rsa_bridge.measures.cka import cka
from rsa_bridge.neural import schema as S
from rsa_bridge.neural.rdms import group_sums, grouped
from rsa_bridge.stats.resample import as_generator, split_halves


def mean_responses(rates: xr.DataArray) -> xr.DataArray:
    """Repeat-averaged responses (stimulus_id, neuroid) of ``presentation x neuroid`` rates (time bins averaged)."""
    values, codes, ids, _ = grouped(rates, time="mean")
    sums, counts = group_sums(values, codes, len(ids))
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    flat = S.flat_coords(rates)
    return xr.DataArray(means, dims=("stimulus_id", S.NEUROID),
                        coords={"stimulus_id": ids,
                                S.NEUROID_ID: (S.NEUROID, [str(v) for v in flat[S.NEUROID_ID].values])},
                        name="responses", attrs={"definition": "mean over presentations (NaN-aware)"})


def half_means(rates: xr.DataArray, n_splits: int = 10, seed: int | np.random.Generator = 0,
               stimulus_ids: Sequence[str] | None = None):
    """Yield (half A means, half B means), each (n_stimuli, n_neuroids), per split, rows in ``stimulus_ids`` order."""
    values, codes, ids, _ = grouped(rates, time="mean")
    position = {str(s): k for k, s in enumerate(ids)}  # a dict: linear, not ids.index per id
    order = np.arange(len(ids)) if stimulus_ids is None else np.array([position[str(s)] for s in stimulus_ids])
    for half in split_halves(codes, n_splits, as_generator(seed)):
        out = []
        for side in (0, 1):
            mask = half == side
            sums, counts = group_sums(values[mask], codes[mask], len(ids))
            with np.errstate(invalid="ignore", divide="ignore"):
                out.append(np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)[order])
        yield out[0], out[1]


def cka_ceiling(rates: xr.DataArray, n_splits: int = 10, seed: int | np.random.Generator = 0, kind: str = "linear",
                stimulus_ids: Sequence[str] | None = None) -> float:
    """Mean over ``n_splits`` split halves of CKA(half-A linear Gram, half-B linear Gram) (see module docstring)."""
    values = []
    for a, b in half_means(rates, n_splits, seed, stimulus_ids):
        if np.isnan(a).any() or np.isnan(b).any():
            raise RSABridgeError("a half has no presentation of some stimulus or a NaN response; the CKA ceiling "
                                 "needs every stimulus in both halves")
        values.append(cka(a @ a.T, b @ b.T, kind))
    return float(np.mean(values))


def neuroid_ceiling(rates: xr.DataArray, n_splits: int = 10, seed: int = 0) -> xr.DataArray:
    """(neuroid,) split-half consistency per neuroid, Spearman-Brown corrected, mean over splits."""
    from rsa_bridge.neural.reliability import neuroid_reliability

    return neuroid_reliability(rates, n_splits=n_splits, seed=seed)


def usable_neuroids(ceiling: np.ndarray, neuroid_ids: Sequence[str]) -> np.ndarray:
    """Boolean mask of neuroids with a finite, positive ceiling; warns naming the others."""
    ceiling = np.asarray(ceiling, dtype=np.float64)
    ok = np.isfinite(ceiling) & (ceiling > 0)
    if not ok.all():
        bad = [str(neuroid_ids[i]) for i in np.flatnonzero(~ok)]
        warnings.warn(f"{len(bad)} neuroids excluded: their split-half ceiling is undefined or not positive "
                      f"({preview(bad)})", RuntimeWarning, stacklevel=2)
    if not ok.any():
        raise RSABridgeError("no neuroid has a positive split-half ceiling; linear predictivity cannot be ceiled")
    return ok
