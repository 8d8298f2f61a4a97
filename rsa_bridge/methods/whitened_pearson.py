"""``whitened_pearson``: ``whitened_cosine`` of the mean-centred vectors (rsatoolbox ``corr_cov``, sigma_k=None)."""
from __future__ import annotations

from rsa_bridge.methods import shared
from rsa_bridge.methods.base import Method

CENTRE = True
WHY = "is constant (all dissimilarities equal)"


similarity, masked, permutation = shared.whitened(CENTRE, WHY, __name__)


METHOD = Method(
    "whitened_pearson", "whitened_cosine of the mean-centred vectors", similarity, pool=shared.pool_zscores,
    transform="whitening", masked=masked, permutation=permutation, rsatoolbox="corr_cov", aliases=("corr_cov",),
    note="rsatoolbox with sigma_k=None")
