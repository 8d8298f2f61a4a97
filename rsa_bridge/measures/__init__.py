"""Model-brain measures beyond RSA, all computed from each layer's stimulus x stimulus Gram matrix.

:data:`MEASURES` is the registry ``compare --measure NAME`` reads (name -> :class:`Measure`):

========== ============================================================= ==================================
name       score of one layer against one area                           needs
========== ============================================================= ==================================
rsa        comparison of the layer RDM with the area's RDMs (today's)    layer RDM, area RDMs
cka        linear CKA of the layer Gram and the neural Gram              layer Gram, responses
linear     median over neuroids of cross-validated Pearson r (ridge)     layer Gram, per-stimulus responses
procrustes ||X^T Y||_* / (||X|| ||Y||) (cos of the angular shape metric) layer Gram, responses
shape      cos of the generalised shape metric with --shape-alpha         layer Gram, responses
shape_cv   the same, rotation and whitening fitted on training folds, held-out layer Gram, responses
cca        mean canonical correlation                                    layer Gram, responses
svcca      mean CCA of the directions holding 99 % of each's variance    layer Gram, responses
pwcca      projection-weighted mean CCA (L2 weights, layer side)         layer Gram, responses
mutual_knn share of the 10 nearest neighbours in common                  layer Gram, responses
cknna      centred kernel nearest-neighbour alignment (k = 10)           layer Gram, responses
========== ============================================================= ==================================

Modules: :mod:`.cka` (linear, debiased, RBF CKA), :mod:`.ridge` (dual ridge, RidgeCV-equal alpha selection),
:mod:`.pls` (Brain-Score PLS in the dual), :mod:`.folds`, :mod:`.predictivity`, :mod:`.ceilings`,
:mod:`.agreement` (do the measures pick the same best layer?), :mod:`.procrustes` (Procrustes and the shape metrics),
:mod:`.cca` (mean CCA, SVCCA, PWCCA), :mod:`.knn` (mutual k-NN, CKNNA), all from :mod:`.spectral` or the Gram,
scored and resampled by :mod:`.gram_scoring` (bootstrap samples of full-rank layers without an eigendecomposition:
:mod:`.lowrank`).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Measure:
    """One measure: its name, definition and what peers call it, and how a figure shows it.

    ``axis_label``: the score's axis label, ``{method}`` filled with the row's method (``spearman`` ->
    ``Spearman r``, ``ridge``...). ``ceiling_scale``: how the stored ``measure_ceiling`` maps onto the score's
    scale (``"identity"``, or ``"sqrt"`` for a reliability of averages when the score is a correlation r: a
    perfect model reaches r = sqrt(reliability)); ``ceiling_label``: the legend's definition of the line drawn;
    ``bootstrap_over``: what its bootstrap (CI, p_best) resamples; ``ceiling_style``: ``"band"`` (lower to upper
    bound, the ``ceiling_lower``/``ceiling_upper`` columns) or ``"line"`` (one value, ``measure_ceiling``).

    ``needs_responses``: it needs the area's per-stimulus responses (repeat-level rates), not only its RDMs.
    ``check``: ``check(n_stimuli, options, labels)`` raising RSABridgeError when the design cannot give a
    meaningful score (e.g. too few held-out stimuli per fold); ``compare`` runs it before the forward pass
    (:mod:`rsa_bridge.app.preflight`). ``options`` is a :class:`rsa_bridge.measures.scoring.MeasureOptions`.

    ``gram_score``: ``gram_score(K, L, **settings) -> float``, the measure of a layer Gram K against the neural
    Gram L (each (n, n), or what ``gram_prepare(G)`` made of it): a measure with it is scored, bootstrapped,
    permuted and ceiled by :mod:`rsa_bridge.measures.gram_scoring` with no code of its own. ``ceiling_short``:
    the printed block's name of its ceiling. ``reference``: the paper its definition follows.

    ``settings``: ``settings(options) -> {keyword: value}``, the keywords ``gram_score`` takes from the run's
    ``MeasureOptions`` (shape: ``alpha``; k-NN: ``topk``; SVCCA: ``keep``); :meth:`bound` fixes them and
    ``MeasureOptions.attrs`` records them. ``resample_refusal``: why the measure cannot be bootstrapped over
    stimuli ("" = it can); a job asking for it is refused before compute (:func:`check_resampling`).
    ``gram_resample``: ``gram_resample(G, idx)`` = ``gram_prepare(G[idx][:, idx])`` computed faster (a bootstrap
    sample's eigenproblem over its distinct stimuli only); None: the resampled Gram is prepared as it is.
    ``eigen``: its ``gram_prepare`` eigendecomposes each (n, n) Gram (n^3 time, a few n^2 floats of memory;
    checked against the memory by :func:`rsa_bridge.budget.check_eigen_memory` before the forward pass).
    ``draw_score``: ``draw_score(pair, **settings)``, the measure on a bootstrap draw from a
    :class:`rsa_bridge.measures.lowrank.DrawPair` (a full-rank layer against the neural factor) with no layer
    eigendecomposition, equal to ``gram_score`` of the resampled Grams to rounding; None: only ``gram_resample``.
    ``factor_prepare``: ``factor_prepare(F)`` = ``gram_prepare(F F^T)`` from the (n, q) factor F itself (the
    neural responses: a thin SVD instead of the n x n eigenproblem); None: the Gram is prepared.
    ``draw_eigen``: its ``draw_score`` eigendecomposes the layer's drawn Gram anyway (SVCCA), so the other
    measures of the same draw take what they need from that decomposition (:attr:`DrawPair.eigen`) instead of
    their own factorisations.

    Model x model maps (:mod:`rsa_bridge.measures.model_map`): ``map_input`` says what the measure compares two
    layers by, ``"gram"`` (the two layer Grams: ``map_score(map_prepare(K_a), map_prepare(K_b))``) or ``"rdm"``
    (the two layer RDMs, compared by the run's ``--method``); ``map_score`` None and ``map_input`` "gram": it
    has no layer x layer form (``map_refusal`` says why).
    """

    name: str
    long_name: str
    definition: str
    needs_responses: bool
    peers: str
    axis_label: str = "{method}"
    ceiling_scale: str = "identity"
    ceiling_label: str = "ceiling"
    bootstrap_over: str = "stimuli"
    ceiling_style: str = "line"
    check: Callable[[int, Any, Any], None] | None = None
    gram_score: Callable[[Any, Any], float] | None = None
    gram_prepare: Callable[[Any], Any] | None = None
    ceiling_short: str = ""
    reference: str = ""
    settings: Callable[[Any], dict] | None = None
    resample_refusal: str = ""
    eigen: bool = False
    gram_resample: Callable[[Any, Any], Any] | None = None
    factor_prepare: Callable[[Any], Any] | None = None
    draw_score: Callable[[Any], float] | None = None
    draw_eigen: bool = False
    map_input: str = "gram"
    map_score: Callable[[Any, Any], float] | None = None
    map_prepare: Callable[[Any], Any] | None = None
    map_refusal: str = ""

    def bound(self, options) -> Measure:
        """This record with ``gram_score`` taking its ``settings`` from ``options`` (itself when it has none)."""
        if self.settings is None or self.gram_score is None or options is None:
            return self
        from dataclasses import replace
        from functools import partial

        keywords = self.settings(options)
        return replace(self, gram_score=partial(self.gram_score, **keywords),
                       draw_score=None if self.draw_score is None else partial(self.draw_score, **keywords),
                       map_score=None if self.map_score is None else partial(self.map_score, **keywords))


def _check_linear(n_stimuli: int, options, labels=None) -> None:
    from rsa_bridge.measures.scoring import check_linear_design

    check_linear_design(n_stimuli, options, labels)


def _lazy(module: str, name: str, **kwargs) -> Callable:
    """``rsa_bridge.measures.<module>.<name>(*args, **kwargs)``, imported on the first call (a light registry)."""
    def call(*args, **more):
        from importlib import import_module

        return getattr(import_module(f"rsa_bridge.measures.{module}"), name)(*args, **kwargs, **more)

    call.__qualname__ = call.__name__ = f"{module}.{name}"
    return call


def _check_knn(n_stimuli: int, options=None, labels=None) -> None:
    from rsa_bridge.errors import RSABridgeError
    from rsa_bridge.measures.knn import DEFAULT_K

    k = getattr(options, "knn_k", DEFAULT_K)
    if n_stimuli < k + 2:
        raise RSABridgeError(f"--measure mutual_knn/cknna use the {k} nearest neighbours of each stimulus and "
                             f"need at least {k + 2} stimuli; got {n_stimuli}: drop the measure or lower --knn-k")


#: why the k-NN measures refuse a bootstrap over stimuli
_KNN_NO_BOOTSTRAP = ("a stimulus drawn twice is its own nearest neighbour in both representations, so every "
                     "bootstrap sample inflates the score")


_SPECTRUM = _lazy("spectral", "gram_spectrum")


def _gram_measure(name: str, long_name: str, definition: str, peers: str, score: Callable, *, reference: str,
                  prepare: Callable | None = _SPECTRUM, check=None, settings=None, **fields) -> Measure:
    """A measure of the two Grams; ``fields``: more :class:`Measure` fields (``resample_refusal``, ``eigen``)."""
    fields.setdefault("eigen", prepare is _SPECTRUM)
    return Measure(name, long_name, definition, True, peers, axis_label=long_name,
                   ceiling_label=f"ceiling: split-half {long_name} of the neural data",
                   gram_score=score, gram_prepare=prepare, ceiling_short=f"split-half {name}", reference=reference,
                   check=check, settings=settings, map_score=score, map_prepare=prepare,
                   gram_resample=_lazy("spectral", "resampled_spectrum") if prepare is _SPECTRUM else None,
                   factor_prepare=_lazy("spectral", "factor_spectrum") if prepare is _SPECTRUM else None, **fields)


def _knn_settings(options) -> dict:
    return {"topk": options.knn_k}


MEASURES: dict[str, Measure] = {
    "rsa": Measure("rsa", "representational similarity (RSA)",
                   "compare(RDM_layer, RDM_area) with --method (default Spearman)", False,
                   "rsatoolbox compare; Net2Brain RSA; thingsvision compare_rdms; Brain-Score rdm",
                   axis_label="RSA ({method})", ceiling_label="noise ceiling (lower to upper bound)",
                   ceiling_style="band", map_input="rdm"),
    "cka": Measure("cka", "linear centred kernel alignment",
                   "<HKH, HLH>_F / (|HKH|_F |HLH|_F), K = layer Gram, L = neural Gram", True,
                   "Brain-Score cka; Net2Brain CKA; thingsvision CKA(kernel='linear'); rsatoolbox cosine_cov",
                   axis_label="linear CKA", ceiling_label="ceiling: split-half CKA of the neural data",
                   ceiling_short="split-half CKA", reference="Kornblith et al. 2019",
                   map_score=_lazy("model_map", "unit_dot"), map_prepare=_lazy("model_map", "unit_centred")),
    "linear": Measure("linear", "cross-validated linear predictivity",
                      "median_neuroids mean_folds pearson(ridge prediction, held-out response)", True,
                      "Brain-Score neural predictivity (pls); Net2Brain encoding (ridge); not in thingsvision/rsatoolbox",
                      check=_check_linear,
                      axis_label="linear predictivity (median Pearson r, {method})", ceiling_scale="sqrt",
                      ceiling_label="ceiling: √(split-half reliability) = r of a perfect model",
                      bootstrap_over="neuroids", ceiling_short="median split-half r, Spearman-Brown",
                      reference="Yamins et al. 2014; Schrimpf et al. 2018",
                      map_refusal="it fits a regression onto neuroids (not symmetric, no layer x layer form); use "
                                  "--measure cka, procrustes or shape for a model x model map"),
    "procrustes": _gram_measure(
        "procrustes", "Procrustes similarity",
        "||Xc^T Yc||_* / (||Xc||_F ||Yc||_F) = sum sqrt eig(Kc Lc) / sqrt(tr Kc tr Lc); angular distance = "
        "arccos(score), Euclidean (unit norm) = sqrt(2 - 2 score)",
        "netrep LinearMetric(alpha=1) (angular: arccos of it); similarity-repository procrustes; "
        "not in Brain-Score/Net2Brain/thingsvision/rsatoolbox",
        _lazy("procrustes", "procrustes_similarity"), reference="Williams et al. 2021; Ding et al. 2021",
        draw_score=_lazy("lowrank", "procrustes")),
    "shape": _gram_measure(
        "shape", "shape-metric similarity",
        "cos of the angular shape metric: Procrustes similarity of Xc C_a^{-1/2} and Yc C_a^{-1/2}, "
        "C_a = (1 - a) Xc^T Xc / n + a I, a = --shape-alpha (0: CCA, 1: Procrustes)",
        "netrep LinearMetric(alpha) (angular: arccos of it; its code interpolates the whitening matrix instead: "
        "differs for 0 < a < 1); not in Brain-Score/Net2Brain/thingsvision/rsatoolbox",
        _lazy("procrustes", "shape_metric_similarity"), reference="Williams et al. 2021",
        settings=lambda options: {"alpha": options.shape_alpha}, draw_score=_lazy("lowrank", "shape")),
    "shape_cv": _gram_measure(
        "shape_cv", "cross-validated shape-metric similarity",
        "mean over --folds folds of the held-out cosine <Xte~ Q, Yte~> / (|Xte~| |Yte~|): training-mean centring, "
        "whitening by (1 - a) Xtr^T Xtr / n_tr + a I and Procrustes rotation Q fitted on the training stimuli, "
        "a = --shape-alpha",
        "not in netrep (in-sample fit) / Brain-Score / Net2Brain / thingsvision / rsatoolbox",
        _lazy("shape_cv", "shape_cv_similarity"), reference="Williams et al. 2021 (held-out evaluation)",
        prepare=None, check=_lazy("shape_cv", "check_shape_cv"), eigen=True,
        settings=lambda options: {"alpha": options.shape_alpha, "n_splits": options.n_splits,
                                  "seed": options.fold_seed},
        resample_refusal="a stimulus drawn twice can fall in a training and a held-out fold, so the held-out score leaks"),
    "cca": _gram_measure(
        "cca", "mean CCA", "mean of the canonical correlations = singular values of U_K^T U_L (eigenbases of Kc, Lc)",
        "netrep LinearMetric(alpha=0) (its angle uses sum rho / sqrt(r_X r_Y)); svcca repo cca mean; "
        "similarity-repository cca", _lazy("cca", "mean_cca"), reference="Hotelling 1936; Raghu et al. 2017",
        draw_score=_lazy("lowrank", "cca")),
    "svcca": _gram_measure(
        "svcca", "SVCCA", "mean CCA of the leading eigen-directions of Kc and of Lc holding 99% of each's variance",
        "google/svcca (Raghu et al.); similarity-repository svcca", _lazy("cca", "svcca"),
        reference="Raghu et al. 2017", settings=lambda options: {"keep": options.svcca_keep},
        draw_score=_lazy("lowrank", "svcca"), draw_eigen=True),
    "pwcca": _gram_measure(
        "pwcca", "PWCCA", "sum w_i rho_i / sum w_i, w_i = ||Xc^T h_i||_2 (L2, layer side; Morcos et al. use L1)",
        "google/svcca pwcca (L1 weights: differs); similarity-repository pwcca", _lazy("cca", "pwcca"),
        reference="Morcos et al. 2018 (weights: L2 variant)", draw_score=_lazy("lowrank", "pwcca")),
    "mutual_knn": _gram_measure(
        "mutual_knn", "mutual k-NN alignment",
        "mean over stimuli of |N_K(i) ∩ N_L(i)| / 10, neighbours by cosine of the centred Grams",
        "platonic-rep mutual_knn (topk=10; uncentred features)", _lazy("knn", "mutual_knn"), prepare=None,
        check=_check_knn, reference="Huh et al. 2024", settings=_knn_settings, resample_refusal=_KNN_NO_BOOTSTRAP),
    "cknna": _gram_measure(
        "cknna", "CKNNA", "HSIC_u of the mutual-10-NN-masked cosine kernels / sqrt(the self terms)",
        "platonic-rep cknna (topk=10, unbiased; uncentred features)", _lazy("knn", "cknna"), prepare=None,
        check=_check_knn, reference="Huh et al. 2024", settings=_knn_settings, resample_refusal=_KNN_NO_BOOTSTRAP),
}


def check_measures(names) -> list[str]:
    """The measure names in order without repeats; RSABridgeError for an unknown one."""
    from rsa_bridge.errors import RSABridgeError

    out = list(dict.fromkeys(names or ["rsa"]))
    unknown = [n for n in out if n not in MEASURES]
    if unknown:
        raise RSABridgeError(f"unknown measure {unknown[0]!r}; choose from {', '.join(MEASURES)}")
    return out


def check_resampling(names, n_bootstrap: int) -> None:
    """RSABridgeError (one line, before compute) when a measure in ``names`` cannot give ``n_bootstrap`` > 0
    bootstrap samples over stimuli (its record's ``resample_refusal`` says why)."""
    from rsa_bridge.errors import RSABridgeError

    if not n_bootstrap:
        return
    for name in names or ():
        record = MEASURES.get(name)
        if record is not None and record.resample_refusal:
            raise RSABridgeError(f"--measure {name} cannot be bootstrapped over stimuli: {record.resample_refusal}; "
                                 f"use --bootstrap 0 for it (--permutations N still gives p-values)")
