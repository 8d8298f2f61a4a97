"""``whitened_cosine``: the Frobenius cosine of the double-centred second-moment matrices (rsatoolbox
``cosine_cov`` with sigma_k=None; Diedrichsen et al. 2021; equals linear CKA on squared-Euclidean RDMs).

The whitening depends on which pairs are present, so its bootstrap form (``masked``) takes the missing-pair
mask; a relabelling of the stimuli permutes the transformed pairs and diagonal (``permutation``).
"""
from __future__ import annotations

from rsa_bridge.methods import shared
from rsa_bridge.methods.base import Method

CENTRE = False
WHY = "is all zeros"


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
    """Unit whitened values split into the pair part (K, m) and the diagonal (K, n)."""
    from rsa_bridge.methods._numeric import whitened_unit

    t = whitened_unit(vectors, None, CENTRE, "an", WHY)
    m = vectors.shape[1]
    return t[:, :m], t[:, m:]


METHOD = Method(
    "whitened_cosine", "Frobenius cosine of G = -H D H / 2 (H centring matrix, D the RDM): the RDM cosine "
    "whitened for i.i.d. pattern noise (Diedrichsen et al. 2021)", similarity, pool=shared.pool_rms,
    transform="whitening", masked=masked, permutation=permutation, rsatoolbox="cosine_cov",
    brainscore="metric cka (linear CKA) equals this on squared-Euclidean RDMs of the same features",
    aliases=("cosine_cov",), note="rsatoolbox with sigma_k=None")
