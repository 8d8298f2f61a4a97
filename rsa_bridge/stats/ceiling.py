"""Noise ceilings: how well the true model could do, given the disagreement between subjects' RDMs.

Definitions (R RDMs of one area: subjects, sessions or animals; ``sim`` is the comparison method):

``nili`` (Nili et al. 2014; rsatoolbox ``boot_noise_ceiling`` / ``cv_noise_ceiling`` with
leave-one-out sets): the RDMs are pooled into the RDM that maximises the method's mean similarity
(rsatoolbox ``pool_rdm``: mean of ranks for rank methods, mean of z-scored RDMs for pearson and
whitened_pearson, mean of RMS-scaled RDMs for cosine and whitened_cosine): the ``pool`` of the method's
record (:mod:`rsa_bridge.methods`); a method without one is refused in one line.

- upper bound = mean over RDMs s of sim(pool(all RDMs), s)   (the pool includes s itself: an overestimate)
- lower bound = mean over RDMs s of sim(pool(all but s), s)   (leave-one-out: an underestimate)

With ``groups`` (e.g. the subject of each session RDM) a whole group is left out, and each group's
mean counts once (rsatoolbox ``rdm_descriptor``).

``algonauts`` (Algonauts 2019 / Net2Brain): the same leave-one-out and include-self bounds, but
the pool is the plain mean of the raw RDMs and every similarity is **squared** (r^2, the units
of Algonauts' and Net2Brain's scores).

:func:`rsa_bridge.stats.split_half.split_half_reliability` gives the reliability of one RDM from
repeat-level responses instead (one RDM per area: no ceiling across subjects).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
import xarray as xr

from rsa_bridge.definitions import COMPARISONS
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.methods import get, view
from rsa_bridge.stats.masked import compare_masked

ROW, COL = "stimulus_row", "stimulus_col"


#: method -> how rsatoolbox's ``pool_rdm`` pools RDMs (R, m) -> (m,) for it: a live view of each method's ``pool``
POOLS: Mapping[str, Callable[[np.ndarray], np.ndarray]] = view(
    "comparison method with a pool", lambda m: m.pool, lambda m: m.pool is not None)


def require_pool(method) -> None:
    """One-line RSABridgeError when the method has no pool for the Nili noise ceiling."""
    get(method).require("pool", "a Nili noise ceiling", "use definition='algonauts' (raw mean) or no ceiling")


def check_ceiling(method) -> None:
    """One-line RSABridgeError before a bootstrap with ``ceiling=True`` when the method cannot give its ceilings:
    no ``pool``, or a fast path without weighted pool values (``dot.pool_values``)."""
    record = get(method)
    record.require("pool", "a bootstrap noise ceiling", "bootstrap without ceiling=True")
    if record.dot is not None and record.dot.pool_values is None:
        raise RSABridgeError(f"comparison method {record.name!r} gives no weighted pool values (dot.pool_values), "
                             "which bootstrap noise ceilings need; bootstrap without ceiling=True")


@dataclass(frozen=True)
class NoiseCeiling:
    """Lower and upper noise-ceiling bounds of one area.

    Attributes:
        lower, upper: the bounds, in the units of the comparison method (``r``), or ``r^2`` for the
            ``algonauts`` definition.
        definition: ``nili`` or ``algonauts``.
        method: the comparison method (see :mod:`rsa_bridge.compare`).
        n_rdms: the number of RDMs; n_groups the number of left-out groups.
        per_group_lower, per_group_upper: the per-group values that are averaged.
    """

    lower: float
    upper: float
    definition: str
    method: str
    n_rdms: int
    n_groups: int
    units: str
    per_group_lower: np.ndarray = field(repr=False)
    per_group_upper: np.ndarray = field(repr=False)

    def attrs(self) -> dict:
        """NetCDF-safe provenance: ``ceiling_lower``, ``ceiling_upper``, definition, method, counts, units."""
        return {"ceiling_lower": float(self.lower), "ceiling_upper": float(self.upper),
                "ceiling_definition": self.definition, "ceiling_method": self.method,
                "ceiling_n_rdms": int(self.n_rdms), "ceiling_n_groups": int(self.n_groups),
                "ceiling_units": self.units}


def rdm_stack(rdms, what: str = "the RDMs") -> tuple[np.ndarray, xr.DataArray | None]:
    """(R, m) upper-triangle vectors from (R, n, n) matrices, a DataArray with replicate dims, or (R, m)."""
    da = rdms if isinstance(rdms, xr.DataArray) else None
    if da is not None and {ROW, COL} <= set(da.dims):
        values = np.asarray(da.transpose(..., ROW, COL).values, dtype=np.float64)
        values = values.reshape((-1,) + values.shape[-2:])
    else:
        values = np.asarray(rdms.values if da is not None else rdms, dtype=np.float64)
    if values.ndim == 3:
        if values.shape[1] != values.shape[2]:
            raise RSABridgeError(f"{what} must be square (n_rdms, n, n); got shape {values.shape}")
        n = values.shape[1]
        if n < 3:
            raise RSABridgeError(f"{what} cover {n} stimuli; RDM statistics need at least 3")
        rows, cols = np.triu_indices(n, k=1)
        vectors = values[:, rows, cols]
    elif values.ndim == 2:
        vectors = values
        if vectors.shape[1] < 3:
            raise RSABridgeError(f"{what} have {vectors.shape[1]} dissimilarities; RDM statistics need >= 3 stimuli")
    else:
        raise RSABridgeError(f"{what} must be (n_rdms, n, n) matrices or (n_rdms, m) vectors; got shape {values.shape}")
    if not np.isfinite(vectors).all():
        bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
        raise RSABridgeError(f"{what}: RDM(s) {bad.tolist()} contain NaN or inf; remove them or fill the gaps")
    constant = np.flatnonzero(vectors.max(axis=1) == vectors.min(axis=1))
    if constant.size:
        raise RSABridgeError(f"{what}: RDM(s) {constant.tolist()} are constant (all dissimilarities equal), so "
                             "correlations with them are undefined; remove them")
    return vectors, da


def _group_labels(groups, da: xr.DataArray | None, n_rdms: int) -> np.ndarray:
    if groups is None:
        return np.arange(n_rdms)
    if isinstance(groups, str):
        if da is None or groups in (ROW, COL) or (groups not in da.dims and (
                groups not in da.coords or {ROW, COL} & set(da[groups].dims))):
            # a replicate dim, or a coordinate along them (rsatoolbox's subject descriptor on 'replicate')
            raise RSABridgeError(f"groups={groups!r} names no replicate dimension of the RDMs")
        other = [d for d in da.dims if d not in (ROW, COL)]
        labels = da[groups].broadcast_like(da.isel({ROW: 0, COL: 0}, drop=True)).transpose(*other).values
        return np.asarray(labels).ravel()
    labels = np.asarray(list(groups))
    if labels.shape != (n_rdms,):
        raise RSABridgeError(f"groups has {labels.size} labels for {n_rdms} RDMs")
    return labels


def nili_bounds(vectors: np.ndarray, method: str, labels: np.ndarray, valid: np.ndarray | None = None,
          pool: Callable[[np.ndarray], np.ndarray] | None = None, square: bool = False):
    """Per-group lower and upper bounds; vectors (R, m_valid) hold the valid pairs only.

    ``pool``: None = the method's own (its record's ``pool``; refused in one line when it has none).
    """
    if pool is None:
        require_pool(method)
        pool = get(method).pool
    pooled = pool(vectors)[None]
    unique = np.unique(labels)
    lower, upper = np.empty(len(unique)), np.empty(len(unique))
    for g, label in enumerate(unique):
        members = labels == label
        if members.all():
            lower[g] = np.nan
        else:
            lower[g] = np.mean(_sim(pool(vectors[~members])[None], vectors[members], method, valid, square))
        upper[g] = np.mean(_sim(pooled, vectors[members], method, valid, square))
    return lower, upper


def _sim(a, b, method, valid, square):
    s = compare_masked(a, b, method, valid)
    return s * s if square else s


def _pool_mean(x: np.ndarray) -> np.ndarray:
    """Raw mean of the RDMs (Algonauts 2019 / Net2Brain)."""
    return np.mean(x, axis=0)


#: definition -> (pool override or None for the method's own, square the similarities, units)
DEFINITIONS: dict[str, tuple[Callable | None, bool, str]] = {
    "nili": (None, False, "r"),
    "algonauts": (_pool_mean, True, "r^2"),
}


def noise_ceiling(rdms, method: str = "spearman", definition: str = "nili",
                  groups: str | Sequence | None = None) -> NoiseCeiling:
    """The noise ceiling of an area from several RDMs of it.

    Args:
        rdms: (n_rdms, n, n) RDMs (array, or DataArray with any leading replicate dims such as
            ``subject`` x ``session`` before ``stimulus_row``, ``stimulus_col``), or (n_rdms, m)
            upper-triangle vectors. All over the same stimuli in the same order.
        method: comparison method (a name in :data:`rsa_bridge.compare.METHODS`).
        definition: ``nili`` (lower leave-one-out / upper include-self bounds, rsatoolbox's
            ``boot_noise_ceiling``) or ``algonauts`` (raw-mean pool, squared similarities).
        groups: leave-one-group-out labels, one per RDM, or the name of a replicate dim of a
            DataArray (e.g. ``"subject"``); default each RDM alone.

    Returns:
        :class:`NoiseCeiling` (bounds in the method's units; r^2 for ``algonauts``).

    Raises:
        RSABridgeError: fewer than 2 RDMs (or groups), NaN/inf, a constant RDM, fewer than 3 stimuli,
            an unknown method or definition.

    Examples:
        Identical subjects leave no room: both bounds are 1. Four noisy subjects of one signal:

        >>> import numpy as np
        >>> from rsa_bridge import compute_rdm
        >>> rng = np.random.default_rng(0)
        >>> rdm = compute_rdm(rng.normal(size=(20, 50))).values
        >>> same = noise_ceiling(np.stack([rdm, rdm, rdm]), "spearman")
        >>> round(same.lower, 12), round(same.upper, 12)
        (1.0, 1.0)
        >>> signal = rng.normal(size=(20, 50))
        >>> subjects = np.stack([compute_rdm(signal + rng.normal(size=(20, 50))).values for _ in range(4)])
        >>> c = noise_ceiling(subjects, "spearman")
        >>> round(c.lower, 2), round(c.upper, 2)
        (0.28, 0.62)
    """
    method = COMPARISONS.resolve(method)
    from rsa_bridge.registry import resolve_name

    definition = resolve_name("noise-ceiling definition", definition, DEFINITIONS)
    if DEFINITIONS[definition][0] is None:
        require_pool(method)
    vectors, da = rdm_stack(rdms, "the RDMs for the noise ceiling")
    labels = _group_labels(groups, da, vectors.shape[0])
    n_groups = len(np.unique(labels))
    if vectors.shape[0] < 2 or n_groups < 2:
        raise RSABridgeError(
            f"a noise ceiling needs RDMs from at least 2 subjects/sessions; got {vectors.shape[0]} RDM(s) in "
            f"{n_groups} group(s). With one RDM per area, estimate reliability from repetitions instead "
            "(split_half_reliability)")
    pool, square, units = DEFINITIONS[definition]
    lower, upper = nili_bounds(vectors, method, labels, pool=pool, square=square)
    return NoiseCeiling(float(np.mean(lower)), float(np.mean(upper)), definition, method, vectors.shape[0],
                        n_groups, units, lower, upper)
