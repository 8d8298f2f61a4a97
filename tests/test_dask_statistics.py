"""Bootstrap and permutation batches as dask tasks equal the serial run for the same seed, bit for bit.

The serial reference is the plain call (every sample in one batch, in this process); the dask run draws
the same index sets on the client and evaluates them in batches on a LocalCluster of in-process workers.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

from rsa_bridge.stats import BootstrapOptions, PermutationOptions, backends, bootstrap as bootstrap_mod
from rsa_bridge.stats import bootstrap_similarity, permutation_test
from rsa_bridge.stats.dask_bootstrap import DaskExecutor
from rsa_bridge.stats.executors import SERIAL, batch_slices, resolve_executor, use_executor

distributed = pytest.importorskip("dask.distributed")
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _rdms(n, k, seed):
    rng = np.random.default_rng(seed)
    return np.stack([squareform(pdist(rng.normal(size=(n, 5)), "correlation")) for _ in range(k)])


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture
def small_chunk(monkeypatch):
    """The compiled kernel's chunk shrunk to 8 samples, so a few dozen samples make several aligned batches."""
    monkeypatch.setattr(backends, "FAST_CHUNK", 8)
    monkeypatch.setattr(bootstrap_mod, "FAST_CHUNK", 8)


@pytest.mark.parametrize("method", ["spearman", "pearson", "kendall_tau_a"])
@pytest.mark.parametrize("over", ["stimuli", "rdms", "both"])
def test_bootstrap_batches_equal_serial(client, small_chunk, method, over):
    model, neural = _rdms(24, 3, 0), {"a": _rdms(24, 3, 1), "b": _rdms(24, 2, 2)}
    n = 21 if method == "kendall_tau_a" else 45
    serial = bootstrap_similarity(model, neural, method=method, n_samples=n, over=over, seed=4, ceiling=True,
                                  options=BootstrapOptions(progress=False))
    dask = bootstrap_similarity(model, neural, method=method, n_samples=n, over=over, seed=4, ceiling=True,
                                options=BootstrapOptions(progress=False, executor=DaskExecutor(client, "local:2")))
    np.testing.assert_array_equal(dask.samples, serial.samples)
    np.testing.assert_array_equal(dask.ceiling, serial.ceiling)
    np.testing.assert_array_equal(dask.observed, serial.observed)
    for a, b in zip(dask.ci(0.9), serial.ci(0.9)):
        np.testing.assert_array_equal(a, b)
    assert serial.attrs()["bootstrap_executor"] == "serial"
    batches = int(dask.attrs()["bootstrap_executor"].split("(")[1].split()[0])
    assert batches >= 3 and dask.attrs()["bootstrap_executor"].endswith("on local:2)")
    if over != "rdms":
        np.testing.assert_array_equal(dask.stimulus_indices, serial.stimulus_indices)


def test_bootstrap_default_chunk_is_aligned(client):
    """Without the test's small chunk: 600 samples of the compiled kernel in 256-sample batches, equal."""
    model, neural = _rdms(30, 4, 5), {"a": _rdms(30, 3, 6)}
    serial = bootstrap_similarity(model, neural, n_samples=600, seed=1, options=BootstrapOptions(progress=False))
    dask = bootstrap_similarity(model, neural, n_samples=600, seed=1,
                                options=BootstrapOptions(progress=False, executor=DaskExecutor(client, "local:2")))
    np.testing.assert_array_equal(dask.samples, serial.samples)
    assert dask.attrs()["bootstrap_executor"] == "dask (3 batches of <= 256 samples on local:2)"
    # misaligned batches (not multiples of the kernel's chunk) would move samples between SIMD lanes
    assert all(sl.start % backends.FAST_CHUNK == 0 for sl in batch_slices(600, backends.FAST_CHUNK, 4))


