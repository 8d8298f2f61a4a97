"""Time-resolved RSA: every model layer against every time bin of an area, with bootstrap CIs and peak latency.

An area whose RDMs have a ``time_bin`` dim (see :mod:`rsa_bridge.neural.time_resolved`) is scored bin by
bin: similarity(layer, bin) = mean over the area's units (subjects, or RDMs; :mod:`.grouping`) of
sim(layer RDM, area RDM of that bin). The **peak latency** of a layer is the centre (ms) of the bin
where its similarity is largest.

Uncertainty: a bootstrap over stimuli (rsatoolbox's ``eval_bootstrap_pattern`` definition, as in
:mod:`.bootstrap`) with the **same** stimulus samples for every bin and layer, so that each sample is a
whole time course: the CI of a bin is the percentile interval of that bin's samples, and the CI of a
peak latency is the percentile interval of the per-sample peak latencies (argmax over bins of each
sample's time course). The Generator is seeded separately (``seed``), so adding a time dimension never
changes the draws of the main bootstrap.

In ``compare`` the main table scores the **time-averaged** RDM of such an area (the mean of its RDMs
over bins, :func:`time_averaged`); ``results.nc`` gains ``similarity_time`` (model_layer, area,
time_bin) and ``peak_latency`` (model_layer, area) with their CIs. Peers: MNE-RSA, rsatoolbox
``calc_rdm_movie`` + ``eval_fixed`` per time point (no peak-latency CI there).
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from rsa_bridge.compare import compare_vectors
from rsa_bridge.datasets import area_rdms, areas as dataset_areas
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.rdm import upper_triangle
from rsa_bridge.stats.bootstrap import bootstrap_similarity, percentile_ci
from rsa_bridge.stats.grouping import group_mean_sem, resampling_unit
from rsa_bridge.stats.resample import as_generator
from rsa_bridge.stats.run_options import BootstrapOptions

TIME = "time_bin"
TIME_COORDS = ("time_bin_start", "time_bin_end", "time_bin_center")


def timed_areas(dataset: xr.Dataset) -> list[str]:
    """The areas of an RDM dataset whose RDMs have a ``time_bin`` dim."""
    return [a for a in dataset_areas(dataset) if TIME in dataset[a].dims]


def time_averaged(dataset: xr.Dataset) -> xr.Dataset:
    """The dataset with each time-resolved area replaced by the mean of its RDMs over time bins."""
    timed = timed_areas(dataset)
    if not timed:
        return dataset
    out = dataset.copy()
    for area in timed:
        attrs = dict(dataset[area].attrs)
        attrs["time"] = f"mean of the {dataset.sizes[TIME]} time-resolved RDMs"
        out[area] = dataset[area].mean(TIME).assign_attrs(attrs)
    if not any(TIME in v.dims for v in out.data_vars.values()):
        out = out.drop_vars([c for c in (TIME, *TIME_COORDS) if c in out.coords])
    return out


def _centers(dataset: xr.Dataset) -> np.ndarray:
    if "time_bin_center" in dataset.coords:
        return np.asarray(dataset["time_bin_center"].values, dtype=float)
    if "time_bin_start" in dataset.coords and "time_bin_end" in dataset.coords:
        return (np.asarray(dataset["time_bin_start"].values, float) + np.asarray(dataset["time_bin_end"].values, float)) / 2
    return np.arange(dataset.sizes[TIME], dtype=float)


def peak_latency(similarity: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Centre (ms) of the bin of largest similarity along the last axis (NaN where all bins are NaN)."""
    sim = np.asarray(similarity, dtype=float)
    finite = np.isfinite(sim).any(axis=-1)
    idx = np.argmax(np.where(np.isfinite(sim), sim, -np.inf), axis=-1)
    return np.where(finite, np.asarray(centers)[idx], np.nan)


