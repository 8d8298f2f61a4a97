"""Cross-validated evaluation of fitted RDM models, plain and inside bootstraps (rsatoolbox's schemes).

For one sample of the data (all of it, or a :class:`~rsa_bridge.fitting.folds.Draw`) and each
:class:`~rsa_bridge.fitting.folds.Fold`, every model is fitted on the training groups' RDMs restricted to the
training stimuli and scored on the test groups' RDMs restricted to the test stimuli:

    evaluation = mean over test RDMs d of  similarity(w @ V_test, d)

(``similarity`` the comparison method; pairs of two copies of one stimulus are left out, see
:mod:`rsa_bridge.fitting.data`). A fold with no training or test RDM, or at most 2 training or test stimuli
(counting copies), scores NaN; a draw with fewer than ``k_rdm`` distinct groups or ``3 k_pattern`` distinct
stimuli scores NaN in every fold (rsatoolbox's rules).

Evaluators (:data:`EVALUATORS`): ``crossval`` (rsatoolbox ``crossval``: the folds once, shape
(model, fold)), ``bootstrap_crossval`` (``bootstrap_crossval``, boot_type both: ``n_cv`` fold sets per draw,
shape (sample, model, fold, cv)) and ``dual_bootstrap`` (``eval_dual_bootstrap``: each draw evaluated three
times, resampling groups and stimuli (``both``), groups only (``rdm``), stimuli only (``pattern``), shape
(sample, model, fold, cv, variant)). Their summaries are in :mod:`rsa_bridge.fitting.summary`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.fitting.data import FitData, vectors
from rsa_bridge.fitting.fitters import FITTERS, ModelSpec
from rsa_bridge.fitting.folds import Draw, Fold

from rsa_bridge.fitting.schemes import VARIANTS


@dataclass(frozen=True)
class CVOptions:
    """Options of a cross-validated evaluation.

    Attributes:
        method: comparison method (a name in :data:`rsa_bridge.methods.METHODS`).
        k_pattern: folds over stimuli (1 = no cross-validation over stimuli).
        k_rdm: folds over groups / subjects (1 = none).
        n_boot: bootstrap draws.
        n_cv: fold sets per draw (>= 2 for the cross-validation correction of the variance).
        seed: seed of the draws and folds.
        ci: confidence level, in (0, 1).
        correction: apply rsatoolbox's correction for the variance the random folds add (needs n_cv >= 2).
    """

    method: str = "pearson"
    k_pattern: int = 2
    k_rdm: int = 1
    n_boot: int = 1000
    n_cv: int = 2
    seed: int = 0
    ci: float = 0.95
    correction: bool = True


class Prepared:
    """The per-model rows and fitters of a list of :class:`ModelSpec` (checked before any compute)."""

    def __init__(self, data: FitData, specs: Sequence[ModelSpec], method: str):
        from rsa_bridge.methods import get

        if not specs:
            raise RSABridgeError("no fitted model given; name at least one (e.g. weighted with fitter nnls)")
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise RSABridgeError(f"fitted model names repeat ({', '.join(names)}); give each model its own name")
        self.method = get(method)
        self.specs = tuple(specs)
        self.rows = [s.rows(data.model_names) for s in specs]
        self.fitters = [FITTERS[s.fitter_name] for s in specs]
        from rsa_bridge.fitting.fitters import check_method

        for f in self.fitters:
            check_method(f, self.method.name)  # nnls / regress only for the methods they fit for, before any fit
        self.data = data

    def fit(self, j: int, rows: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Weights (K_j,) of model j fitted on brain RDM rows ``rows`` over stimulus ``positions``."""
        V = vectors(self.data.model_rdms[self.rows[j]], positions)
        D = vectors(self.data.rdms[rows], positions)
        return self.fitters[j].fit(V, D, self.method.name)

    def score(self, j: int, w: np.ndarray, rows: np.ndarray, positions: np.ndarray) -> float:
        """Mean similarity of model j's prediction with weights w to each brain RDM in ``rows``."""
        pred = w @ vectors(self.data.model_rdms[self.rows[j]], positions)
        return float(np.mean(self.method.similarity(pred[None, :], vectors(self.data.rdms[rows], positions))))


