"""Variance partitioning of a brain RDM by 2-4 predictor RDMs: unique and shared R^2 components.

**Vectors.** Each RDM becomes its condensed upper triangle (pairs i < j, ``np.triu_indices`` order; scipy
``squareform``), optionally transformed (:data:`TRANSFORMS`: ``none`` = the dissimilarities as they are,
``ranks`` = average ranks, ties sharing their mean rank, computed per vector after any resampling).

**R^2 of every subset.** For each non-empty subset U of the P predictors, R^2(U) is the coefficient of
determination of the ordinary least-squares fit of the brain vector y on the vectors of U **with an
intercept** (scikit-learn ``LinearRegression().score``); R^2(empty) = 0.

**Components (Venn regions).** With g(W) = R^2(all) - R^2(all \\ W), the share of variance explained by
exactly the predictors in S (none outside S) is the Moebius inversion

    a(S) = sum over non-empty T subset of S of (-1)^(|S| - |T|) g(T)

so ``unique:k`` = a({k}) = R^2(all) - R^2(all without k), ``shared:a&b`` = a({a, b}) ..., and the
components sum to R^2(all) (``total``). Shared components can be negative (suppression); they are reported
as computed. For 2 and 3 predictors these are exactly Net2Brain's ``VPA`` y-values (``y1 = R12 - R2``,
``y12 = R1 + R2 - R12`` ...); see the guide for the differences (Net2Brain partitions each subject's RDM and
tests across subjects; here one RDM, CIs from a bootstrap over stimuli).

**Bootstrap CIs over stimuli.** Each draw resamples the stimuli with replacement (seeded), keeps the pairs of
distinct stimuli (the pair of two copies of one stimulus is left out), transforms, and recomputes every
component; the CI is the percentile interval of the draws.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(2, 45)); y = x[0] + x[1] + rng.normal(size=45)
    >>> c = components(r2_subsets(y, x))
    >>> round(sum(c.values()), 10) == round(r2_subsets(y, x)[(0, 1)], 10)
    True
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Sequence

import numpy as np
import xarray as xr

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.fitting.schemes import PARTITION_TRANSFORMS as TRANSFORMS

#: most predictors a partition takes (2**P - 1 regressions per draw; Venn figures stop at 4)
MAX_PREDICTORS = 4


@dataclass(frozen=True)
class PartitionOptions:
    """Options of :func:`partition`: transform, bootstrap draws, seed and CI level."""

    transform: str = "none"
    n_boot: int = 0
    seed: int = 0
    ci: float = 0.95


def r2_subsets(y: np.ndarray, X: np.ndarray) -> dict[tuple[int, ...], float]:
    """R^2 (OLS with intercept) of y (m,) on every non-empty subset of the rows of X (P, m), keyed by the
    sorted tuple of row indices. One least-squares solve per subset on the centred vectors."""
    yc = y - y.mean()
    Xc = X - X.mean(axis=1, keepdims=True)
    sst = float(yc @ yc)
    out = {}
    for k in range(1, len(X) + 1):
        for subset in combinations(range(len(X)), k):
            A = Xc[list(subset)].T
            beta = np.linalg.lstsq(A, yc, rcond=None)[0]
            resid = yc - A @ beta
            out[subset] = 1.0 - float(resid @ resid) / sst
    return out


def components(r2: dict[tuple[int, ...], float]) -> dict[tuple[int, ...], float]:
    """Venn components a(S) (module docstring) from the R^2 of every subset, keyed like ``r2``."""
    full = max(r2, key=len)
    every = set(full)

    def g(w: tuple[int, ...]) -> float:
        rest = tuple(sorted(every - set(w)))
        return r2[full] - (r2[rest] if rest else 0.0)

    return {s: sum((-1) ** (len(s) - len(t)) * g(t) for k in range(1, len(s) + 1) for t in combinations(s, k))
            for s in r2}


def label(subset: tuple[int, ...], names: Sequence[str]) -> str:
    """``unique:NAME`` for one predictor, ``shared:A&B...`` for several."""
    return f"unique:{names[subset[0]]}" if len(subset) == 1 else "shared:" + "&".join(names[i] for i in subset)


def _check(brain: np.ndarray, predictors: np.ndarray, names: Sequence[str]) -> None:
    from rsa_bridge.methods._numeric import constant_rows

    if not 2 <= len(predictors) <= MAX_PREDICTORS:
        raise RSABridgeError(f"variance partitioning takes 2 to {MAX_PREDICTORS} predictor RDMs; got "
                             f"{len(predictors)}: choose at most {MAX_PREDICTORS} with --predictors")
    if len(set(names)) != len(names):
        raise RSABridgeError(f"predictor names repeat ({', '.join(names)}); name each predictor once")
    if brain.shape[-1] < 4:
        raise RSABridgeError(f"{brain.shape[-1]} stimuli are too few to partition variance; give at least 4")
    stack = np.concatenate([brain[None], predictors])
    if not np.isfinite(stack).all():
        raise RSABridgeError("the brain or predictor RDMs contain NaN or inf; partition complete RDMs only")
    iu = np.triu_indices(brain.shape[-1], 1)
    const = np.flatnonzero(constant_rows(stack[:, iu[0], iu[1]]))
    if const.size:
        which = "the brain RDM" if const[0] == 0 else f"predictor {names[const[0] - 1]!r}"
        raise RSABridgeError(f"{which} is constant (all dissimilarities equal), so it explains or has no variance")


def _all(brain: np.ndarray, predictors: np.ndarray, positions: np.ndarray, transform) -> tuple[dict, dict]:
    from rsa_bridge.fitting.data import pair_index

    pa, pb = pair_index(positions)
    y = transform(brain[pa, pb][None])[0]
    X = transform(predictors[:, pa, pb])
    r2 = r2_subsets(y, X)
    return r2, components(r2)


def partition_variance(brain: np.ndarray, predictors: np.ndarray, names: Sequence[str],
              options: PartitionOptions = PartitionOptions()) -> xr.Dataset:
    """Unique and shared R^2 of ``brain`` (n, n) by ``predictors`` (P, n, n), P in 2..4.

    Returns:
        Dataset with ``r2`` (subset: every non-empty subset, labelled ``a+b``), ``component`` (component:
        ``unique:a``, ``shared:a&b`` ..., then ``total``) and, with ``options.n_boot`` > 0, ``ci_low`` /
        ``ci_high`` (component) and ``draws`` (sample, component); attrs: measure ``r2_ols_intercept``,
        transform, vectorisation, n_boot, seed, ci.
    """
    from rsa_bridge.progress import progress_bar

    brain = np.asarray(brain, dtype=np.float64)
    predictors = np.asarray(predictors, dtype=np.float64)
    names = [str(n) for n in names]
    _check(brain, predictors, names)
    transform = TRANSFORMS.get_record(options.transform)[0]
    n = brain.shape[-1]
    r2, comps = _all(brain, predictors, np.arange(n), transform)
    keys = sorted(comps, key=lambda s: (len(s), s))
    comp_labels = [label(s, names) for s in keys] + ["total"]
    values = [comps[s] for s in keys] + [r2[max(r2, key=len)]]
    ds = xr.Dataset({"r2": ("subset", [r2[s] for s in keys]), "component": ("component_name", values)},
                    coords={"subset": ["+".join(names[i] for i in s) for s in keys], "component_name": comp_labels})
    if options.n_boot:
        rng = np.random.default_rng(options.seed)
        draws = np.empty((options.n_boot, len(values)))
        for b in progress_bar(range(options.n_boot), desc="partition bootstrap", unit="sample"):
            pos = np.sort(rng.integers(0, n, n))
            try:
                r2_b, c_b = _all(brain, predictors, pos, transform)
            except (np.linalg.LinAlgError, ZeroDivisionError):  # pragma: no cover - a degenerate draw
                draws[b] = np.nan
                continue
            draws[b] = [c_b[s] for s in keys] + [r2_b[max(r2_b, key=len)]]
        cut = (1 - options.ci) / 2
        ds["ci_low"] = ("component_name", np.nanquantile(draws, cut, axis=0))
        ds["ci_high"] = ("component_name", np.nanquantile(draws, 1 - cut, axis=0))
        ds["draws"] = (("sample", "component_name"), draws)
    ds.attrs = {"measure": "r2_ols_intercept", "transform": options.transform,
                "vectorisation": "condensed upper triangle (i < j, scipy squareform order)",
                "predictors": ",".join(names), "n_boot": options.n_boot, "seed": options.seed,
                "ci": options.ci if options.n_boot else "none (no bootstrap)",
                "ci_kind": "percentile over stimulus bootstrap draws" if options.n_boot else "none"}
    return ds
