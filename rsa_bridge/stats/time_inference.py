"""Inference over time bins: cluster permutation tests, cross-temporal RSA and noise ceilings per bin.

For an RDM dataset whose areas have a ``time_bin`` dim (:mod:`rsa_bridge.neural.time_resolved`) and model
RDMs ``(model_layer, stimulus_row, stimulus_col)``, :func:`time_inference` adds to what
:func:`rsa_bridge.stats.time_course.time_course` gives:

- **clusters** (``options.cluster`` set): per layer and area, a one-sided cluster-based permutation test of
  the similarity time course (:mod:`rsa_bridge.stats.clusters`). Which null (``options.test``):

  - ``sign-flip``: the area has independent units (subjects/animals, :mod:`rsa_bridge.stats.grouping`); each
    unit's time course (mean over its RDMs of the similarity per bin) is sign-flipped; statistic: t over units.
  - ``stimulus-permutation``: the model RDM's stimulus labels are permuted, one permutation for all bins;
    statistic: the similarity (mean over the area's RDMs). The only choice for one RDM per bin.
  - ``auto``: ``sign-flip`` when the area has at least :data:`MIN_FLIP_UNITS` units (2^5 = 32 sign vectors, so a
    p below 0.05 is possible), else ``stimulus-permutation``. ``results.nc`` records which ran per area.

  Variables (model_layer, area, time_bin): ``time_statistic``, ``cluster_threshold``, ``cluster_id`` (0: no
  cluster), ``cluster_mass``, ``cluster_p`` (the family-wise p of the bin's cluster; NaN outside clusters).
- **noise ceilings per bin** (``options.ceiling``): Nili lower/upper bounds of each bin's RDMs
  (:func:`rsa_bridge.stats.ceiling.noise_ceiling`, leaving out whole units): ``ceiling_time_lower/upper``
  (area, time_bin); NaN for an area with a single unit (no ceiling across subjects).
- **cross-temporal RSA** (``options.cross_temporal``): ``cross_temporal`` (area, time_bin, time_bin_b):
  similarity of the brain RDM at time t1 with the one at t2. With >= 2 units, the mean over ordered pairs of
  *different* units u != v of sim(RDM_u(t1), RDM_v(t2)) (each unit's mean RDM), so that a unit's own noise
  never meets itself and the diagonal is the between-unit agreement; with one unit, sim(RDM(t1), RDM(t2))
  (diagonal 1). The layer x time matrix is ``similarity_time`` itself.

Example::

    >>> ti = time_inference(layer_rdms, timed_dataset, ["IT"], "spearman",
    ...                     TimeInferenceOptions(cluster=ClusterOptions(0.05, 1000, seed=0)))  # doctest: +SKIP
    >>> ti["cluster_p"].sel(area="IT")                                                          # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from rsa_bridge.compare import compare_vectors
from rsa_bridge.datasets import area_rdms
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.rdm import upper_triangle
from rsa_bridge.stats.clusters import (
    MIN_BINS,
    ClusterOptions,
    ClusterResult,
    permutation_cluster_test,
    sign_flip_cluster_test,
)
from rsa_bridge.stats.grouping import resampling_unit

TIME = "time_bin"
#: units an area needs before ``auto`` picks the sign-flip test
MIN_FLIP_UNITS = 5
#: the cluster tests: name -> what is exchangeable under H0
TESTS = {"auto": f"sign-flip with >= {MIN_FLIP_UNITS} units, else stimulus-permutation",
         "sign-flip": "the sign of each unit's (subject's) similarity time course",
         "stimulus-permutation": "the stimulus labels of the model RDM (one permutation for all bins)"}
CLUSTER_VARIABLES = ("time_statistic", "cluster_threshold", "cluster_id", "cluster_mass", "cluster_p")


@dataclass(frozen=True)
class TimeInferenceOptions:
    """What :func:`time_inference` adds.

    Attributes:
        cluster: the cluster test's threshold/permutations/seed (None: no cluster test).
        test: ``auto``, ``sign-flip`` or ``stimulus-permutation`` (:data:`TESTS`).
        cross_temporal: add the brain time x time matrices.
        ceiling: add the noise ceiling of every bin (areas with >= 2 units).
        group_by: unit of the sign flips and ceilings (:func:`rsa_bridge.stats.grouping.resampling_unit`).
    """

    cluster: ClusterOptions | None = None
    test: str = "auto"
    cross_temporal: bool = False
    ceiling: bool = True
    group_by: str | None = "auto"

    def __post_init__(self) -> None:
        if self.test not in TESTS:
            raise RSABridgeError(f"the cluster test is one of {', '.join(TESTS)}; got {self.test!r}")
        if self.cluster is not None and not isinstance(self.cluster, ClusterOptions):
            raise RSABridgeError("cluster must be a ClusterOptions (rsa_bridge.stats.clusters) or None")

    def attrs(self) -> dict:
        out = {"time_inference_measure": "rsa", "time_inference_test": self.test, "time_inference_cross_temporal": int(self.cross_temporal),
               "time_inference_ceiling": int(self.ceiling)}
        if self.cluster is not None:
            out.update({"cluster_threshold_p": float(self.cluster.threshold_p),
                        "cluster_permutations": int(self.cluster.n_permutations),
                        "cluster_seed": "none (fresh entropy)" if self.cluster.seed is None else int(self.cluster.seed), "cluster_tail": "one-sided (similarity > 0)",
                        "cluster_mass": "sum of the per-bin statistic over the cluster's bins"})
        return out


@dataclass(frozen=True)
class AreaStack:
    """One time-resolved area as vectors: (R, T, m) RDM vectors, its units and labels."""

    vectors: np.ndarray
    unit_name: str
    labels: np.ndarray

    @property
    def n_units(self) -> int:
        return int(np.unique(self.labels).size)

    def weights(self) -> np.ndarray:
        """(R,) weight of each RDM in the mean over units of the unit means (each unit counts once)."""
        _, inverse, sizes = np.unique(self.labels, return_inverse=True, return_counts=True)
        return 1.0 / (sizes.size * sizes[inverse])

    def unit_means(self, values: np.ndarray) -> np.ndarray:
        """(R, ...) per-RDM values -> (U, ...) the mean over each unit's RDMs (units in sorted label order)."""
        unique, inverse = np.unique(self.labels, return_inverse=True)
        onehot = np.zeros((unique.size, self.labels.size))
        onehot[inverse, np.arange(self.labels.size)] = 1.0
        onehot /= onehot.sum(axis=1, keepdims=True)
        return np.tensordot(onehot, values, axes=1)