def time_course(model_rdms: xr.DataArray, dataset: xr.Dataset, area_names=None, method: str = "spearman", *,
                n_bootstrap: int = 0, seed=0, level: float = 0.95, group_by: str | None = "auto",
                progress: bool | None = False, scheme: str = "auto") -> xr.Dataset:
    """Similarity of every model RDM with every time bin of the time-resolved areas.

    Args:
        model_rdms: (model_layer, stimulus_row, stimulus_col) model RDMs (any first dim name).
        dataset: an RDM dataset with ``time_bin`` areas; area_names: which areas (default: all timed ones;
            areas without ``time_bin`` are skipped).
        method: comparison method; n_bootstrap: stimulus bootstrap samples (0: no CIs);
        seed: int or Generator of the bootstrap; level: CI level; group_by: unit of the mean.
        scheme: the bootstrap's stimulus scheme (``auto``, ``exact``, ``subset``; chosen by
            :func:`rsa_bridge.stats.plan.choose_scheme`, recorded as ``time_course_bootstrap_scheme``).

    Returns:
        Dataset with ``similarity_time`` (model_layer, area, time_bin), ``peak_latency`` (model_layer,
        area) in ms, and with a bootstrap ``similarity_time_ci_low/high``, ``peak_latency_ci_low/high``
        and ``peak_latency_bootstrap`` (bootstrap_sample, model_layer, area); coords time_bin_start,
        time_bin_end, time_bin_center (ms).

    Example:
        >>> tc = time_course(layer_rdms, load_dataset("v4_it_timed.nc"), n_bootstrap=200)   # doctest: +SKIP
        >>> tc["peak_latency"].sel(area="IT")                                                 # doctest: +SKIP
    """
    row = model_rdms.dims[0]
    labels = [str(v) for v in model_rdms[row].values]
    timed = [a for a in (area_names or timed_areas(dataset)) if TIME in dataset[a].dims]
    if not timed:
        raise RSABridgeError("no area of this dataset has a time_bin dimension; build one with "
                             "`rsa-bridge neural rdm --time-resolved`")
    n_bins = dataset.sizes[TIME]
    centers = _centers(dataset)
    ids = [str(s) for s in model_rdms["stimulus_row"].values]
    model_vec = upper_triangle(model_rdms)
    sim = np.full((len(labels), len(timed), n_bins), np.nan)
    neural = {}
    for j, area in enumerate(timed):
        unit = resampling_unit(dataset[area].isel({TIME: 0}), group_by)
        for k in range(n_bins):
            rdms = area_rdms(dataset.isel({TIME: k}), area).sel(stimulus_row=ids, stimulus_col=ids)
            sim[:, j, k] = group_mean_sem(compare_vectors(model_vec, upper_triangle(rdms), method), unit.labels)[0]
            neural[f"{area}|{k}"] = rdms
    coords = {"model_layer": labels, "area": timed, TIME: np.arange(n_bins), "time_bin_center": (TIME, centers)}
    for c in ("time_bin_start", "time_bin_end"):
        if c in dataset.coords:
            coords[c] = (TIME, np.asarray(dataset[c].values, dtype=float))
    out = xr.Dataset({"similarity_time": (("model_layer", "area", TIME), sim,
                                          {"long_name": f"{method} similarity per time bin", "units": "1"}),
                      "peak_latency": (("model_layer", "area"), peak_latency(sim, centers),
                                       {"long_name": "centre of the time bin of largest similarity", "units": "ms"})},
                     coords=coords)
    if n_bootstrap:
        boot = bootstrap_similarity(model_rdms, neural, method=method, n_samples=n_bootstrap, over="stimuli",
                                    seed=as_generator(seed),
                                    options=BootstrapOptions(progress=progress, scheme=scheme))
        samples = boot.samples.reshape(boot.samples.shape[0], len(labels), len(timed), n_bins)
        low, high = percentile_ci(samples, level)
        lat = peak_latency(samples, centers)  # (B, L, A)
        lat_low, lat_high = percentile_ci(lat, level)
        ci = {"long_name": f"{100 * level:g}% percentile bootstrap CI over stimuli ({n_bootstrap} samples)"}
        out["similarity_time_ci_low"] = (("model_layer", "area", TIME), low, ci)
        out["similarity_time_ci_high"] = (("model_layer", "area", TIME), high, ci)
        out["peak_latency_ci_low"] = (("model_layer", "area"), lat_low, {**ci, "units": "ms"})
        out["peak_latency_ci_high"] = (("model_layer", "area"), lat_high, {**ci, "units": "ms"})
        out["peak_latency_bootstrap"] = (("bootstrap_sample", "model_layer", "area"), lat, {"units": "ms"})
    out.attrs = {"time_course_method": method, "time_course_bootstrap": int(n_bootstrap),
                 "time_course_seed": seed if isinstance(seed, (int, np.integer)) else "generator",
                 "time_course_bootstrap_over": "stimuli (the same samples for every bin)",
                 "time_units": "ms after stimulus onset"}
    if n_bootstrap:
        out.attrs["time_course_bootstrap_executor"] = boot.executor  # serial, or dask batches (stats.executors)
        out.attrs["time_course_bootstrap_scheme"] = boot.scheme["bootstrap_scheme"]  # the planner's choice
    return out
