"""Defaults and choice names of ``rsa-bridge units`` (no torch here, so ``units --help`` starts at once).

The registries themselves (:data:`analyses.unit_attributes.activations.POOLING`,
:data:`analyses.unit_attributes.visualness.CLASSIFIERS`) hold the functions; a test checks that their
names equal the ones listed here.
"""
from __future__ import annotations

#: default spatial pooling of conv channels, and the choices
DEFAULT_POOLING = "max"
POOLING_NAMES = ("max", "mean", "none")
#: default histogram bins per unit
DEFAULT_BINS = 10
#: default smoothing added to every bin's probability before renormalising
DEFAULT_EPSILON = 1e-3
#: prime units per layer, cross-validation folds, classifier
DEFAULT_K = 16
DEFAULT_FOLDS = 5
DEFAULT_CLASSIFIER = "logistic"
CLASSIFIER_NAMES = ("logistic", "linear_svm", "lda")
#: where prime units are chosen: on each training fold, or on all stimuli
SELECTIONS = ("in_fold", "all")
