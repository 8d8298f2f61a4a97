"""Firing rates -> RDMs: from repeat-averaged rates, or cross-validated across repetitions.

Repeat-averaged metrics are the main job's (:data:`rsa_bridge.rdm.METRICS`: ``correlation``,
``euclidean``, ``sqeuclidean``, ``cosine``) applied to each stimulus's mean over its repetitions
(NaN-aware when observations are missing). Averaging does not remove noise from a distance:
``E||mean_i - mean_j||^2 = ||mu_i - mu_j||^2 + tr(noise_i)/r_i + tr(noise_j)/r_j``. The
cross-validated metrics below are unbiased by that noise, so their expected value is 0 for two
stimuli with the same true response (estimates can be negative).

Folds (leave one repetition out): presentations of each stimulus are ranked by ``repetition``;
fold k tests rank k and trains on the mean of that stimulus's other presentations. A pair (i, j) is
scored in every fold where both have rank k, and its dissimilarity is the mean over those folds (all
of them, never only the last). With balanced repetitions this is rsatoolbox's leave-one-out
scheme with ``cv_descriptor='repetition'``. Unequal repetition counts only change which folds a pair
enters. ``a`` is the training mean and ``b`` the test pattern of a fold, over p features:

================ ============================================================ ===========================
name             d(i, j) per fold                                             rsatoolbox
================ ============================================================ ===========================
sqeuclidean_cv   (a_i - a_j) . (b_i - b_j)                                    ``crossnobis`` x p
crossnobis       (a_i - a_j) . (b_i - b_j) / p (identity noise precision)     ``crossnobis``
poisson_kl_cv    (a'_i - a'_j) . (log b'_i - log b'_j) / p, with              ``poisson_cv`` (but it
                 x' = (x + prior_lambda * prior_weight) / (1 + prior_weight)  keeps only the last fold)
================ ============================================================ ===========================

With missing observations (NaN, e.g. a unit lost for a block of trials) each feature is averaged
over the folds where it was observed for both stimuli, then the features are summed.
Features are neuroids, or neuroid x time bin (flattened) for time-binned rates.

Where an RDM dataset came from (:func:`record_source`, used by ``rsa-bridge neural rdm``): the rates file's
name and SHA-256 and the metric are kept in the dataset's attrs (``source_rates``, ``source_rates_sha256``,
``metric``), so ``compare --responses FILE`` can be matched to the rates behind an RDM.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import xarray as xr

from rsa_bridge.errors import RSABridgeError, preview
from rsa_bridge.finite import finite_mean
from rsa_bridge.neural import schema as S
from rsa_bridge.provenance import clean_attrs, package_version
from rsa_bridge.rdm import METRICS, compute_rdm, rdm_dataarray
from rsa_bridge.registry import resolve_name, unknown_name


def grouped(rates: xr.DataArray, time: str = "flatten") -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """Presentations as a float64 matrix with stimulus codes.

    Returns:
        values (n_presentations, n_features) (NaN = missing), codes (n_presentations,) index into
        ids, ids (stimulus ids in order of first appearance), rank (n_presentations,) of each
        presentation among its stimulus's presentations, ordered by ``repetition``.
    """
    S.validate_rates(rates)
    flat = S.flat_coords(rates).transpose(S.PRESENTATION, S.NEUROID, ...)
    values = np.asarray(flat.values, dtype=np.float64)
    if values.ndim == 3:
        if time == "mean":
            values = finite_mean(values, axis=2) if np.isnan(values).any() else values.mean(axis=2)
        elif time == "flatten":
            values = values.reshape(values.shape[0], -1)
        else:
            raise RSABridgeError(f"time={time!r}: use 'flatten' (neuroid x time bin features) or 'mean'")
    stim = np.asarray([str(s) for s in flat[S.STIMULUS_ID].values])
    ids, first, codes = np.unique(stim, return_index=True, return_inverse=True)
    order = np.argsort(first)
    remap = np.empty_like(order)
    remap[order] = np.arange(order.size)
    codes = remap[codes]
    ids = [str(s) for s in ids[order]]
    reps = np.asarray(flat[S.REPETITION].values, dtype=np.int64)
    return values, codes, ids, rank_within(codes, reps)


def rank_within(codes: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Rank (0-based) of each element among those with the same code, ordered by ``keys``."""
    by = np.lexsort((keys, codes))
    rank = np.empty(codes.size, dtype=np.int64)
    n = int(codes.max()) + 1 if codes.size else 0
    starts = np.searchsorted(codes[by], np.arange(n))
    rank[by] = np.arange(codes.size) - starts[codes[by]]
    return rank


