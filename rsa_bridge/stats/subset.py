"""Statistics above the exact size: bootstraps and permutation tests on random stimulus subsets.

The exact stimulus bootstrap costs B x (layers + RDMs) x n(n-1)/2 per job — fine up to a few thousand
stimuli, hours at 10,000 and more. Above :data:`EXACT_MAX_STIMULI` stimuli (``scheme='auto'``) the
bootstrap switches to the **subset m-out-of-n** scheme:

1. draw G = :data:`SUBSETS` random subsets V_g of k = :data:`SUBSET_STIMULI` stimuli without
   replacement (seeded);
2. on each subset run the *exact* bootstrap (same kernel, same definitions) with B / G samples, giving
   theta*_b and the subset's own statistic theta_g;
3. rescale each sample's deviation by the m-out-of-n rate (Bickel, Goetze & van Zwet 1997; Politis &
   Romano 1994 for subsampling): the statistic is a U-statistic of stimulus pairs, whose sampling
   SD shrinks as 1 / sqrt(n), so

       sample_b = theta_N + sqrt(k / N) * (theta*_b - theta_g)

   where theta_N is the statistic on all N stimuli. Percentiles of these samples estimate the
   full-N percentile interval; best-layer and paired differences use them as they would exact
   samples (the same subset and index set for every layer of a sample).

The cost is that of an exact bootstrap at k stimuli, independent of N (plus the extraction of the
G sub-RDMs). ``tests/test_stats_subset.py`` checks the endpoints against the exact bootstrap at
N <= 1,200 within Monte-Carlo error. Noise-ceiling samples are not produced by this scheme (NaN).

Permutation tests switch the same way: above the size the test permutes the labels of one random
subset of k stimuli (seeded) and compares with that subset's observed statistic. The p-value is
exact at its level (the subset is chosen independently of the data) but has the power of k
stimuli, not N; the result's attributes say so.

Peers: rsatoolbox has no large-N scheme (its bootstrap resamples the full RDM); Brain-Score
subsamples stimuli for its split-half ceilings.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from rsa_bridge.options import STATS_SCHEMES

#: up to this many stimuli the bootstrap and the permutation test are exact (``scheme='auto'``)
EXACT_MAX_STIMULI = 2000
#: stimuli per random subset of the large-N schemes (k)
SUBSET_STIMULI = 1000
#: random subsets (G) the bootstrap samples are spread over
SUBSETS = 25
#: the schemes a bootstrap / permutation test can run (the planner chooses: :mod:`rsa_bridge.stats.plan`)
SCHEMES = STATS_SCHEMES


def subset_size(n: int) -> int:
    """k: :data:`SUBSET_STIMULI`, at most n."""
    return min(SUBSET_STIMULI, n)


def _sub(mats: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return mats[:, idx][:, :, idx]


def draw_subsets(n: int, n_samples: int, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every index set of the subset bootstrap, drawn up front: per subset (sorted (k,) stimulus indices,
    (B_g, k) bootstrap index sets within the subset).

    The draws come from ``rng`` in the order the scheme has always used (subset 1, its bootstrap sets,
    subset 2, ...), so drawing them first changes no sample; a store gathers every subset's sub-RDMs
    with one read (:mod:`rsa_bridge.stats.stores`).
    """
    from rsa_bridge.stats.resample import bootstrap_stimuli

    k = subset_size(n)
    groups = max(1, min(SUBSETS, n_samples))
    sizes = np.full(groups, n_samples // groups)
    sizes[: n_samples % groups] += 1
    out = []
    for size in sizes:
        idx = np.sort(rng.choice(n, size=k, replace=False))
        out.append((idx, bootstrap_stimuli(k, int(size), rng)))
    return out


def run_subsets(exact: Callable, model_sub: Callable[[int], np.ndarray], neural_mat: dict[str, np.ndarray],
                observed: np.ndarray, draws: list[tuple[np.ndarray, np.ndarray]], n: int, *, method: str, device=None,
                progress=None) -> np.ndarray:
    """Rescaled samples (B, L, A) from drawn subsets; ``model_sub(g)``: the (L, k, k) model RDMs of subset g.

    ``exact(model, neural, method, stimulus_indices, device)``: the exact bootstrap (seed 0, no bar) run on
    each subset on its index sets (passed in by its caller, :mod:`rsa_bridge.stats.bootstrap`, so that this
    module imports no statistic above it).
    """
    from rsa_bridge.stats.backends import sample_bar

    scale = np.sqrt(draws[0][0].size / n)
    out = []
    bar = sample_bar(sum(stim.shape[0] for _, stim in draws), progress)
    for g, (idx, stim) in enumerate(draws):
        res = exact(model_sub(g), {a: _sub(m, idx) for a, m in neural_mat.items()}, method, stim, device)
        out.append(observed[None] + scale * (res.samples - res.observed[None]))
        bar.update(int(stim.shape[0]))
    bar.close()
    return np.concatenate(out, axis=0)


def subset_bootstrap(exact: Callable, model_mat: np.ndarray, neural_mat: dict[str, np.ndarray],
                     observed: np.ndarray, *, method: str, n_samples: int, rng: np.random.Generator, device=None,
                     progress=None) -> np.ndarray:
    """Rescaled samples (B, L, A) of the subset m-out-of-n scheme (see the module docstring); ``exact``: as
    for :func:`run_subsets`."""
    draws = draw_subsets(model_mat.shape[1], n_samples, rng)
    return run_subsets(exact, lambda g: _sub(model_mat, draws[g][0]), neural_mat, observed, draws, model_mat.shape[1],
                       method=method, device=device, progress=progress)