def area_stack(dataset: xr.Dataset, area: str, ids: list[str], group_by: str | None = "auto") -> AreaStack:
    """The (R, T, m) vectors of a time-resolved area over the stimuli ``ids``, with its resampling unit."""
    if TIME not in dataset[area].dims:
        raise RSABridgeError(f"area {area!r} has no time_bin dimension; time inference needs time-resolved RDMs "
                             "(`rsa-bridge neural rdm --time-resolved`)")
    n_bins = dataset.sizes[TIME]
    if n_bins < MIN_BINS:
        raise RSABridgeError(f"area {area!r} has {n_bins} time bin(s); inference over time needs at least {MIN_BINS}")
    unit = resampling_unit(dataset[area].isel({TIME: 0}), group_by)
    vectors = np.stack([upper_triangle(area_rdms(dataset.isel({TIME: k}), area).sel(stimulus_row=ids, stimulus_col=ids))
                        for k in range(n_bins)], axis=1)  # (R, T, m)
    bad = np.flatnonzero(~np.isfinite(vectors).all(axis=(0, 2)))
    if bad.size:
        raise RSABridgeError(f"area {area!r}: time bin(s) {bad.tolist()[:5]} hold NaN or inf dissimilarities; drop "
                             "those bins (dataset.isel(time_bin=...)) before inference over time")
    flat = vectors.reshape(-1, vectors.shape[-1])
    constant = np.flatnonzero((np.ptp(flat, axis=1) == 0).reshape(vectors.shape[:2]).any(axis=0))
    if constant.size:
        raise RSABridgeError(f"area {area!r}: an RDM of time bin(s) {constant.tolist()[:5]} is constant (all "
                             "dissimilarities equal), so no similarity is defined there; drop those bins")
    return AreaStack(vectors, unit.name, unit.labels)


