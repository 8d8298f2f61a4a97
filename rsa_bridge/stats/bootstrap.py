"""Bootstrap of layer x area RDM similarities over stimuli, over RDMs (subjects/sessions), or both.

The statistic of a sample is what ``compare`` reports: the mean over the area's RDMs of
sim(model layer RDM, area RDM) — computed on the resampled stimuli, and over the resampled RDMs.
Resampled stimuli follow rsatoolbox (``eval_bootstrap_pattern`` / ``eval_bootstrap_rdm`` /
``eval_bootstrap``): a stimulus drawn twice stays twice, the pairs of a stimulus with its own copy
are dropped, a sample with fewer than 3 distinct stimuli is NaN; given the same index sets the
samples equal rsatoolbox's evaluations (tests check this to 1e-10).

Speed: for a method with a prepared fast path (its record's ``dot``: ``spearman``, ``pearson``, ``rho_a``,
``cosine``) a sample is the original pairs with integer weights (:mod:`rsa_bridge.stats.weighted`): every
model RDM is sorted once (rank methods), re-ranked per sample by one cumulative sum in its sorted order
(samples spread over threads), and all layers x RDMs x samples of a batch are one ``matmul``. For a method
with a rank ``kernel`` (``spearman``, ``rho_a``) the default backend is the compiled one-pass kernel of
:mod:`rsa_bridge.stats.rank_kernel` (numba, all cores, 16 samples per pass; exact integer ranks), or
:mod:`rsa_bridge.stats.rank_torch` when ``device`` names a torch device such as ``cuda``; without numba the
numpy path above runs. Which one ran is the ``bootstrap_backend`` attribute; all give the same numbers
(tests: 1e-10). Every other method (``kendall_tau_a``, the whitened methods, a plugin without ``dot``)
resamples explicitly, one sample at a time, with its own similarity.
"""
from __future__ import annotations

import warnings

import numpy as np

from rsa_bridge.compare import compare_vectors
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.finite import finite_mean
from stimuli.keywords import refuse_keywords
from rsa_bridge.stats import weighted
from rsa_bridge.stats.backends import (DEFAULT_DEVICE_STACK, FAST_CHUNK, SamplePath, fast_path_samples, rank_backend,
                                       sample_bar)
from rsa_bridge.stats._inputs import check_method, comparison_inputs
from rsa_bridge.methods import get as get_method
from rsa_bridge.stats.ceiling import check_ceiling, nili_bounds
from rsa_bridge.stats.executors import SERIAL, concatenate, resolve_executor, use_executor
from rsa_bridge.stats.masked import compare_masked, gather
from rsa_bridge.stats.plan import SUBSET_EXECUTOR, choose_scheme
from rsa_bridge.stats.run_options import BootstrapOptions, checked
from rsa_bridge.stats.resample import Seed, as_generator, bootstrap_rdms, bootstrap_stimuli, counts
from rsa_bridge.stats.results import BootstrapResult, percentile_ci  # noqa: F401 (re-exported)
from rsa_bridge.stats.stores import (dense_model_rdms, gather_subsets, is_store, store_inputs, store_similarities,
                                     store_size)
from rsa_bridge.stats.subset import _sub, draw_subsets, run_subsets

#: what a bootstrap resamples
OVER = ("stimuli", "rdms", "both")
#: float64 values per batch of prepared vectors (~64 MiB)
BATCH_ELEMENTS = 8_000_000


