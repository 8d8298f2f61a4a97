"""The unit of resampling: which RDMs of an area belong together (the sessions of one subject or animal).

An area's RDMs are often not independent: the shipped human IT area holds 4 subjects x 2 sessions.
Treating its 8 RDMs as 8 replicates is pseudo-replication (two sessions of one subject share that
subject's idiosyncrasies). With a *grouping* every statistic treats a subject as one unit:

- noise ceiling: the lower bound leaves out a whole subject (all its sessions), and each subject's
  mean counts once (rsatoolbox ``boot_noise_ceiling(..., rdm_descriptor='subject')``);
- similarity and SEM: the mean over subjects of each subject's mean over its sessions; the SEM is the
  standard deviation of the subject means over sqrt(number of subjects);
- bootstrap over RDMs: a sample draws subjects with replacement and takes all their sessions together
  (rsatoolbox ``bootstrap_sample_rdm(rdms, rdm_descriptor='subject')``).

Which grouping (:func:`resampling_unit`):

- ``auto`` (default): the first of :data:`GROUP_COORDS` (``subject``, ``animal``) that the area's
  RDMs carry as a dimension or replicate coordinate with at least 2 distinct values; else each RDM
  is its own unit;
- ``none``: each RDM is its own unit (the behaviour before groupings existed);
- a name: that dimension/coordinate of the RDMs (an error when absent or when it has one value).

For balanced groups (every subject has the same number of sessions) the mean over subject means
equals the mean over all RDMs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.stats.resample import bootstrap_rdms

ROW, COL = "stimulus_row", "stimulus_col"
#: replicate coordinates that name a subject, searched in this order by ``group_by='auto'``
GROUP_COORDS = ("subject", "animal")
#: the choice that turns grouping off
NO_GROUPING = "none"
AUTO = "auto"


@dataclass(frozen=True)
class ResamplingUnit:
    """What one independent replicate of an area is.

    Attributes:
        name: ``rdm`` (each RDM alone) or the grouping coordinate (``subject``, ``animal`` ...).
        labels: (n_rdms,) the group of each RDM, in the order of :func:`rsa_bridge.datasets.area_rdms`.
        how: ``auto``, ``none`` or ``chosen`` (how the grouping was decided).
    """

    name: str
    labels: np.ndarray = field(repr=False)
    how: str = AUTO

    @property
    def n_rdms(self) -> int:
        return int(self.labels.size)

    @property
    def n_units(self) -> int:
        return int(np.unique(self.labels).size)

    @property
    def grouped(self) -> bool:
        """True when some unit holds several RDMs (then the statistics differ from per-RDM ones)."""
        return self.name != "rdm" and self.n_units < self.n_rdms

    def describe(self) -> str:
        """``subject (4 subjects x 2 RDMs)``, ``rdm (8)`` or ``single RDM``."""
        if self.n_rdms == 1:
            return "single RDM"
        if self.name == "rdm":
            return f"RDM ({self.n_rdms} RDMs)"
        per = np.unique(np.unique(self.labels, return_counts=True)[1])
        each = f"{per[0]} RDMs each" if per.size == 1 else f"{per.min()}-{per.max()} RDMs each"
        return f"{self.name} ({self.n_units} {self.name}s, {each})"


def replicate_coords(rdms: xr.DataArray) -> xr.DataArray:
    """One value per RDM: the area variable stacked over its replicate dims like ``area_rdms`` does.

    Returns a (replicate,) DataArray whose coordinates include every replicate dim and every
    coordinate along them (e.g. an ``animal`` coordinate along ``session``).
    """
    var = rdms.transpose(..., ROW, COL).isel({ROW: 0, COL: 0}, drop=True)
    extra = list(var.dims)
    if not extra:
        return var.expand_dims(replicate=1)
    if extra == ["replicate"]:  # already one replicate dim (rdms_from_rsatoolbox's form): nothing to stack
        return var
    if "replicate" in extra:  # a 'replicate' dim among others cannot be stacked into a dim of its name
        var = var.rename({"replicate": "replicate_dim"})
        extra = list(var.dims)
    return var.stack(replicate=extra)


def _labels(stacked: xr.DataArray, name: str) -> np.ndarray | None:
    if name not in stacked.coords:
        return None
    values = stacked[name].broadcast_like(stacked).values
    return np.asarray([str(v) for v in np.ravel(values)])


def resampling_unit(rdms: xr.DataArray, group_by: str | None = AUTO) -> ResamplingUnit:
    """The unit of resampling of one area's RDMs.

    Args:
        rdms: the area's variable of an RDM dataset, dims ``(*replicate_dims, stimulus_row, stimulus_col)``.
        group_by: ``auto`` (or None), ``none``, or a replicate dimension/coordinate name.

    Returns:
        :class:`ResamplingUnit` with one label per RDM, in ``area_rdms`` order.

    Raises:
        RSABridgeError: a named grouping that the RDMs do not carry, or that has a single value.
    """
    stacked = replicate_coords(rdms)
    n = int(stacked.sizes["replicate"])
    each = np.asarray([str(k) for k in range(n)])
    if group_by == NO_GROUPING:
        return ResamplingUnit("rdm", each, NO_GROUPING)
    if group_by in (None, AUTO):
        for name in GROUP_COORDS:
            labels = _labels(stacked, name)
            if labels is not None and np.unique(labels).size >= 2:
                return ResamplingUnit(name, labels, AUTO)
        return ResamplingUnit("rdm", each, AUTO)
    labels = _labels(stacked, group_by)
    if labels is None:
        have = [str(c) for c in stacked.coords if c != "replicate"]
        raise RSABridgeError(f"group by {group_by!r}: the RDMs carry no such replicate coordinate "
                             f"(they have {', '.join(have) or 'none: a single RDM'}); use 'auto' or 'none'")
    if np.unique(labels).size < 2:
        raise RSABridgeError(f"group by {group_by!r}: all {n} RDMs belong to one {group_by}, so there is nothing "
                             "to resample; use 'none' to treat each RDM as a unit")
    return ResamplingUnit(group_by, labels, "chosen")


def group_mean_sem(sims: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over units of each unit's mean, and its standard error.

    Args:
        sims: (rows, n_rdms) per-RDM similarities; labels: (n_rdms,) unit of each RDM.

    Returns:
        mean (rows,), sem (rows,) = std(unit means, ddof=1) / sqrt(n_units) (NaN for one unit).
    """
    sims = np.asarray(sims, dtype=np.float64)
    unique, inverse = np.unique(labels, return_inverse=True)
    onehot = np.zeros((labels.size, unique.size))
    onehot[np.arange(labels.size), inverse] = 1.0
    means = (sims @ onehot) / onehot.sum(axis=0)  # (rows, n_units), one GEMM
    g = unique.size
    sem = means.std(axis=1, ddof=1) / np.sqrt(g) if g > 1 else np.full(sims.shape[0], np.nan)
    return means.mean(axis=1), sem


