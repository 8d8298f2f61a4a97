"""Bootstrap batches as dask tasks give the serial samples for the same seed."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

from rsa_bridge.app.distributed import connect
from rsa_bridge.stats import bootstrap_similarity
from rsa_bridge.stats.dask_bootstrap import bootstrap_on_dask

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _rdms(n, k, seed):
    rng = np.random.default_rng(seed)
    return np.stack([squareform(pdist(rng.normal(size=(n, 5)), "correlation")) for _ in range(k)])


@pytest.mark.parametrize("over", ["stimuli", "rdms", "both"])
def test_dask_batches_equal_serial(over):
    model, neural = _rdms(20, 2, 0), {"a": _rdms(20, 3, 1), "b": _rdms(20, 2, 2)}
    serial = bootstrap_similarity(model, neural, n_samples=23, over=over, seed=4, ceiling=True)
    with connect("local:2") as client:
        dist = bootstrap_on_dask(model, neural, client=client, n_samples=23, over=over, seed=4, ceiling=True,
                                 batch_size=5)
    # batches aligned to the kernel's chunks: the same numbers, bit for bit (tests/test_dask_statistics.py)
    np.testing.assert_array_equal(dist.samples, serial.samples)
    np.testing.assert_array_equal(dist.ceiling, serial.ceiling)
    np.testing.assert_array_equal(dist.observed, serial.observed)
    if over != "rdms":
        np.testing.assert_array_equal(dist.stimulus_indices, serial.stimulus_indices)
