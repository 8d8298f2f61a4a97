"""Comparing layers and models on the same bootstrap samples: paired differences and the best layer.

Both layers (or both models' layers) are scored on the *same* resampled stimuli/RDMs, so their
difference per sample is a paired bootstrap distribution:

- the observed difference, its percentile CI, and a two-sided bootstrap p-value defined as in
  rsatoolbox's ``bootstrap_pair_tests``: with P = #{a < b} / (B - #{a = b}),
  p = (B - 1) / B * 2 min(P, 1 - P) + 1 / B;
- the probability of being best: the fraction of samples in which a layer has the highest
  similarity with the area (ties share the credit).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.stats.bootstrap import BootstrapResult, percentile_ci


def bootstrap_pair_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided bootstrap p-value for a difference between paired samples a, b (B,) (rsatoolbox's definition).

    Samples where either is NaN are dropped (rsatoolbox keeps them, which makes every comparison false).
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    n = a.size
    if n == 0:
        return float("nan")
    ties = np.sum(a == b)
    if ties == n:
        return 1.0
    prop = np.sum(a < b) / (n - ties)
    p = 2.0 * min(prop, 1.0 - prop)
    return float((n - 1) / n * p + 1.0 / n)


@dataclass(frozen=True)
class LayerDifference:
    """similarity(a) - similarity(b) with one area, on paired bootstrap samples."""

    a: str
    b: str
    area: str
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    n_samples: int
    samples: np.ndarray = field(repr=False)

    def as_dict(self) -> dict:
        d = asdict(self)
        d.pop("samples")
        return d


def _row(boot: BootstrapResult, label: str) -> int:
    if label not in boot.labels:
        raise RSABridgeError(f"no layer {label!r} in the bootstrap result; it has {', '.join(boot.labels)}")
    return boot.labels.index(label)


def _col(boot: BootstrapResult, area: str) -> int:
    if area not in boot.areas:
        raise RSABridgeError(f"no area {area!r} in the bootstrap result; it has {', '.join(boot.areas)}")
    return boot.areas.index(area)


def paired_difference(boot: BootstrapResult, a: str, b: str, area: str, level: float = 0.95) -> LayerDifference:
    """Is layer (or model layer) ``a`` more similar to ``area`` than ``b``?

    Args:
        boot: a bootstrap over the stimuli/RDMs that scored both rows (same index sets).
        a, b: row labels of ``boot`` (e.g. ``conv5`` or ``alexnet:conv5``).
        area: an area of ``boot``.
        level: CI level.

    Returns:
        :class:`LayerDifference` (observed difference, percentile CI, two-sided p).
    """
    i, j, k = _row(boot, a), _row(boot, b), _col(boot, area)
    diff = boot.samples[:, i, k] - boot.samples[:, j, k]
    low, high = percentile_ci(diff[:, None], level)
    return LayerDifference(a, b, area, float(boot.observed[i, k] - boot.observed[j, k]), float(low[0]),
                           float(high[0]), bootstrap_pair_p(boot.samples[:, i, k], boot.samples[:, j, k]),
                           int(np.isfinite(diff).sum()), diff)


def pairwise_p(boot: BootstrapResult, area: str) -> np.ndarray:
    """(L, L) two-sided bootstrap p-values between all rows for one area (diagonal 1)."""
    k = _col(boot, area)
    n_rows = len(boot.labels)
    out = np.ones((n_rows, n_rows))
    for i in range(n_rows):
        for j in range(i + 1, n_rows):
            out[i, j] = out[j, i] = bootstrap_pair_p(boot.samples[:, i, k], boot.samples[:, j, k])
    return out


def best_layer(boot: BootstrapResult, rows: Sequence[str] | None = None) -> pd.DataFrame:
    """Probability of each row being the most similar to each area.

    Args:
        boot: a bootstrap result.
        rows: the competing rows (default all; e.g. one model's layers).

    Returns:
        One row per (area, layer): ``area``, ``layer``, ``similarity`` (observed), ``p_best`` (fraction of
        finite samples in which it is the maximum; ties share), ``is_best`` (observed maximum),
        ``n_samples``.
    """
    rows = list(boot.labels) if rows is None else list(rows)
    idx = [_row(boot, r) for r in rows]
    out = []
    for k, area in enumerate(boot.areas):
        sims = boot.samples[:, idx, k]
        finite = np.isfinite(sims).all(axis=1)
        sims = sims[finite]
        if sims.shape[0]:
            is_max = sims == sims.max(axis=1, keepdims=True)
            p_best = (is_max / is_max.sum(axis=1, keepdims=True)).sum(axis=0) / sims.shape[0]
        else:
            p_best = np.full(len(idx), np.nan)
        observed = boot.observed[idx, k]
        winner = int(np.argmax(observed))
        for r, label in enumerate(rows):
            out.append({"area": area, "layer": label, "similarity": float(observed[r]), "p_best": float(p_best[r]),
                        "is_best": r == winner, "n_samples": int(sims.shape[0])})
    return pd.DataFrame(out)
