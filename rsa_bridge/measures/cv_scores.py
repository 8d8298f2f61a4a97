"""How cross-validated predictions become one r per neuroid (``--cv-score``): the records, without numpy.

Kept apart from :mod:`rsa_bridge.measures.predictivity` so that the command line builds its ``--cv-score``
choices and help from them without importing numpy (``rsa-bridge --help`` answers at once). The scoring
itself is in :mod:`rsa_bridge.measures.predictivity`.

Example::

    >>> check_cv_score("pooled").pooled
    True
"""
from __future__ import annotations

from dataclasses import dataclass

from rsa_bridge.errors import RSABridgeError


@dataclass(frozen=True)
class CVScore:
    """One way of scoring held-out predictions: ``pooled`` = one r per neuroid over every fold's predictions
    (else one r per fold, averaged)."""

    name: str
    description: str
    pooled: bool


#: cv_score name -> record (``--cv-score``)
CV_SCORES: dict[str, CVScore] = {
    "per-fold": CVScore("per-fold", "Pearson r per fold over its held-out stimuli, mean over folds", False),
    "pooled": CVScore("pooled", "one Pearson r over the held-out predictions of all folds pooled", True),
}


def check_cv_score(name: str) -> CVScore:
    """The :data:`CV_SCORES` record of ``name``; RSABridgeError for an unknown one."""
    if name not in CV_SCORES:
        raise RSABridgeError(f"unknown cv_score {name!r}; choose one of {', '.join(CV_SCORES)}")
    return CV_SCORES[name]


__all__ = ["CVScore", "CV_SCORES", "check_cv_score"]
