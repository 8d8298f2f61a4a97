"""Means over the finite values only, NaN where there are none -- without numpy's "Mean of empty slice".

``np.nanmean`` over an all-NaN slice returns NaN *and* warns ``RuntimeWarning: Mean of empty slice``; in a
log that line says nothing about the data. Here the empty case is expected and silent: the caller says what
it means in its own words (e.g. :func:`rsa_bridge.neural.reliability.neuroid_reliability` names the
neuroids whose reliability is n/a).

Example::

    >>> import numpy as np
    >>> finite_mean(np.array([[1.0, np.nan], [3.0, np.nan]]), axis=0)
    array([ 2., nan])
"""
from __future__ import annotations

import numpy as np


def finite_mean(values, axis: int | None = None):
    """Mean of the finite entries of ``values`` along ``axis`` (None: all); NaN where a slice has none.

    Args:
        values: array-like of floats (any shape; NaN/inf = missing).
        axis: the axis to average over, or None for one number.

    Returns:
        a float (axis None) or an array with ``axis`` removed; never warns.
    """
    x = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(x)
    n = ok.sum(axis=axis)
    total = np.where(ok, x, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, total / np.maximum(n, 1), np.nan)
    return float(mean) if axis is None else mean
