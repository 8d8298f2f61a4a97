"""Cross-validated linear predictivity of every neuroid from a layer's stimulus Gram (Yamins et al. 2014).

Per fold (:mod:`rsa_bridge.measures.folds`): fit an estimator of :data:`ESTIMATORS` on the training stimuli,
predict the held-out stimuli, Pearson r between predicted and measured responses per neuroid. A neuroid's
score is the **mean over folds** of r; the layer's score is the **median over neuroids** (the mean is
reported too). With a ceiling (:mod:`rsa_bridge.measures.ceilings`), ``normalized = median / ceiling``
(Brain-Score's ``score / ceiling``), both medians over the neuroids whose ceiling is positive.

**Scoring the held-out predictions** (:data:`CV_SCORES`, ``cv_score=``): ``per-fold`` (default) is the above,
mean over folds of each fold's r, and needs :data:`rsa_bridge.measures.folds.MIN_TEST_STIMULI` held-out stimuli
in every fold (else one-line refusal with the fix); ``pooled`` collects every fold's held-out predictions into
one (n, t) matrix (each stimulus predicted once, by the fold that held it out) and takes one Pearson r per
neuroid over all n stimuli (scikit-learn ``cross_val_predict`` + Pearson r), for small sets where a fold holds
too few stimuli. Pooled r also carries the folds' differences in offset and scale, so it is not the same
number as the per-fold mean; results record which one was used (``measure_linear_cv_score``).

(Brain-Score takes the median over neuroids per split and then the mean over splits; we follow the
issue's order, mean over folds then median. Net2Brain's "encoding" reports mean r over voxels.)

NaN policy: NaN responses are an error; a neuroid whose r is undefined in a fold (constant in a training
fold, so constant predictions, or constant in a test fold) gets NaN for that fold and overall, and is
left out of the median/mean with a warning naming it.

Example::

    >>> rng = np.random.default_rng(0); X = rng.normal(size=(100, 50)); Y = X[:, :4] + 0.1 * rng.normal(size=(100, 4))
    >>> round(linear_predictivity(X @ X.T, Y, n_splits=5).median, 2) > 0.9
    True
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from rsa_bridge.errors import RSABridgeError, preview
from stimuli.keywords import refuse_keywords
from rsa_bridge.measures.folds import check_test_sizes, make_folds
from rsa_bridge.measures.pls import BRAIN_SCORE_COMPONENTS, pls_fold
from rsa_bridge.measures.ridge import DEFAULT_ALPHAS, ridge_cv_fold


@dataclass(frozen=True)
class Estimator:
    """A regression from a Gram: ``fit_predict(gram, y, train, test, **options) -> (predictions, info)``."""

    name: str
    description: str
    fit_predict: Callable[..., tuple[np.ndarray, Any]]


def _ridge(gram, y, train, test, *, alphas=DEFAULT_ALPHAS, per_neuroid_alpha=False, **unused):
    return ridge_cv_fold(gram, y, train, test, alphas, per_neuroid_alpha)


def _pls(gram, y, train, test, *, n_components=BRAIN_SCORE_COMPONENTS, **unused):
    return pls_fold(gram, y, train, test, n_components), n_components


#: estimator name -> record
ESTIMATORS: dict[str, Estimator] = {
    "ridge": Estimator("ridge", "dual ridge, alpha by efficient leave-one-out on the training fold (RidgeCV)", _ridge),
    "pls": Estimator("pls", "PLS regression, 25 components, no scaling (Brain-Score)", _pls),
}


from rsa_bridge.measures.cv_scores import CV_SCORES, CVScore, check_cv_score  # noqa: E402,F401  (re-exported)


def column_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(t,) Pearson r of each column of a with the same column of b; NaN where either is constant."""
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    den = np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
    scale = np.sqrt((a * a).sum(axis=0).max() * (b * b).sum(axis=0).max()) if a.size else 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(axis=0) / den
    return np.where(den > 1e-24 * max(scale, 1e-300), np.clip(r, -1, 1), np.nan)


