"""The blocked rank kernel (rsa_bridge.stats.rank_kernel) equals scipy, the numpy weighted-rank path and itself.

Independent references: scipy's ``spearmanr`` on the explicitly resampled RDM (stimulus copies kept,
pairs of a stimulus with its own copy dropped, as rsatoolbox), and the numpy path of
:mod:`rsa_bridge.stats.weighted` (the path before the kernel). Random inputs carry ties (rounded
values), stimuli drawn 0, 1 or several times, and tie groups that straddle the kernel's blocks.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import pdist, squareform
from scipy.stats import spearmanr

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.stats import bootstrap_similarity, rank_kernel, weighted
from rsa_bridge.stats.resample import counts

pytestmark = [pytest.mark.skipif(not rank_kernel.available(), reason="numba not installed"),
              pytest.mark.filterwarnings("ignore::RuntimeWarning")]

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)


def _vectors(rng, n, k, decimals):
    x = np.stack([pdist(rng.normal(size=(n, 3)), "correlation") for _ in range(k)])
    return np.round(x, decimals) if decimals is not None else x


def _kernel(method, model, area, c, n, **kw):
    return rank_kernel.similarities(method, rank_kernel.sorted_pairs(model, n), rank_kernel.sorted_pairs(area, n), c,
                                    **kw)


def _numpy(method, model, area, c, n):
    rows, cols = np.triu_indices(n, k=1)
    w = c[:, rows] * c[:, cols]
    return np.matmul(weighted.prepare(method, model, w), weighted.prepare(method, area, w).transpose(0, 2, 1))


def _scipy_resampled(model, area, idx, n):
    """spearmanr of every model row with every area row on the explicitly resampled RDMs."""
    a, b = np.triu_indices(len(idx), k=1)
    keep = idx[a] != idx[b]  # a stimulus with its own copy: dropped
    sub = lambda v: squareform(v)[np.ix_(idx, idx)][a[keep], b[keep]]  # noqa: E731
    return np.array([[spearmanr(sub(x), sub(y)).statistic for y in area] for x in model])


@st.composite
def cases(draw):
    n = draw(st.integers(4, 24))
    seed = draw(st.integers(0, 2**31 - 1))
    decimals = draw(st.sampled_from([None, 2, 1]))  # 1 decimal: large tie groups
    b = draw(st.integers(1, 20))  # not a multiple of the 16 lanes
    return n, seed, decimals, b


@SETTINGS
@given(cases(), st.sampled_from([2, 3, 13]))
def test_kernel_equals_scipy_on_resampled_rdms_and_numpy_path(case, shift):
    n, seed, decimals, b = case
    rng = np.random.default_rng(seed)
    model, area = _vectors(rng, n, 2, decimals), _vectors(rng, n, 2, decimals)
    idx = np.sort(rng.integers(0, n, size=(b, n)), axis=1)
    idx = idx[[np.unique(row).size >= 3 for row in idx]]  # fewer distinct stimuli: NaN by definition
    idx = np.concatenate([idx, np.arange(n)[None]])  # and the sample of no resampling
    b = idx.shape[0]
    c = counts(idx, n)
    old = rank_kernel.BLOCK_SHIFT
    rank_kernel.BLOCK_SHIFT = shift  # blocks of 4 / 8 positions: tie groups cross block boundaries
    try:
        ours = _kernel("spearman", model, area, c, n)
        ours_rho_a = _kernel("rho_a", model, area, c, n)
    finally:
        rank_kernel.BLOCK_SHIFT = old
    np.testing.assert_allclose(ours, _numpy("spearman", model, area, c, n), atol=1e-10, rtol=0, equal_nan=True)
    np.testing.assert_allclose(ours_rho_a, _numpy("rho_a", model, area, c, n), atol=1e-10, rtol=0, equal_nan=True)
    for s in range(b):
        ref = _scipy_resampled(model, area, idx[s], n)
        np.testing.assert_allclose(ours[s], ref, atol=1e-10, rtol=0, equal_nan=True)


def test_block_size_threads_plan_chunks_and_float64_buffers_do_not_change_a_bit(monkeypatch):
    n = 150  # 11,175 pairs: two blocks of the default size
    rng = np.random.default_rng(0)
    model, area = _vectors(rng, n, 3, 2), _vectors(rng, n, 2, 2)  # ties throughout
    c = counts(np.sort(rng.integers(0, n, size=(21, n)), axis=1), n)
    mp, ap = rank_kernel.sorted_pairs(model, n), rank_kernel.sorted_pairs(area, n)
    ref = rank_kernel.similarities("spearman", mp, ap, c)
    np.testing.assert_allclose(ref, _numpy("spearman", model, area, c, n), atol=1e-10, rtol=0)
    assert np.array_equal(rank_kernel.similarities("spearman", mp, ap, c, rank_kernel.plan_chunks(mp, ap)), ref)
    monkeypatch.setattr(rank_kernel, "PLAN_BYTES", 1)  # one model RDM per chunk of plans
    assert len(rank_kernel.plan_chunks(mp, ap)) == 3
    assert np.array_equal(rank_kernel.similarities("spearman", mp, ap, c), ref)
    try:
        rank_kernel.set_threads(1)
        assert np.array_equal(rank_kernel.similarities("spearman", mp, ap, c), ref)
    finally:
        rank_kernel.set_threads(None)
    monkeypatch.setattr(rank_kernel, "FLOAT32_EXACT", 0.0)  # float64 counts and rank buffers
    assert np.array_equal(rank_kernel.similarities("spearman", mp, ap, c), ref)
    monkeypatch.setattr(rank_kernel, "BLOCK_SHIFT", 4)  # other blocks: other partial sums, same value to rounding
    np.testing.assert_allclose(rank_kernel.similarities("spearman", mp, ap, c), ref, atol=1e-14, rtol=0)


@pytest.mark.parametrize("method", ["spearman", "rho_a"])
def test_observed_from_kernel_equals_compare_vectors(method):
    from rsa_bridge.compare import compare_vectors

    n = 140
    rng = np.random.default_rng(1)
    model, area = _vectors(rng, n, 3, 2), _vectors(rng, n, 2, None)
    res = bootstrap_similarity(np.stack([squareform(v) for v in model]), {"a": np.stack([squareform(v) for v in area])},
                               method=method, n_samples=5, seed=0)
    assert res.backend == "numba"
    expected = compare_vectors(model, area, method).mean(axis=1)
    np.testing.assert_allclose(res.observed[:, 0], expected, atol=1e-13, rtol=0)


def test_constant_rdm_still_refused_before_sampling():
    n = 12
    rng = np.random.default_rng(2)
    model = np.stack([squareform(pdist(rng.normal(size=(n, 3))))])
    with pytest.raises(RSABridgeError, match="constant"):
        bootstrap_similarity(model, {"a": np.ones((1, n, n)) - np.eye(n)}, n_samples=5, seed=0)