def _batches(n_samples: int, per_sample: int) -> list[slice]:
    step = max(1, BATCH_ELEMENTS // max(per_sample, 1))
    return [slice(s, min(s + step, n_samples)) for s in range(0, n_samples, step)]


def _warn_nan(n_nan: int, n_total: int, what: str) -> None:
    if n_nan:
        warnings.warn(f"{n_nan} of {n_total} bootstrap statistics are NaN: {what}", RuntimeWarning, stacklevel=3)


def _ceiling_weighted(method: str, x: np.ndarray, w: np.ndarray, cnt: np.ndarray,
                      order: weighted.SortOrder | None, subjects: np.ndarray) -> np.ndarray:
    """Per-sample Nili bounds (b, 2) of RDMs x (R, m) with pair weights w (b, m) and RDM counts cnt (b, R).

    ``subjects``: the prepared x (b, R, m), shared with the similarity computation.
    """
    values = weighted.pool_values(method, x, w, order)  # (b, R, m)
    total_count = cnt.sum(axis=1)
    total = np.einsum("brm,br->bm", values, cnt)
    pooled = weighted.prepare(method, (total / total_count[:, None])[:, None, :], w)
    upper_r = np.einsum("bm,brm->br", pooled[:, 0], subjects)
    with np.errstate(invalid="ignore", divide="ignore"):
        loo = (total[:, None, :] - cnt[..., None] * values) / (total_count[:, None, None] - cnt[..., None])
    loo = np.where(np.isfinite(loo), loo, 0.0)
    lower_r = np.einsum("brm,brm->br", weighted.prepare(method, loo, w), subjects)
    present = cnt > 0
    n_present = present.sum(axis=1)
    upper = np.where(present, upper_r, 0.0).sum(axis=1) / n_present
    lower = np.where(n_present >= 2, np.where(present, lower_r, 0.0).sum(axis=1) / n_present, np.nan)
    return np.stack([lower, upper], axis=1)


def _dot_path(method, model_vec, neural_vec, stim_idx, rdm_cnt, n, n_samples, ceiling, progress=None):
    """Batched samples (B, L, A) and ceilings (B, A, 2) for the dot-product methods."""
    n_layers, m = model_vec.shape
    areas = list(neural_vec)
    samples = np.full((n_samples, n_layers, len(areas)), np.nan)
    ceil = np.full((n_samples, len(areas), 2), np.nan) if ceiling else None
    rank = get_method(method).rank
    model_order = weighted.sort_order(model_vec) if rank else None
    neural_order = {a: weighted.sort_order(v) if rank else None for a, v in neural_vec.items()}
    widest = n_layers + 3 * max(v.shape[0] for v in neural_vec.values())
    rows, cols = np.triu_indices(n, k=1)
    bar = sample_bar(n_samples, progress)
    for sl in _batches(n_samples, widest * m):
        b = sl.stop - sl.start
        bar.update(b)
        if stim_idx is None:
            stim_counts = np.ones((b, n))
            ok = np.ones(b, dtype=bool)
        else:
            stim_counts = counts(stim_idx[sl], n)
            ok = (stim_counts > 0).sum(axis=1) >= 3
        w = np.empty((b, m))  # pair weights c_i c_j (see pair_weights), gathered from the small count table
        for s, c in enumerate(stim_counts):
            np.multiply(np.take(c, rows), np.take(c, cols), out=w[s])
        pm = weighted.prepare(method, model_vec, w, model_order)
        for j, area in enumerate(areas):
            x = neural_vec[area]
            pn = weighted.prepare(method, x, w, neural_order[area])
            sims = np.matmul(pm, pn.transpose(0, 2, 1))  # (b, L, R)
            cnt = np.ones((b, x.shape[0])) if rdm_cnt is None else rdm_cnt[area][sl]
            stat = np.einsum("blr,br->bl", sims, cnt) / cnt.sum(axis=1)[:, None]
            samples[sl, :, j] = np.where(ok[:, None], stat, np.nan)
            if ceiling and x.shape[0] >= 2:
                c = _ceiling_weighted(method, x, w, cnt, neural_order[area], pn)
                ceil[sl, j] = np.where(ok[:, None], c, np.nan)
    bar.close()
    return samples, ceil


def _masked_path(method, model_mat, neural_mat, stim_idx, rdm_idx, n, n_samples, ceiling, progress=None):
    """Samples one at a time, resampled explicitly (methods without a prepared fast path)."""
    areas = list(neural_mat)
    samples = np.full((n_samples, model_mat.shape[0], len(areas)), np.nan)
    ceil = np.full((n_samples, len(areas), 2), np.nan) if ceiling else None
    fixed = None
    if stim_idx is None:
        fixed = {a: gather(np.concatenate([model_mat, neural_mat[a]]), np.arange(n)) for a in areas}
        per_rdm = {a: compare_masked(fixed[a][0][:model_mat.shape[0]], fixed[a][0][model_mat.shape[0]:], method)
                   for a in areas}
    bar = sample_bar(n_samples, progress)
    for s in range(n_samples):
        bar.update(1)
        for j, area in enumerate(areas):
            r_idx = np.arange(neural_mat[area].shape[0]) if rdm_idx is None else rdm_idx[area][s]
            if stim_idx is None:
                sims, (vectors, valid) = per_rdm[area], fixed[area]
                nv = vectors[model_mat.shape[0]:]
            else:
                idx = stim_idx[s]
                if np.unique(idx).size < 3:
                    continue
                vectors, valid = gather(np.concatenate([model_mat, neural_mat[area]]), idx)
                mv, nv = vectors[:model_mat.shape[0]], vectors[model_mat.shape[0]:]
                try:
                    sims = compare_masked(mv[:, valid], nv[:, valid], method, valid)
                except RSABridgeError:
                    continue
            samples[s, :, j] = sims[:, r_idx].mean(axis=1)
            if ceiling and neural_mat[area].shape[0] >= 2 and np.unique(r_idx).size >= 2:
                try:
                    low, up = nili_bounds(nv[r_idx][:, valid], method, r_idx, valid)
                except RSABridgeError:
                    continue
                ceil[s, j] = (finite_mean(low), np.mean(up))
    bar.close()
    return samples, ceil


def _exact_samples(path: SamplePath, model_mat, neural_mat, model_vec, neural_vec, ceiling, stim_idx, rdm_idx,
                   progress=None):
    """Samples (b, L, A) and ceilings (b, A, 2) or None of the exact scheme on given index sets.

    ``path``: the method, backend, device and n (:class:`rsa_bridge.stats.backends.SamplePath`).
    ``stim_idx``: (b, n) sorted stimulus index sets or None; ``rdm_idx``: per area (b, R) or None. The
    mats are read by the masked path only, the vectors by the others (an executor ships only those).
    """
    method, backend, n = path.method, path.backend, path.n
    n_samples = stim_idx.shape[0] if stim_idx is not None else next(iter(rdm_idx.values())).shape[0]
    if backend != "numpy":
        rdm_cnt = None if rdm_idx is None else {a: counts(i, neural_vec[a].shape[0]) for a, i in rdm_idx.items()}
        samples = fast_path_samples(path, model_vec, neural_vec, stim_idx, rdm_cnt, n_samples, progress)
        ceil = None
        multi = {a: v for a, v in neural_vec.items() if v.shape[0] >= 2}
        if ceiling:  # the per-sample noise ceilings (areas of >= 2 RDMs) come from the numpy path
            ceil = np.full((n_samples, len(neural_vec), 2), np.nan)
            if multi:
                _, part = _dot_path(method, model_vec[:1], multi, stim_idx,
                                    None if rdm_cnt is None else {a: rdm_cnt[a] for a in multi}, n, n_samples,
                                    True, False)
                for k, a in enumerate(multi):
                    ceil[:, list(neural_vec).index(a)] = part[:, k]
    elif get_method(method).dot is not None:
        rdm_cnt = None if rdm_idx is None else {a: counts(i, neural_vec[a].shape[0]) for a, i in rdm_idx.items()}
        samples, ceil = _dot_path(method, model_vec, neural_vec, stim_idx, rdm_cnt, n, n_samples, ceiling, progress)
    else:
        samples, ceil = _masked_path(method, model_mat, neural_mat, stim_idx, rdm_idx, n, n_samples, ceiling,
                                     progress)
    return samples, ceil


def bootstrap_similarity(model_rdms, neural_rdms, *, method: str = "spearman", n_samples: int = 1000,
                         over: str = "stimuli", seed: Seed = None, ceiling: bool = False,
                         options: BootstrapOptions | None = None, **stray) -> BootstrapResult:
    """Bootstrap distribution of the similarity of every model RDM with every area.

    Args:
        model_rdms: (L, n, n) model RDMs (a ``(layer, stimulus_row, stimulus_col)`` DataArray or array), or an
            RDM store / :class:`rsa_bridge.stats.stores.StoreStack` (labels = its names; the exact scheme
            then needs them to fit dense, see :mod:`rsa_bridge.stats.stores`).
        neural_rdms: per area its RDMs — a Mapping area -> (R, n, n) / DataArray with replicate dims,
            an RDM Dataset, or one area's RDMs. DataArrays are matched to the model by ``stimulus_id``.
        method: comparison method (see :mod:`rsa_bridge.compare`).
        n_samples: bootstrap samples B.
        over: ``stimuli`` (default), ``rdms`` (subjects/sessions/animals) or ``both``.
        seed: int or ``numpy.random.Generator``. The stimulus index sets are drawn first, then each
            area's RDM index sets in area order.
        ceiling: also bootstrap each area's Nili noise ceiling (areas with >= 2 RDMs).
        options: given index sets, progress, device, scheme and executor (:class:`BootstrapOptions`; None: its
            defaults). Those keywords on their own (``scheme=`` ...) are a TypeError naming the field.

    Returns:
        :class:`BootstrapResult` with samples (B, L, A) in the method's units.

    Examples:
        Two "layers" against one area of 20 stimuli: the area's own RDM (similarity 1 in every
        sample) and an unrelated RDM (an interval around 0):

        >>> import numpy as np
        >>> from rsa_bridge import compute_rdm
        >>> rng = np.random.default_rng(0)
        >>> brain = compute_rdm(rng.normal(size=(20, 50))).values          # (20, 20)
        >>> other = compute_rdm(rng.normal(size=(20, 50))).values
        >>> boot = bootstrap_similarity(np.stack([brain, other]), {"IT": brain[None]}, n_samples=200, seed=0)
        >>> boot.samples.shape                                             # (B, L, A)
        (200, 2, 1)
        >>> low, high = boot.ci(0.95)
        >>> print(low.round(2).ravel(), high.round(2).ravel())
        [ 1.   -0.32] [1.   0.17]
    """
    refuse_keywords("bootstrap_similarity", stray, BootstrapOptions)
    opts = checked(options, BootstrapOptions, "bootstrap_similarity")
    stimulus_indices, rdm_indices, progress = opts.stimulus_indices, opts.rdm_indices, opts.progress
    device, scheme, executor = opts.device, opts.scheme, opts.executor
    method = check_method(method)
    if over not in OVER:
        raise RSABridgeError(f"over must be one of {', '.join(OVER)}; got {over!r}")
    if ceiling:  # a method without a pool for the ceiling is refused before any compute
        check_ceiling(method)
    store = is_store(model_rdms)  # model RDMs in an RDM store: never stacked dense (rsa_bridge.stats.stores)
    if store:
        n = store_size(model_rdms)
        scheme = choose_scheme("bootstrap", scheme, n, resamples_stimuli=over == "stimuli",
                               given_indices=stimulus_indices is not None)
        if over == "rdms":  # the stimuli stay whole: every sample re-weights the full-N per-RDM similarities
            return _store_rdm_bootstrap(model_rdms, neural_rdms, method, n_samples, seed, ceiling, rdm_indices)
        if not scheme.subset:
            model_rdms = dense_model_rdms(model_rdms, f"the exact bootstrap (over {over}) of {n} stimuli")
            store = False
    if store:
        labels, n, neural_mat, neural_vec = store_inputs(model_rdms, neural_rdms, method)
        sims = store_similarities(model_rdms, neural_vec, method)
        observed = np.stack([sims[a].mean(axis=1) for a in neural_vec], axis=1)
    else:
        labels, model_mat, neural_mat, model_vec, neural_vec = comparison_inputs(model_rdms, neural_rdms, method)
        n = model_mat.shape[1]
        # the observed statistic: compare_vectors (the executor's batches carry samples only)
        observed = np.stack([compare_vectors(model_vec, v, method).mean(axis=1) for v in neural_vec.values()],
                            axis=1)
    rng = as_generator(seed)
    choice = choose_scheme("bootstrap", scheme, n, resamples_stimuli=over == "stimuli",
                           given_indices=stimulus_indices is not None)
    device = device if device is not None else DEFAULT_DEVICE_STACK[-1]
    if choice.subset:
        if ceiling:
            warnings.warn("the subset bootstrap produces no noise-ceiling samples (NaN); the ceiling itself is "
                          "unaffected", RuntimeWarning, stacklevel=2)
        draws = draw_subsets(n, n_samples, rng)
        if store:  # every subset's sub-RDMs with one read per stored RDM
            subs = gather_subsets(model_rdms, [idx for idx, _ in draws])
            model_sub = subs.__getitem__
        else:
            def model_sub(g):
                return _sub(model_mat, draws[g][0])
        with use_executor(SERIAL):  # small exact bootstraps in sequence: cheapest here
            samples = run_subsets(_exact_on_subset, model_sub, neural_mat, observed, draws, n, method=method,
                                  device=device, progress=progress)
        return BootstrapResult(samples, observed, labels, list(neural_vec), method, over, _seed_attr(seed),
                               ceiling=np.full((n_samples, len(neural_vec), 2), np.nan) if ceiling else None,
                               backend=rank_backend(method, device), scheme=choice.attrs(), executor=SUBSET_EXECUTOR)
    stim_idx = None
    if over in ("stimuli", "both"):
        stim_idx = (bootstrap_stimuli(n, n_samples, rng) if stimulus_indices is None
                    else np.sort(np.asarray(stimulus_indices, dtype=np.int64), axis=1))
        n_samples = stim_idx.shape[0]
    rdm_idx = None
    if over in ("rdms", "both"):
        rdm_idx = {}
        for area, v in neural_vec.items():
            given = None if rdm_indices is None else rdm_indices.get(area)
            rdm_idx[area] = bootstrap_rdms(v.shape[0], n_samples, rng) if given is None else np.asarray(given)
            if rdm_idx[area].shape[0] != n_samples:
                raise RSABridgeError(f"area {area!r}: {rdm_idx[area].shape[0]} RDM index sets for {n_samples} samples")
    single = [a for a, v in neural_vec.items() if v.shape[0] == 1]
    if ceiling and single:
        warnings.warn(f"no noise ceiling for area(s) {', '.join(single)}: a ceiling needs RDMs from at least 2 "
                      "subjects/sessions; their ceiling samples are NaN", RuntimeWarning, stacklevel=2)
    backend = rank_backend(method, device)
    masked = backend == "numpy" and get_method(method).dot is None  # only what the path reads is shipped
    parts, ran = resolve_executor(executor).run(  # batches of these index sets (rsa_bridge.stats.executors)
        _exact_samples, (SamplePath(method, backend, device, n), model_mat if masked else None,
                         neural_mat if masked else None, None if masked else model_vec, None if masked else neural_vec,
                         ceiling),
        (stim_idx, rdm_idx), n_samples, quantum=1 if backend == "numpy" else FAST_CHUNK, progress=progress,
        desc="bootstrap samples")
    samples, ceil = concatenate([p[0] for p in parts]), concatenate([p[1] for p in parts])
    n_nan = int(np.isnan(samples).any(axis=1).sum())
    _warn_nan(n_nan, samples.shape[0] * samples.shape[2],
              "fewer than 3 distinct stimuli or an RDM constant within the sample")
    if over == "rdms" and single:
        # resampling one RDM repeats it: the interval would have zero width and look exact
        samples[:, :, [list(neural_vec).index(a) for a in single]] = np.nan
        warnings.warn(f"area(s) {', '.join(single)} have a single RDM: bootstrapping over RDMs cannot estimate their "
                      "uncertainty, so their samples are NaN; resample stimuli instead (over='stimuli' or 'both')",
                      RuntimeWarning, stacklevel=2)
    return BootstrapResult(samples, observed, labels, list(neural_vec), method, over, _seed_attr(seed), stim_idx,
                           rdm_idx, ceil, backend, choice.attrs(), ran)


def _exact_on_subset(model_rdms, neural_rdms, method: str, stimulus_indices: np.ndarray, device) -> BootstrapResult:
    """The exact bootstrap of one drawn subset on its given index sets (what :func:`run_subsets` runs)."""
    return bootstrap_similarity(model_rdms, neural_rdms, method=method, seed=0,
                                options=BootstrapOptions(stimulus_indices=stimulus_indices, progress=False,
                                                         device=device, scheme="exact"))


def _seed_attr(seed):
    return int(seed) if isinstance(seed, (int, np.integer)) else None


def _store_rdm_bootstrap(store, neural_rdms, method, n_samples, seed, ceiling, rdm_indices) -> BootstrapResult:
    """The exact bootstrap over RDMs (subjects/sessions) from a store, never dense: a sample's statistic is
    the count-weighted mean of the full-N per-RDM similarities (what the dense path computes with all pair
    weights 1). Index sets are drawn per area in area order from one Generator, as the dense path does."""
    labels, n, _, neural_vec = store_inputs(store, neural_rdms, method)
    sims = store_similarities(store, neural_vec, method)
    observed = np.stack([sims[a].mean(axis=1) for a in neural_vec], axis=1)
    rng = as_generator(seed)
    rdm_idx, samples = {}, np.empty((n_samples, len(labels), len(neural_vec)))
    for j, (area, v) in enumerate(neural_vec.items()):
        given = None if rdm_indices is None else rdm_indices.get(area)
        rdm_idx[area] = bootstrap_rdms(v.shape[0], n_samples, rng) if given is None else np.asarray(given)
        if rdm_idx[area].shape[0] != n_samples:
            raise RSABridgeError(f"area {area!r}: {rdm_idx[area].shape[0]} RDM index sets for {n_samples} samples")
        cnt = counts(rdm_idx[area], v.shape[0])
        samples[:, :, j] = np.einsum("lr,br->bl", sims[area], cnt) / cnt.sum(axis=1)[:, None]
    single = [j for j, v in enumerate(neural_vec.values()) if v.shape[0] == 1]
    if single:
        samples[:, :, single] = np.nan
        warnings.warn(f"area(s) {', '.join(list(neural_vec)[j] for j in single)} have a single RDM: bootstrapping "
                      "over RDMs cannot estimate their uncertainty, so their samples are NaN; resample stimuli "
                      "instead (over='stimuli' or 'both')", RuntimeWarning, stacklevel=3)
    ceil = None
    if ceiling:  # per-sample Nili bounds come from the brain RDMs only (the dense code, all pair weights 1)
        ceil = np.full((n_samples, len(neural_vec), 2), np.nan)
        multi = {a: v for a, v in neural_vec.items() if v.shape[0] >= 2}
        if multi and get_method(method).dot is not None:  # the batched path of the method's prepared values
            first = next(iter(multi.values()))[:1]
            _, part = _dot_path(method, first, multi, None,
                                {a: counts(rdm_idx[a], multi[a].shape[0]) for a in multi}, n, n_samples, True, False)
            for k, a in enumerate(multi):
                ceil[:, list(neural_vec).index(a)] = part[:, k]
        elif multi:  # the generic path: the method's own pool and similarity, one sample at a time
            for a, v in multi.items():
                j = list(neural_vec).index(a)
                for s_, r_idx in enumerate(rdm_idx[a]):
                    if np.unique(r_idx).size >= 2:
                        low, up = nili_bounds(v[r_idx], method, r_idx)
                        ceil[s_, j] = (finite_mean(low), np.mean(up))
    choice = choose_scheme("bootstrap", "exact", n)
    return BootstrapResult(samples, observed, labels, list(neural_vec), method, "rdms", _seed_attr(seed),
                           None, rdm_idx, ceil, "numpy", choice.attrs())
