"""Corrections for multiple comparisons: one :class:`Correction` record per name, in one registry
(:data:`CORRECTIONS`), used by the permutation tests (:func:`rsa_bridge.stats.permutation.correct`), the
per-family p-values of the statistics summary and the model-comparison figure's brackets.

A correction maps the p-values of one family (any shape; NaN = not tested, kept in place and not counted)
to adjusted p-values of the same shape. Calling a record applies it.

Example::

    >>> import numpy as np
    >>> from rsa_bridge.corrections import CORRECTIONS
    >>> CORRECTIONS.get_record("fdr")(np.array([0.01, 0.04, 0.03])).round(3).tolist()  # 'fdr' is an alias
    [0.03, 0.04, 0.04]
    >>> CORRECTIONS["holm"](np.array([0.01, 0.04, 0.03])).round(3).tolist()
    [0.03, 0.06, 0.06]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from rsa_bridge.registry import Registry

__all__ = ["CORRECTIONS", "Correction", "fdr_bh", "holm", "uncorrected"]


def _adjust(p: np.ndarray, sorted_adjustment: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply an adjustment of the ascending finite p-values of one family; NaNs stay NaN in place."""
    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    values = p[ok]
    if values.size:
        order = np.argsort(values, kind="stable")
        result = np.empty(values.size)
        result[order] = sorted_adjustment(values[order])
        out[ok] = result
    return out


def _holm_sorted(p: np.ndarray) -> np.ndarray:
    k = p.size
    return np.minimum(1.0, np.maximum.accumulate((k - np.arange(k)) * p))


def _bh_sorted(p: np.ndarray) -> np.ndarray:
    k = p.size
    return np.minimum(1.0, np.minimum.accumulate((p * k / np.arange(1, k + 1))[::-1])[::-1])


def holm(p: np.ndarray) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values of one family (NaNs ignored, kept in place).

    p_adj(i) = max over j <= i of min(1, (k - j + 1) p(j)) for the ascending p(1) <= ... <= p(k).
    """
    return _adjust(p, _holm_sorted)


def fdr_bh(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg (1995) FDR-adjusted p-values (q-values) of one family (NaNs ignored).

    q(i) = min over j >= i of min(1, k p(j) / j) for the ascending p(1) <= ... <= p(k).
    """
    return _adjust(p, _bh_sorted)


def uncorrected(p: np.ndarray) -> np.ndarray:
    """The p-values as they are (a float64 copy)."""
    return np.array(p, dtype=np.float64, copy=True)


@dataclass(frozen=True)
class Correction:
    """One multiple-comparison correction.

    Attributes:
        name: the name users type (``holm``).
        label: how figures and reports name it (``Holm``).
        adjust: p-values of one family -> adjusted p-values (same shape, NaN kept).
        controls: what it controls (``family-wise error rate`` ...), for the reference page.
        aliases: other names accepted for it (``fdr``).
    """

    name: str
    label: str
    adjust: Callable[[np.ndarray], np.ndarray]
    controls: str
    aliases: tuple[str, ...] = ()

    def __call__(self, p: np.ndarray) -> np.ndarray:
        return self.adjust(p)


_CORRECTIONS = (
    Correction("holm", "Holm", holm, "family-wise error rate (any dependence)"),
    Correction("fdr_bh", "Benjamini-Hochberg FDR", fdr_bh,
               "false discovery rate (independent or positively dependent tests)", aliases=("fdr", "bh")),
    Correction("none", "uncorrected", uncorrected, "nothing: each test at its own level"),
)

#: correction name -> its record (callable on a family's p-values); ``fdr`` and ``bh`` are aliases of ``fdr_bh``
CORRECTIONS: Registry[Correction] = Registry("correction", {c.name: c for c in _CORRECTIONS},
                                             aliases={a: c.name for c in _CORRECTIONS for a in c.aliases})