def group_bootstrap_indices(labels: np.ndarray, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """RDM index sets of a bootstrap over units: draw units with replacement, take all their RDMs.

    The units are drawn exactly as :func:`rsa_bridge.stats.resample.bootstrap_rdms` draws RDMs (so
    with one RDM per unit the index sets are identical). Units of unequal size are balanced: each
    drawn unit contributes ``lcm`` entries (its RDMs repeated equally), so every unit weighs the same.

    Args:
        labels: (n_rdms,) unit of each RDM; n_samples: B; rng: the Generator.

    Returns:
        (B, n_units * k) int64 RDM indices (k = lcm of the unit sizes).
    """
    unique, inverse = np.unique(labels, return_inverse=True)
    members = [np.flatnonzero(inverse == g) for g in range(unique.size)]
    k = int(np.lcm.reduce([m.size for m in members]))
    blocks = np.stack([np.repeat(m, k // m.size) for m in members])  # (n_units, k)
    drawn = bootstrap_rdms(unique.size, n_samples, rng)  # (B, n_units)
    return blocks[drawn].reshape(drawn.shape[0], -1)


def drawn_units(labels: np.ndarray, indices: np.ndarray) -> list[list[str]]:
    """The units behind each row of :func:`group_bootstrap_indices` (for checks against other tools)."""
    unique, inverse = np.unique(labels, return_inverse=True)
    k = indices.shape[1] // unique.size
    return [[str(unique[inverse[row[j * k]]]) for j in range(unique.size)] for row in indices]
