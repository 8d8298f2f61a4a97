"""Bootstrap CIs, permutation p-values and best-layer probabilities for CKA and linear predictivity.

**CKA over stimuli** (as RSA's ``--bootstrap-over stimuli``): a sample draws n stimuli with replacement
(:func:`rsa_bridge.stats.resample.bootstrap_stimuli`, the same generator as RSA); the centred Gram entries of
the drawn stimuli are kept with their multiplicities, without the pairs of a stimulus with its own copy
(:func:`weighted_cka`), so all samples of a layer are two (samples x n) @ (n x n) products.
**Permutation p-value**: neural stimulus labels permuted (``L[p][:, p]``), ``p = (1 + #{null >= observed})
/ (1 + permutations)``, Holm and BH across the layers tested per area. **Best layer**: the share of
bootstrap samples in which a layer has the highest CKA (among the layers of one model).

**Linear predictivity over neuroids**: the per-neuroid scores are resampled with replacement (a new
population of neurons from the same area; refitting per stimulus sample would cost a cross-validation
per sample) and the median is recomputed: CI and best-layer probability. No permutation test.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rsa_bridge.measures.cka import center_gram
from rsa_bridge.stats.bootstrap import percentile_ci
from rsa_bridge.stats.permutation import fdr_bh, holm
from rsa_bridge.stats.resample import bootstrap_stimuli, counts, permutations

#: permutations per batch (each holds one n x n permuted Gram)
PERMUTATION_BATCH = 16


@dataclass
class LayerStats:
    """Per layer of one model (L layers): CI, p-values, best-layer probability; None where not computed."""

    ci_low: np.ndarray | None = None
    ci_high: np.ndarray | None = None
    samples: np.ndarray | None = None  # (n_samples, L)
    p_value: np.ndarray | None = None
    p_holm: np.ndarray | None = None
    p_fdr: np.ndarray | None = None
    p_best: np.ndarray | None = None
    resampled: str = ""


def weighted_cka(kernels: np.ndarray, neural: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(n_samples, L) CKA of each layer Gram with the neural Gram on each resampled stimulus set.

    The Grams are centred once on all stimuli; a sample with stimulus counts ``w`` keeps every Gram entry
    (i, j) of its drawn stimuli with multiplicity ``w_i w_j`` for i != j and ``w_i`` on the diagonal (the
    pairs of a stimulus with its own copy are dropped, as in RSA's bootstrap, which would otherwise add
    perfectly matching entries and bias CKA upwards). The statistic is the Frobenius cosine over those
    entries: ``sum Omega (Kc o Lc) / sqrt(sum Omega Kc^2 sum Omega Lc^2)``, ``Omega = w w^T - diag(w^2) + diag(w)``.

    Args:
        kernels: (L, n, n) layer Grams; neural: (n, n); weights: (n_samples, n) stimulus counts.
    """
    w = np.asarray(weights, dtype=np.float64)
    diag_w = w - w * w

    def total(m: np.ndarray) -> np.ndarray:
        return ((w @ m) * w).sum(axis=1) + diag_w @ np.diag(m)

    lc = center_gram(neural)
    ll = total(lc * lc)
    out = np.empty((w.shape[0], len(kernels)))
    for i, k in enumerate(kernels):
        kc = center_gram(k)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, i] = total(kc * lc) / np.sqrt(total(kc * kc) * ll)
    return out


def p_best(samples: np.ndarray) -> np.ndarray:
    """(L,) share of samples (rows without NaN) in which each column is the largest; a sample in which k columns
    tie for the largest counts 1/k for each (a measure equal for every layer, e.g. CCA saturated at 1, gives 1/L
    each, not 1 to the first layer).

    Example::

        >>> p_best(np.array([[0.1, 0.3], [0.2, 0.1], [1.0, 1.0], [0.0, 0.5]])).tolist()
        [0.375, 0.625]
    """
    ok = np.isfinite(samples).all(axis=1)
    if not ok.any():
        return np.full(samples.shape[1], np.nan)
    s = samples[ok]
    tied = s == s.max(axis=1, keepdims=True)
    return (tied / tied.sum(axis=1, keepdims=True)).sum(axis=0) / ok.sum()


def cka_stats(kernels: np.ndarray, neural: np.ndarray, observed: np.ndarray, *, n_bootstrap: int,
              n_permutations: int, rng: np.random.Generator, level: float = 0.95) -> LayerStats:
    """Bootstrap (over stimuli) and permutation statistics of linear CKA for L layers against one neural Gram."""
    out = LayerStats(resampled="stimuli")
    n = neural.shape[0]
    if n_bootstrap:
        samples = np.empty((n_bootstrap, len(kernels)))
        for start in range(0, n_bootstrap, 256):
            idx = bootstrap_stimuli(n, min(256, n_bootstrap - start), rng)
            samples[start:start + len(idx)] = weighted_cka(kernels, neural, counts(idx, n))
        out.samples = samples
        out.ci_low, out.ci_high = percentile_ci(samples, level)
        out.p_best = p_best(samples)
    if n_permutations:
        kc = np.stack([center_gram(k).ravel() for k in kernels])
        kc /= np.linalg.norm(kc, axis=1, keepdims=True)
        lc = center_gram(neural)
        lc /= np.linalg.norm(lc)
        exceed = np.zeros(len(kernels))
        for start in range(0, n_permutations, PERMUTATION_BATCH):
            perms = permutations(n, min(PERMUTATION_BATCH, n_permutations - start), rng)
            stack = np.stack([lc[np.ix_(p, p)].ravel() for p in perms], axis=1)
            exceed += (kc @ stack >= observed[:, None] - 1e-12).sum(axis=1)
        out.p_value = (1 + exceed) / (1 + n_permutations)
        out.p_holm, out.p_fdr = holm(out.p_value), fdr_bh(out.p_value)
    return out


def neuroid_bootstrap(per_neuroid: np.ndarray, *, n_bootstrap: int, rng: np.random.Generator,
                      level: float = 0.95, scale: float = 1.0) -> LayerStats:
    """Bootstrap over neuroids of the median of (L, t) per-neuroid scores (NaN neuroids dropped), / ``scale``."""
    out = LayerStats(resampled="neuroids")
    if not n_bootstrap:
        return out
    keep = np.isfinite(per_neuroid).all(axis=0)
    values = per_neuroid[:, keep]
    idx = rng.integers(0, values.shape[1], size=(n_bootstrap, values.shape[1]))
    samples = np.stack([np.median(values[:, row], axis=1) for row in idx]) / scale
    out.samples = samples
    out.ci_low, out.ci_high = percentile_ci(samples, level)
    out.p_best = p_best(samples)
    return out