def choose_test(test: str, stack: AreaStack, area: str) -> str:
    """The cluster test that runs on an area (``auto`` resolved); a sign flip of one unit is refused."""
    if test == "auto":
        return "sign-flip" if stack.n_units >= MIN_FLIP_UNITS else "stimulus-permutation"
    if test == "sign-flip" and stack.n_units < 2:
        raise RSABridgeError(f"area {area!r} has a single {stack.unit_name if stack.unit_name != 'rdm' else 'RDM'} "
                             "per time bin: a sign-flip test needs at least 2 subjects; use --cluster-test "
                             "stimulus-permutation")
    return test


def cluster_test(model_vec: np.ndarray, stack: AreaStack, n: int, method: str, test: str,
                 options: ClusterOptions) -> ClusterResult:
    """The cluster test of one model RDM vector (m,) against one area's time course."""
    if test == "sign-flip":
        r, t, m = stack.vectors.shape
        per_rdm = compare_vectors(model_vec, stack.vectors.reshape(r * t, m), method).reshape(r, t)
        return sign_flip_cluster_test(stack.unit_means(per_rdm), options, unit=stack.unit_name)
    return permutation_cluster_test(model_vec, stack.vectors, n, method, options, weights=stack.weights())


def ceiling_per_bin(stack: AreaStack, method: str) -> tuple[np.ndarray, np.ndarray]:
    """(T,) lower and upper Nili bounds of each bin (NaN with fewer than 2 units)."""
    from rsa_bridge.stats.ceiling import noise_ceiling

    n_bins = stack.vectors.shape[1]
    if stack.n_units < 2:
        return np.full(n_bins, np.nan), np.full(n_bins, np.nan)
    bounds = [noise_ceiling(stack.vectors[:, k], method, groups=stack.labels) for k in range(n_bins)]
    return np.array([b.lower for b in bounds]), np.array([b.upper for b in bounds])


def cross_temporal(stack: AreaStack, method: str) -> np.ndarray:
    """(T, T) brain time x time similarity: between different units when there are >= 2, else within the one."""
    means = stack.unit_means(stack.vectors)  # (U, T, m)
    u, t, m = means.shape
    sims = compare_vectors(means.reshape(u * t, m), means.reshape(u * t, m), method).reshape(u, t, u, t)
    if u == 1:
        return sims[0, :, 0, :]
    off = ~np.eye(u, dtype=bool)
    return sims.transpose(0, 2, 1, 3)[off].mean(axis=0)


