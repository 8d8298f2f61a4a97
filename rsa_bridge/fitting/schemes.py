"""The light registries of fitted-model evaluation and variance partitioning (standard library only, so the
command line builds ``--scheme`` and ``--transform`` from them without importing numpy).

- :data:`EVALUATORS`: evaluation scheme -> :class:`Evaluator` (``crossval``, ``bootstrap_crossval``,
  ``dual_bootstrap``); each record's ``run(data, specs, options, rng) -> (evaluations, dims)`` makes the
  seeded folds and draws and calls :mod:`rsa_bridge.fitting.evaluate`.
- :data:`VARIANTS`: the three samples of the dual bootstrap.
- :data:`PARTITION_TRANSFORMS`: how RDM vectors are transformed before variance partitioning.

Example:
    >>> list(EVALUATORS), EVALUATORS["dual_bootstrap"].rsatoolbox
    (['crossval', 'bootstrap_crossval', 'dual_bootstrap'], 'eval_dual_bootstrap')
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from rsa_bridge.registry import Registry

#: the samples of the dual bootstrap, in evaluation order: what each one resamples
VARIANTS: dict[str, str] = {
    "both": "groups (subjects) and stimuli",
    "rdm": "groups (subjects) only, all stimuli",
    "pattern": "stimuli only, all groups",
}


def _crossval(data, specs, options, rng):
    from rsa_bridge.fitting import evaluate as ev
    from rsa_bridge.fitting.folds import make_folds

    folds = make_folds(data.groups, data.stimulus_ids, options.k_pattern, options.k_rdm, rng)
    return ev.crossval(data, specs, folds, options.method)[0], ("model", "fold")


def _draws(data, options, rng) -> list:
    from rsa_bridge.fitting.folds import make_draw

    return [make_draw(data.groups, data.stimulus_ids, rng) for _ in range(options.n_boot)]


def _sets(groups, stimuli, options, rng) -> list:
    from rsa_bridge.fitting.folds import make_folds

    return [make_folds(groups, stimuli, options.k_pattern, options.k_rdm, rng) for _ in range(options.n_cv)]


def _bootstrap(data, specs, options, rng):
    from rsa_bridge.fitting import evaluate as ev

    draws = _draws(data, options, rng)
    folds = [_sets(d.groups, d.stimuli, options, rng) if ev.usable(d, options) else None for d in draws]
    return ev.bootstrap_crossval(data, specs, draws, folds, options), ("sample", "model", "fold", "cv")


def _dual(data, specs, options, rng):
    from rsa_bridge.fitting import evaluate as ev

    draws = _draws(data, options, rng)
    folds = []
    for d in draws:
        variants = ((d.groups, d.stimuli), (d.groups, data.stimulus_ids), (data.groups, d.stimuli))
        folds.append([_sets(g, s, options, rng) for g, s in variants] if ev.usable(d, options) else None)
    return ev.dual_bootstrap(data, specs, draws, folds, options), ("sample", "model", "fold", "cv", "variant")


@dataclass(frozen=True)
class Evaluator:
    """An evaluation scheme: ``run(data, specs, options, rng) -> (evaluations, dims)``; ``bootstrap`` says
    whether it has a variance and CIs (:mod:`rsa_bridge.fitting.summary`)."""

    name: str
    definition: str
    run: Callable[..., Any]
    bootstrap: bool
    rsatoolbox: str


#: scheme name -> record
EVALUATORS = Registry("evaluation scheme", {
    "crossval": Evaluator("crossval", "k-fold cross-validation over stimuli (and subjects), once", _crossval, False,
                          "crossval + sets_k_fold"),
    "bootstrap_crossval": Evaluator("bootstrap_crossval", "the cross-validation inside a bootstrap over subjects "
                                    "and stimuli", _bootstrap, True, "bootstrap_crossval"),
    "dual_bootstrap": Evaluator("dual_bootstrap", "the cross-validation inside bootstraps over subjects and "
                                "stimuli, over subjects only and over stimuli only, combined", _dual, True,
                                "eval_dual_bootstrap"),
})


def _identity(v):
    return v


def _ranks(v):
    from scipy.stats import rankdata

    return rankdata(v, axis=-1, method="average")


#: partition transform name -> (function on (X, m) vectors, description)
PARTITION_TRANSFORMS = Registry("partition transform", {
    "none": (_identity, "the dissimilarities as they are"),
    "ranks": (_ranks, "average ranks of each vector (ties share their mean rank)"),
})