@pytest.mark.parametrize("method", ["spearman", "whitened_pearson", "kendall_tau_a"])
def test_permutation_batches_equal_serial(client, method):
    model, neural = _rdms(20, 3, 7), {"a": _rdms(20, 2, 8), "b": _rdms(20, 1, 9)}
    n = 15 if method == "kendall_tau_a" else 60
    serial = permutation_test(model, neural, method=method, n_permutations=n, seed=3,
                              options=PermutationOptions(progress=False))
    dask = permutation_test(model, neural, method=method, n_permutations=n, seed=3,
                            options=PermutationOptions(progress=False,
                                                       executor=DaskExecutor(client, "local:2", batch_size=7)))
    np.testing.assert_array_equal(dask.null, serial.null)
    np.testing.assert_array_equal(dask.p_value, serial.p_value)
    np.testing.assert_array_equal(dask.observed, serial.observed)
    assert serial.attrs()["permutation_executor"] == "serial"
    assert dask.attrs()["permutation_executor"].startswith(f"dask ({-(-(n + 1) // 7)} batches of <= 7 samples")


def test_use_executor_block_and_subset_scheme(client, monkeypatch):
    """Inside a use_executor block the calls without executor= distribute; the subset bootstrap stays here."""
    from rsa_bridge.stats import subset

    model, neural = _rdms(30, 2, 10), {"a": _rdms(30, 2, 11)}
    executor = DaskExecutor(client, "local:2")
    assert resolve_executor() is SERIAL
    with use_executor(executor):
        assert resolve_executor() is executor
        boot = bootstrap_similarity(model, neural, n_samples=20, seed=2, options=BootstrapOptions(progress=False))
        perm = permutation_test(model, neural, n_permutations=20, seed=2, options=PermutationOptions(progress=False))
        monkeypatch.setattr(subset, "EXACT_MAX_STIMULI", 20)
        monkeypatch.setattr(subset, "SUBSET_STIMULI", 15)
        sub = bootstrap_similarity(model, neural, n_samples=20, seed=2, options=BootstrapOptions(progress=False))
        sub_perm = permutation_test(model, neural, n_permutations=20, seed=2,
                                    options=PermutationOptions(progress=False))
    assert resolve_executor() is SERIAL
    assert boot.executor.startswith("dask (") and perm.executor.startswith("dask (")
    assert sub.scheme["bootstrap_scheme"].startswith("subset") and sub.executor.startswith("serial")
    serial_sub = bootstrap_similarity(model, neural, n_samples=20, seed=2, options=BootstrapOptions(progress=False))
    np.testing.assert_array_equal(sub.samples, serial_sub.samples)
    serial_perm = permutation_test(model, neural, n_permutations=20, seed=2,
                                   options=PermutationOptions(progress=False))
    assert sub_perm.executor.startswith("dask (")  # the subset's permutations are batches too, and equal
    np.testing.assert_array_equal(sub_perm.p_value, serial_perm.p_value)


def test_batch_slices():
    assert batch_slices(10, 4, 2) == [slice(0, 8), slice(8, 10)]
    assert batch_slices(10, 1, 3) == [slice(0, 4), slice(4, 8), slice(8, 10)]
    assert batch_slices(10, 4, 1, batch_size=5) == [slice(0, 8), slice(8, 10)]
    assert batch_slices(3, 256, 4) == [slice(0, 3)]


@pytest.mark.slow
def test_process_workers_equal_serial():
    """Workers in other processes (what a remote cluster is): arguments pickled, the kernel run there."""
    model, neural = _rdms(30, 3, 12), {"a": _rdms(30, 2, 13)}
    serial_boot = bootstrap_similarity(model, neural, n_samples=300, over="both", seed=5,
                                       options=BootstrapOptions(progress=False))
    serial_perm = permutation_test(model, neural, n_permutations=30, seed=5,
                                   options=PermutationOptions(progress=False))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as c:
        executor = DaskExecutor(c)
        boot = bootstrap_similarity(model, neural, n_samples=300, over="both", seed=5,
                                    options=BootstrapOptions(progress=False, executor=executor))
        perm = permutation_test(model, neural, n_permutations=30, seed=5,
                                options=PermutationOptions(progress=False, executor=executor))
    np.testing.assert_array_equal(boot.samples, serial_boot.samples)
    np.testing.assert_array_equal(perm.null, serial_perm.null)
    assert boot.executor == "dask (2 batches of <= 256 samples on a dask cluster of 2 workers)"