@dataclass
class Predictivity:
    """Linear predictivity of one layer.

    Attributes:
        per_fold: (fold, neuroid) Pearson r on held-out stimuli; with ``cv_score="pooled"`` one row, the pooled r.
        per_neuroid: (neuroid,) mean over folds (NaN if undefined in a fold), or the pooled r.
        median, mean: over the usable neuroids (finite score and, with a ceiling, positive ceiling).
        ceiling: median per-neuroid ceiling over the usable neuroids (NaN without one); normalized = median / ceiling.
        neuroid_ids, excluded: neuroid names, and those left out of the summaries.
        fold_info: per fold what the estimator chose (ridge: alpha(s); pls: components).
    """

    per_fold: np.ndarray
    per_neuroid: np.ndarray
    median: float
    mean: float
    neuroid_ids: list[str]
    ceiling: float = float("nan")
    normalized: float = float("nan")
    excluded: list[str] = field(default_factory=list)
    fold_info: list = field(default_factory=list)
    estimator: str = "ridge"
    cv_score: str = "per-fold"


def _align(gram, responses) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    from rsa_bridge.align import check_same_ids
    from rsa_bridge.rdm import COL, ROW

    if isinstance(gram, xr.DataArray):
        ids = [str(s) for s in gram[ROW].values]
        if list(map(str, gram[COL].values)) != ids:
            gram = gram.sel({COL: ids})
        g = np.asarray(gram.values, dtype=np.float64)
    else:
        g, ids = np.asarray(gram, dtype=np.float64), None
    if isinstance(responses, xr.DataArray):
        stim_dim = responses.dims[0]
        neuroids = ([str(v) for v in responses["neuroid_id"].values] if "neuroid_id" in responses.coords
                    else [str(i) for i in range(responses.shape[1])])
        if ids is not None:
            check_same_ids(ids, responses[stim_dim].values, "the layer's stimuli", "the neural responses' stimuli")
            responses = responses.sel({stim_dim: ids})
        y = np.asarray(responses.values, dtype=np.float64)
    else:
        y = np.asarray(responses, dtype=np.float64)
        neuroids = [str(i) for i in range(y.shape[1] if y.ndim == 2 else 1)]
    y = y[:, None] if y.ndim == 1 else y
    if g.ndim != 2 or g.shape[0] != g.shape[1] or g.shape[0] != y.shape[0]:
        raise RSABridgeError(f"Gram {g.shape} and responses {y.shape} do not cover the same stimuli")
    if not np.isfinite(g).all():
        raise RSABridgeError("the layer's Gram matrix contains NaN or inf")
    bad = ~np.isfinite(y).all(axis=0)
    if bad.any():
        raise RSABridgeError(f"neural responses contain NaN or inf for neuroids "
                             f"{preview([neuroids[i] for i in np.flatnonzero(bad)])}; drop them or fill them first")
    return g, y, ids or [str(i) for i in range(g.shape[0])], neuroids


@dataclass(frozen=True)
class PredictivityOptions:
    """The folds and fits of :func:`linear_predictivity` beyond its own keywords.

    Attributes:
        labels, folds: stratification labels (one per stimulus) or user folds (see
            :func:`rsa_bridge.measures.folds.make_folds`).
        alphas, per_neuroid_alpha: ridge grid and whether each neuroid picks its own alpha.
        n_components: PLS components.

    Example::

        >>> PredictivityOptions(n_components=3).per_neuroid_alpha
        False
    """

    labels: Sequence | None = None
    folds: Any = None
    alphas: Sequence[float] = DEFAULT_ALPHAS
    per_neuroid_alpha: bool = False
    n_components: int = BRAIN_SCORE_COMPONENTS


