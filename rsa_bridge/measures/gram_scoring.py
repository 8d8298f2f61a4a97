"""Scores, statistics and ceilings of any measure that is a function of the two stimulus Grams.

A :class:`rsa_bridge.measures.Measure` whose ``gram_score`` is set (Procrustes, CCA, SVCCA, PWCCA, mutual
k-NN, CKNNA) is scored here for every layer of a model against one area, from the layer Grams the forward
pass already keeps and the neural Gram ``R R^T`` (R: stimulus x neuroid mean responses); the machinery asks
the record, never its name. ``gram_prepare`` (optional) turns one Gram into what ``gram_score`` reuses
(an eigenbasis), so each Gram is decomposed once per sample, not once per pair.

- **bootstrap over stimuli**: the same index sets as RSA and CKA
  (:func:`rsa_bridge.stats.resample.bootstrap_stimuli`, same generator and seed); each sample is the measure
  of the resampled Grams ``K[i][:, i]`` and ``L[i][:, i]`` (the Grams of the feature matrices with the drawn
  rows, repeats included: what resampling the rows of both feature matrices gives). Percentile CI and the
  best-layer probability ``p_best``. Mutual k-NN and CKNNA refuse (``Measure.resample_refusal``): a repeated
  stimulus is its own nearest neighbour in both representations, which would raise them in every sample.
- **permutation p**: the neural stimulus labels permuted (``L[p][:, p]``), ``p = (1 + #{null >= observed}) /
  (1 + permutations)``, Holm and BH across the layers.
- **ceiling**: mean over split halves of the repetitions of the measure between the two halves' neural Grams
  (as CKA's split-half ceiling; :func:`rsa_bridge.measures.ceilings.half_means`).

Cost: each layer Gram is eigendecomposed once (its observed score; the same spectra decide the low-rank route and
serve the permutations) and the neural side never is: its spectrum comes from a thin SVD of the responses
(``Measure.factor_prepare``, n q^2), for the score, the draws and each split half of the ceiling. Without the
low-rank route a bootstrap sample eigendecomposes each Gram over the u ~ 0.63 n distinct stimuli drawn
(:func:`rsa_bridge.measures.spectral.resampled_spectrum`, u^3 ~ n^3 / 4), shared by every spectral measure of the
job; a permutation none (the layers' spectra are reused, the neural one relabelled: :meth:`_Prepared.permuted`).
When every record has a ``draw_score`` (procrustes, shape, cca, svcca, pwcca) a full-rank layer takes the low-rank
route (:mod:`rsa_bridge.measures.lowrank`): the drawn rows of the neural factor against the layer's Gram, the
draws in blocks (Procrustes: one GEMM for a block of draws and every layer,
:class:`~rsa_bridge.measures.lowrank.DrawBlock`), no layer eigendecomposition unless a record has ``draw_eigen`` (SVCCA). Blocks of samples (and permutations)
run over the process's cores (threads, :data:`THREADS`; results do not depend on the count) with a progress bar.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.measures.spectral import ConstantRepresentation
from rsa_bridge.measures.stats import LayerStats, p_best
from rsa_bridge.stats.bootstrap import percentile_ci
from rsa_bridge.stats.permutation import fdr_bh, holm
from rsa_bridge.stats.resample import bootstrap_stimuli, permutations


#: threads for the bootstrap samples and permutations (None: the cores this process may use, at most 8); the
#: count never changes a result
THREADS: int | None = None


def _prepare(record, gram: np.ndarray, factor: np.ndarray | None = None) -> Any:
    """What ``record.gram_score`` takes for one Gram (from its factor, ``gram = factor factor^T``, where the record
    prepares factors: :attr:`rsa_bridge.measures.Measure.factor_prepare`); None for a constant representation
    (its score is NaN)."""
    try:
        if factor is not None and record.factor_prepare is not None:
            return record.factor_prepare(factor)
        return record.gram_prepare(gram) if record.gram_prepare is not None else gram
    except ConstantRepresentation:
        warnings.warn(f"a representation is constant over the stimuli; its {record.name} is NaN", RuntimeWarning,
                      stacklevel=3)
        return None


def _resample(record, gram: np.ndarray, idx: np.ndarray) -> Any:
    try:
        return record.gram_resample(gram, idx)
    except ConstantRepresentation:
        warnings.warn(f"a representation is constant over the stimuli; its {record.name} is NaN", RuntimeWarning,
                      stacklevel=3)
        return None


def _score(record, k, l) -> float:
    if k is None or l is None:
        return float("nan")
    try:
        return float(record.gram_score(k, l))
    except ConstantRepresentation:
        warnings.warn(f"a representation is constant over the stimuli; its {record.name} is NaN", RuntimeWarning,
                      stacklevel=3)
        return float("nan")


class _Prepared:
    """Each Gram prepared once per distinct ``gram_prepare`` (one eigendecomposition shared by every spectral
    measure of the job), looked up by record."""

    def __init__(self, records: Sequence, grams: Sequence[np.ndarray], idx: np.ndarray | None = None,
                 factors: Sequence[np.ndarray] | None = None):
        """``idx``: prepare each ``G[idx][:, idx]`` instead (a bootstrap draw), by ``gram_resample`` when the
        record has it (an eigenproblem over the distinct stimuli drawn), else by preparing the cut Gram.
        ``factors``: each Gram's (n, q) factor (``G = F F^T``), for the records that prepare from it."""
        self._by_kind: dict[int, list] = {}
        cut = None if idx is None else np.ix_(idx, idx)
        for record in records:
            kind = id(record.gram_prepare)
            if kind in self._by_kind:
                continue
            if idx is not None and record.gram_resample is not None:
                self._by_kind[kind] = [_resample(record, g, idx) for g in grams]
            else:
                self._by_kind[kind] = [_prepare(record, g if cut is None else g[cut],
                                                None if factors is None or cut is not None else f)
                                       for g, f in zip(grams, factors or [None] * len(grams))]

    def of(self, record) -> list:
        return self._by_kind[id(record.gram_prepare)]

    def spectra(self) -> list | None:
        """Each Gram's :class:`rsa_bridge.measures.spectral.Spectrum` where a record prepared one (None for a
        constant Gram), else None."""
        from rsa_bridge.measures.spectral import Spectrum

        for items in self._by_kind.values():
            if any(isinstance(item, Spectrum) for item in items):
                return [item if isinstance(item, Spectrum) else None for item in items]
        return None

    def permuted(self, records: Sequence, grams: Sequence[np.ndarray], order: np.ndarray) -> _Prepared:
        """The preparation of each ``G[order][:, order]`` (the stimuli relabelled): a prepared object with a
        ``permuted`` method (a :class:`rsa_bridge.measures.spectral.Spectrum`: its rows reordered, no new
        eigendecomposition) is relabelled, anything else is prepared again from the relabelled Gram."""
        out = _Prepared.__new__(_Prepared)
        out._by_kind = {}
        cut = np.ix_(order, order)
        for record in records:
            kind = id(record.gram_prepare)
            if kind not in out._by_kind:
                out._by_kind[kind] = [
                    item.permuted(order) if hasattr(item, "permuted") else
                    None if item is None else _prepare(record, g[cut]) for item, g in zip(self._by_kind[kind], grams)]
        return out


