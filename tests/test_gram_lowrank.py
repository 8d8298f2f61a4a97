"""The low-rank bootstrap route (rsa_bridge.measures.lowrank) against the n x n eigenbasis route, to 1e-10.

Reference: each measure's ``gram_score`` on the resampled Grams ``K[idx][:, idx]``, ``L[idx][:, idx]``
(itself checked against feature-space netrep / scipy references in tests/test_shape_measure.py and
tests/test_gram_measures.py)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from rsa_bridge.measures import MEASURES
from rsa_bridge.measures import lowrank as lr
from rsa_bridge.measures.gram_scoring import gram_stats_many, layer_scores_many
from rsa_bridge.measures.scoring import MeasureOptions
from rsa_bridge.measures.spectral import (
    Draw,
    draw_factor,
    factor_draw_spectrum,
    gram_spectrum,
    resampled_spectrum,
)
from rsa_bridge.stats.resample import bootstrap_stimuli

TOL = 1e-10


def _data(n=30, p=60, q=4, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p)) * scale
    y = rng.normal(size=(n, q)) + x[:, :q] / scale
    return x @ x.T, y @ y.T


def _pair(k, l, idx):
    draw = Draw.of(idx)
    return lr.draw_pair(k, draw_factor(gram_spectrum(l).factor(), draw), draw)


@pytest.mark.parametrize("scale", [1.0, 1e-3, 1e3])
def test_lowrank_measures_equal_the_eigenbasis_route(scale):
    from dataclasses import replace

    from rsa_bridge.measures.cca import mean_cca, pwcca, svcca
    from rsa_bridge.measures.procrustes import procrustes_similarity, shape_metric_similarity

    k, l = _data(scale=scale)
    rng = np.random.default_rng(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)         # the CCA saturation warning (layer rank n - 1)
        for _ in range(8):
            idx = rng.integers(0, 30, 30)
            cut = np.ix_(idx, idx)
            pair = _pair(k, l, idx)
            assert abs(lr.procrustes(pair) - procrustes_similarity(k[cut], l[cut])) < TOL
            shared = replace(pair, share_eigen=True)          # shape from SVCCA's eigendecomposition of M
            for alpha in (0.0, 0.2, 0.5, 0.9, 1.0):
                assert abs(lr.shape(pair, alpha) - shape_metric_similarity(k[cut], l[cut], alpha)) < TOL, alpha
                assert abs(lr.shape(shared, alpha) - shape_metric_similarity(k[cut], l[cut], alpha)) < TOL, alpha
            for keep in (0.99, 0.6, 2):
                assert abs(lr.svcca(pair, keep) - svcca(k[cut], l[cut], keep)) < TOL, keep
            assert abs(lr.cca(pair) - mean_cca(k[cut], l[cut])) < TOL
            assert abs(lr.pwcca(pair) - pwcca(k[cut], l[cut])) < TOL


def test_shape_trace_fallback_where_the_identity_would_cancel():
    """Tiny activations: b lam << a for every direction, so tr f(M) is summed, not taken from the identity."""
    from rsa_bridge.measures.procrustes import shape_metric_similarity

    k, l = _data(scale=1e-4)
    idx = np.random.default_rng(2).integers(0, 30, 30)
    cut = np.ix_(idx, idx)
    pair = _pair(k, l, idx)
    b = 0.5 / 30
    assert b * np.trace(pair.m) < lr._CANCELLATION * 30 ** 2       # the fallback branch runs
    assert abs(lr.shape(pair, 0.5) - shape_metric_similarity(k[cut], l[cut], 0.5)) < TOL


def test_full_rank_decides_the_route():
    k, _ = _data(p=60)
    assert lr.full_rank(k)
    low, _ = _data(p=5)                                           # rank 5 < n - 1
    assert not lr.full_rank(low)
    assert not lr.full_rank(np.ones((10, 10)))                    # constant: centred Gram zero
    x = np.random.default_rng(0).normal(size=(30, 60))
    x[:, 1:] *= 1e-6                                              # ill-conditioned: below the margin
    assert not lr.full_rank(x @ x.T)


def test_factor_draw_spectrum_equals_the_resampled_spectrum():
    _, l = _data(q=4)
    spec = gram_spectrum(l)
    for idx in bootstrap_stimuli(30, 5, np.random.default_rng(3)):
        draw = Draw.of(idx)
        a, b = factor_draw_spectrum(draw_factor(spec.factor(), draw), draw), resampled_spectrum(l, idx)
        c = resampled_spectrum(spec, idx)                           # the Spectrum given instead of the Gram
        assert a.rank == b.rank == c.rank == 4
        np.testing.assert_allclose(a.values, b.values, rtol=TOL)
        np.testing.assert_allclose(a.vectors @ a.vectors.T, b.vectors @ b.vectors.T, atol=TOL)
        np.testing.assert_allclose(c.vectors @ c.vectors.T, b.vectors @ b.vectors.T, atol=TOL)


def _manual(records, kernels, neural, n_bootstrap, seed):
    """The definition: each record's gram_score of the cut Grams, on the same draws."""
    out = np.empty((len(records), n_bootstrap, len(kernels)))
    for s, idx in enumerate(bootstrap_stimuli(neural.shape[0], n_bootstrap, np.random.default_rng(seed))):
        cut = np.ix_(idx, idx)
        for j, r in enumerate(records):
            out[j, s] = [r.gram_score(k[cut], neural[cut]) for k in kernels]
    return out


