"""Fitted RDM models (weighted and selection models), their cross-validated and bootstrapped evaluation,
and variance partitioning. Core layer: arrays and xarray only.

- :mod:`~rsa_bridge.fitting.data`: :class:`FitData` (brain and model RDMs aligned by ``stimulus_id``).
- :mod:`~rsa_bridge.fitting.fitters`: the fitter and model-kind registries (``nnls``, ``regress``, ``select``).
- :mod:`~rsa_bridge.fitting.folds`: folds and bootstrap draws by identity, seeded.
- :mod:`~rsa_bridge.fitting.evaluate`: ``crossval``, ``bootstrap_crossval``, ``dual_bootstrap``.
- :mod:`~rsa_bridge.fitting.summary`: means, variances and CIs (rsatoolbox's ``Result``).
- :mod:`~rsa_bridge.fitting.run`: seeded end-to-end runs returning xarray results with provenance.
- :mod:`~rsa_bridge.fitting.partition`: variance partitioning of a brain RDM by 2-4 predictor RDMs.

Example:
    >>> from rsa_bridge.fitting import FITTERS, MODEL_KINDS
    >>> list(FITTERS), list(MODEL_KINDS)
    (['nnls', 'regress', 'select'], ['weighted', 'select'])
"""
from rsa_bridge.fitting.data import FitData, fit_data
from rsa_bridge.fitting.evaluate import CVOptions, bootstrap_crossval, crossval, dual_bootstrap
from rsa_bridge.fitting.fitters import FIT_SPACES, FITTERS, MODEL_KINDS, ModelSpec
from rsa_bridge.fitting.folds import Draw, Fold, make_draw, make_folds
from rsa_bridge.fitting.run import EVALUATORS, run_fit
from rsa_bridge.fitting.summary import summarize

__all__ = ["CVOptions", "Draw", "FIT_SPACES", "FITTERS", "FitData", "Fold", "MODEL_KINDS", "ModelSpec",
           "EVALUATORS", "bootstrap_crossval", "crossval", "dual_bootstrap", "fit_data", "run_fit", "make_draw", "make_folds", "summarize"]
