"""Means, variances and confidence intervals of bootstrapped cross-validation (rsatoolbox's ``Result``).

Shapes: ``evals`` (N, M, F, n_cv) from :func:`~rsa_bridge.fitting.evaluate.bootstrap_crossval` or
(N, M, F, n_cv, 3) from :func:`~rsa_bridge.fitting.evaluate.dual_bootstrap`. Draws whose first model is NaN
(not cross-validatable) are dropped. A fold of a kept draw can still be NaN when its fit leaves the prediction
undefined (e.g. ``nnls`` finds no positive weight, so the prediction is all zeros): it is left out of the
draw's mean over folds, for the mean and the variance alike (rsatoolbox leaves it out of the mean but returns a
NaN variance for that model; with no such fold both agree).

- **mean**: per draw the NaN-mean over the last axis, one axis at a time ((variants,) repetitions, folds),
  then the mean over draws (rsatoolbox ``Result.get_means``).
- **variance** (per model): with ``correction`` (n_cv >= 2) the variance over draws of the per-draw mean,
  projected to infinitely many fold sets: ``(n_cv var(mean over cv) - mean_cv var(per cv)) / (n_cv - 1)``;
  else ``var(mean over cv)`` (ddof 1). Bootstrap over both: times ``n / (n - 1)``, ``n = min(n_rdm, n_stim)``.
  Dual bootstrap, from the three variances v_both, v_rdm, v_pattern (rsatoolbox ``_dual_bootstrap``)::

      v = a v_rdm + b v_pattern - a b (v_both - v_rdm - v_pattern),  a = R/(R-1), b = S/(S-1)
      v = min(max(v, a v_rdm, b v_pattern), v_both)

  with R the number of brain RDMs and S of stimuli (rsatoolbox counts RDMs, not subjects).
- **CI** ``t``: mean -+ t_{dof}((1 + ci) / 2) sqrt(max(v, 0)), dof = min(R, S) - 1;
  ``percentile``: quantiles (1 -+ ci) / 2 of the per-draw means framed by -inf and +inf (rsatoolbox's
  ``get_ci(test_type='bootstrap')``).

Example:
    >>> import numpy as np
    >>> e = np.random.default_rng(0).normal(size=(50, 1, 2, 2))
    >>> s = summarize(e, 10, 20, 0.95, "bootstrap_crossval")
    >>> sorted(s)
    ['ci_percentile', 'ci_t', 'dof', 'mean', 'n_draws_used', 'variance']
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

from rsa_bridge.registry import Registry


def _variance(per_cv: np.ndarray, correction: bool) -> np.ndarray:
    """(N, M, n_cv) per-draw, per-repetition means -> (M,) variance over draws (module docstring); per model,
    a draw whose repetition has no defined fold at all is left out."""
    n_cv = per_cv.shape[-1]
    out = np.full(per_cv.shape[1], np.nan)
    for m in range(per_cv.shape[1]):
        x = per_cv[:, m][np.isfinite(per_cv[:, m]).all(axis=-1)]
        if len(x) < 2:
            continue
        var_mean = np.var(x.mean(axis=-1), ddof=1)
        if not correction or n_cv < 2:
            out[m] = var_mean
            continue
        var_1 = np.mean([np.var(x[:, r], ddof=1) for r in range(n_cv)])
        out[m] = (n_cv * var_mean - var_1) / (n_cv - 1)
    return out


def _fold_mean(evals: np.ndarray) -> np.ndarray:
    """NaN-mean over the fold axis (2); a repetition without any defined fold stays NaN, silently."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(evals, axis=2)


def _both(evals: np.ndarray, n_rdm: int, n_stim: int, correction: bool) -> np.ndarray:
    v = _variance(_fold_mean(evals), correction)
    n = min(n_rdm, n_stim)
    return v * n / (n - 1)


def _dual(evals: np.ndarray, n_rdm: int, n_stim: int, correction: bool) -> np.ndarray:
    both, rdm, pattern = (_variance(_fold_mean(evals[..., v]), correction) for v in range(3))
    a, b = n_rdm / (n_rdm - 1), n_stim / (n_stim - 1)
    v = a * rdm + b * pattern - a * b * (both - rdm - pattern)
    return np.minimum(np.maximum(np.maximum(v, a * rdm), b * pattern), both)


#: evaluation scheme -> variance of its bootstrap
VARIANCES = Registry("bootstrap scheme", {"bootstrap_crossval": _both, "dual_bootstrap": _dual})


def summarize(evals: np.ndarray, n_rdm: int, n_stim: int, ci: float, scheme: str,
              correction: bool = True) -> dict:
    """Mean, variance, t and percentile CIs per model of bootstrapped evaluations (module docstring).

    Returns:
        dict: ``mean`` (M,), ``variance`` (M,), ``ci_t`` (2, M), ``ci_percentile`` (2, M), ``dof``,
        ``n_draws_used``.
    """
    ok = ~np.isnan(evals.reshape(evals.shape[0], evals.shape[1], -1)[:, 0, 0])
    kept = evals[ok]
    per_draw = kept
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        while per_draw.ndim > 2:  # rsatoolbox's get_means: NaN-mean over the last axis, one axis at a time
            per_draw = np.nanmean(per_draw, axis=-1)
    mean = per_draw.mean(axis=0)
    variance = VARIANCES.get_record(scheme)(kept, n_rdm, n_stim, correction)
    dof = min(n_rdm, n_stim) - 1
    cut = (1 - ci) / 2
    sem = np.sqrt(np.maximum(variance, 0))
    t = stats.t.ppf(cut, dof)
    framed = np.concatenate([np.full((1, len(mean)), -np.inf), np.full((1, len(mean)), np.inf), per_draw])
    with np.errstate(invalid="ignore"):  # the -inf/+inf frame makes numpy's interpolation warn; results are finite
        pct = np.array([np.quantile(framed, cut, axis=0), np.quantile(framed, 1 - cut, axis=0)])
    return {"mean": mean, "variance": variance, "ci_t": np.array([mean + sem * t, mean - sem * t]),
            "ci_percentile": pct, "dof": dof, "n_draws_used": int(ok.sum())}