@pytest.mark.parametrize("names, keep", [(("procrustes", "shape", "cca", "pwcca"), 0.99),
                                         (("procrustes", "shape", "cca", "svcca", "pwcca"), 0.99),
                                         (("svcca",), 0.8), (("svcca",), 3)])
def test_gram_stats_samples_equal_the_definition(names, keep):
    """Full-rank layers (low-rank route, or with svcca the spectra and the neural factor) and a rank-3 layer
    (eigenbasis route) in one job: every bootstrap sample equals gram_score of the cut Grams."""
    rng = np.random.default_rng(5)
    xs = [rng.normal(size=(25, p)) for p in (50, 40, 3)]
    r = rng.normal(size=(25, 4))
    kernels, neural = np.stack([x @ x.T for x in xs]), r @ r.T
    records = [MEASURES[n].bound(MeasureOptions(shape_alpha=0.3, svcca_keep=keep)) for n in names]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        observed = layer_scores_many(records, kernels, neural)
        stats = gram_stats_many(records, kernels, neural, observed, n_bootstrap=6, n_permutations=0,
                                rng=np.random.default_rng(7))
        expected = _manual(records, kernels, neural, 6, 7)
    for st, exp in zip(stats, expected):
        np.testing.assert_allclose(st.samples, exp, rtol=0, atol=TOL)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_thread_count_never_changes_the_statistics(monkeypatch, threads):
    """Samples and permutation nulls spread over threads: identical (bit for bit) to one thread, in order."""
    from rsa_bridge.measures import gram_scoring

    rng = np.random.default_rng(8)
    xs = [rng.normal(size=(20, p)) for p in (40, 3)]
    r = rng.normal(size=(20, 4))
    kernels, neural = np.stack([x @ x.T for x in xs]), r @ r.T
    records = [MEASURES[n].bound(MeasureOptions()) for n in ("procrustes", "shape", "svcca")]
    observed = layer_scores_many(records, kernels, neural)

    monkeypatch.setattr(lr, "BLOCK_BYTES", 8 * 20 * 5 * 2)           # blocks of 2 draws: several tasks per thread

    def run(count):
        monkeypatch.setattr(gram_scoring, "THREADS", count)
        return gram_stats_many(records, kernels, neural, observed, n_bootstrap=7, n_permutations=5,
                               rng=np.random.default_rng(3))

    for one, many in zip(run(1), run(threads)):
        np.testing.assert_array_equal(one.samples, many.samples)
        np.testing.assert_array_equal(one.p_value, many.p_value)


