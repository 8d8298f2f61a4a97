"""Index sets for resampling: bootstrap over stimuli, over RDMs (subjects/sessions/animals), permutations.

Every function takes a ``numpy.random.Generator`` (or a seed for :func:`as_generator`); there is no
global random state, so the same seed gives the same index sets, bit for bit.

A stimulus bootstrap sample is a row of ``n`` indices drawn with replacement and sorted (rsatoolbox's
``subsample_pattern`` sorts them too). In the resampled RDM a stimulus drawn twice appears twice;
the pair of a stimulus with its own copy has a dissimilarity of exactly 0 that says nothing about the
representation, so it is **dropped** (rsatoolbox marks it NaN and excludes it). What remains is the
original pair (i, j), i < j, repeated c_i * c_j times, where c_i counts how often stimulus i was drawn:
:func:`pair_weights` gives these multiplicities, which is all the batched statistics need.
"""
from __future__ import annotations

import numpy as np

from rsa_bridge.errors import RSABridgeError

Seed = int | np.random.Generator | None


def as_generator(seed: Seed) -> np.random.Generator:
    """A ``numpy.random.Generator``: passed through, or ``numpy.random.default_rng(seed)``."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0):
        raise RSABridgeError(f"seed must be a non-negative integer or a numpy Generator; got {seed!r}")
    return np.random.default_rng(seed)


def _check_count(value: int, what: str, minimum: int = 1) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise RSABridgeError(f"{what} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def bootstrap_stimuli(n_stimuli: int, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Stimulus bootstrap index sets: (n_samples, n_stimuli) int64, each row drawn with replacement, sorted."""
    n_stimuli = _check_count(n_stimuli, "the number of stimuli", 3)
    n_samples = _check_count(n_samples, "the number of bootstrap samples")
    return np.sort(rng.integers(0, n_stimuli, size=(n_samples, n_stimuli)), axis=1)


def bootstrap_rdms(n_rdms: int, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """RDM (subject/session) bootstrap index sets: (n_samples, n_rdms) int64, with replacement, sorted."""
    n_rdms = _check_count(n_rdms, "the number of RDMs")
    n_samples = _check_count(n_samples, "the number of bootstrap samples")
    return np.sort(rng.integers(0, n_rdms, size=(n_samples, n_rdms)), axis=1)


def permutations(n_stimuli: int, n_permutations: int, rng: np.random.Generator) -> np.ndarray:
    """Random permutations of the stimulus labels: (n_permutations, n_stimuli) int64."""
    n_stimuli = _check_count(n_stimuli, "the number of stimuli", 3)
    n_permutations = _check_count(n_permutations, "the number of permutations")
    return rng.permuted(np.tile(np.arange(n_stimuli), (n_permutations, 1)), axis=1)


def counts(indices: np.ndarray, n: int) -> np.ndarray:
    """How often each of ``n`` items occurs in each index set: (n_samples, n) float64."""
    indices = np.atleast_2d(np.asarray(indices, dtype=np.int64))
    if indices.size and (indices.min() < 0 or indices.max() >= n):
        raise RSABridgeError(f"bootstrap indices must lie in 0..{n - 1}")
    out = np.zeros((indices.shape[0], n))
    np.add.at(out, (np.repeat(np.arange(indices.shape[0]), indices.shape[1]), indices.ravel()), 1.0)
    return out


def pair_weights(indices: np.ndarray, n_stimuli: int) -> np.ndarray:
    """Multiplicity of each original stimulus pair in each bootstrap sample.

    Args:
        indices: (n_samples, k) stimulus indices of each sample (any order, with repeats).
        n_stimuli: n, the number of stimuli of the original RDMs.

    Returns:
        (n_samples, n(n-1)/2) float64: c_i * c_j for the pair (i, j), i < j, in upper-triangle order
        (pairs of a stimulus with its own copy are dropped, so they appear nowhere).
    """
    c = counts(indices, n_stimuli)
    rows, cols = np.triu_indices(n_stimuli, k=1)
    return c[:, rows] * c[:, cols]


def split_halves(stimulus_index: np.ndarray, n_splits: int, rng: np.random.Generator) -> np.ndarray:
    """Random split-half assignments of repeated presentations, balanced per stimulus.

    Args:
        stimulus_index: (n_presentations,) int stimulus of each presentation (0..n_stimuli-1).
        n_splits: how many random splits.
        rng: the Generator; split s uses the s-th block of ``n_presentations`` uniform draws.

    Returns:
        (n_splits, n_presentations) int8: 0 = half A, 1 = half B, -1 = left out. Each stimulus with
        k repetitions puts floor(k/2) in each half (one sits out when k is odd), chosen at random:
        the presentations of a stimulus are ordered by their draw, the first floor(k/2) go to A.
    """
    n_splits = _check_count(n_splits, "n_splits (the number of random splits)")
    stim = np.asarray(stimulus_index, dtype=np.int64)
    n_counts = np.bincount(stim)
    few = np.flatnonzero((n_counts < 2) & (n_counts > 0))
    if few.size:
        raise RSABridgeError(f"split halves need at least 2 repetitions of every stimulus; {few.size} stimuli "
                             "have only one")
    keys = rng.random((n_splits, stim.size))
    order = np.lexsort((keys, np.broadcast_to(stim, keys.shape)), axis=-1)  # by stimulus, then by draw
    sorted_stim = np.sort(stim)
    start = np.concatenate([[0], np.cumsum(n_counts)[:-1]])
    pos = np.arange(stim.size) - start[sorted_stim]
    half_k = n_counts[sorted_stim] // 2
    sorted_half = np.where(pos < half_k, 0, np.where(pos < 2 * half_k, 1, -1)).astype(np.int8)
    out = np.empty((n_splits, stim.size), dtype=np.int8)
    np.put_along_axis(out, order, np.broadcast_to(sorted_half, order.shape), axis=1)
    return out
