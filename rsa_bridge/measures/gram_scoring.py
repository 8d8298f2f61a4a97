"""Scores, statistics and ceilings of any measure that is a function of the two stimulus Grams.

A :class:`rsa_bridge.measures.Measure` whose ``gram_score`` is set (Procrustes, CCA, SVCCA, PWCCA, mutual
k-NN, CKNNA) is scored here for every layer of a model against one area, from the layer Grams the forward
pass already keeps and the neural Gram ``R R^T`` (R: stimulus x neuroid mean responses); the machinery asks
the record, never its name. ``gram_prepare`` (optional) turns one Gram into what ``gram_score`` reuses
(an eigenbasis), so each Gram is decomposed once per sample, not once per pair.

- **bootstrap over stimuli**: the same index sets as RSA and CKA
  (:func:`rsa_bridge.stats.resample.bootstrap_stimuli`, same generator and seed); each sample is the measure
  of the resampled Grams ``K[i][:, i]`` and ``L[i][:, i]`` (the Grams of the feature matrices with the drawn
  rows, repeats included: what resampling the rows of both feature matrices gives). Percentile CI and the
  best-layer probability ``p_best``. Mutual k-NN and CKNNA refuse (``Measure.resample_refusal``): a repeated
  stimulus is its own nearest neighbour in both representations, which would raise them in every sample.
- **permutation p**: the neural stimulus labels permuted (``L[p][:, p]``), ``p = (1 + #{null >= observed}) /
  (1 + permutations)``, Holm and BH across the layers.
- **ceiling**: mean over split halves of the repetitions of the measure between the two halves' neural Grams
  (as CKA's split-half ceiling; :func:`rsa_bridge.measures.ceilings.half_means`).

Cost: an eigendecomposition (n^3) per Gram per bootstrap sample for the spectral measures; one per
permutation (the layers' are reused).
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.measures.spectral import ConstantRepresentation
from rsa_bridge.measures.stats import LayerStats, p_best
from rsa_bridge.stats.bootstrap import percentile_ci
from rsa_bridge.stats.permutation import fdr_bh, holm
from rsa_bridge.stats.resample import bootstrap_stimuli, permutations


def _prepare(record, gram: np.ndarray) -> Any:
    """What ``record.gram_score`` takes for one Gram; None for a constant representation (its score is NaN)."""
    try:
        return record.gram_prepare(gram) if record.gram_prepare is not None else gram
    except ConstantRepresentation:
        warnings.warn(f"a representation is constant over the stimuli; its {record.name} is NaN", RuntimeWarning,
                      stacklevel=3)
        return None


def _score(record, k, l) -> float:
    if k is None or l is None:
        return float("nan")
    try:
        return float(record.gram_score(k, l))
    except ConstantRepresentation:
        warnings.warn(f"a representation is constant over the stimuli; its {record.name} is NaN", RuntimeWarning,
                      stacklevel=3)
        return float("nan")


def layer_scores(record, kernels: Sequence[np.ndarray], neural: np.ndarray) -> np.ndarray:
    """(L,) the measure of each layer Gram (L, n, n) against the neural Gram (n, n); NaN for a layer (or
    neural data) that is constant over the stimuli, as CKA gives."""
    prep = _prepare(record, neural)
    return np.array([_score(record, _prepare(record, k), prep) for k in kernels], dtype=np.float64)


def gram_stats(record, kernels: np.ndarray, neural: np.ndarray, observed: np.ndarray, *, n_bootstrap: int,
               n_permutations: int, rng: np.random.Generator, level: float = 0.95) -> LayerStats:
    """Bootstrap (over stimuli) and permutation statistics of ``record``'s measure for L layers (see module)."""
    out = LayerStats(resampled="stimuli")
    n = neural.shape[0]
    if n_bootstrap:
        from rsa_bridge.measures import check_resampling

        check_resampling([record.name], n_bootstrap)
        samples = np.empty((n_bootstrap, len(kernels)))
        for s, idx in enumerate(bootstrap_stimuli(n, n_bootstrap, rng)):
            cut = np.ix_(idx, idx)
            samples[s] = layer_scores(record, [k[cut] for k in kernels], neural[cut])
        out.samples = samples
        out.ci_low, out.ci_high = percentile_ci(samples, level)
        out.p_best = p_best(samples)
    if n_permutations:
        prepared = [_prepare(record, k) for k in kernels]
        exceed = np.zeros(len(kernels))
        for p in permutations(n, n_permutations, rng):
            null = _prepare(record, neural[np.ix_(p, p)])
            exceed += np.array([_score(record, k, null) for k in prepared]) >= observed - 1e-12
        out.p_value = (1 + exceed) / (1 + n_permutations)
        out.p_holm, out.p_fdr = holm(out.p_value), fdr_bh(out.p_value)
    return out


def neural_gram(responses: xr.DataArray) -> np.ndarray:
    """(n, n) ``R R^T`` of the mean responses (stimulus x neuroid); RSABridgeError on NaN."""
    values = np.asarray(responses.values, dtype=np.float64)
    if not np.isfinite(values).all():
        raise RSABridgeError("neural responses contain NaN (a stimulus without presentations?); the Gram measures "
                             "need all")
    return values @ values.T


def gram_ceiling(record, rates: xr.DataArray, n_splits: int = 10, seed: int | np.random.Generator = 0,
                 stimulus_ids: Sequence[str] | None = None) -> float:
    """Mean over split halves of the measure between the two halves' neural Grams."""
    from rsa_bridge.measures.ceilings import half_means

    values = []
    for a, b in half_means(rates, n_splits, seed, stimulus_ids):
        if np.isnan(a).any() or np.isnan(b).any():
            raise RSABridgeError(f"a half has no presentation of some stimulus or a NaN response; the {record.name} "
                                 "ceiling needs every stimulus in both halves")
        values.append(_score(record, _prepare(record, a @ a.T), _prepare(record, b @ b.T)))
    return float(np.mean(values))


def score_gram_measure(record, grams: np.ndarray, responses: xr.DataArray, rates: xr.DataArray,
                       ids: list[str], options, *, stats: dict) -> tuple[np.ndarray, LayerStats, float]:
    """Score, statistics and ceiling of one Gram measure for every layer against one area.

    ``stats``: ``n_bootstrap``, ``n_permutations``, ``rng``, ``level``; ``options``: the run's
    :class:`rsa_bridge.measures.scoring.MeasureOptions` (``ceiling_splits``, ``fold_seed`` and the settings the
    record reads, e.g. ``shape_alpha``: :meth:`rsa_bridge.measures.Measure.bound`)."""
    record = record.bound(options)
    neural = neural_gram(responses)
    score = layer_scores(record, grams, neural)
    st = gram_stats(record, grams, neural, score, **stats)
    ceiling = gram_ceiling(record, rates, options.ceiling_splits, options.fold_seed, stimulus_ids=ids)
    return score, st, ceiling
