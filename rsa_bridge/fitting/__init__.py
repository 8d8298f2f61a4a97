"""Fitted RDM models (weighted and selection models), their cross-validated and bootstrapped evaluation,
and variance partitioning. Core layer: arrays and xarray only.

- :mod:`~rsa_bridge.fitting.data`: :class:`FitData` (brain and model RDMs aligned by ``stimulus_id``).
- :mod:`~rsa_bridge.fitting.fitters`: the fitter and model-kind registries (``nnls``, ``regress``, ``select``).
- :mod:`~rsa_bridge.fitting.folds`: folds and bootstrap draws by identity, seeded.
- :mod:`~rsa_bridge.fitting.evaluate`: ``crossval``, ``bootstrap_crossval``, ``dual_bootstrap``.
- :mod:`~rsa_bridge.fitting.summary`: means, variances and CIs (rsatoolbox's ``Result``).
- :mod:`~rsa_bridge.fitting.schemes`: the scheme and partition-transform registries (standard library only).
- :mod:`~rsa_bridge.fitting.run`: seeded end-to-end runs returning xarray results with provenance.
- :mod:`~rsa_bridge.fitting.partition`: variance partitioning of a brain RDM by 2-4 predictor RDMs.

Names are imported when first used (``from rsa_bridge.fitting import run_fit``), so importing the registries
stays light for the command line.

Example:
    >>> from rsa_bridge.fitting import FITTERS, MODEL_KINDS
    >>> list(FITTERS), list(MODEL_KINDS)
    (['nnls', 'regress', 'select', 'none'], ['weighted', 'select', 'fixed'])
"""
from __future__ import annotations

import importlib

#: exported name -> module that defines it
_WHERE = {
    "FitData": "data", "fit_data": "data",
    "CVOptions": "evaluate", "bootstrap_crossval": "evaluate", "crossval": "evaluate", "dual_bootstrap": "evaluate",
    "FIT_SPACES": "fitters", "FITTERS": "fitters", "MODEL_KINDS": "fitters", "ModelSpec": "fitters",
    "Draw": "folds", "Fold": "folds", "make_draw": "folds", "make_folds": "folds",
    "summarize": "summary", "EVALUATORS": "schemes", "run_fit": "run", "table": "run",
    "PartitionOptions": "partition", "partition_variance": "partition",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"rsa_bridge.fitting.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'rsa_bridge.fitting' has no attribute {name!r}")
