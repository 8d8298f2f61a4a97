"""Visualness: how well a linear classifier on a layer's prime units tells positives from negatives.

Cross-validation is stratified K-fold (scikit-learn ``StratifiedKFold(folds, shuffle=True,
random_state=seed)``). With ``selection="in_fold"`` (the default) the prime units are chosen again in
every fold from the training stimuli only (histogram edges, KL and top-K all from the training fold),
so the held-out accuracy is not inflated by picking units on the test stimuli; with ``"all"`` they are
chosen once on all stimuli (the paper's setting; optimistic when units are many and stimuli few).
Features are standardised inside the classifier pipeline (fitted on the training fold).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from analyses.unit_attributes.histograms import rank_units, split_classes, unit_divergence
from rsa_bridge.errors import RSABridgeError

from analyses.unit_attributes.defaults import DEFAULT_CLASSIFIER, DEFAULT_FOLDS, DEFAULT_K, SELECTIONS  # noqa: E402,F401,E501


def _logistic(seed: int):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=2000, C=1.0, random_state=seed)


def _linear_svm(seed: int):
    from sklearn.svm import LinearSVC

    return LinearSVC(C=1.0, max_iter=20000, random_state=seed)


def _lda(seed: int):
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    return LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")


#: classifier name -> factory(seed) of an unfitted scikit-learn linear classifier
CLASSIFIERS: dict[str, Callable[[int], object]] = {
    "logistic": _logistic,
    "linear_svm": _linear_svm,
    "lda": _lda,
}


def make_classifier(name: str, seed: int):
    """``StandardScaler`` followed by the linear classifier ``name`` (a key of :data:`CLASSIFIERS`)."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name not in CLASSIFIERS:
        raise RSABridgeError(f"unknown classifier {name!r}; choose one of {', '.join(CLASSIFIERS)}")
    return make_pipeline(StandardScaler(), CLASSIFIERS[name](seed))


@dataclass(frozen=True)
class Visualness:
    """Cross-validated classification of positives vs negatives from K prime units.

    Attributes:
        accuracy: mean over folds of the held-out accuracy (the paper's "visualness").
        accuracy_std: standard deviation of the fold accuracies (ddof=0).
        balanced_accuracy: mean over folds of the held-out balanced accuracy (chance 0.5).
        chance: accuracy of always guessing the larger set (the accuracy's chance level).
        fold_accuracy: (folds,) held-out accuracies.
    """

    accuracy: float
    accuracy_std: float
    balanced_accuracy: float
    chance: float
    fold_accuracy: np.ndarray


def check_folds(is_positive: np.ndarray, folds: int) -> None:
    """RSABridgeError unless each set has at least ``folds`` >= 2 stimuli."""
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or folds < 2:
        raise RSABridgeError(f"folds must be a whole number >= 2, not {folds!r}")
    n_pos = int(np.sum(is_positive))
    n_neg = int(len(is_positive) - n_pos)
    if min(n_pos, n_neg) < folds:
        raise RSABridgeError(
            f"{folds}-fold cross-validation needs at least {folds} stimuli in each set; there are {n_pos} "
            f"positive and {n_neg} negative; lower --folds or add stimuli"
        )


def visualness(values: np.ndarray, is_positive: np.ndarray, k: int = DEFAULT_K, *, bins: int, epsilon: float,
               classifier: str = DEFAULT_CLASSIFIER, folds: int = DEFAULT_FOLDS, seed: int = 0,
               selection: str = "in_fold", prime_units: np.ndarray | None = None) -> Visualness:
    """Cross-validated accuracy of a linear classifier on the top-``k`` units by KL divergence.

    Args:
        values: (n_stimuli, n_units) activations of one layer.
        is_positive: (n_stimuli,) booleans.
        k: number of prime units fed to the classifier (<= n_units).
        bins, epsilon: histogram settings for choosing units (see :mod:`.histograms`).
        classifier: a key of :data:`CLASSIFIERS`.
        folds: stratified folds; seed: their shuffling and the classifier's random state.
        selection: ``in_fold`` (choose units on each training fold) or ``all`` (use ``prime_units``,
            chosen on all stimuli; computed here when None).
    """
    from sklearn.metrics import accuracy_score, balanced_accuracy_score
    from sklearn.model_selection import StratifiedKFold

    values = np.asarray(values, dtype=np.float64)
    mask = split_classes(is_positive, values.shape[0])
    check_folds(mask, folds)
    if selection not in SELECTIONS:
        raise RSABridgeError(f"unknown prime-unit selection {selection!r}; choose one of {', '.join(SELECTIONS)}")
    if selection == "all" and prime_units is None:
        prime_units = rank_units(unit_divergence(values, mask, bins, epsilon).divergence)[:k]
    y = mask.astype(int)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    accuracies, balanced = [], []
    for train, test in splitter.split(values, y):
        if selection == "in_fold":
            units = rank_units(unit_divergence(values[train], mask[train], bins, epsilon).divergence)[:k]
        else:
            units = np.asarray(prime_units)[:k]
        model = make_classifier(classifier, seed)
        model.fit(values[np.ix_(train, units)], y[train])
        predicted = model.predict(values[np.ix_(test, units)])
        accuracies.append(accuracy_score(y[test], predicted))
        balanced.append(balanced_accuracy_score(y[test], predicted))
    acc = np.asarray(accuracies)
    chance = max(mask.mean(), 1 - mask.mean())
    return Visualness(float(acc.mean()), float(acc.std()), float(np.mean(balanced)), float(chance), acc)
