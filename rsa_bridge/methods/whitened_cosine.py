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


similarity, masked, permutation = shared.whitened(CENTRE, WHY, __name__)


METHOD = Method(
    "whitened_cosine", "Frobenius cosine of G = -H D H / 2 (H centring matrix, D the RDM): the RDM cosine "
    "whitened for i.i.d. pattern noise (Diedrichsen et al. 2021)", similarity, pool=shared.pool_rms,
    transform="whitening", masked=masked, permutation=permutation, rsatoolbox="cosine_cov",
    brainscore="metric cka (linear CKA) equals this on squared-Euclidean RDMs of the same features",
    aliases=("cosine_cov",), note="rsatoolbox with sigma_k=None")
