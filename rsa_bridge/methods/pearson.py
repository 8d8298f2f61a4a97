"""``pearson``: Pearson r of the dissimilarities (rsatoolbox ``corr``)."""
from __future__ import annotations

from rsa_bridge.methods import shared
from rsa_bridge.methods.base import Chunked, DotPath, Method


def similarity(a, b):
    """(L, m), (R, m) -> (L, R) Pearson r."""
    from rsa_bridge.methods._numeric import pearson_matrix

    return pearson_matrix(a, b)


def prepare(x, w, order):
    """Weighted-mean-centred values scaled to unit weighted norm, (B, K, m)."""
    from rsa_bridge.methods._numeric import scaled
    from rsa_bridge.stats import weighted

    x = scaled(x)  # exact power-of-two scaling: no overflow at 1e300, no underflow at 1e-300
    return weighted.unit(x - weighted.weighted_mean(x, w), w, weighted.weighted_norm(x, w))


def pool_values(x, w, order):
    """Weighted z-scores (population SD), (B, K, m)."""
    from rsa_bridge.methods._numeric import scaled
    from rsa_bridge.stats import weighted

    return weighted.weighted_zscores(scaled(x), w)


METHOD = Method(
    "pearson", "Pearson r", similarity, pool=shared.pool_zscores, dot=DotPath(prepare, pool_values),
    chunked=Chunked("first_chunk_mean", shared.finish_pearson), rsatoolbox="corr",
    net2brain='distance_metric="pearson", squared', aliases=("corr", "correlation"))
