"""Score every layer of one model against one area with CKA and linear predictivity (from layer Grams).

Inputs: the layer Grams ``(layer, stimulus_row, stimulus_col)`` that :mod:`extractors.streaming`
accumulates in the same forward pass as the RDMs (``kernels_out``), and the area's repeat-level
firing rates (``presentation x neuroid``), which give the per-stimulus responses (mean over repetitions),
the neural Gram ``R R^T`` and the split-half ceilings. :data:`RESPONSES_FOR_DATASET` says which shipped
rates belong to which shipped RDM dataset; other datasets need ``responses=`` (``--responses``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import xarray as xr

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.measures.ceilings import cka_ceiling, mean_responses, neuroid_ceiling
from rsa_bridge.measures.cka import linear_cka
from rsa_bridge.measures.inputs import MeasureInput, ModelScores
from rsa_bridge.measures.predictivity import PredictivityOptions, linear_predictivity
from rsa_bridge.measures.stats import LayerStats, cka_stats, neuroid_bootstrap
from rsa_bridge.rdm import ROW

#: shipped RDM dataset -> shipped repeat-level rates of the same neurons and images
RESPONSES_FOR_DATASET = {"cowley2023_v4_210325": "cowley2023_v4_210325_rates"}


@dataclass
class MeasureOptions:
    """Options of the non-RSA measures (recorded in results.nc attrs as ``measure_*``).

    estimator: ``ridge`` or ``pls``; n_splits / fold_seed / labels / folds: cross-validation
    (:func:`rsa_bridge.measures.folds.make_folds`); alphas / per_neuroid_alpha: ridge;
    ceiling_splits: split halves for the ceilings; responses: rates (shipped name, path or DataArray);
    cv_score: ``per-fold`` (mean over folds of each fold's r, needs 5 held-out stimuli per fold) or ``pooled``
    (one r per neuroid over every fold's held-out predictions) (:data:`rsa_bridge.measures.predictivity.CV_SCORES`);
    shape_alpha: the ``shape`` measure's regularisation in [0, 1] (0: CCA, 1: Procrustes); knn_k: neighbours of
    mutual_knn/cknna; svcca_keep: SVCCA's share of the variance kept (in (0, 1]) or a count of directions.
    Each measure's record says which of these it reads (``Measure.settings``); all are recorded.

    Example::

        >>> MeasureOptions(n_splits=4, cv_score="pooled").attrs()["measure_linear_cv_score"]
        'pooled'
    """

    estimator: str = "ridge"
    n_splits: int = 10
    fold_seed: int = 0
    labels: Any = None
    folds: Any = None
    alphas: tuple = tuple(float(a) for a in np.logspace(-5, 5, 11))
    per_neuroid_alpha: bool = False
    ceiling_splits: int = 10
    responses: Any = None
    cv_score: str = "per-fold"
    shape_alpha: float = 0.5
    knn_k: int = 10
    svcca_keep: float | int = 0.99

    def __post_init__(self) -> None:
        from rsa_bridge.measures.procrustes import check_alpha

        self.shape_alpha = check_alpha(self.shape_alpha)
        if isinstance(self.knn_k, bool) or not isinstance(self.knn_k, (int, np.integer)) or self.knn_k < 1:
            raise RSABridgeError(f"knn_k (--knn-k) is a number of neighbours >= 1; got {self.knn_k!r}")
        keep = self.svcca_keep
        if isinstance(keep, bool) or not (isinstance(keep, (int, np.integer)) and keep >= 1
                                          or isinstance(keep, float) and 0 < keep <= 1):
            raise RSABridgeError(f"svcca_keep is a share of the variance in (0, 1] or a count of directions >= 1; "
                                 f"got {keep!r}")

    def attrs(self) -> dict:
        from rsa_bridge.measures import MEASURES
        from rsa_bridge.measures.predictivity import check_cv_score

        settings = {f"measure_{name}_{key}": value for name, record in MEASURES.items() if record.settings
                    for key, value in record.settings(self).items()}

        scoring = check_cv_score(self.cv_score)
        return {"measure_cka": "linear CKA (Kornblith et al. 2019) of layer and neural Grams",
                "measure_cka_ceiling": "mean over split halves of CKA(half-A, half-B neural Gram)",
                "measure_linear": f"{self.estimator}, {self.n_splits}-fold CV (seed {self.fold_seed}"
                                  f"{', user folds' if self.folds is not None else ''}"
                                  f"{', stratified' if self.labels is not None else ''}); "
                                  + ("Pearson r per neuroid over all held-out predictions pooled"
                                     if scoring.pooled else "Pearson r per neuroid, mean over folds")
                                  + ", median over neuroids",
                "measure_linear_cv_score": scoring.name,
                "measure_linear_alphas": ",".join(f"{a:g}" for a in self.alphas),
                "measure_linear_alpha_per_neuroid": int(self.per_neuroid_alpha),
                "measure_linear_ceiling": "median over neuroids of split-half Pearson r, Spearman-Brown corrected",
                "measure_ceiling_splits": self.ceiling_splits,
                "measure_statistics_scheme": "exact: cka/Gram measures bootstrap all n stimuli (the same draws for "
                                             "every Gram measure; the planner's subset scheme is RSA's only); "
                                             "linear bootstraps neuroids; mutual_knn/cknna/shape_cv: no bootstrap",
                **settings}


@dataclass
class AreaScores:
    """Scores of L layers (one model) against one area for one measure."""

    measure: str
    layers: list[str]
    score: np.ndarray
    stats: LayerStats
    ceiling: float = float("nan")
    mean: np.ndarray | None = None
    per_neuroid: np.ndarray | None = None  # (L, t)
    neuroid_ids: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    method: str = ""

    @property
    def normalized(self) -> np.ndarray:
        return self.score / self.ceiling if np.isfinite(self.ceiling) and self.ceiling > 0 else \
            np.full_like(self.score, np.nan)


def area_rates(dataset_name: str, area: str, responses: Any = None, needed_by: str = "cka/linear") -> xr.DataArray:
    """Repeat-level rates (presentation x neuroid) of ``area`` for ``dataset_name`` (or ``responses``).

    ``needed_by``: the measures that need them, for the message when there are none."""
    from rsa_bridge.neural import schema as S
    from rsa_bridge.neural.load import read_neural

    if isinstance(responses, xr.DataArray):
        rates = responses
    else:
        source = responses if responses is not None else RESPONSES_FOR_DATASET.get(str(dataset_name))
        if source is None:
            raise RSABridgeError(f"--measure {needed_by} needs per-stimulus responses of area {area!r}; dataset "
                                 f"{dataset_name!r} holds only RDMs: pass --responses FILE (repeat-level rates) "
                                 f"or drop --measure {needed_by}")
        rates = read_neural(source).data
        if not isinstance(rates, xr.DataArray):
            raise RSABridgeError(f"{source!r} holds RDMs, not firing rates; --measure {needed_by} and --responses "
                                 "need repeat-level rates")
    regions = [str(r) for r in S.flat_coords(rates)[S.REGION].values] if S.REGION in S.flat_coords(rates).coords else []
    return S.select_region(rates, area) if area in regions else rates


def score_area(kernels: xr.DataArray, rates: xr.DataArray, measures: list[str], options: MeasureOptions,
               *, n_bootstrap: int = 0, n_permutations: int = 0, rng: np.random.Generator | None = None,
               level: float = 0.95) -> dict[str, AreaScores]:
    """CKA and/or linear predictivity of every layer Gram in ``kernels`` against ``rates``."""
    rng = rng if rng is not None else np.random.default_rng(0)
    ids = [str(s) for s in kernels[ROW].values]
    resp = mean_responses(rates)
    from rsa_bridge.align import check_same_ids
    check_same_ids(ids, resp["stimulus_id"].values, "the model's stimuli", "the neural responses' stimuli")
    resp = resp.sel(stimulus_id=ids)
    layers = [str(l) for l in kernels["layer"].values]
    grams = np.asarray(kernels.transpose("layer", ...).values, dtype=np.float64)
    out: dict[str, AreaScores] = {}
    if "cka" in measures:
        values = resp.values
        if not np.isfinite(values).all():
            raise RSABridgeError("neural responses contain NaN (a stimulus without presentations?); CKA needs all")
        neural = values @ values.T
        score = np.array([linear_cka(g, neural) for g in grams])
        st = cka_stats(grams, neural, score, n_bootstrap=n_bootstrap, n_permutations=n_permutations, rng=rng,
                       level=level)
        ceiling = cka_ceiling(rates, options.ceiling_splits, options.fold_seed, stimulus_ids=ids)
        out["cka"] = AreaScores("cka", layers, score, st, ceiling=ceiling, method="linear_cka")
    if "linear" in measures:
        ceil = neuroid_ceiling(rates, options.ceiling_splits, options.fold_seed)
        ceil = ceil.values
        results = []
        import warnings
        fit = PredictivityOptions(labels=options.labels, folds=options.folds, alphas=options.alphas,
                                  per_neuroid_alpha=options.per_neuroid_alpha)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            for g in grams:
                results.append(linear_predictivity(g, resp, estimator=options.estimator, n_splits=options.n_splits,
                                                   seed=options.fold_seed, ceiling=ceil, cv_score=options.cv_score,
                                                   options=fit))
        for note in dict.fromkeys(str(w.message) for w in caught):
            warnings.warn(note, RuntimeWarning, stacklevel=2)
        per = np.stack([r.per_neuroid for r in results])
        excluded = set(results[0].excluded)  # a set: linear in the neuroids
        usable = [i for i, n in enumerate(results[0].neuroid_ids) if n not in excluded]
        st = neuroid_bootstrap(per[:, usable], n_bootstrap=n_bootstrap, rng=rng, level=level)
        out["linear"] = AreaScores("linear", layers, np.array([r.median for r in results]), st,
                                   ceiling=results[0].ceiling, mean=np.array([r.mean for r in results]),
                                   per_neuroid=per, neuroid_ids=results[0].neuroid_ids,
                                   excluded=sorted(set().union(*[r.excluded for r in results])),
                                   method=linear_label(options))
    from rsa_bridge.measures import MEASURES
    records = [MEASURES[n] for n in measures if n in MEASURES and MEASURES[n].gram_score is not None]
    if records:  # any measure of the two Grams, by its record; together: one eigendecomposition per Gram
        from rsa_bridge.measures.gram_scoring import score_gram_measures
        scored = score_gram_measures(records, grams, resp, rates, ids, options, stats=dict(
            n_bootstrap=n_bootstrap, n_permutations=n_permutations, rng=rng, level=level))
        for record, (score, st, ceiling) in zip(records, scored):
            out[record.name] = AreaScores(record.name, layers, score, st, ceiling=ceiling, method=record.name)
    return out


def linear_label(options: MeasureOptions) -> str:
    """The ``method`` of linear rows: the estimator, plus ``pooled r`` when the held-out predictions are pooled."""
    from rsa_bridge.measures.predictivity import check_cv_score

    return f"{options.estimator}, pooled r" if check_cv_score(options.cv_score).pooled else options.estimator


def check_linear_design(n_stimuli: int, options: MeasureOptions, labels=None) -> None:
    """Refuse (one line, with the fix) folds that cannot give a meaningful held-out r, before any compute.

    The folds are made as :func:`rsa_bridge.measures.predictivity.linear_predictivity` will make them (same
    n, seed, labels, user folds) and checked by :func:`rsa_bridge.measures.folds.check_test_sizes`.
    ``labels``: one label per stimulus when stratified (None: ``options.labels`` if it is not a column name).
    """
    from rsa_bridge.measures.folds import check_test_sizes, make_folds
    from rsa_bridge.measures.predictivity import ESTIMATORS, check_cv_score

    scoring = check_cv_score(options.cv_score)
    if options.estimator not in ESTIMATORS:
        raise RSABridgeError(f"unknown estimator {options.estimator!r}; choose one of {', '.join(ESTIMATORS)}")
    if labels is None and not isinstance(options.labels, str):
        labels = options.labels
    folds = make_folds(n_stimuli, options.n_splits, options.fold_seed, labels=labels, folds=options.folds)
    check_test_sizes(folds, n_stimuli, pooled=scoring.pooled)


def score_models(inputs: Sequence[MeasureInput], measures: list[str], options: MeasureOptions, stats,
                 rates: dict | None = None) -> list[ModelScores | None]:
    """Score each model's layer Grams against its areas: one :class:`ModelScores` per input (None: no Grams).

    ``inputs``: :class:`rsa_bridge.measures.inputs.MeasureInput` records (the core's own type; the app builds
    them from its records and stores what comes back). ``measures``: e.g. ``["cka", "linear"]``.
    ``stats`` is the run's :class:`rsa_bridge.options.StatsOptions` (bootstrap, permutations, seed, CI level).
    ``rates``: the areas' rates already read (and checked) by the preflight, ``{(dataset name, area): DataArray}``
    of shape (presentation, neuroid); others are read here (:func:`area_rates`). An input without Grams (an
    image-statistics control) gives None and a warning. Nothing is mutated.

    Example (see tests/test_core_types.py)::

        scored = score_models([MeasureInput("m", "random", "d", ("V4",), rdms, grams)], ["cka"],
                              MeasureOptions(), StatsOptions(), rates={("d", "V4"): rates})
        scored[0].scores["V4"]["cka"].score   # (layer,) linear CKA
    """
    import warnings

    from rsa_bridge.stats.resample import as_generator

    rng = as_generator(stats.seed)
    rates_by_area: dict = dict(rates or {})
    out: list[ModelScores | None] = []
    for item in inputs:
        if not item.kernels:
            warnings.warn(f"{item.model} has no layer Gram matrices (an image-statistics control); "
                          f"{', '.join(measures)} skipped for it", RuntimeWarning, stacklevel=2)
            out.append(None)
            continue
        kernels = item.kernel_stack()
        scores = {}
        opts = options
        if isinstance(options.labels, str):  # a manifest column: one label per stimulus, by stimulus_id
            opts = _with_manifest_labels(options, item.stimuli, item.stimulus_ids)
        for area in item.areas:
            key = (item.dataset, area)
            if key not in rates_by_area:
                rates_by_area[key] = area_rates(item.dataset, area, opts.responses)
            scores[area] = score_area(kernels, rates_by_area[key], measures, opts, n_bootstrap=stats.bootstrap,
                                      n_permutations=stats.permutations, rng=rng, level=stats.ci_level)
        out.append(ModelScores.of(item, scores))
    return out


def _with_manifest_labels(options: MeasureOptions, stimuli, ids: list[str]) -> MeasureOptions:
    """A copy of ``options`` whose ``labels`` (a manifest column name) are replaced by one value per stimulus."""
    from dataclasses import replace

    manifest = getattr(stimuli, "manifest", None)
    column = options.labels
    if manifest is None or column not in manifest:
        have = ", ".join(c for c in (manifest.columns if manifest is not None else []) if c not in ("filename",))
        raise RSABridgeError(f"--stratify-by {column!r}: the stimulus manifest has no such column (it has {have})")
    by_id = dict(zip(manifest["stimulus_id"].astype(str), manifest[column]))
    return replace(options, labels=[by_id[i] for i in ids])