def linear_predictivity(gram, responses, *, estimator: str = "ridge", n_splits: int = 10, seed: int = 0,
                        ceiling: np.ndarray | None = None, cv_score: str = "per-fold",
                        options: PredictivityOptions | None = None, **stray) -> Predictivity:
    """Cross-validated linear predictivity of every neuroid (see the module docstring).

    Args:
        gram: (n, n) Gram ``X X^T`` of the layer (any centring), array or DataArray with stimulus coords.
        responses: (n, t) repeat-averaged responses; a DataArray is aligned to the Gram by stimulus id.
        estimator: a key of :data:`ESTIMATORS` (``ridge`` or ``pls``).
        n_splits, seed: see :func:`rsa_bridge.measures.folds.make_folds`.
        ceiling: (t,) per-neuroid ceiling (e.g. :func:`rsa_bridge.measures.ceilings.neuroid_ceiling`).
        cv_score: ``per-fold`` or ``pooled`` (:data:`CV_SCORES`; see the module docstring).
        options: labels, user folds, ridge alphas, per-neuroid alpha, PLS components
            (:class:`PredictivityOptions`; None: its defaults). Those keywords on their own (``alphas=`` ...)
            are a TypeError naming the field.

    Raises:
        RSABridgeError: per-fold scoring with a fold of fewer than ``MIN_TEST_STIMULI`` held-out stimuli
            (the message names the fix), pooled scoring with folds that do not hold out each stimulus once.
    """
    refuse_keywords("linear_predictivity", stray, PredictivityOptions)
    opts = options if options is not None else PredictivityOptions()
    if not isinstance(opts, PredictivityOptions):
        raise RSABridgeError(f"linear_predictivity: options must be a PredictivityOptions; got {type(opts).__name__}")
    labels, folds, alphas = opts.labels, opts.folds, opts.alphas
    per_neuroid_alpha, n_components = opts.per_neuroid_alpha, opts.n_components
    if estimator not in ESTIMATORS:
        raise RSABridgeError(f"unknown estimator {estimator!r}; choose one of {', '.join(ESTIMATORS)}")
    g, y, ids, neuroids = _align(gram, responses)
    scoring = check_cv_score(cv_score)
    split = make_folds(len(ids), n_splits, seed, labels=labels, folds=folds, ids=ids)
    check_test_sizes(split, len(ids), pooled=scoring.pooled)
    fit = ESTIMATORS[estimator].fit_predict
    per_fold, info = [], []
    pooled = np.full(y.shape, np.nan)
    for train, test in split:
        pred, chosen = fit(g, y, train, test, alphas=alphas, per_neuroid_alpha=per_neuroid_alpha,
                           n_components=n_components)
        pooled[test] = pred
        if not scoring.pooled:
            per_fold.append(column_pearson(pred, y[test]))
        info.append(chosen)
    per_fold = column_pearson(pooled, y)[None, :] if scoring.pooled else np.stack(per_fold)
    per_neuroid = per_fold.mean(axis=0)
    usable = np.isfinite(per_neuroid)
    if not usable.all():
        warnings.warn(f"linear predictivity undefined (constant responses or predictions in a fold) for neuroids "
                      f"{preview([neuroids[i] for i in np.flatnonzero(~usable)])}; they are NaN and left out "
                      "of the median", RuntimeWarning, stacklevel=2)
    ceil_value = float("nan")
    if ceiling is not None:
        from rsa_bridge.measures.ceilings import usable_neuroids

        ceiling = np.asarray(ceiling, dtype=np.float64)
        if ceiling.shape != per_neuroid.shape:
            raise RSABridgeError(f"{ceiling.size} ceilings for {per_neuroid.size} neuroids")
        usable &= usable_neuroids(ceiling, neuroids)
        ceil_value = float(np.median(ceiling[usable])) if usable.any() else float("nan")
    if not usable.any():
        median = mean = float("nan")
    else:
        median, mean = float(np.median(per_neuroid[usable])), float(np.mean(per_neuroid[usable]))
    return Predictivity(per_fold=per_fold, per_neuroid=per_neuroid, median=median, mean=mean,
                        neuroid_ids=neuroids, ceiling=ceil_value,
                        normalized=median / ceil_value if np.isfinite(ceil_value) else float("nan"),
                        excluded=[neuroids[i] for i in np.flatnonzero(~usable)], fold_info=info,
                        estimator=estimator, cv_score=scoring.name)
