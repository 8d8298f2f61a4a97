"""``rho_a``: Spearman's rho without the tie correction of the denominator (rsatoolbox ``rho-a``)."""
from __future__ import annotations

from rsa_bridge.methods import shared
from rsa_bridge.methods.base import Chunked, DotPath, Method


def similarity(a, b):
    """(L, m), (R, m) -> (L, R): 12 sum (R_a - mean)(R_b - mean) / (m^3 - m), average ranks R."""
    from rsa_bridge.errors import RSABridgeError
    from rsa_bridge.methods._numeric import rank

    m = a.shape[-1]
    ra = rank(a)
    rb = rank(b)
    for what, r in (("a model", ra), ("a neural", rb)):
        if (r.max(axis=-1) == r.min(axis=-1)).any():
            raise RSABridgeError(f"{what} RDM is constant (all dissimilarities equal), so rho-a is undefined")
    ra = ra - ra.mean(axis=-1, keepdims=True)
    rb = rb - rb.mean(axis=-1, keepdims=True)
    return ra @ rb.T * (12.0 / (float(m) ** 3 - m))


def prepare(x, w, order):
    """sqrt(12 / (W^3 - W)) sqrt(w) (rank - (W + 1) / 2); NaN for a row constant within the sample."""
    import numpy as np

    from rsa_bridge.stats import weighted

    ranks = weighted.weighted_ranks(x, w, order)
    total = w.sum(axis=-1)[:, None, None]
    v = (ranks - (total + 1.0) / 2.0) * np.sqrt(w)[:, None, :]
    scale = np.sqrt(12.0 / (total ** 3 - total))
    constant = (ranks.max(axis=-1, where=w[:, None, :] > 0, initial=-np.inf)
                == ranks.min(axis=-1, where=w[:, None, :] > 0, initial=np.inf))[..., None]
    return np.where(constant, np.nan, v * scale)


def _scale(v, norm, total, zero):
    import numpy as np

    v *= np.sqrt(12.0 / (total ** 3 - total))


def prepare_fixed(order, w):
    """:func:`prepare` of fixed vectors, one sample at a time in each row's sorted order."""
    from rsa_bridge.stats import weighted

    return weighted.fixed_ranks(order, w, _scale)


def pool_values(x, w, order):
    """Weighted average ranks, (B, K, m)."""
    from rsa_bridge.stats import weighted

    return weighted.weighted_ranks(x, w, order)


METHOD = Method(
    "rho_a", "12 sum (R_a - mean)(R_b - mean) / (m^3 - m), average ranks R (Spearman without the "
    "tie correction of the denominator)", similarity, pool=shared.pool_ranks, transform="ranks",
    dot=DotPath(prepare, pool_values, prepare_fixed), chunked=Chunked("rank_mean", shared.finish_rho_a),
    kernel="rho_a", rsatoolbox="rho-a", aliases=("rho-a",))
