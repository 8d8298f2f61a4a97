"""``whitened_pearson``: ``whitened_cosine`` of the mean-centred vectors (rsatoolbox ``corr_cov``, sigma_k=None)."""
from __future__ import annotations

from rsa_bridge.methods import shared
from rsa_bridge.methods.base import Method

CENTRE = True
WHY = "is constant (all dissimilarities equal)"


def similarity(a, b):
    """(L, m), (R, m) -> (L, R)."""
    return masked(a, b, None)


def masked(a, b, valid):
    """Similarity over the valid pairs; ``valid`` (m,) bool among all pairs (None: all)."""
    import numpy as np

    from rsa_bridge.methods._numeric import whitened_unit

    why = WHY if valid is None else "is constant within the sample"
    return np.clip(whitened_unit(a, valid, CENTRE, "a model", why) @ whitened_unit(b, valid, CENTRE, "a neural",
                                                                                   why).T, -1.0, 1.0)


def permutation(vectors):
    """Unit whitened values of the centred vectors: the pair part (K, m) and the diagonal (K, n)."""
    from rsa_bridge.methods._numeric import whitened_unit

    t = whitened_unit(vectors, None, CENTRE, "an", WHY)
    m = vectors.shape[1]
    return t[:, :m], t[:, m:]


METHOD = Method(
    "whitened_pearson", "whitened_cosine of the mean-centred vectors", similarity, pool=shared.pool_zscores,
    transform="whitening", masked=masked, permutation=permutation, rsatoolbox="corr_cov", aliases=("corr_cov",),
    note="rsatoolbox with sigma_k=None")