def time_inference(model_rdms: xr.DataArray, dataset: xr.Dataset, area_names, method: str,
                   options: TimeInferenceOptions, progress: bool | None = False) -> xr.Dataset:
    """Cluster tests, per-bin noise ceilings and cross-temporal matrices of time-resolved areas.

    Args:
        model_rdms: (model_layer, stimulus_row, stimulus_col) model RDMs (any first dim name).
        dataset: an RDM dataset whose areas have a ``time_bin`` dim (>= 3 bins); area_names: which areas
            (None: every time-resolved one).
        method: comparison method; options: :class:`TimeInferenceOptions`; progress: a bar over layers.

    Returns:
        Dataset with the variables of the module docstring, coords ``model_layer``, ``area``, ``time_bin``
        (and ``time_bin_b``), attrs: the options and, per area, ``cluster_test_<area>`` and
        ``cross_temporal_<area>`` (what ran).
    """
    from rsa_bridge.progress import progress_bar

    row = model_rdms.dims[0]
    labels = [str(v) for v in model_rdms[row].values]
    ids = [str(s) for s in model_rdms["stimulus_row"].values]
    names = [a for a in (area_names or list(dataset.data_vars)) if TIME in dataset[a].dims]
    if not names:
        raise RSABridgeError("no area of this dataset has a time_bin dimension; build one with "
                             "`rsa-bridge neural rdm --time-resolved`")
    stacks = {a: area_stack(dataset, a, ids, options.group_by) for a in names}
    tests = {a: choose_test(options.test, stacks[a], a) for a in names} if options.cluster else {}
    n_bins = dataset.sizes[TIME]
    model_vec = upper_triangle(model_rdms)
    out = xr.Dataset(coords={"model_layer": labels, "area": names, TIME: np.arange(n_bins)})
    attrs = options.attrs()
    if options.cluster is not None:
        grids = {v: np.full((len(labels), len(names), n_bins), np.nan) for v in CLUSTER_VARIABLES}
        for i in progress_bar(range(len(labels)), desc="cluster tests (layers)", progress=progress):
            for j, area in enumerate(names):
                res = cluster_test(model_vec[i], stacks[area], len(ids), method, tests[area], options.cluster)
                for name, value in zip(CLUSTER_VARIABLES, (res.statistic, res.threshold, res.labels,
                                                           res.bin_mass(), res.bin_p())):
                    grids[name][i, j] = value
                attrs[f"cluster_test_{area}"] = res.scheme
        stat = {a: ("one-sample t over " + stacks[a].unit_name + "s" if tests[a] == "sign-flip"
                    else f"{method} similarity") for a in names}
        for name in CLUSTER_VARIABLES:
            out[name] = (("model_layer", "area", TIME), grids[name])
        out["time_statistic"].attrs = {"long_name": "per-bin statistic of the cluster test: "
                                                    + "; ".join(f"{a}: {s}" for a, s in stat.items())}
        out["cluster_p"].attrs = {"long_name": "family-wise p-value (max cluster mass) of the bin's cluster",
                                  "units": "1", "measure": "rsa", "method": method,
                                  "permutations": int(options.cluster.n_permutations),
                                  "threshold_p": float(options.cluster.threshold_p)}
    if options.ceiling:
        bounds = [ceiling_per_bin(stacks[a], method) for a in names]
        note = {"long_name": f"Nili noise ceiling of each time bin ({method}; leave one unit out); NaN: one unit",
                "measure": "rsa", "method": method}
        out["ceiling_time_lower"] = (("area", TIME), np.stack([b[0] for b in bounds]), note)
        out["ceiling_time_upper"] = (("area", TIME), np.stack([b[1] for b in bounds]), note)
    if options.cross_temporal:
        out["cross_temporal"] = (("area", TIME, "time_bin_b"), np.stack([cross_temporal(stacks[a], method)
                                                                         for a in names]),
                                 {"long_name": f"{method} similarity of the brain RDMs at two time bins",
                                  "measure": "rsa", "method": method})
        out = out.assign_coords(time_bin_b=np.arange(n_bins))
        for a in names:
            attrs[f"cross_temporal_{a}"] = ("mean over pairs of different " + stacks[a].unit_name + "s"
                                            if stacks[a].n_units > 1 else "within the single RDM (diagonal 1)")
    out.attrs = attrs
    return out


def check_time_inference(datasets, options: TimeInferenceOptions | None) -> None:
    """Refuse, before any model runs, what :func:`time_inference` would refuse on these time-resolved datasets.

    Args:
        datasets: ``[(time-resolved RDM Dataset or None, [areas])]`` of the job (None: not time-resolved).
        options: the job's time inference (None: nothing to check).
    """
    if options is None:
        return
    timed = [(ds, [a for a in (areas or list(ds.data_vars)) if TIME in ds[a].dims]) for ds, areas in datasets
             if ds is not None]
    if not any(areas for _, areas in timed):
        raise RSABridgeError("--cluster-threshold / --cross-temporal / --time-ceiling need a time-resolved area "
                             "(RDMs with a time_bin dim, `rsa-bridge neural rdm --time-resolved`); these areas have none")
    for ds, areas in timed:
        ids = [str(s) for s in ds["stimulus_row"].values]
        for area in areas:
            stack = area_stack(ds, area, ids, options.group_by)
            if options.cluster is not None:
                choose_test(options.test, stack, area)


def with_inference(course: xr.Dataset, model_rdms: xr.DataArray, dataset: xr.Dataset, method: str,
                   options: TimeInferenceOptions, progress: bool | None = False) -> xr.Dataset:
    """A :func:`rsa_bridge.stats.time_course.time_course` result with :func:`time_inference` of its areas merged in."""
    found = time_inference(model_rdms, dataset, [str(a) for a in course["area"].values], method, options, progress)
    merged = course.merge(found.reindex(model_layer=course["model_layer"].values), combine_attrs="override")
    merged.attrs = {**course.attrs, **found.attrs}
    return merged