def test_a_block_of_draws_scores_each_draw_as_alone():
    """DrawBlock: Procrustes of S draws x L layers from one GEMM equals each draw's own reference (1e-10), a constant
    neural draw in the block refuses alone, and the block size depends on the shapes only."""
    from rsa_bridge.measures.procrustes import procrustes_similarity
    from rsa_bridge.measures.spectral import ConstantRepresentation

    rng = np.random.default_rng(4)
    xs = [rng.normal(size=(25, p)) * s for p, s in ((60, 1.0), (40, 1e-3), (90, 1e3))]
    kernels = np.stack([x @ x.T for x in xs])
    y = rng.normal(size=(25, 3))
    factor = gram_spectrum(y @ y.T).factor()
    idxs = [rng.integers(0, 25, 25) for _ in range(5)]
    draws = [Draw.of(i) for i in idxs]
    zs = [draw_factor(factor, d) for d in draws]
    zs[2] = np.zeros_like(zs[2])                                   # a constant neural draw
    block = lr.DrawBlock(lr.stack_layers(kernels), draws, zs)
    for s, idx in enumerate(idxs):
        cut = np.ix_(idx, idx)
        if s == 2:
            with pytest.raises(ConstantRepresentation):
                block.layers(s)
            continue
        layers = block.layers(s)
        for j, k in enumerate(kernels):
            expected = procrustes_similarity(k[cut], (y @ y.T)[cut])
            assert abs(lr.procrustes(layers.pair(j)) - expected) < TOL
            assert abs(block.procrustes[s, j] - expected) < TOL
    assert lr.block_size(8, 640, 50) == lr.block_size(8, 640, 50, limit=32) <= 32
    assert lr.block_size(8, 100_000, 50) == 1                      # a huge product: one draw per GEMM


def test_block_size_never_changes_the_samples(monkeypatch):
    """Blocks of 1, 2 and 32 draws give the same samples (to rounding); the thread test checks bit equality."""
    rng = np.random.default_rng(9)
    x, r = rng.normal(size=(20, 40)), rng.normal(size=(20, 4))
    kernels, neural = np.stack([x @ x.T]), r @ r.T
    records = [MEASURES[n].bound(MeasureOptions()) for n in ("procrustes", "shape")]
    observed = layer_scores_many(records, kernels, neural)
    runs = []
    for limit in (8, 8 * 20 * 5 * 2, lr.BLOCK_BYTES):             # bytes: blocks of 1, 2, 32 draws
        monkeypatch.setattr(lr, "BLOCK_BYTES", limit)
        runs.append(gram_stats_many(records, kernels, neural, observed, n_bootstrap=9, n_permutations=0,
                                    rng=np.random.default_rng(3)))
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_allclose(a.samples, b.samples, rtol=0, atol=1e-12)


def test_constant_neural_data_give_nan_samples():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 40))
    kernels, neural = np.stack([x @ x.T]), np.ones((20, 20))
    records = [MEASURES["procrustes"].bound(MeasureOptions())]
    with pytest.warns(RuntimeWarning, match="constant"):
        st = gram_stats_many(records, kernels, neural, [np.array([np.nan])], n_bootstrap=3, n_permutations=0,
                             rng=np.random.default_rng(1))[0]
    assert np.isnan(st.samples).all()


def test_draw_pair_refuses_a_constant_neural_draw():
    from rsa_bridge.measures.spectral import ConstantRepresentation

    k, _ = _data()
    draw = Draw.of(np.arange(30))
    with pytest.raises(ConstantRepresentation, match="constant"):
        lr.draw_pair(k, np.zeros((30, 3)), draw)