def group_sums(values: np.ndarray, codes: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per stimulus: sum of observed values and number of observations, both (n_stimuli, n_features)."""
    from scipy import sparse

    valid = ~np.isnan(values)
    indicator = sparse.csr_matrix((np.ones(codes.size), (codes, np.arange(codes.size))), shape=(n, codes.size))
    sums = np.asarray(indicator @ np.where(valid, values, 0.0))
    counts = np.asarray(indicator @ valid.astype(np.float64))
    return sums, counts


def repeat_average(rates: xr.DataArray, time: str = "flatten") -> tuple[np.ndarray, list[str]]:
    """Mean over repetitions: (n_stimuli, n_features) float64 and the stimulus ids (first-appearance order).

    Raises:
        RSABridgeError: a neuroid never observed for some stimulus (its mean is undefined).
    """
    values, codes, ids, _ = grouped(rates, time)
    sums, counts = group_sums(values, codes, len(ids))
    if (counts == 0).any():
        i, f = np.argwhere(counts == 0)[0]
        raise RSABridgeError(f"feature {int(f)} has no observation for stimulus {ids[i]!r}; "
                             "drop that neuroid or stimulus")
    return sums / counts, ids


def _cv_terms(values, codes, rank, n, transform_train, transform_test):
    """Per fold k: (stimuli in fold, training means, test patterns, observed mask)."""
    sums, counts = group_sums(values, codes, n)
    for k in range(int(rank.max()) + 1):
        sel = np.flatnonzero(rank == k)
        stim = codes[sel]
        test = values[sel]
        observed = ~np.isnan(test)
        train_n = counts[stim] - observed
        observed &= train_n > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            train = (sums[stim] - np.where(observed, test, 0.0)) / train_n
        yield stim, transform_train(train), transform_test(test), observed


def _cv_distance(values, codes, rank, n, transform_train=lambda a: a, transform_test=lambda b: b) -> np.ndarray:
    """Mean over folds of (a_i - a_j) . (b_i - b_j), summed over features; see the module docstring."""
    counts = np.bincount(codes, minlength=n)
    if counts.min() < 2:
        bad = [str(k) for k in np.flatnonzero(counts < 2)]
        raise RSABridgeError(f"cross-validated distances need at least 2 repetitions of every stimulus; "
                             f"{len(bad)} stimuli have one (indices {preview(bad)})")
    missing = np.isnan(values).any()
    if not missing:
        total = np.zeros((n, n))
        n_folds = np.zeros((n, n))
        for stim, a, b, _ in _cv_terms(values, codes, rank, n, transform_train, transform_test):
            kernel = a @ b.T
            diag = np.diag(kernel)
            d = diag[:, None] + diag[None, :] - kernel - kernel.T
            total[np.ix_(stim, stim)] += d
            n_folds[np.ix_(stim, stim)] += 1.0
        return total / n_folds
    return _cv_distance_missing(values, codes, rank, n, transform_train, transform_test)


def _cv_distance_missing(values, codes, rank, n, transform_train, transform_test) -> np.ndarray:
    """The missing-data case: per feature, the fold mean over folds observed for both stimuli.

    With w = observed (0/1), A = a w, B = b w, P = a b w laid out as (feature, stimulus, fold):
    sum_k w_ik w_jk (a_ik - a_jk)(b_ik - b_jk) = (P W' + W P' - A B' - B A')_ij and the number of
    folds is (W W')_ij — batched matrix products, no loop over folds or pairs.
    """
    n_feat = values.shape[1]
    n_folds = int(rank.max()) + 1
    sums, counts = group_sums(values, codes, n)
    test = np.full((n, n_folds, n_feat), np.nan)
    test[codes, rank] = values
    observed = ~np.isnan(test)
    train_n = counts[:, None, :] - observed
    observed &= train_n > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        train = (sums[:, None, :] - np.where(observed, test, 0.0)) / np.maximum(train_n, 1.0)
        a = np.moveaxis(np.where(observed, transform_train(train), 0.0), 2, 0)  # (feature, stimulus, fold)
        b = np.moveaxis(np.where(observed, transform_test(test), 0.0), 2, 0)
    w = np.moveaxis(observed, 2, 0).astype(np.float64)
    p = a * b
    out = np.zeros((n, n))
    off = ~np.eye(n, dtype=bool)
    step = max(1, (8 * 1024 * 1024) // (n * n))  # features per chunk: bounds memory to ~64 MiB per array
    for lo in range(0, n_feat, step):
        f = slice(lo, min(lo + step, n_feat))
        t = lambda x: np.swapaxes(x, 1, 2)  # noqa: E731
        total = p[f] @ t(w[f]) + w[f] @ t(p[f]) - a[f] @ t(b[f]) - b[f] @ t(a[f])
        folds = w[f] @ t(w[f])
        lacking = ((folds == 0) & off).any(axis=(1, 2))
        if lacking.any():
            raise RSABridgeError(
                f"{int(lacking.sum())} features are never observed in a common fold for some stimulus pair "
                f"(feature indices {preview([str(lo + k) for k in np.flatnonzero(lacking)])}); drop those "
                "neuroids or use a repeat-averaged metric")
        out += (total / np.maximum(folds, 1.0)).sum(axis=0)
    return out


def _sqeuclidean_cv(values, codes, rank, n, **_):
    return _cv_distance(values, codes, rank, n)


def _crossnobis(values, codes, rank, n, **_):
    return _cv_distance(values, codes, rank, n) / values.shape[1]


def _poisson_kl_cv(values, codes, rank, n, prior_lambda: float = 1.0, prior_weight: float = 0.1, **_):
    if np.nanmin(values) < 0:
        raise RSABridgeError("poisson_kl_cv needs non-negative spike counts or rates; the data have negative values")
    def shrink(x):
        return (x + prior_lambda * prior_weight) / (1.0 + prior_weight)

    return _cv_distance(values, codes, rank, n, shrink, lambda b: np.log(shrink(b))) / values.shape[1]


#: cross-validated metric name -> function (values, codes, rank, n_stimuli, **options) -> (n, n)
CV_METRICS: dict[str, Callable[..., np.ndarray]] = {
    "sqeuclidean_cv": _sqeuclidean_cv,
    "crossnobis": _crossnobis,
    "poisson_kl_cv": _poisson_kl_cv,
}


def all_metrics() -> list[str]:
    """Every metric :func:`rates_to_rdm` accepts."""
    return sorted(METRICS) + sorted(CV_METRICS)


def matrix_from_groups(values: np.ndarray, codes: np.ndarray, rank: np.ndarray, ids: list[str], metric: str,
                       **options) -> np.ndarray:
    """(n, n) float64 dissimilarities from grouped presentations (see :func:`grouped`): symmetric, zero
    diagonal. Repeat-averaged metrics average each stimulus's presentations (NaN-aware) first."""
    n = len(ids)
    if n < 3:
        raise RSABridgeError(f"an RDM needs at least 3 stimuli; got {n}")
    if metric in CV_METRICS:
        counts = np.bincount(codes, minlength=n)
        if counts.min() < 2:
            raise RSABridgeError(f"{metric} is cross-validated over repetitions and needs at least 2 repetitions of "
                                 f"every stimulus; {int((counts < 2).sum())} have one "
                                 f"({preview([ids[k] for k in np.flatnonzero(counts < 2)])})")
        matrix = CV_METRICS[metric](values, codes, rank, n, **options)
    elif metric in METRICS:
        sums, counts = group_sums(values, codes, n)
        if (counts == 0).any():
            i, f = np.argwhere(counts == 0)[0]
            raise RSABridgeError(f"feature {int(f)} has no observation for stimulus {ids[i]!r}; "
                                 "drop that neuroid or stimulus")
        return compute_rdm(sums / counts, metric, stimulus_ids=ids).values
    else:
        raise RSABridgeError(unknown_name("RDM metric", metric, all_metrics()))
    matrix = (matrix + matrix.T) / 2.0
    np.fill_diagonal(matrix, 0.0)
    return matrix


def select_reliable(rates: xr.DataArray, threshold: float, *, n_splits: int = 100, seed: int = 0) -> tuple[xr.DataArray, dict]:
    """The neuroids whose split-half reliability (Spearman-Brown corrected, mean over splits) is at
    least ``threshold``, and provenance attrs that say so."""
    from rsa_bridge.neural.reliability import neuroid_reliability

    rel = neuroid_reliability(rates, n_splits=n_splits, seed=seed)
    keep = np.asarray(rel.values >= threshold)
    if not keep.any():
        raise RSABridgeError(f"no neuroid reaches split-half reliability {threshold} (best "
                             f"{float(np.nanmax(rel.values)):.3f}); lower the threshold")
    dropped = [str(s) for s in rel[S.NEUROID_ID].values[~keep]]
    attrs = {"neuroid_selection": f"split-half reliability >= {threshold} (Spearman-Brown corrected Pearson r across "
                                  f"stimuli, mean of {n_splits} random splits, seed {seed})",
             "selection_threshold": float(threshold), "selection_seed": int(seed), "selection_splits": int(n_splits),
             "n_neuroids_total": int(keep.size), "n_neuroids_selected": int(keep.sum()),
             "excluded_neuroids": ",".join(dropped)}
    return rates.isel({S.NEUROID: np.flatnonzero(keep)}), attrs


def rates_to_rdm(
    rates: xr.DataArray,
    metric: str = "correlation",
    *,
    region: str | None = None,
    reliability_threshold: float | None = None,
    n_splits: int = 100,
    seed: int = 0,
    time: str = "flatten",
    prior_lambda: float = 1.0,
    prior_weight: float = 0.1,
) -> xr.DataArray:
    """The RDM of firing rates.

    Args:
        rates: a firing-rate DataArray (see :mod:`rsa_bridge.neural.schema`).
        metric: a repeat-averaged metric (``correlation``, ``euclidean``, ``sqeuclidean``, ``cosine``)
            or a cross-validated one (``sqeuclidean_cv``, ``crossnobis``, ``poisson_kl_cv``; see the
            module docstring for the exact definitions).
        region: use only the neuroids of this region (an unknown region is an error).
        reliability_threshold: keep only neuroids with split-half reliability at least this (seeded,
            ``n_splits`` splits); the selection is recorded in the RDM's attrs.
        time: ``flatten`` (neuroid x time bin features) or ``mean`` over time bins.
        prior_lambda, prior_weight: the Poisson prior of ``poisson_kl_cv`` (rsatoolbox's defaults).

    Returns:
        (n_stimuli, n_stimuli) RDM DataArray (dims ``stimulus_row``, ``stimulus_col``; stimuli in order
        of first appearance), units those of the metric; attrs hold the provenance.
    """
    metric = resolve_name("RDM metric", metric, all_metrics())
    rates = S.select_region(rates, region)
    attrs: dict = {}
    if reliability_threshold is not None:
        rates, attrs = select_reliable(rates, reliability_threshold, n_splits=n_splits, seed=seed)
    values, codes, ids, rank = grouped(rates, time)
    matrix = matrix_from_groups(values, codes, rank, ids, metric, prior_lambda=prior_lambda,
                                prior_weight=prior_weight)
    rdm = rdm_dataarray(matrix, ids)
    if metric in CV_METRICS:
        if metric == "poisson_kl_cv":
            attrs.update(prior_lambda=float(prior_lambda), prior_weight=float(prior_weight))
        attrs["cross_validation"] = "leave one repetition out, mean over all folds"
        attrs["n_folds"] = int(rank.max()) + 1
    else:
        attrs["aggregation"] = "mean over repetitions, then the metric"
    regions = list(dict.fromkeys(str(r) for r in S.flat_coords(rates)[S.REGION].values))
    counts = np.bincount(codes)
    attrs.update(metric=metric, region=",".join(regions), n_neuroids=int(rates.sizes[S.NEUROID]),
                 repetitions_min=int(counts.min()), repetitions_max=int(counts.max()),
                 units=str(rates.attrs.get("units", S.UNKNOWN)), time=time if S.TIME_BIN in rates.dims else None,
                 source=rates.attrs.get("source_file", rates.attrs.get("name")), rsa_bridge_version=package_version())
    rdm.attrs = clean_attrs(attrs)
    return rdm


def rates_to_rdm_dataset(
    rates: xr.DataArray,
    metric: str = "correlation",
    *,
    regions: Sequence[str] | None = None,
    by: str | None = None,
    name: str | None = None,
    **options,
) -> xr.Dataset:
    """An RDM dataset (:mod:`rsa_bridge.datasets` schema): one variable per region, and with ``by``
    (``animal`` or ``session``) one RDM per value along a dim of that name (for noise ceilings).

    Options go to :func:`rates_to_rdm`. Every RDM covers the same stimuli in the same order.
    """
    from rsa_bridge.rdm import COL, ROW

    flat = S.flat_coords(rates)
    present = list(dict.fromkeys(str(r) for r in flat[S.REGION].values))
    regions = list(regions) if regions else present
    variables = {}
    for region in regions:
        sub = S.select_region(rates, region)
        if by is None:
            variables[region] = rates_to_rdm(sub, metric, **options)
            continue
        if by not in S.flat_coords(sub).coords or S.flat_coords(sub)[by].dims != (S.NEUROID,):
            raise RSABridgeError(f"by={by!r}: the neuroids have no {by!r} coordinate")
        labels = [str(v) for v in S.flat_coords(sub)[by].values]
        rdms = []
        for value in dict.fromkeys(labels):
            part = sub.isel({S.NEUROID: np.flatnonzero(np.asarray(labels) == value)})
            rdms.append(rates_to_rdm(part, metric, **options).expand_dims({by: [value]}))
        ids = [list(r[ROW].values) for r in rdms]
        if any(i != ids[0] for i in ids):
            raise RSABridgeError(f"the {by}s of region {region!r} cover different stimuli; one RDM per {by} "
                                 "needs the same stimuli")
        attrs = dict(rdms[0].attrs)
        attrs["n_neuroids"] = int(sub.sizes[S.NEUROID])
        variables[region] = xr.concat(rdms, dim=by, combine_attrs="override").assign_attrs(attrs)
    ids = [list(v[ROW].values) for v in variables.values()]
    if any(i != ids[0] for i in ids):
        raise RSABridgeError("the regions cover different stimuli; build one dataset per region")
    ds = xr.Dataset(variables, attrs=clean_attrs({"name": name or rates.attrs.get("name"), "metric": metric,
                                                  "source": rates.attrs.get("source_file"),
                                                  "rsa_bridge_version": package_version()}))
    for region in regions:
        ds[region].attrs.setdefault("region", region)
    return ds.transpose(..., ROW, COL)


def record_source(ds: xr.Dataset, source, metric: str) -> xr.Dataset:
    """``ds`` with the rates it was made from recorded in its attrs and in each area's attrs.

    ``source``: the rates file (name and SHA-256 of its bytes are kept; a folder or a shipped name is
    kept by name only, with ``source_rates_sha256 = "n/a (not a file)"``); ``metric``: the RDM metric.

    Example::

        >>> ds = record_source(xr.Dataset(attrs={"name": "toy"}), "no_such_rates.nc", "correlation")
        >>> ds.attrs["source_rates"], ds.attrs["source_rates_sha256"], ds.attrs["metric"]
        ('no_such_rates.nc', 'n/a (not a file)', 'correlation')
    """
    from pathlib import Path

    from rsa_bridge.provenance import file_sha256

    path = Path(str(source))
    record = {"source_rates": path.name, "metric": str(metric),
              "source_rates_sha256": file_sha256(path) if path.is_file() else "n/a (not a file)"}
    out = ds.copy()
    out.attrs.update(record)
    for name in out.data_vars:
        out[name].attrs.update(record)
    return out
