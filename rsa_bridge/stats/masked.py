"""Comparisons on explicitly resampled RDMs, with the pairs of a stimulus and its copy left out.

The general (slower) path, used for methods without a prepared fast path (``kendall_tau_a``, the
whitened methods, any method whose record has no ``dot``) and as the definition that the batched path in
:mod:`rsa_bridge.stats.weighted` must reproduce. It follows rsatoolbox: a bootstrap sample keeps every
drawn stimulus as its own condition (sorted), marks the pairs of a stimulus with its own copy as missing,
drops missing pairs, and hands the missing-pair mask to a method that asks for it (its ``masked`` form: the
whitening, rsatoolbox ``_cov_weighting``).
"""
from __future__ import annotations

import numpy as np

from rsa_bridge.methods import Method, get


def gather(matrices: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The upper-triangle vectors of RDMs resampled by one index set.

    Args:
        matrices: (K, n, n) RDMs.
        indices: (k,) stimulus indices of the sample (repeats allowed; rsatoolbox order is sorted).

    Returns:
        vectors (K, k(k-1)/2) with NaN at the pairs of a stimulus with its own copy, and the
        (k(k-1)/2,) bool mask of valid pairs.
    """
    idx = np.asarray(indices, dtype=np.int64)
    rows, cols = np.triu_indices(idx.shape[0], k=1)
    a, b = idx[rows], idx[cols]
    vectors = matrices[:, a, b].astype(np.float64, copy=True)
    valid = a != b
    vectors[:, ~valid] = np.nan
    return vectors, valid


def compare_masked(a: np.ndarray, b: np.ndarray, method: str | Method, valid: np.ndarray | None = None) -> np.ndarray:
    """Similarity (K1, K2) of RDM vectors over their valid pairs.

    Args:
        a, b: (K1, m_valid), (K2, m_valid) dissimilarities of the valid pairs only.
        method: a name in :data:`rsa_bridge.definitions.COMPARISONS` or its :class:`~rsa_bridge.methods.Method`.
        valid: (m,) bool mask of the valid pairs among all n(n-1)/2 (read by methods with a ``masked`` form,
            e.g. the whitened ones, whose transform depends on which pairs are missing); None = all valid.
    """
    return get(method).masked_similarity(np.atleast_2d(a), np.atleast_2d(b), valid)
