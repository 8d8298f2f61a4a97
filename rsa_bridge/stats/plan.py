"""The statistics planner: one decision of scheme, path, backend and executor per job, recorded in the results.

:func:`plan_statistics` takes the validated :class:`rsa_bridge.options.StatsOptions` whole and the job's facts
(number of stimuli, dense or store model RDMs, the comparison method) and returns a frozen
:class:`StatsPlan`. The bootstrap (:func:`rsa_bridge.stats.bootstrap_similarity`) and the permutation test
(:func:`rsa_bridge.stats.permutation_test`) read their :class:`SchemeChoice` from it instead of each deciding
again; called on their own (no plan), they ask :func:`choose_scheme`, the one place where the rule lives:

- ``exact``: the exact bootstrap / permutation test, whatever n;
- ``subset``: random subsets of k stimuli (:mod:`.subset`) when stimuli are resampled;
- ``auto`` (the default): the subset scheme above ``EXACT_MAX_STIMULI`` = 2,000 stimuli (subsets of
  ``SUBSET_STIMULI`` = 1,000) when stimuli are resampled, else exact.

Given index sets (``stimulus_indices``, ``permutation_indices``) and the bootstraps over RDMs or both always
run exactly. The *path* is ``dense`` or ``store`` (model RDMs in an RDM store, :mod:`.stores`: the exact
scheme then builds them dense if they fit). :meth:`StatsPlan.attrs` are the provenance attrs that
``results.nc`` carries (``bootstrap_scheme``, ``permutation_scheme``, ``permutation_subset_stimuli``, ...).

This module sits at the bottom of :mod:`rsa_bridge.stats` (it imports :mod:`.subset`'s sizes, the backend
and executor look-ups, nothing that computes a statistic), so every path can import it.

Example:
    >>> from rsa_bridge.options import StatsOptions
    >>> from rsa_bridge.stats.plan import plan_statistics
    >>> plan = plan_statistics(StatsOptions(bootstrap=1000, permutations=1000), n_stimuli=2500, method="pearson")
    >>> plan.bootstrap.scheme, plan.permutation.scheme, plan.permutation.subset_stimuli
    ('subset', 'subset', 1000)
    >>> plan_statistics(StatsOptions(bootstrap=1000), n_stimuli=92, method="pearson").bootstrap.scheme
    'exact'
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.options import STATS_SCHEMES, StatsOptions
from rsa_bridge.stats import subset

__all__ = ["SchemeChoice", "StatsPlan", "choose_scheme", "permutation_attrs", "plan_statistics", "scheme_attrs"]
#: what a scheme is chosen for -> how its subset scheme runs (words for the ``*_scheme`` attr)
KINDS = {"bootstrap": "deviations scaled by sqrt(k/n)", "permutation": "one subset, labels permuted within it"}
#: the executor that runs the subset scheme (small exact bootstraps in sequence)
SUBSET_EXECUTOR = "serial (the subset scheme runs here)"


@dataclass(frozen=True)
class SchemeChoice:
    """The scheme one statistic runs: ``exact`` or ``subset`` (k of n stimuli).

    Attributes:
        kind: ``bootstrap`` or ``permutation``; scheme: ``exact`` or ``subset``; n_stimuli: n.
        subset_stimuli: k (stimuli per subset), None when exact; subsets: G, the bootstrap's subsets (1 for a
            permutation test), None when exact; exact_max_stimuli: the ``auto`` threshold in force.
    """

    kind: str
    scheme: str
    n_stimuli: int
    subset_stimuli: int | None = None
    subsets: int | None = None
    exact_max_stimuli: int = 2000

    @property
    def subset(self) -> bool:
        return self.scheme == "subset"

    def attrs(self) -> dict:
        """``{kind}_scheme`` in words and, for subsets, ``{kind}_subset_stimuli`` (and ``bootstrap_subsets``)."""
        k = self.kind
        out: dict[str, Any] = {f"{k}_scheme": "exact", f"{k}_exact_max_stimuli": self.exact_max_stimuli}
        if self.subset:
            count = f", {self.subsets} subsets" if k == "bootstrap" else ""
            out[f"{k}_scheme"] = (f"subset m-out-of-n: random subsets of {self.subset_stimuli} of {self.n_stimuli} "
                                  f"stimuli{count}, {KINDS[k]}")
            out[f"{k}_subset_stimuli"] = self.subset_stimuli
            if k == "bootstrap":
                out["bootstrap_subsets"] = self.subsets
        return out


def choose_scheme(kind: str, requested: str | SchemeChoice, n_stimuli: int, *, resamples_stimuli: bool = True,
                  given_indices: bool = False) -> SchemeChoice:
    """The scheme of one statistic (see the module's table); a :class:`SchemeChoice` passes through.

    Args:
        kind: ``bootstrap`` or ``permutation``; requested: ``auto``, ``exact`` or ``subset`` (or a choice).
        n_stimuli: n; resamples_stimuli: False for a bootstrap over RDMs or both (then exact);
        given_indices: index sets passed in (then exact).
    """
    if isinstance(requested, SchemeChoice):
        return requested
    if kind not in KINDS:
        raise ValueError(f"kind is one of {', '.join(KINDS)}; got {kind!r}")
    if requested not in STATS_SCHEMES:
        raise RSABridgeError(f"scheme must be one of {', '.join(STATS_SCHEMES)}; got {requested!r}")
    limit = subset.EXACT_MAX_STIMULI  # read now: tests shrink the sizes
    run_subset = (requested == "subset" or (requested == "auto" and n_stimuli > limit)) \
        and resamples_stimuli and not given_indices
    if not run_subset:
        return SchemeChoice(kind, "exact", int(n_stimuli), exact_max_stimuli=limit)
    groups = subset.SUBSETS if kind == "bootstrap" else 1
    return SchemeChoice(kind, "subset", int(n_stimuli), subset.subset_size(n_stimuli), groups, limit)


def _executor_name(executor) -> str:
    from rsa_bridge.stats.executors import resolve_executor

    ran = resolve_executor(executor)
    return str(getattr(ran, "description", None) or getattr(ran, "label", None) or type(ran).__name__)


@dataclass(frozen=True)
class StatsPlan:
    """Every choice of one job's statistics, made once (see :func:`plan_statistics`).

    Attributes:
        options: the :class:`rsa_bridge.options.StatsOptions` it was made from.
        n_stimuli: n; path: ``dense`` or ``store``; method: the comparison method.
        bootstrap, permutation: their :class:`SchemeChoice`, None when that statistic is off.
        backend: what computes the bootstrap samples (``numba``, ``torch``, ``numpy``;
            :func:`rsa_bridge.stats.backends.rank_backend`); None without a bootstrap.
        executor: where the exact samples are computed (``serial``, a dask cluster's label; the subset
            scheme always runs here); the executor object itself is ``runner`` (not compared).
    """

    options: StatsOptions
    n_stimuli: int
    path: str
    method: str
    bootstrap: SchemeChoice | None
    permutation: SchemeChoice | None
    backend: str | None
    executor: str
    runner: Any = field(default=None, compare=False, hash=False, repr=False)

    def attrs(self) -> dict:
        """The plan as provenance attrs (``stats_path``, the schemes' attrs, ``bootstrap_backend``, executors)."""
        out: dict[str, Any] = {"stats_path": self.path}
        for choice in (self.bootstrap, self.permutation):
            if choice is not None:
                out.update(choice.attrs())
        if self.backend is not None:
            out["bootstrap_backend"] = self.backend
        return out


def plan_statistics(options: StatsOptions, n_stimuli: int, *, method: str, store: bool = False,
                    device: str | None = None, executor=None) -> StatsPlan:
    """Choose scheme x path x backend x executor for one job's statistics, once.

    Args:
        options: validated :class:`rsa_bridge.options.StatsOptions` (counts, ``bootstrap_over``, ``scheme``).
        n_stimuli: stimuli of the job's RDMs; method: the comparison method (canonical name).
        store: True when the model RDMs live in an RDM store (:mod:`rsa_bridge.stats.stores`).
        device: the torch device of the rank bootstrap (None: the innermost ``default_device``, else CPU).
        executor: where the exact samples run (None: the innermost ``use_executor`` block, else here).

    Returns:
        :class:`StatsPlan` (frozen).

    Examples:
        2,500 stimuli: both statistics switch to random subsets of 1,000 stimuli; ``scheme="exact"`` keeps them
        exact; a bootstrap over RDMs never subsets:

        >>> from rsa_bridge.options import StatsOptions
        >>> plan = plan_statistics(StatsOptions(bootstrap=100, permutations=100), 2500, method="pearson")
        >>> plan.bootstrap.scheme, plan.permutation.subset_stimuli, plan.backend, plan.path
        ('subset', 1000, 'numpy', 'dense')
        >>> plan_statistics(StatsOptions(permutations=100, scheme="exact"), 2500, method="pearson").permutation.scheme
        'exact'
        >>> plan_statistics(StatsOptions(bootstrap=100, bootstrap_over="rdms"), 2500, method="pearson").bootstrap.scheme
        'exact'
    """
    from rsa_bridge.stats.backends import rank_backend

    if not isinstance(options, StatsOptions):
        raise RSABridgeError(f"statistics need a StatsOptions (rsa_bridge.options); got {type(options).__name__}")
    boot = perm = None
    if options.bootstrap:
        boot = choose_scheme("bootstrap", options.scheme, n_stimuli,
                             resamples_stimuli=options.bootstrap_over == "stimuli")
    if options.permutations:
        perm = choose_scheme("permutation", options.scheme, n_stimuli)
    return StatsPlan(options, int(n_stimuli), "store" if store else "dense", method, boot, perm,
                     rank_backend(method, device) if boot is not None else None, _executor_name(executor),
                     executor)


#: attrs of the bootstrap / permutation results that results.nc carries (what ran, as planned)
SCHEME_PREFIXES = ("bootstrap_scheme", "bootstrap_subset", "bootstrap_exact_max", "bootstrap_backend",
                   "permutation_scheme", "permutation_subset", "permutation_exact_max")


def scheme_attrs(stats: Sequence) -> dict:
    """What the statistics ran, for ``results.nc``: ``bootstrap_scheme``, ``bootstrap_subset_stimuli``,
    ``bootstrap_subsets``, ``bootstrap_backend``, ``permutation_scheme``, ``permutation_subset_stimuli``,
    ``stats_path`` (dense or store) ... of every dataset's results (values that differ between datasets are
    joined with `` | ``). ``stats``: :class:`rsa_bridge.stats.summary.CompareStatistics` (one per dataset:
    ``plan``, ``boot``, ``perm``). Executors: :func:`rsa_bridge.stats.executors.executor_attrs`."""
    found: dict[str, list] = {}
    for st in stats:
        attrs = {**({"stats_path": st.plan.path} if st.plan is not None else {}),
                 **(st.boot.attrs() if st.boot is not None else {}), **(st.perm.attrs() if st.perm is not None else {})}
        for key, value in attrs.items():
            if key == "stats_path" or key.startswith(SCHEME_PREFIXES):
                found.setdefault(key, [])
                if value not in found[key]:
                    found[key].append(value)
    return {k: v[0] if len(v) == 1 else " | ".join(str(x) for x in v) for k, v in found.items()}


def permutation_attrs(stats: Sequence) -> dict:
    """The ``p_value`` variable's attrs: the permutation test's scheme, subset size, count, alternative, seed."""
    perms = [st.perm for st in stats if st.perm is not None]
    if not perms:
        return {}
    keep = ("permutation_scheme", "permutation_subset", "permutation_exact_max", "permutation_n",
            "permutation_alternative", "permutation_permuted", "permutation_executor")
    out = {"long_name": "permutation p-value (uncorrected, +1 corrected)", "units": "1",
           **{k: v for k, v in perms[0].attrs().items() if k.startswith(keep)}}
    out.update({k: v for k, v in scheme_attrs(stats).items() if k.startswith("permutation_")})
    return out
