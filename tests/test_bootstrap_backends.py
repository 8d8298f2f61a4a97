"""The fast bootstrap backends (numba kernel, torch) equal the numpy weighted-rank path and rsatoolbox."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

from rsa_bridge.stats import BootstrapOptions, bootstrap_similarity, bootstrap_stimuli, rank_kernel, weighted
from rsa_bridge.stats.backends import rank_backend
from rsa_bridge.stats.resample import counts

pytestmark = [pytest.mark.skipif(not rank_kernel.available(), reason="numba not installed"),
              pytest.mark.filterwarnings("ignore::RuntimeWarning")]


def _vectors(n: int, k: int, seed: int, ties: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.stack([pdist(rng.normal(size=(n, 6)), "correlation") for _ in range(k)])
    if ties:
        x[0] = np.round(x[0], 1)  # large tie groups
    return x


def _numpy_sims(method, model, area, c, n):
    rows, cols = np.triu_indices(n, k=1)
    w = c[:, rows] * c[:, cols]
    pm, pa = weighted.prepare(method, model, w), weighted.prepare(method, area, w)
    return np.matmul(pm, pa.transpose(0, 2, 1))


@pytest.mark.parametrize("method", ["spearman", "rho_a"])
@pytest.mark.parametrize("ties", [False, True])
def test_kernel_equals_numpy_weighted_ranks(method, ties):
    n = 40
    model, area = _vectors(n, 3, 0, ties), _vectors(n, 2, 1, ties)
    c = counts(bootstrap_stimuli(n, 37, np.random.default_rng(2)), n)  # 37: not a multiple of the 16 lanes
    ours = rank_kernel.similarities(method, rank_kernel.sorted_pairs(model, n), rank_kernel.sorted_pairs(area, n), c)
    ref = _numpy_sims(method, model, area, c, n)
    assert ours.shape == (37, 3, 2)
    np.testing.assert_allclose(ours, ref, atol=1e-10, rtol=0)


def test_kernel_float64_storage_equals_float32_storage(monkeypatch):
    n = 30
    model, area = _vectors(n, 2, 3, True), _vectors(n, 1, 4)
    c = counts(bootstrap_stimuli(n, 20, np.random.default_rng(5)), n)
    args = (rank_kernel.sorted_pairs(model, n), rank_kernel.sorted_pairs(area, n), c)
    f32 = rank_kernel.similarities("spearman", *args)
    monkeypatch.setattr(rank_kernel, "FLOAT32_EXACT", 0.0)  # force float64 rank buffers
    f64 = rank_kernel.similarities("spearman", *args)
    np.testing.assert_array_equal(f32, f64)  # integer ranks: float32 storage is exact


def test_kernel_unresampled_is_scipy_spearman():
    from scipy.stats import spearmanr

    n = 25
    model, area = _vectors(n, 2, 6, True), _vectors(n, 1, 7)
    ours = rank_kernel.similarities("spearman", rank_kernel.sorted_pairs(model, n), rank_kernel.sorted_pairs(area, n),
                                    np.ones((1, n)))
    for k in range(2):
        assert ours[0, k, 0] == pytest.approx(spearmanr(model[k], area[0]).statistic, abs=1e-12)


def test_kernel_constant_within_sample_is_nan():
    n = 10
    model = _vectors(n, 1, 8)
    area = np.zeros((1, n * (n - 1) // 2))
    area[0, 0] = 1.0  # only the pair (0, 1) differs
    c = np.ones((2, n))
    c[1, 0], c[1, 2] = 0.0, 2.0  # stimulus 0 not drawn: the area RDM is constant in sample 1
    sims = rank_kernel.similarities("spearman", rank_kernel.sorted_pairs(model, n), rank_kernel.sorted_pairs(area, n), c)
    assert np.isfinite(sims[0]).all() and np.isnan(sims[1]).all()


def _rdms(n, k, seed):
    return np.stack([squareform(v) for v in _vectors(n, k, seed)])


@pytest.mark.parametrize("over", ["stimuli", "rdms", "both"])
@pytest.mark.parametrize("method", ["spearman", "rho_a"])
def test_bootstrap_numba_equals_numpy_backend(monkeypatch, over, method):
    n = 24
    model, neural = _rdms(n, 3, 10), {"a": _rdms(n, 3, 11), "b": _rdms(n, 1, 12)}
    fast = bootstrap_similarity(model, neural, method=method, n_samples=40, over=over, seed=3, ceiling=True)
    assert fast.backend == "numba" and fast.attrs()["bootstrap_backend"] == "numba"
    monkeypatch.setattr(rank_kernel, "_HAVE_NUMBA", False)
    slow = bootstrap_similarity(model, neural, method=method, n_samples=40, over=over, seed=3, ceiling=True)
    assert slow.backend == "numpy"
    np.testing.assert_allclose(fast.samples, slow.samples, atol=1e-10, rtol=0, equal_nan=True)
    np.testing.assert_allclose(fast.ceiling, slow.ceiling, atol=1e-10, rtol=0, equal_nan=True)


def test_bootstrap_torch_backend_on_cpu_equals_numba():
    pytest.importorskip("torch")
    n = 30
    model, neural = _rdms(n, 2, 13), {"a": _rdms(n, 2, 14)}
    neural["a"][1] = np.round(neural["a"][1], 1)  # ties
    fast = bootstrap_similarity(model, neural, n_samples=25, seed=4)
    torch_cpu = bootstrap_similarity(model, neural, n_samples=25, seed=4, options=BootstrapOptions(device="cpu"))
    assert torch_cpu.backend == "torch"
    np.testing.assert_allclose(torch_cpu.samples, fast.samples, atol=1e-10, rtol=0, equal_nan=True)


def test_bootstrap_kernel_equals_rsatoolbox_on_same_index_sets():
    rsatoolbox = pytest.importorskip("rsatoolbox")
    from rsatoolbox.inference import eval_bootstrap_pattern
    from rsatoolbox.model import ModelFixed
    from rsatoolbox.rdm import RDMs

    n = 20
    model, area = _vectors(n, 2, 15), _vectors(n, 2, 16)
    stim = bootstrap_stimuli(n, 12, np.random.default_rng(6))
    ours = bootstrap_similarity(np.stack([squareform(v) for v in model]),
                                {"a": np.stack([squareform(v) for v in area])},
                                options=BootstrapOptions(stimulus_indices=stim))
    assert ours.backend == "numba"
    queue = list(stim)
    original = np.random.randint
    np.random.randint = lambda low, high, size=None: queue.pop(0)
    try:
        res = eval_bootstrap_pattern([ModelFixed(f"m{k}", RDMs(model[k][None])) for k in range(2)], RDMs(area),
                                     method="spearman", N=stim.shape[0], boot_noise_ceil=False)
    finally:
        np.random.randint = original
    np.testing.assert_allclose(ours.samples[:, :, 0], res.evaluations, atol=1e-10, rtol=0)
    del rsatoolbox


def test_rank_backend_registry():
    assert rank_backend("pearson") == "numpy"
    assert rank_backend("spearman") == "numba"
    assert rank_backend("spearman", "cuda") == "torch"