def test_the_route_is_chosen_by_capability_and_rank():
    """Full-rank layers take the low-rank route only when every record has a draw_score; the neural factor is
    used whenever a layer has full rank (its rank 4 <= n / 3)."""
    from rsa_bridge.measures.gram_scoring import _Draws

    rng = np.random.default_rng(5)
    kernels = np.stack([x @ x.T for x in (rng.normal(size=(25, 50)), rng.normal(size=(25, 3)))])
    r = rng.normal(size=(25, 4))
    fast = _Draws([MEASURES[n] for n in ("procrustes", "cca")], kernels, r @ r.T)
    assert fast.eligible == [True, False] and fast.uses_factor
    from dataclasses import replace

    plugin = replace(MEASURES["svcca"], name="plugin", draw_score=None)     # a spectral record without a draw route
    mixed = _Draws([MEASURES["procrustes"], plugin], kernels, r @ r.T)
    assert mixed.eligible == [False, False] and mixed.uses_factor
    every = _Draws([MEASURES[n] for n in ("procrustes", "shape", "cca", "svcca", "pwcca")], kernels, r @ r.T)
    assert every.eligible == [True, False]
    low = _Draws([MEASURES["procrustes"]], kernels[1:], r @ r.T)
    assert low.eligible == [False] and not low.uses_factor


def test_factor_and_observed_spectra_stand_in_for_their_eigenproblems():
    """The neural side prepared from its factor (thin SVD) and the full-rank test from the layers' observed
    spectra give the scores and samples of the Gram route (1e-10), and full_rank's answer."""
    from rsa_bridge.measures.gram_scoring import _Prepared
    from rsa_bridge.measures.spectral import factor_spectrum

    rng = np.random.default_rng(11)
    xs = [rng.normal(size=(24, p)) for p in (50, 5, 30)]
    kernels = np.stack([x @ x.T for x in xs])
    r = rng.normal(size=(24, 4)) + xs[0][:, :4]
    neural = r @ r.T
    a, b = factor_spectrum(r), gram_spectrum(neural)
    np.testing.assert_allclose(a.values, b.values, rtol=1e-12)
    np.testing.assert_allclose(np.abs(a.vectors.T @ b.vectors), np.eye(4), atol=1e-10)
    records = [MEASURES[n].bound(MeasureOptions()) for n in ("procrustes", "shape", "cca", "svcca", "pwcca")]
    layers = _Prepared(records, kernels)
    assert [lr.spectrum_full_rank(s) for s in layers.spectra()] == [lr.full_rank(k) for k in kernels] \
        == [True, False, True]
    plain = layer_scores_many(records, kernels, neural)
    fast = layer_scores_many(records, kernels, neural, factor=r, layers=layers)
    np.testing.assert_allclose(fast, plain, rtol=0, atol=TOL)
    kw = dict(n_bootstrap=5, n_permutations=4)
    slow = gram_stats_many(records, kernels, neural, plain, rng=np.random.default_rng(2), **kw)
    quick = gram_stats_many(records, kernels, neural, plain, rng=np.random.default_rng(2), factor=r, layers=layers,
                            **kw)
    for one, other in zip(slow, quick):
        np.testing.assert_allclose(other.samples, one.samples, rtol=0, atol=TOL)
        np.testing.assert_array_equal(other.p_value, one.p_value)


def test_a_ci_away_from_the_score_is_flagged():
    from rsa_bridge.measures import gram_scoring as gs

    """More units than stimuli: Procrustes rises when stimuli repeat, so the whole CI lies above the score; the
    job says so (and not for CKA-like measures whose CI brackets the score)."""
    rng = np.random.default_rng(12)
    x = rng.normal(size=(40, 400))
    r = rng.normal(size=(40, 6)) + x[:, :6]
    kernels, neural = np.stack([x @ x.T]), r @ r.T
    records = [MEASURES["procrustes"].bound(MeasureOptions())]
    observed = layer_scores_many(records, kernels, neural)
    with pytest.warns(RuntimeWarning, match="procrustes: the bootstrap CI lies above the in-sample score for 1 of 1"):
        st = gram_stats_many(records, kernels, neural, observed, n_bootstrap=30, n_permutations=0,
                             rng=np.random.default_rng(0))[0]
    assert st.ci_low[0] > observed[0, 0]
    with warnings.catch_warnings():                                   # saturated at 1 +- rounding: no warning
        warnings.simplefilter("error")
        gs._warn_shifted("pwcca", np.array([1 - 1e-13, 1.0]), np.ones(2), np.ones(2))
