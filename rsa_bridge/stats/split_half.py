"""Split-half reliability of an RDM from repeat-level responses, with the Spearman–Brown correction.

The one implementation of these formulas in rsa-bridge; :mod:`rsa_bridge.neural.reliability` (the
neural-data API on Brain-Score-style rate arrays) calls into it.

- A split (:func:`rsa_bridge.stats.resample.split_halves`) assigns, per stimulus with k presentations,
  floor(k/2) presentations at random to half A and as many others to half B (one sits out when k is odd).
- Per split: the RDM of half A and the RDM of half B are compared with the comparison method
  (:func:`half_similarities`).
- Spearman–Brown prophecy (:func:`spearman_brown`): the reliability of ``factor`` times as much data,
  factor r / (1 + (factor - 1) r); factor 2 turns a half-vs-half similarity into the full-data estimate.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import xarray as xr
from scipy import sparse

from rsa_bridge.compare import METHODS, compare_vectors
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.stats.resample import Seed, as_generator, split_halves


def spearman_brown(r, factor: float = 2.0):
    """Spearman–Brown prophecy: reliability of ``factor`` times as much data, k r / (1 + (k - 1) r).

    Args:
        r: reliability (or half-vs-half similarity), scalar or array, dimensionless.
        factor: how many times longer the full measurement is (2 for a split half).

    Returns:
        float64 array of the same shape (NaN/inf where 1 + (k - 1) r = 0, without a numpy warning).
    """
    r = np.asarray(r, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return factor * r / (1.0 + (factor - 1.0) * r)


def half_similarities(halves: np.ndarray, half_rdm: Callable[[np.ndarray], np.ndarray],
                      method: str = "spearman") -> np.ndarray:
    """Similarity of the two half RDMs of every split.

    Args:
        halves: (n_splits, n_presentations) int8 from :func:`~rsa_bridge.stats.resample.split_halves`
            (0 = half A, 1 = half B, -1 = sits out).
        half_rdm: bool mask (n_presentations,) of one half -> that half's RDM, a square (n, n) matrix
            or its (n(n-1)/2,) upper triangle, over the same stimuli in the same order for both halves.
        method: comparison method (a name in :data:`rsa_bridge.compare.METHODS`).

    Returns:
        (n_splits,) float64 half-vs-half similarities (dimensionless).
    """
    from rsa_bridge.rdm import upper_triangle

    def vector(mask: np.ndarray) -> np.ndarray:
        rdm = np.asarray(half_rdm(mask), dtype=np.float64)
        return upper_triangle(rdm) if rdm.ndim == 2 else rdm

    out = np.empty(halves.shape[0])
    for s, half in enumerate(halves):
        out[s] = compare_vectors(vector(half == 0), vector(half == 1), method)[0, 0]
    return out


@dataclass(frozen=True)
class SplitHalfReliability:
    """Split-half reliability of an RDM from repeat-level responses.

    Attributes:
        r_half: mean over splits of sim(RDM of half A, RDM of half B).
        corrected: Spearman–Brown corrected ``r_half`` (full number of repetitions).
        per_split: (n_splits,) the half-vs-half similarities.
        mean_corrected: mean over splits of each split's corrected value (the other common convention,
            used by :func:`rsa_bridge.neural.rdm_reliability`; slightly lower than ``corrected`` because
            the correction is concave).
    """

    r_half: float
    corrected: float
    per_split: np.ndarray = field(repr=False)
    mean_corrected: float = float("nan")
    method: str = "spearman"
    metric: str = "correlation"
    n_splits: int = 0
    seed: int | None = None

    def attrs(self) -> dict:
        out = {"reliability_split_half": float(self.r_half), "reliability_spearman_brown": float(self.corrected),
               "reliability_mean_of_split_spearman_brown": float(self.mean_corrected),
               "reliability_method": self.method, "reliability_metric": self.metric,
               "reliability_n_splits": int(self.n_splits)}
        if self.seed is not None:
            out["reliability_seed"] = int(self.seed)
        return out


def _presentations(rates, stimulus_coord: str, repetition_dim: str) -> tuple[np.ndarray, np.ndarray]:
    """(presentation, neuroid) values and (presentation,) stimulus labels."""
    if isinstance(rates, xr.DataArray):
        if repetition_dim in rates.dims:
            other = [d for d in rates.dims if d != repetition_dim]
            stim_dim, unit_dims = other[0], other[1:]
            stacked = rates.transpose(repetition_dim, stim_dim, *unit_dims)
            values = stacked.values.reshape(stacked.shape[0] * stacked.shape[1], -1)
            ids = rates[stim_dim].values if stim_dim in rates.coords else np.arange(rates.sizes[stim_dim])
            return values, np.tile(np.asarray(ids), rates.sizes[repetition_dim])
        if stimulus_coord not in rates.coords:
            raise RSABridgeError(f"repeat-level rates need a {stimulus_coord!r} coordinate on the presentation dim "
                                 f"or a {repetition_dim!r} dimension")
        labels = np.asarray(rates[stimulus_coord].values)
        pdim = rates[stimulus_coord].dims[0]
        return rates.transpose(pdim, ...).values.reshape(rates.sizes[pdim], -1), labels
    values = np.asarray(rates, dtype=np.float64)
    if values.ndim != 3:
        raise RSABridgeError(f"repeat-level rates must be (repetition, stimulus, neuroid); got shape {values.shape}")
    n_rep, n_stim = values.shape[:2]
    return values.reshape(n_rep * n_stim, -1), np.tile(np.arange(n_stim), n_rep)


def split_half_reliability(rates, *, metric: str = "correlation", method: str = "spearman", n_splits: int = 100,
                           seed: Seed = 0, stimulus_coord: str = "stimulus_id",
                           repetition_dim: str = "repetition") -> SplitHalfReliability:
    """Split-half reliability of the RDM of repeat-level responses, Spearman–Brown corrected.

    Each split assigns, per stimulus, floor(k/2) of its k repetitions at random to half A and as many
    others to half B (one repetition sits out when k is odd); the RDM of the half-A means is
    compared with that of the half-B means.

    Args:
        rates: (repetition, stimulus, neuroid) array; a DataArray with a ``repetition`` dim; or a
            Brain-Score style (presentation, neuroid) DataArray with a ``stimulus_id`` coordinate.
            Firing rates (spikes/s) or any response unit.
        metric: RDM metric (see :mod:`rsa_bridge.rdm`); method: comparison method.
        n_splits: random splits to average; seed: int or Generator.

    Returns:
        :class:`SplitHalfReliability` (dimensionless, in the method's units).

    Examples:
        Six repetitions of 30 stimuli x 40 neuroids, a fixed response plus noise, against noise only:

        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> rates = rng.normal(size=(30, 40)) + 0.5 * rng.normal(size=(6, 30, 40))   # (repetition, stimulus, neuroid)
        >>> rel = split_half_reliability(rates, n_splits=20, seed=0)
        >>> round(rel.r_half, 2), round(rel.corrected, 2)
        (0.82, 0.9)
        >>> bool(np.isclose(rel.corrected, 2 * rel.r_half / (1 + rel.r_half)))    # Spearman-Brown, k = 2
        True
        >>> noise = split_half_reliability(rng.normal(size=(6, 30, 40)), n_splits=20, seed=0)
        >>> abs(noise.corrected) < 0.1
        True
    """
    from rsa_bridge.rdm import compute_rdm

    method = METHODS.resolve(method)
    values, labels = _presentations(rates, stimulus_coord, repetition_dim)
    if not np.isfinite(values).all():
        raise RSABridgeError("repeat-level rates contain NaN or inf; drop those presentations first")
    stim_ids, stim_index = np.unique(labels.astype(str), return_inverse=True)
    if stim_ids.size < 3:
        raise RSABridgeError(f"split-half reliability needs at least 3 stimuli; got {stim_ids.size}")
    halves = split_halves(stim_index, n_splits, as_generator(seed))

    def half_rdm(mask: np.ndarray) -> np.ndarray:
        use = np.flatnonzero(mask)
        ind = sparse.csr_matrix((np.ones(use.size), (stim_index[use], use)), shape=(stim_ids.size, values.shape[0]))
        return compute_rdm((ind @ values) / np.asarray(ind.sum(axis=1)), metric, stimulus_ids=stim_ids).values

    per_split = half_similarities(halves, half_rdm, method)
    r_half = float(np.mean(per_split))
    if r_half <= -1.0:
        warnings.warn("split-half similarity is -1: the Spearman-Brown correction is undefined (NaN)", RuntimeWarning)
        corrected = float("nan")
    else:
        corrected = float(spearman_brown(r_half))
    return SplitHalfReliability(r_half, corrected, per_split, float(np.mean(spearman_brown(per_split))), method,
                                metric, halves.shape[0], int(seed) if isinstance(seed, (int, np.integer)) else None)
