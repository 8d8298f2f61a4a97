"""Permutation tests of layer x area similarities and corrections for multiple comparisons.

H0: the model RDM carries no information about the brain RDMs' stimulus structure. The null
distribution comes from permuting the stimulus labels of the model RDM (rows and columns together;
equivalent to permuting every RDM of the area with the same permutation), and the statistic is what
``compare`` reports (mean over the area's RDMs). The p-value counts the observed labelling as one of
the permutations (Phipson & Smyth 2010):

    p = (1 + #{null >= observed}) / (1 + n_permutations)        (alternative='greater', the default)

so it is never 0 and the test is exact at level alpha. For a method with permutable prepared values (its
record's ``permutation``, e.g. the whitened methods, or its ``dot`` path: ranks, z-scores ...) the prepared
model vectors are computed once and only re-indexed per permutation: a permutation of the stimuli is a
permutation of the pairs, which leaves ranks, means and norms unchanged. Any other method (``kendall_tau_a``,
a plugin with neither) recomputes its own similarity on the permuted model RDMs (the generic path).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from rsa_bridge.compare import compare_vectors
from rsa_bridge.errors import RSABridgeError
from stimuli.keywords import refuse_keywords
from rsa_bridge.methods import get as get_method
from rsa_bridge.provenance import clean_attrs, package_version
from rsa_bridge.stats import weighted
from rsa_bridge.stats._inputs import check_method, comparison_inputs
from rsa_bridge.stats.executors import resolve_executor
from rsa_bridge.stats.resample import Seed, as_generator, permutations
from rsa_bridge.stats.plan import choose_scheme
from rsa_bridge.stats.run_options import PermutationOptions, checked
from rsa_bridge.stats.stores import dense_model_rdms, gather_subsets, is_store, store_inputs, store_size

ALTERNATIVES = ("greater", "less", "two-sided")
#: observed-vs-null ties closer than this count as ties (rounding of different summation orders)
TIE_TOLERANCE = 1e-12
#: float64 values of gathered permuted vectors per batch (~32 MiB)
BATCH_ELEMENTS = 4_000_000


#: correction name -> record, callable on one family's p-values (holm, fdr_bh, none): see rsa_bridge.corrections
from rsa_bridge.corrections import CORRECTIONS, fdr_bh, holm  # noqa: E402  (re-exported here)


def correct(p: np.ndarray, correction: str, family: str = "area") -> np.ndarray:
    """Adjust a (n_layers, n_areas) p-value table; ``family`` ``area``: each column (the layers tested
    against one area) is one family; ``all``: the whole table is one family."""
    from rsa_bridge.registry import resolve_name

    correction = resolve_name("correction", correction, CORRECTIONS)
    p = np.asarray(p, dtype=np.float64)
    if family == "all":
        return CORRECTIONS[correction](p.ravel()).reshape(p.shape)
    if family != "area":
        raise RSABridgeError(f"family must be 'area' or 'all'; got {family!r}")
    return np.stack([CORRECTIONS[correction](p[:, j]) for j in range(p.shape[1])], axis=1)


@dataclass
class PermutationResult:
    """Permutation p-values of layer x area similarities.

    Attributes:
        observed: (n_layers, n_areas) the statistic with the true labels.
        p_value: (n_layers, n_areas) uncorrected, +1 corrected.
        null: (n_permutations, n_layers, n_areas) the null statistics (None when not kept).
    """

    observed: np.ndarray
    p_value: np.ndarray
    labels: list[str]
    areas: list[str]
    method: str
    n_permutations: int
    seed: int | None
    alternative: str
    null: np.ndarray | None = field(default=None, repr=False)
    scheme: dict = field(default_factory=lambda: {"permutation_scheme": "exact"})
    executor: str = "serial"

    def corrected(self, correction: str = "holm", family: str = "area") -> np.ndarray:
        """Adjusted p-values (``holm`` or ``fdr_bh``) per family (see :func:`correct`)."""
        return correct(self.p_value, correction, family)

    def attrs(self) -> dict:
        return clean_attrs({"permutation_method": self.method, "permutation_n": self.n_permutations,
                            "permutation_seed": self.seed, "permutation_alternative": self.alternative,
                            "permutation_permuted": "stimulus labels of the model RDM (rows and columns)",
                            **self.scheme, "permutation_executor": self.executor,
                            "rsa_bridge_version": package_version()})


def _full(pairs: np.ndarray, n: int) -> np.ndarray:
    """(K, m) pair values -> (K, n, n) symmetric matrices (zero diagonal)."""
    rows, cols = np.triu_indices(n, k=1)
    full = np.zeros((pairs.shape[0], n, n))
    full[:, rows, cols] = pairs
    return full + full.transpose(0, 2, 1)


def _permutable(method) -> bool:
    """Whether the method has prepared values that a relabelling only permutes (``permutation`` or ``dot``)."""
    record = get_method(method)
    return record.permutation is not None or record.dot is not None


def _prepared(method, vectors: np.ndarray, n: int):
    """Unit vectors whose dot products are the similarity, split into a permutable pair part and diag part.

    The method's own ``permutation`` values, else its ``dot`` path's (unit weights); only for
    :func:`_permutable` methods.
    """
    record = get_method(method)
    if record.permutation is not None:
        return record.permutation(vectors)
    unit = weighted.prepare(record, vectors, np.ones((1, vectors.shape[1])))[0]
    if np.isnan(unit).any():
        raise RSABridgeError("an RDM is constant (or all zeros for cosine): its similarity is undefined")
    return unit, None


def _statistics(method, model_mat, model_vec, neural_mat, all_perms, progress=None) -> np.ndarray:
    """The statistic (K, L, A) under each of the K labellings ``all_perms`` (K, n) of the model RDMs.

    ``model_mat`` (L, n, n) is read by the generic path only (methods that are not :func:`_permutable`:
    their own similarity per permutation), ``model_vec`` (L, m) by the others.
    """
    n = all_perms.shape[1]
    rows, cols = np.triu_indices(n, k=1)
    n_rows = (model_mat if model_vec is None else model_vec).shape[0]
    stats_all = np.empty((all_perms.shape[0], n_rows, len(neural_mat)))
    from rsa_bridge.progress import progress_bar

    bar = progress_bar(total=all_perms.shape[0] * len(neural_mat), desc="permutations", unit="perm",
                       progress=progress)
    if not _permutable(method):
        for j, mats in enumerate(neural_mat.values()):
            nv = mats[:, rows, cols]
            for s, p in enumerate(all_perms):
                stats_all[s, :, j] = compare_vectors(model_mat[:, p[rows], p[cols]], nv, method).mean(axis=1)
                bar.update(1)
    else:
        pairs, diag = _prepared(method, model_vec, n)
        full = _full(pairs, n)
        for j, mats in enumerate(neural_mat.values()):
            npairs, ndiag = _prepared(method, mats[:, rows, cols], n)
            step = max(1, BATCH_ELEMENTS // (model_vec.shape[0] * len(rows)))
            for start in range(0, all_perms.shape[0], step):
                p = all_perms[start:start + step]
                gathered = full[:, p[:, rows], p[:, cols]]  # (L, b, m)
                sims = np.einsum("lbm,rm->blr", gathered, npairs)
                if diag is not None:
                    sims += np.einsum("lbn,rn->blr", diag[:, p], ndiag)
                stats_all[start:start + step, :, j] = sims.mean(axis=2)
                bar.update(p.shape[0])
    bar.close()
    return stats_all


def permutation_test(model_rdms, neural_rdms, *, method: str = "spearman", n_permutations: int = 1000,
                     seed: Seed = None, alternative: str = "greater", options: PermutationOptions | None = None,
                     **stray) -> PermutationResult:
    """Permutation p-value of every model RDM x area similarity.

    Args:
        model_rdms, neural_rdms: as for :func:`rsa_bridge.stats.bootstrap_similarity` (an RDM store too).
        method: comparison method; n_permutations: N; seed: int or Generator.
        alternative: ``greater`` (similarity above chance; default), ``less`` or ``two-sided``
            (|null| >= |observed|).
        options: given permutations, keep_null, progress, scheme and executor (:class:`PermutationOptions`;
            None: its defaults). Those keywords on their own (``keep_null=`` ...) are a TypeError naming the field.

    Returns:
        :class:`PermutationResult`; p in (0, 1], at least 1 / (N + 1).

    Examples:
        The area's own RDM gets the smallest p that 99 permutations allow, 1 / (99 + 1); an
        unrelated RDM does not:

        >>> import numpy as np
        >>> from rsa_bridge import compute_rdm
        >>> rng = np.random.default_rng(0)
        >>> brain = compute_rdm(rng.normal(size=(20, 50))).values
        >>> other = compute_rdm(rng.normal(size=(20, 50))).values
        >>> perm = permutation_test(np.stack([brain, other]), {"IT": brain[None]}, n_permutations=99, seed=0)
        >>> print(perm.p_value.round(2).ravel())
        [0.01 0.83]
    """
    refuse_keywords("permutation_test", stray, PermutationOptions)
    opts = checked(options, PermutationOptions, "permutation_test")
    permutation_indices, keep_null, progress = opts.permutation_indices, opts.keep_null, opts.progress
    scheme, executor = opts.scheme, opts.executor
    method = check_method(method)
    if alternative not in ALTERNATIVES:
        raise RSABridgeError(f"alternative must be one of {', '.join(ALTERNATIVES)}; got {alternative!r}")
    store = is_store(model_rdms)  # model RDMs in an RDM store (rsa_bridge.stats.stores)
    n = store_size(model_rdms) if store else None
    if store:
        choice = choose_scheme("permutation", scheme, n, given_indices=permutation_indices is not None)
        if not choice.subset:
            model_rdms, store = dense_model_rdms(model_rdms, f"the exact permutation test of {n} stimuli"), False
    if store:
        labels, n, neural_mat, _ = store_inputs(model_rdms, neural_rdms, method)
    else:
        labels, model_mat, neural_mat, model_vec, _ = comparison_inputs(model_rdms, neural_rdms, method)
        n = model_mat.shape[1]
    choice = choose_scheme("permutation", scheme, n, given_indices=permutation_indices is not None)
    if choice.subset:  # the labels of one seeded random subset (the same draw for a store and dense RDMs)
        rng = as_generator(seed)
        idx = np.sort(rng.choice(n, size=choice.subset_stimuli, replace=False))
        sub_model = gather_subsets(model_rdms, [idx])[0] if store else model_mat[:, idx][:, :, idx]
        sub = permutation_test(sub_model, {a: m[:, idx][:, :, idx] for a, m in neural_mat.items()}, method=method,
                               n_permutations=n_permutations, seed=rng, alternative=alternative,
                               options=PermutationOptions(keep_null=keep_null, progress=progress, scheme="exact",
                                                          executor=executor))
        sub.labels, sub.areas, sub.scheme = labels, list(neural_mat), choice.attrs()
        sub.seed = int(seed) if isinstance(seed, (int, np.integer)) else None
        return sub
    perms = (permutations(n, n_permutations, as_generator(seed)) if permutation_indices is None
             else np.asarray(permutation_indices, dtype=np.int64))
    if perms.ndim != 2 or perms.shape[1] != n or not (np.sort(perms, axis=1) == np.arange(n)).all():
        raise RSABridgeError(f"permutation_indices must be (N, {n}) permutations of 0..{n - 1}")
    all_perms = np.concatenate([np.arange(n)[None], perms])  # row 0: the observed labelling
    generic = not _permutable(method)  # only what the path reads is shipped
    parts, ran = resolve_executor(executor).run(  # batches of permutations (rsa_bridge.stats.executors)
        _statistics, (method, model_mat if generic else None, None if generic else model_vec, neural_mat),
        (all_perms,), all_perms.shape[0], progress=progress, desc="permutations")
    stats_all = np.concatenate(parts)
    observed, null = stats_all[0], stats_all[1:]
    if alternative == "greater":
        hits = null >= observed - TIE_TOLERANCE
    elif alternative == "less":
        hits = null <= observed + TIE_TOLERANCE
    else:
        hits = np.abs(null) >= np.abs(observed) - TIE_TOLERANCE
    p_value = (1.0 + hits.sum(axis=0)) / (1.0 + null.shape[0])
    return PermutationResult(observed, p_value, labels, list(neural_mat), method, int(null.shape[0]),
                             int(seed) if isinstance(seed, (int, np.integer)) else None, alternative,
                             null if keep_null else None, choice.attrs(), ran)