class _Draws:
    """The bootstrap samples of several records. When every record has a ``draw_score``, layers whose Gram has
    full rank (:func:`rsa_bridge.measures.lowrank.full_rank`) are scored by it from the drawn rows of a factor
    of the neural Gram (no layer eigendecomposition unless a record has ``draw_eigen``, SVCCA: then its one
    decomposition serves the others too); other layers (and all layers when a record has no ``draw_score``,
    e.g. a plugin's: the spectrum serves every record at once) as :class:`_Prepared` does, the
    neural spectrum resampled from that factor (a thin SVD) where every record resamples (``gram_resample``).
    Without a full-rank layer: :class:`_Prepared` alone, as before."""

    def __init__(self, records: Sequence, kernels: np.ndarray, neural: np.ndarray, *, layers: _Prepared | None = None,
                 factor: np.ndarray | None = None):
        """``layers``: the layers' :class:`_Prepared` of the observed scores (their spectra decide the full rank
        without another eigenproblem); ``factor``: the neural Gram's (n, q) factor (its spectrum by a thin SVD)."""
        from rsa_bridge.measures.lowrank import full_rank, spectrum_full_rank
        from rsa_bridge.measures.spectral import factor_spectrum, gram_spectrum

        self.records, self.kernels, self.neural = list(records), kernels, neural
        spectra = None if layers is None else layers.spectra()
        full = ([full_rank(k) for k in kernels] if spectra is None else [spectrum_full_rank(sp) for sp in spectra]) \
            if self.records else []
        self.spectrum = None
        if any(full):
            try:
                self.spectrum = gram_spectrum(neural) if factor is None else factor_spectrum(factor)
            except ConstantRepresentation:
                full = [False] * len(kernels)               # every sample NaN, with the warnings, as before
        self.factor = None if self.spectrum is None else self.spectrum.factor()
        every = all(r.draw_score is not None for r in self.records)
        self.eligible = [ok and every for ok in full]
        # the neural factor's thin SVD beats the u x u eigenproblem when its rank is at most about u / 2
        self.uses_factor = any(full) and self.spectrum.rank <= neural.shape[0] // 3
        self.stack, self.block = None, 1
        if self.uses_factor and any(self.eligible):             # the eligible layers, float64, scored in blocks
            from rsa_bridge.measures.lowrank import block_size, stack_layers

            self.stack = stack_layers(np.asarray(kernels)[np.flatnonzero(self.eligible)])
            self.block = block_size(*self.stack.shape[:2], self.factor.shape[1])

    def scores(self, idx: np.ndarray) -> np.ndarray:
        """(R, L) the records' measures on the draw ``idx``."""
        return self.scores_block([idx])[0]

    def scores_block(self, idxs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """(R, L) the records' measures on each draw of ``idxs``, the full-rank layers of all of them scored
        together (:class:`rsa_bridge.measures.lowrank.DrawBlock`)."""
        if not self.uses_factor:
            return [_scores_many(self.records, _Prepared(self.records, self.kernels, idx),
                                 _Prepared(self.records, [self.neural], idx)) for idx in idxs]
        from rsa_bridge.measures.lowrank import DrawBlock
        from rsa_bridge.measures.spectral import Draw, draw_factor

        draws = [Draw.of(idx) for idx in idxs]
        block = None if self.stack is None else DrawBlock(self.stack, draws, [draw_factor(self.factor, d)
                                                                             for d in draws])
        outs = []
        for sample, (idx, draw) in enumerate(zip(idxs, draws)):
            out = np.empty((len(self.records), len(self.kernels)))
            if not all(self.eligible):
                every = all(r.gram_resample is not None for r in self.records)
                neural = _Prepared(self.records, [self.spectrum if every else self.neural], idx)
                out[:, ~np.array(self.eligible)] = _scores_many(
                    self.records, _Prepared(self.records, [k for k, ok in zip(self.kernels, self.eligible) if not ok],
                                            idx), neural)
            if block is not None:
                try:
                    layers = block.layers(sample)
                except ConstantRepresentation:
                    warnings.warn("the neural data are constant over the stimuli drawn; these measures are NaN",
                                  RuntimeWarning, stacklevel=3)
                    layers = None
                share = any(r.draw_eigen for r in self.records)     # one eigh per layer serves every record
                for j, i in enumerate(np.flatnonzero(self.eligible)):
                    pair = None if layers is None else layers.pair(j, share)
                    out[:, i] = [float("nan") if pair is None else float(r.draw_score(pair)) for r in self.records]
            outs.append(out)
        return outs


def _spread(fn, tasks: Sequence, desc: str, size=None) -> list:
    """``[fn(t) for t in tasks]`` over the process's cores (threads: the eigen- and Cholesky factorisations of
    numpy and scipy release the GIL; BLAS limited to one thread each meanwhile), with a progress bar ``desc``
    (:mod:`rsa_bridge.progress`: the session switch, ``--quiet``). Each task is computed the same way whatever
    the thread count, in order, so results do not depend on it (:data:`THREADS`). ``size(task)``: how many
    samples a task holds (the bar's step; 1 when None)."""
    from rsa_bridge.progress import progress_bar
    from rsa_bridge.stats.weighted import cpu_threads

    threads = min(len(tasks), cpu_threads() if THREADS is None else THREADS)
    total = len(tasks) if size is None else sum(size(t) for t in tasks)
    bar = progress_bar(total=total, desc=desc, unit="sample" if "bootstrap" in desc else "permutation")
    out = []
    if threads <= 1:
        for t in tasks:
            out.append(fn(t))
            bar.update(1 if size is None else size(t))
    else:
        from concurrent.futures import ThreadPoolExecutor

        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(threads) as pool:
            for t, value in zip(tasks, pool.map(fn, tasks)):
                out.append(value)
                bar.update(1 if size is None else size(t))
    bar.close()
    return out


def _names(records: Sequence) -> str:
    return "/".join(r.name for r in records)


def _scores_many(records: Sequence, layers: _Prepared, neural: _Prepared) -> np.ndarray:
    """(R, L): each record's measure of each prepared layer against the prepared neural Gram."""
    return np.array([[_score(r, k, neural.of(r)[0]) for k in layers.of(r)] for r in records], dtype=np.float64)


def layer_scores(record, kernels: Sequence[np.ndarray], neural: np.ndarray) -> np.ndarray:
    """(L,) the measure of each layer Gram (L, n, n) against the neural Gram (n, n); NaN for a layer (or
    neural data) that is constant over the stimuli, as CKA gives."""
    return layer_scores_many([record], kernels, neural)[0]


def layer_scores_many(records: Sequence, kernels: Sequence[np.ndarray], neural: np.ndarray, *,
                      factor: np.ndarray | None = None, layers: _Prepared | None = None) -> np.ndarray:
    """(R, L) :func:`layer_scores` of several records, each Gram prepared once per distinct ``gram_prepare``
    (``layers``: already prepared; ``factor``: the neural Gram's (n, q) factor, :class:`_Prepared`)."""
    layers = _Prepared(records, kernels) if layers is None else layers
    return _scores_many(records, layers, _Prepared(records, [neural], factors=None if factor is None else [factor]))


def gram_stats(record, kernels: np.ndarray, neural: np.ndarray, observed: np.ndarray, *, n_bootstrap: int,
               n_permutations: int, rng: np.random.Generator, level: float = 0.95) -> LayerStats:
    """Bootstrap (over stimuli) and permutation statistics of ``record``'s measure for L layers (see module)."""
    return gram_stats_many([record], kernels, neural, [observed], n_bootstrap=n_bootstrap,
                           n_permutations=n_permutations, rng=rng, level=level)[0]


def gram_stats_many(records: Sequence, kernels: np.ndarray, neural: np.ndarray, observed: Sequence[np.ndarray], *,
                    n_bootstrap: int, n_permutations: int, rng: np.random.Generator,
                    level: float = 0.95, factor: np.ndarray | None = None,
                    layers: _Prepared | None = None) -> list[LayerStats]:
    """:func:`gram_stats` of several records on the same bootstrap draws and permutations (in that order, as
    for one record), each resampled Gram prepared once for all records sharing its ``gram_prepare``.
    ``factor``, ``layers``: as :func:`layer_scores_many` (the observed scores' preparation, reused)."""
    outs = [LayerStats(resampled="stimuli") for _ in records]
    n = neural.shape[0]
    if n_bootstrap:
        from rsa_bridge.measures import check_resampling

        check_resampling([r.name for r in records], n_bootstrap)
        draws = _Draws(records, kernels, neural, layers=layers, factor=factor)
        idx = bootstrap_stimuli(n, n_bootstrap, rng)
        blocks = [idx[i:i + draws.block] for i in range(0, len(idx), draws.block)]
        samples = np.stack([s for block in _spread(draws.scores_block, blocks, f"{_names(records)} bootstrap samples",
                                                   size=len) for s in block], axis=1)
        for record, out, sample, seen in zip(records, outs, samples, observed):
            out.samples = sample
            out.ci_low, out.ci_high = percentile_ci(sample, level)
            out.p_best = p_best(sample)
            _warn_shifted(record.name, np.asarray(seen, dtype=np.float64), out.ci_low, out.ci_high)
    if n_permutations:
        layers = _Prepared(records, kernels) if layers is None else layers
        base = _Prepared(records, [neural], factors=None if factor is None else [factor])

        def null(p):
            return _scores_many(records, layers, base.permuted(records, [neural], p))

        exceed = np.zeros((len(records), len(kernels)))
        for values in _spread(null, permutations(n, n_permutations, rng), f"{_names(records)} permutations"):
            exceed += values >= np.asarray(observed)[:, :] - 1e-12
        for out, row in zip(outs, exceed):
            out.p_value = (1 + row) / (1 + n_permutations)
            out.p_holm, out.p_fdr = holm(out.p_value), fdr_bh(out.p_value)
    return outs


def _warn_shifted(name: str, observed: np.ndarray, low: np.ndarray, high: np.ndarray) -> None:
    """A warning when the in-sample score lies outside its own percentile CI for most layers: the measure is
    biased under resampling with repeated stimuli (e.g. Procrustes with more units than stimuli, where a repeated
    stimulus adds no new direction), so the CI's position misleads; the ranking (``p_best``) and permutation p
    remain usable."""
    ok = np.isfinite(observed) & np.isfinite(low) & np.isfinite(high)
    outside = ok & ((observed < low - 1e-9) | (observed > high + 1e-9))    # not rounding (CCA saturated at 1)
    if ok.any() and outside.sum() * 2 > ok.sum():
        side = "above" if (low[outside] > observed[outside]).all() else \
            "below" if (high[outside] < observed[outside]).all() else "away from"
        warnings.warn(f"{name}: the bootstrap CI lies {side} the in-sample score for {int(outside.sum())} of "
                      f"{int(ok.sum())} layers: the measure is biased when stimuli repeat in a sample; compare layers "
                      f"by p_best or permutation p, and do not read the CI as an interval around the score",
                      RuntimeWarning, stacklevel=3)


def neural_gram(responses: xr.DataArray) -> np.ndarray:
    """(n, n) ``R R^T`` of the mean responses (stimulus x neuroid); RSABridgeError on NaN."""
    values = np.asarray(responses.values, dtype=np.float64)
    if not np.isfinite(values).all():
        raise RSABridgeError("neural responses contain NaN (a stimulus without presentations?); the Gram measures "
                             "need all")
    return values @ values.T


def gram_ceiling(record, rates: xr.DataArray, n_splits: int = 10, seed: int | np.random.Generator = 0,
                 stimulus_ids: Sequence[str] | None = None) -> float:
    """Mean over split halves of the measure between the two halves' neural Grams."""
    return float(gram_ceilings([record], rates, n_splits, seed, stimulus_ids)[0])


def gram_ceilings(records: Sequence, rates: xr.DataArray, n_splits: int = 10, seed: int | np.random.Generator = 0,
                  stimulus_ids: Sequence[str] | None = None) -> np.ndarray:
    """(R,) :func:`gram_ceiling` of several records on the same split halves, each half's Gram prepared once."""
    from rsa_bridge.measures.ceilings import half_means

    values = []
    for a, b in half_means(rates, n_splits, seed, stimulus_ids):
        if np.isnan(a).any() or np.isnan(b).any():
            raise RSABridgeError(f"a half has no presentation of some stimulus or a NaN response; the "
                                 f"{'/'.join(r.name for r in records)} ceiling needs every stimulus in both halves")
        values.append(_scores_many(records, _Prepared(records, [a @ a.T], factors=[a]),
                                   _Prepared(records, [b @ b.T], factors=[b]))[:, 0])
    return np.mean(values, axis=0)


def score_gram_measures(records: Sequence, grams: np.ndarray, responses: xr.DataArray, rates: xr.DataArray,
                        ids: list[str], options, *, stats: dict) -> list[tuple[np.ndarray, LayerStats, float]]:
    """Score, statistics and ceiling of several Gram measures for every layer against one area, sharing each
    Gram's preparation (one eigendecomposition per Gram for all spectral measures) and the resampling draws.

    ``stats``: ``n_bootstrap``, ``n_permutations``, ``rng``, ``level``; ``options``: the run's
    :class:`rsa_bridge.measures.scoring.MeasureOptions` (``ceiling_splits``, ``fold_seed`` and the settings the
    records read, e.g. ``shape_alpha``: :meth:`rsa_bridge.measures.Measure.bound`)."""
    records = [r.bound(options) for r in records]
    neural = neural_gram(responses)
    factor = np.asarray(responses.values, dtype=np.float64)
    layers = _Prepared(records, grams)                      # each layer decomposed once: scores, draws, permutations
    scores = layer_scores_many(records, grams, neural, factor=factor, layers=layers)
    stats_ = gram_stats_many(records, grams, neural, scores, **stats, factor=factor, layers=layers)
    ceilings = gram_ceilings(records, rates, options.ceiling_splits, options.fold_seed, stimulus_ids=ids)
    return list(zip(scores, stats_, (float(c) for c in ceilings)))


def score_gram_measure(record, grams: np.ndarray, responses: xr.DataArray, rates: xr.DataArray,
                       ids: list[str], options, *, stats: dict) -> tuple[np.ndarray, LayerStats, float]:
    """:func:`score_gram_measures` of one record."""
    return score_gram_measures([record], grams, responses, rates, ids, options, stats=stats)[0]
