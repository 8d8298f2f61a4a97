"""Comparisons on explicitly resampled RDMs, with the pairs of a stimulus and its copy left out.

The general (slower) path, used for methods that are not a dot product of per-pair values
(``kendall_tau_a``, ``whitened_pearson``, ``whitened_cosine``) and as the definition that the batched
path in :mod:`rsa_bridge.stats.weighted` must reproduce. It follows rsatoolbox: a bootstrap sample
keeps every drawn stimulus as its own condition (sorted), marks the pairs of a stimulus with its own
copy as missing, drops missing pairs for the rank and correlation methods, and hands the missing-pair
mask to the whitening (rsatoolbox ``_cov_weighting``).
"""
from __future__ import annotations

import numpy as np

from rsa_bridge.compare import METHODS, whitening_transform
from rsa_bridge.errors import RSABridgeError

WHITENED = ("whitened_pearson", "whitened_cosine")


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


def _whitened_unit(x: np.ndarray, valid: np.ndarray, centre: bool, what: str) -> np.ndarray:
    if centre:
        x = x - x.mean(axis=-1, keepdims=True)
    t = whitening_transform(x, valid)
    norm = np.sqrt((t * t).sum(axis=-1, keepdims=True))
    if (norm == 0).any():
        raise RSABridgeError(f"{what} RDM is constant within the sample, so the whitened similarity is undefined")
    return t / norm


def compare_masked(a: np.ndarray, b: np.ndarray, method: str, valid: np.ndarray | None = None) -> np.ndarray:
    """Similarity (K1, K2) of RDM vectors over their valid pairs.

    Args:
        a, b: (K1, m_valid), (K2, m_valid) dissimilarities of the valid pairs only.
        method: a name in :data:`rsa_bridge.compare.METHODS`.
        valid: (m,) bool mask of the valid pairs among all n(n-1)/2 (needed by the whitened methods,
            whose transform depends on which pairs are missing); None = all valid.
    """
    if method in WHITENED:
        centre = method == "whitened_pearson"
        return np.clip(_whitened_unit(a, valid, centre, "a model") @ _whitened_unit(b, valid, centre, "a neural").T,
                       -1.0, 1.0)
    return METHODS[method](np.atleast_2d(a), np.atleast_2d(b))
