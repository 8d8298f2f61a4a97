"""Per-unit activation histograms over a positive and a negative image set, and their KL divergence.

For every unit (a column of an ``(n_stimuli, n_units)`` matrix) the bin edges are shared by the two
sets: ``bins`` equal-width bins from the unit's minimum to its maximum over *both* sets (a constant
unit gets the edges ``value ± 0.5``, so both histograms put everything in one bin and its divergence
is 0). Bins are half-open ``[e_i, e_{i+1})`` except the last, which is closed, as in
:func:`numpy.histogram`. Probabilities are smoothed with ``epsilon``::

    P(b) = (count(b) / n + epsilon) / (1 + bins * epsilon)

and the unit's divergence is ``KL(P+ || P-) = sum_b P+(b) ln(P+(b) / P-(b))`` in nats (the same value
as ``scipy.stats.entropy(P+, P-)``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rsa_bridge.errors import RSABridgeError

#: default number of equal-width bins per unit
from analyses.unit_attributes.defaults import DEFAULT_BINS, DEFAULT_EPSILON  # noqa: E402,F401


@dataclass(frozen=True)
class UnitDivergence:
    """Histograms and divergences of one layer's units.

    Attributes:
        divergence: (n_units,) KL(P+ || P-) in nats.
        p_positive, p_negative: (n_units, bins) smoothed probabilities (rows sum to 1).
        edges: (n_units, bins + 1) shared bin edges, in activation units.
    """

    divergence: np.ndarray
    p_positive: np.ndarray
    p_negative: np.ndarray
    edges: np.ndarray


def check_bins_epsilon(bins: int, epsilon: float) -> None:
    """RSABridgeError unless ``bins`` >= 2 is whole and ``epsilon`` > 0 is finite."""
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 2:
        raise RSABridgeError(f"bins must be a whole number >= 2, not {bins!r}")
    if not np.isfinite(epsilon) or epsilon <= 0:
        raise RSABridgeError(f"epsilon (histogram smoothing) must be a number > 0, not {epsilon!r}")


def shared_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """(n_units, bins + 1) equal-width edges from each column's min to max (constant: value ± 0.5).

    Args:
        values: (n_stimuli, n_units) activations of both sets together.
        bins: number of bins.
    """
    values = np.asarray(values, dtype=np.float64)
    if not np.isfinite(values).all():
        raise RSABridgeError("activations contain NaN or inf; the unit histograms are undefined")
    lo, hi = values.min(axis=0), values.max(axis=0)
    flat = hi <= lo
    lo = np.where(flat, lo - 0.5, lo)
    hi = np.where(flat, hi + 0.5, hi)
    return np.linspace(lo, hi, bins + 1, axis=1)


def unit_histograms(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(n_units, bins) counts of each column of ``values`` (n_stimuli, n_units) in its own edges.

    Equals ``numpy.histogram(values[:, u], edges[u])[0]`` for every unit whose values lie within its
    edges; values outside are counted in the first or last bin.
    """
    values = np.asarray(values, dtype=np.float64)
    n, n_units = values.shape
    bins = edges.shape[1] - 1
    lo, hi = edges[:, 0], edges[:, -1]
    index = np.floor((values - lo) / (hi - lo) * bins).astype(np.int64)
    np.clip(index, 0, bins - 1, out=index)
    # the formula can be one bin off at an edge through rounding: correct against the edges themselves
    cols = np.broadcast_to(np.arange(n_units), index.shape)
    index -= (values < edges[cols, index]) & (index > 0)
    index += (values >= edges[cols, index + 1]) & (index < bins - 1)
    flat = (cols * bins + index).ravel()
    return np.bincount(flat, minlength=n_units * bins).reshape(n_units, bins)


def smooth(counts: np.ndarray, epsilon: float) -> np.ndarray:
    """Smoothed probabilities ``(counts / n + epsilon) / (1 + bins * epsilon)`` per row (n_units, bins)."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum(axis=1, keepdims=True)
    p = counts / total + epsilon
    return p / p.sum(axis=1, keepdims=True)


def kl_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Row-wise KL(p || q) = sum p ln(p / q) in nats; p, q (..., bins) strictly positive, rows sum to 1."""
    return np.sum(p * (np.log(p) - np.log(q)), axis=-1)


def split_classes(is_positive: np.ndarray, n: int) -> np.ndarray:
    """``is_positive`` as a boolean (n,) array; RSABridgeError if a class is empty or the length is wrong."""
    mask = np.asarray(is_positive)
    if mask.dtype != bool:
        raise RSABridgeError(f"is_positive must be booleans (one per stimulus), not {mask.dtype}")
    if mask.shape != (n,):
        raise RSABridgeError(f"is_positive has shape {mask.shape} for {n} stimuli; give one boolean per stimulus")
    n_pos = int(mask.sum())
    if n_pos == 0 or n_pos == n:
        empty = "positive" if n_pos == 0 else "negative"
        raise RSABridgeError(
            f"the {empty} set is empty ({n_pos} positive, {n - n_pos} negative stimuli); "
            "choose a label and value that split the stimuli into two non-empty sets"
        )
    return mask


def unit_divergence(values: np.ndarray, is_positive: np.ndarray, bins: int = DEFAULT_BINS,
                    epsilon: float = DEFAULT_EPSILON) -> UnitDivergence:
    """Histograms over positives and negatives with shared edges, and KL(P+ || P-) per unit.

    Args:
        values: (n_stimuli, n_units) activations (e.g. spatially pooled conv channels).
        is_positive: (n_stimuli,) booleans; both sets must be non-empty.
        bins: equal-width bins between each unit's min and max over all stimuli.
        epsilon: smoothing added to every bin probability (then renormalised).
    """
    check_bins_epsilon(bins, epsilon)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] == 0:
        raise RSABridgeError(f"activations must be (n_stimuli, n_units) with units; got shape {values.shape}")
    mask = split_classes(is_positive, values.shape[0])
    edges = shared_edges(values, bins)
    p_pos = smooth(unit_histograms(values[mask], edges), epsilon)
    p_neg = smooth(unit_histograms(values[~mask], edges), epsilon)
    return UnitDivergence(kl_divergence(p_pos, p_neg), p_pos, p_neg, edges)


def rank_units(divergence: np.ndarray) -> np.ndarray:
    """Unit indices by decreasing divergence (ties: lower index first)."""
    return np.argsort(-np.asarray(divergence), kind="stable")


def null_prime_divergence(values: np.ndarray, is_positive: np.ndarray, k: int, bins: int, epsilon: float,
                          permutations: int, rng: np.random.Generator) -> np.ndarray:
    """Mean divergence of the top-``k`` units when the labels are shuffled: (permutations,) in nats.

    The largest of many noisy KL estimates is large even without any label signal, and more so in a
    layer with more units; this null (same edges, same set sizes, labels permuted by ``rng``) is the
    baseline that the observed prime-unit divergence is compared with.
    """
    values = np.asarray(values, dtype=np.float64)
    mask = split_classes(is_positive, values.shape[0])
    edges = shared_edges(values, bins)
    out = np.empty(permutations)
    for i in range(permutations):
        shuffled = rng.permutation(mask)
        p_pos = smooth(unit_histograms(values[shuffled], edges), epsilon)
        p_neg = smooth(unit_histograms(values[~shuffled], edges), epsilon)
        divergence = kl_divergence(p_pos, p_neg)
        out[i] = divergence[rank_units(divergence)[:k]].mean()
    return out
