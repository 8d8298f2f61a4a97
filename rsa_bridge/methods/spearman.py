"""``spearman``: Pearson r of the average ranks (rsatoolbox ``spearman``)."""
from __future__ import annotations

from rsa_bridge.methods import shared
from rsa_bridge.methods.base import Chunked, DotPath, Method


def similarity(a, b):
    """(L, m), (R, m) -> (L, R) Spearman rho with average ranks for ties."""
    from rsa_bridge.methods._numeric import pearson_matrix, rank

    return pearson_matrix(rank(a), rank(b))


def prepare(x, w, order):
    """Centred weighted ranks scaled to unit weighted norm, (B, K, m)."""
    from rsa_bridge.stats import weighted

    ranks = weighted.weighted_ranks(x, w, order)
    return weighted.unit(ranks - (w.sum(axis=-1)[:, None, None] + 1.0) / 2.0, w)


def _scale(v, norm, total, zero):
    import numpy as np

    v /= np.where(zero, 1.0, norm)[:, None]


def prepare_fixed(order, w):
    """:func:`prepare` of fixed vectors, one sample at a time in each row's sorted order."""
    from rsa_bridge.stats import weighted

    return weighted.fixed_ranks(order, w, _scale)


def pool_values(x, w, order):
    """Weighted average ranks, (B, K, m)."""
    from rsa_bridge.stats import weighted

    return weighted.weighted_ranks(x, w, order)


METHOD = Method(
    "spearman", "Pearson r of the ranks (average ranks for ties)", similarity, pool=shared.pool_ranks,
    transform="ranks", dot=DotPath(prepare, pool_values, prepare_fixed),
    chunked=Chunked("rank_mean", shared.finish_pearson), kernel="pearson",
    rsatoolbox="spearman", brainscore="metric rdm / rdm_cv (Spearman of upper triangles)",
    net2brain='RSA(distance_metric="spearman"), reported squared (R2)')
