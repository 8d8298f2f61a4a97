"""``cosine``: a.b / (|a| |b|), no centring (rsatoolbox ``cosine``, its default comparison)."""
from __future__ import annotations

from rsa_bridge.methods import shared
from rsa_bridge.methods.base import Chunked, DotPath, Method


def similarity(a, b):
    """(L, m), (R, m) -> (L, R) cosine of the dissimilarity vectors."""
    from rsa_bridge.methods._numeric import cosine_matrix

    return cosine_matrix(a, b)


def prepare(x, w, order):
    """Values scaled to unit weighted norm, (B, K, m)."""
    import numpy as np

    from rsa_bridge.methods._numeric import scaled
    from rsa_bridge.stats import weighted

    x = scaled(x)  # exact power-of-two scaling: no overflow at 1e300, no underflow at 1e-300
    xb = np.broadcast_to(x, (w.shape[0],) + x.shape[-2:]) if x.ndim == 2 else x
    return weighted.unit(xb, w)


def pool_values(x, w, order):
    """Values scaled to unit weighted root mean square, (B, K, m)."""
    from rsa_bridge.methods._numeric import scaled
    from rsa_bridge.stats import weighted

    return weighted.weighted_rms_scaled(scaled(x), w)


METHOD = Method(
    "cosine", "a.b / (|a| |b|), no centring", similarity, pool=shared.pool_rms, dot=DotPath(prepare, pool_values),
    chunked=Chunked("none", shared.finish_cosine), rsatoolbox="cosine", note="rsatoolbox's default comparison")
