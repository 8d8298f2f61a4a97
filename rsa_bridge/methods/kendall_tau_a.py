"""``kendall_tau_a``: (concordant - discordant pairs) / (m (m - 1) / 2) (rsatoolbox ``tau-a``).

Not a dot product of per-pair values and not a function of sums over pairs: it has no fast path and no chunked
form; the bootstrap resamples it explicitly and the permutation test recomputes it per permutation.
"""
from __future__ import annotations

from rsa_bridge.methods import shared
from rsa_bridge.methods.base import Method


def similarity(a, b):
    """(L, m), (R, m) -> (L, R) tau-a, one pair of rows at a time (O(m log m) each)."""
    import numpy as np

    from rsa_bridge.methods._numeric import kendall_tau_a

    return np.array([[kendall_tau_a(x, y) for y in b] for x in a])


METHOD = Method(
    "kendall_tau_a", "(concordant - discordant pairs) / (m (m - 1) / 2); ties count as neither", similarity,
    pool=shared.pool_ranks, transform="ranks", rsatoolbox="tau-a", aliases=("tau-a", "tau_a", "kendall"))
