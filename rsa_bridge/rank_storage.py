"""Average-tie ranks stored as uint32 of 2 x rank: half the bytes of float64, read back exactly.

Average ranks of m values are multiples of 1/2 in [1, m] (a tie group over positions a..b gets (a + b) / 2),
so 2 x rank is an integer in [2, 2m]. While ``2 m < 2**32`` (up to 65,536 stimuli: m = n(n-1)/2) it fits a
uint32, and an :class:`rsa_bridge.rdm_store.RDMStore` with ``storage=HALF_RANKS`` keeps it so: 4 bytes per pair
instead of 8 (8 layers at 22,000 stimuli: 7.7 GB instead of 15.5 GB). Reads divide by 2 in float64, which is
exact, so every statistic computed from the ranks is unchanged. :func:`rsa_bridge.ranking.rank_store` picks the
storage with :func:`rank_storage`; beyond 2**32 (NSD's 73,000 stimuli) it stays float64. A store's on-disk
datasets record their encoding in the HDF5 attribute ``encoding``; float64 rank stores are still read.

Example::

    >>> import numpy as np
    >>> from scipy.stats import rankdata
    >>> from rsa_bridge.rdm_store import RDMStore
    >>> ranks = rankdata([0.3, 0.1, 0.3, 0.2, 0.1, 0.3])          # ties: 1.5, 1.5, 3, 5, 5, 5
    >>> with RDMStore(list("abcd"), storage=HALF_RANKS) as store:
    ...     store.put("conv1", ranks)
    ...     bool(np.array_equal(store.vector("conv1"), ranks)), store.vector_bytes
    (True, 24)
"""
from __future__ import annotations

from typing import Any

import numpy as np

from rsa_bridge.errors import RSABridgeError

#: the storage name of average-tie ranks as uint32 of 2 x rank; not a user choice (``--rdm-storage``)
HALF_RANKS = "uint32-2x-rank"


def rank_storage(m: int) -> str:
    """The storage of the ranks of ``m``-entry vectors: :data:`HALF_RANKS` while ``2 m < 2**32``, else float64.

    >>> rank_storage(241_989_000), rank_storage(2**31)      # 22,000 stimuli; about 65,537
    ('uint32-2x-rank', 'float64')
    """
    return HALF_RANKS if 2 * int(m) < 2 ** 32 else "float64"


def encode_ranks(name: str, values: Any, scale: float) -> np.ndarray:
    """``values * scale`` as float64 holding exact non-negative integers below 2**32, or a one-line refusal."""
    scaled = np.asarray(values, dtype=np.float64) * scale
    if scaled.size and not (np.array_equal(np.rint(scaled), scaled) and scaled.min() >= 0 and scaled.max() < 2 ** 32):
        raise RSABridgeError(f"{name}: a uint32 rank store holds average ranks (multiples of 1/{scale:g}, >= 0); "
                             "store other values as float64")
    return scaled