def _one_sample(prep: Prepared, groups: Sequence[str], positions: np.ndarray, folds: Sequence[Fold],
                weights: list | None = None) -> np.ndarray:
    """(M, F) evaluations of every model on one sample (groups with repeats, sorted positions with repeats)."""
    data = prep.data
    out = np.full((len(prep.specs), len(folds)), np.nan)
    ids = np.array(data.stimulus_ids)
    for f, fold in enumerate(folds):
        train_rows = data.rows_of([g for g in groups if g in set(fold.train_groups)])
        test_rows = data.rows_of([g for g in groups if g in set(fold.test_groups)])
        train_pos = positions[np.isin(ids[positions], fold.train_stimuli)]
        test_pos = positions[np.isin(ids[positions], fold.test_stimuli)]
        if min(len(train_rows), len(test_rows)) == 0 or min(len(train_pos), len(test_pos)) <= 2:
            continue
        for j in range(len(prep.specs)):
            try:
                w = prep.fit(j, train_rows, train_pos)
                out[j, f] = prep.score(j, w, test_rows, test_pos)
            except RSABridgeError:
                if weights is not None:  # plain cross-validation: the user's folds, say what is wrong
                    raise
                continue  # a bootstrap fold whose few pairs make the similarity undefined: NaN, as in rsatoolbox
            if weights is not None:
                weights.append((j, f, w))
    return out


def check_folds(data: FitData, folds: Sequence[Fold]) -> None:
    """One-line refusal of folds that name unknown groups or stimuli, or hold fewer than 3 stimuli."""
    known_g, known_s = set(data.groups), set(data.stimulus_ids)
    for i, fold in enumerate(folds):
        bad = (set(fold.train_groups) | set(fold.test_groups)) - known_g
        if bad:
            raise RSABridgeError(f"fold {i} names groups {sorted(bad)} that the data does not have "
                                 f"({', '.join(data.group_values())})")
        data.positions_of(fold.train_stimuli + fold.test_stimuli)
        if min(len(fold.train_stimuli), len(fold.test_stimuli)) < 3:
            raise RSABridgeError(f"fold {i} has {len(fold.train_stimuli)} training and {len(fold.test_stimuli)} test "
                                 "stimuli; every fold needs at least 3 of each: use fewer folds (--folds)")


def crossval(data: FitData, specs: Sequence[ModelSpec], folds: Sequence[Fold], method: str = "pearson"
             ) -> tuple[np.ndarray, list]:
    """Evaluations (M, F) of each model on each fold, and the fitted weights ``[(model, fold, w), ...]``.

    Example:
        >>> from rsa_bridge.fitting.folds import make_folds
        >>> import numpy as np
        >>> d = demo_data()
        >>> folds = make_folds(d.group_values(), d.stimulus_ids, 2, 1, np.random.default_rng(0))
        >>> crossval(d, [ModelSpec("w")], folds)[0].shape
        (1, 2)
    """
    prep = Prepared(data, specs, method)
    check_folds(data, folds)
    weights: list = []
    evals = _one_sample(prep, data.groups, np.arange(data.n_stimuli), folds, weights)
    return evals, weights


def _check_boot(data: FitData, options: CVOptions, need_groups: bool) -> None:
    n_groups = len(data.group_values())
    if options.k_rdm > n_groups:
        raise RSABridgeError(f"{options.k_rdm} folds over subjects need at least as many subjects; the data has "
                             f"{n_groups}: lower --subject-folds")
    if need_groups and n_groups < 2:
        raise RSABridgeError("the dual bootstrap resamples subjects, and the data has one; use bootstrap_crossval "
                             "(stimuli only) or give RDMs of several subjects")
    if 3 * options.k_pattern > data.n_stimuli:
        raise RSABridgeError(f"{options.k_pattern} folds over stimuli need at least {3 * options.k_pattern} stimuli; "
                             f"the data has {data.n_stimuli}: lower --folds")
    if options.correction and options.n_cv < 2:
        raise RSABridgeError("the cross-validation correction of the variance needs at least 2 fold sets per draw "
                             "(n_cv >= 2); raise n_cv or turn the correction off")


