"""Cluster-based permutation tests over time bins (Maris & Oostenveld 2007), one-sided (similarity > 0).

A time course of a statistic ``s[t]`` (one value per time bin) is thresholded with a *cluster-forming*
threshold; runs of adjacent bins above it are clusters, and the **mass** of a cluster is the sum of ``s``
over its bins. The null distribution is that of the **largest** cluster mass of a time course under the
null hypothesis (no cluster: mass 0), so the cluster p-values control the family-wise error over all bins.
A cluster's p-value is ``(1 + #{null max mass >= its mass}) / (1 + n_permutations)``
(a null mass within a relative 1e-9 of the observed one counts as a tie, i.e. >=): the observed time
course counts as one member of the null (MNE's convention: ``H0`` holds the observed maximum first).

Two ways to draw the null, by what is exchangeable under it:

- :func:`sign_flip_cluster_test` — **subjects** (independent units) each give a time course ``x[u, t]``;
  under H0 each course is symmetric around 0, so flipping its sign is as likely as not. ``s[t]`` is the
  one-sample t-statistic over units (``mean / (sd / sqrt(n))``, ``ddof=1``, as MNE's ``ttest_1samp_no_p``);
  the threshold is ``scipy.stats.t.ppf(1 - p, n - 1)`` for a cluster-forming ``p``. With ``2**n`` sign
  vectors at most ``n_permutations`` + 1 all of them are used (exact test, smallest p ``2**-n``); else
  ``n_permutations`` random ones. The same sign vectors give the same p-values as MNE's
  ``permutation_cluster_1samp_test(tail=1)`` (tests: equal to 1e-12).
- :func:`permutation_cluster_test` — **one** RDM per bin (or no subjects to flip): the stimulus labels of the
  model RDM are permuted (one permutation for every bin at once, so the time structure of the brain RDMs is
  kept); ``s[t]`` is the similarity itself and a bin's threshold is the ``1 - p`` quantile of its own
  permutation distribution.

Example::

    >>> import numpy as np
    >>> x = np.array([[0.1, 0.5, 0.6, 0.0], [0.2, 0.4, 0.7, -0.1], [0.0, 0.6, 0.5, 0.1]])  # 3 subjects x 4 bins
    >>> res = sign_flip_cluster_test(x, ClusterOptions(threshold_p=0.05))
    >>> res.labels.tolist(), res.p_values.tolist()     # one cluster (bins 1-2); exact over 2**3 flips
    ([0, 1, 1, 0], [0.125])
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.stats.resample import as_generator

#: the fewest time bins a cluster test runs on
MIN_BINS = 3
#: relative tolerance of a tie between a null mass and an observed one (rounding must not decide a p-value)
TIE = 1e-9
#: sign vectors (or permutations) per GEMM batch
BATCH = 512
#: float64 values of the permuted square model RDMs of one batch
PERMUTED_ELEMENTS = 8_000_000


@dataclass(frozen=True)
class ClusterOptions:
    """How a cluster test forms clusters and draws its null.

    Attributes:
        threshold_p: cluster-forming threshold as a one-sided p-value in (0, 0.5): a bin joins a cluster when
            its statistic exceeds the ``1 - threshold_p`` quantile of its null (t distribution for sign flips,
            the bin's permutation distribution for stimulus permutations).
        n_permutations: sign vectors / stimulus permutations drawn (>= 1); a sign-flip test with
            ``2**n <= n_permutations + 1`` enumerates all ``2**n`` (exact).
        seed: seed of the draws (int >= 0; None: fresh entropy, recorded as such).
    """

    threshold_p: float = 0.05
    n_permutations: int = 1000
    seed: int | None = 0

    def __post_init__(self) -> None:
        p = self.threshold_p
        if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)) or not 0.0 < float(p) < 0.5:
            raise RSABridgeError(f"the cluster-forming threshold is a one-sided p-value between 0 and 0.5 "
                                 f"(e.g. 0.05); got {p!r}")
        n = self.n_permutations
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise RSABridgeError(f"the cluster test needs a whole number of permutations >= 1; got {n!r}")
        as_generator(self.seed)  # refuses a bad seed


@dataclass(frozen=True)
class ClusterResult:
    """The clusters of one time course and their p-values.

    Attributes:
        statistic: (T,) per-bin statistic (t over units, or the similarity).
        threshold: (T,) the cluster-forming threshold of each bin (in the statistic's units).
        labels: (T,) int, the cluster of each bin (1..k), 0 outside every cluster.
        masses: (k,) cluster masses (sum of ``statistic`` over the cluster's bins).
        p_values: (k,) family-wise cluster p-values.
        null_max: (n_null,) the null's largest cluster masses, the observed one first.
        scheme: what was permuted (``sign-flip over <unit>s (exact, 2^n)`` ...).
    """

    statistic: np.ndarray
    threshold: np.ndarray
    labels: np.ndarray
    masses: np.ndarray
    p_values: np.ndarray
    null_max: np.ndarray = field(repr=False)
    scheme: str = ""

    def bin_p(self) -> np.ndarray:
        """(T,) the p-value of the cluster each bin belongs to (NaN outside clusters)."""
        out = np.full(self.labels.shape, np.nan)
        inside = self.labels > 0
        out[inside] = self.p_values[self.labels[inside] - 1]
        return out

    def bin_mass(self) -> np.ndarray:
        """(T,) the mass of the cluster each bin belongs to (NaN outside clusters)."""
        out = np.full(self.labels.shape, np.nan)
        inside = self.labels > 0
        out[inside] = self.masses[self.labels[inside] - 1]
        return out


def cluster_labels(above: np.ndarray) -> np.ndarray:
    """Number the runs of True along the last axis: (..., T) bool -> (..., T) int (1..k per row, 0 = False).

    Example::

        >>> cluster_labels(np.array([True, True, False, True])).tolist()
        [1, 1, 0, 2]
    """
    above = np.asarray(above, dtype=bool)
    before = np.concatenate([np.zeros(above.shape[:-1] + (1,), bool), above[..., :-1]], axis=-1)
    return np.cumsum(above & ~before, axis=-1) * above


def max_cluster_mass(statistic: np.ndarray, above: np.ndarray) -> np.ndarray:
    """Largest cluster mass of each row: (P, T) statistic and mask -> (P,) (0 for a row without clusters)."""
    statistic = np.atleast_2d(statistic)
    above = np.atleast_2d(above)
    n_rows, n_bins = statistic.shape
    labels = cluster_labels(above)
    keys = (labels + np.arange(n_rows)[:, None] * (n_bins + 1))[above]
    sums = np.bincount(keys, weights=statistic[above], minlength=n_rows * (n_bins + 1)).astype(float)
    sums = sums.reshape(n_rows, n_bins + 1)
    has = labels.max(axis=1) > 0
    sums[:, 0] = -np.inf
    return np.where(has, sums.max(axis=1), 0.0)


def _result(statistic, threshold, null_max, scheme) -> ClusterResult:
    above = statistic > threshold
    labels = cluster_labels(above)
    k = int(labels.max())
    masses = np.bincount(labels[above], weights=statistic[above], minlength=k + 1).astype(float)[1:]
    observed = float(max_cluster_mass(statistic, above)[0])
    null_all = np.concatenate([[observed], null_max])
    p = np.array([np.mean(null_all >= m - TIE * max(1.0, abs(m))) for m in masses])
    return ClusterResult(statistic, np.broadcast_to(threshold, statistic.shape).astype(float), labels, masses, p,
                         null_all, scheme)


def _check_course(x: np.ndarray, what: str) -> None:
    if x.shape[-1] < MIN_BINS:
        raise RSABridgeError(f"a cluster test over time needs at least {MIN_BINS} time bins; {what} has "
                             f"{x.shape[-1]}")
    if not np.isfinite(x).all():
        bad = np.flatnonzero(~np.isfinite(x).reshape(-1, x.shape[-1]).all(axis=0))
        raise RSABridgeError(f"{what}: the similarity is NaN in time bin(s) {bad.tolist()[:5]} (a constant RDM or "
                             "missing data); drop those bins or fix the RDMs before a cluster test")


def t_statistic(x: np.ndarray, signs: np.ndarray | None = None) -> np.ndarray:
    """One-sample t over axis 0 of x (n, T), for each row of ``signs`` (P, n) (None: the data as they are).

    ``t = mean / sqrt(var / n)`` with ``var`` the ``ddof=1`` variance; the sum of squares does not change under
    sign flips, so all P flips are one GEMM. Returns (P, T) (or (1, T)).
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    signs = np.ones((1, n)) if signs is None else np.asarray(signs, dtype=np.float64)
    mean = signs @ x / n
    var = (np.sum(x * x, axis=0) - n * mean ** 2) / (n - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return mean / np.sqrt(np.maximum(var, 0.0) / n)


def flip_signs(n: int, n_permutations: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """Sign vectors (P, n) of +-1 for a sign-flip test, and whether they are all ``2**n`` (exact).

    Exact when ``2**n <= n_permutations + 1``: every vector but the identity (the observed course is added by
    the p-value itself). Otherwise ``n_permutations`` random vectors (each sign +1 or -1 with probability 1/2).
    """
    if 2 ** min(n, 62) <= n_permutations + 1:
        codes = np.arange(2 ** n - 1)  # all but the last code, which is all +1 (the identity)
        bits = (codes[:, None] >> np.arange(n)[::-1]) & 1
        return 2.0 * bits - 1.0, True
    return np.where(rng.random((n_permutations, n)) < 0.5, -1.0, 1.0), False


def sign_flip_cluster_test(x: np.ndarray, options: ClusterOptions | None = None, *, signs: np.ndarray | None = None,
                           unit: str = "subject") -> ClusterResult:
    """Cluster test of a time course over units by sign flips (one-sided: clusters of t above the threshold).

    Args:
        x: (n_units, T) per-unit similarity per time bin (units: subjects, animals ...; >= 2).
        options: threshold, permutations, seed (:class:`ClusterOptions`).
        signs: (P, n_units) +-1 sign vectors to use instead of drawing them (e.g. MNE's, for a check).
        unit: the unit's name for messages and the scheme.

    Returns:
        :class:`ClusterResult` (statistic = t over units).
    """
    options = options or ClusterOptions()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise RSABridgeError(f"a sign-flip test needs at least 2 {unit}s (independent units) per time bin; got "
                             f"{x.shape[0] if x.ndim == 2 else 'no unit axis'}; use the stimulus-permutation test "
                             "for a single RDM per bin")
    _check_course(x, f"the {unit}s' time courses")
    n = x.shape[0]
    from scipy.stats import t as t_dist

    threshold = float(t_dist.ppf(1.0 - options.threshold_p, n - 1))
    exact = False
    if signs is None:
        signs, exact = flip_signs(n, options.n_permutations, as_generator(options.seed))
    signs = np.asarray(signs, dtype=np.float64)
    if signs.ndim != 2 or signs.shape[1] != n or not np.isin(signs, (-1.0, 1.0)).all():
        raise RSABridgeError(f"sign vectors must be (P, {n}) arrays of +1/-1")
    observed = t_statistic(x)[0]
    if not np.isfinite(observed).all():
        raise RSABridgeError(f"the {unit}s' similarities do not vary in some time bin (t undefined); a sign-flip "
                             "test needs variation across units")
    null = np.empty(signs.shape[0])
    for i in range(0, signs.shape[0], BATCH):
        flipped = t_statistic(x, signs[i:i + BATCH])  # (b, T), one GEMM
        null[i:i + BATCH] = max_cluster_mass(flipped, flipped > threshold)
    how = f"exact, all 2^{n}" if exact else f"{signs.shape[0]} random sign vectors"
    return _result(observed, threshold, null, f"sign-flip over {unit}s ({how})")


def permutation_cluster_test(model_vec: np.ndarray, neural_vecs: np.ndarray, n: int, method: str,
                             options: ClusterOptions | None = None, *, perms: np.ndarray | None = None,
                             weights: np.ndarray | None = None) -> ClusterResult:
    """Cluster test of one model RDM's similarity time course by permuting its stimulus labels.

    Args:
        model_vec: (m,) upper-triangle vector of the model RDM over n stimuli (m = n(n-1)/2).
        neural_vecs: (R, T, m) brain RDM vectors: R RDMs (subjects/sessions, averaged after comparison) x T bins.
        n: number of stimuli; method: comparison method.
        options: threshold, permutations, seed; perms: (P, n) stimulus permutations to use instead of drawing.
        weights: (R,) weight of each RDM in the mean (None: 1/R; with subjects, 1 / (n_units * the unit's RDMs)
            so that each subject counts once, as in ``compare``).

    Returns:
        :class:`ClusterResult` (statistic = the similarity, weighted mean over the R RDMs; threshold per bin).
    """
    from rsa_bridge.compare import compare_vectors
    from rsa_bridge.rdm import upper_triangle
    from rsa_bridge.stats.resample import permutations as draw_permutations

    options = options or ClusterOptions()
    neural_vecs = np.asarray(neural_vecs, dtype=np.float64)
    r, t, m = neural_vecs.shape
    w = np.full(r, 1.0 / r) if weights is None else np.asarray(weights, dtype=np.float64)
    flat = neural_vecs.reshape(r * t, m)
    observed = w @ compare_vectors(model_vec, flat, method).reshape(r, t)
    _check_course(observed[None], "the similarity time course")
    if perms is None:
        perms = draw_permutations(n, options.n_permutations, as_generator(options.seed))
    square = np.zeros((n, n))
    iu = np.triu_indices(n, k=1)
    square[iu] = model_vec
    square = square + square.T
    null = np.empty((perms.shape[0], t))
    batch = max(1, min(BATCH, PERMUTED_ELEMENTS // (n * n)))  # the permuted (b, n, n) models stay ~64 MiB
    for i in range(0, perms.shape[0], batch):
        block = perms[i:i + batch]
        permuted = upper_triangle(square[block[:, :, None], block[:, None, :]])  # (b, m)
        null[i:i + batch] = np.einsum("r,brt->bt", w, compare_vectors(permuted, flat, method).reshape(-1, r, t))
    threshold = np.quantile(null, 1.0 - options.threshold_p, axis=0)
    null_max = max_cluster_mass(null, null > threshold)
    return _result(observed, threshold, null_max, f"stimulus-label permutation ({perms.shape[0]} permutations)")