def usable(draw: Draw, options: CVOptions) -> bool:
    return len(set(draw.groups)) >= options.k_rdm and len(set(draw.stimuli)) >= 3 * options.k_pattern


def bootstrap_crossval(data: FitData, specs: Sequence[ModelSpec], draws: Sequence[Draw],
                       folds: Sequence[Sequence[Sequence[Fold]] | None], options: CVOptions = CVOptions()
                       ) -> np.ndarray:
    """(N, M, F, n_cv) evaluations: for draw i and repetition r the models cross-validated on ``folds[i][r]``.

    ``folds[i]`` is ignored (may be None) for a draw that cannot be cross-validated (too few distinct groups or
    stimuli); that draw is NaN.
    """
    prep = Prepared(data, specs, options.method)
    _check_boot(data, options, need_groups=False)
    from rsa_bridge.progress import progress_bar

    n_folds = options.k_pattern * options.k_rdm
    out = np.full((len(draws), len(specs), n_folds, options.n_cv), np.nan)
    for i in progress_bar(range(len(draws)), desc="bootstrap samples", unit="sample"):
        draw = draws[i]
        if not usable(draw, options):
            continue
        positions = data.positions_of(draw.stimuli)
        for r in range(options.n_cv):
            out[i, :, :, r] = _one_sample(prep, draw.groups, positions, folds[i][r])
    return out


def dual_bootstrap(data: FitData, specs: Sequence[ModelSpec], draws: Sequence[Draw],
                   folds: Sequence[Sequence[Sequence[Sequence[Fold]]] | None], options: CVOptions = CVOptions()
                   ) -> np.ndarray:
    """(N, M, F, n_cv, 3) evaluations; ``folds[i][v][r]`` are the folds of draw i, variant v (in
    :data:`VARIANTS` order), repetition r."""
    prep = Prepared(data, specs, options.method)
    _check_boot(data, options, need_groups=True)
    from rsa_bridge.progress import progress_bar

    n_folds = options.k_pattern * options.k_rdm
    all_pos = np.arange(data.n_stimuli)
    out = np.full((len(draws), len(specs), n_folds, options.n_cv, len(VARIANTS)), np.nan)
    for i in progress_bar(range(len(draws)), desc="bootstrap samples", unit="sample"):
        draw = draws[i]
        if not usable(draw, options):
            continue
        positions = data.positions_of(draw.stimuli)
        samples = ((draw.groups, positions), (draw.groups, all_pos), (data.groups, positions))
        for v, (groups, pos) in enumerate(samples):
            for r in range(options.n_cv):
                out[i, :, :, r, v] = _one_sample(prep, groups, pos, folds[i][v][r])
    return out


def demo_data(n: int = 12, seed: int = 0) -> FitData:
    """A small random :class:`FitData` (2 subjects x 2 RDMs, 3 model RDMs, n stimuli) for examples and tests."""
    from scipy.spatial.distance import pdist, squareform

    rng = np.random.default_rng(seed)
    feats = rng.normal(size=(3, n, 4))
    models = np.stack([squareform(pdist(f)) for f in feats])
    brain = np.stack([squareform(pdist(np.concatenate([feats[0], feats[1]], 1) + rng.normal(size=(n, 8))))
                      for _ in range(4)])
    return FitData(brain, ("s1", "s1", "s2", "s2"), tuple(f"im{i:02d}" for i in range(n)), models,
                   ("a", "b", "c"), {})
