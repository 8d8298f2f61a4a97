"""The option objects of the resampling statistics: how a bootstrap or a permutation test runs.

:func:`rsa_bridge.stats.bootstrap_similarity` and :func:`rsa_bridge.stats.permutation_test` keep what they
compute as keywords (method, number of samples, seed, ...) and take the rest — given index sets, progress,
device, scheme, executor — as one frozen options object (issue 24: no function above 10 parameters). The
old keywords are a TypeError naming the field (:func:`stimuli.keywords.refuse_keywords`).

Example::

    >>> import numpy as np
    >>> from rsa_bridge.stats import bootstrap_similarity
    >>> rdms = np.abs(np.random.default_rng(0).normal(size=(2, 8, 8))); rdms = rdms + rdms.transpose(0, 2, 1)
    >>> for r in rdms: np.fill_diagonal(r, 0)
    >>> boot = bootstrap_similarity(rdms, {"IT": rdms[:1]}, n_samples=5, seed=0,
    ...                             options=BootstrapOptions(progress=False, scheme="exact"))
    >>> boot.samples.shape
    (5, 2, 1)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.stats.plan import SchemeChoice


@dataclass(frozen=True)
class BootstrapOptions:
    """How :func:`rsa_bridge.stats.bootstrap_similarity` runs (what it resamples is its own keywords: method, n_samples, over,
    seed, ceiling).

    Attributes:
        stimulus_indices: (B, k) stimulus index sets to use instead of drawing them (e.g. to share them).
        rdm_indices: per area (B, R) RDM index sets to use instead of drawing them.
        progress: a bar over samples: True/False = on/off, None = see :mod:`rsa_bridge.progress`.
        device: a torch device (``cuda``) for the spearman / rho_a samples; None = the CPU kernel
            (see :func:`rsa_bridge.stats.backends.rank_backend`; the result's ``backend`` says which ran).
        scheme: ``auto`` (exact up to :data:`rsa_bridge.stats.subset.EXACT_MAX_STIMULI` stimuli, then
            the subset m-out-of-n scheme of :mod:`rsa_bridge.stats.subset` when resampling stimuli
            only), ``exact`` or ``subset``, or the :class:`rsa_bridge.stats.plan.SchemeChoice` of a plan
            (:func:`rsa_bridge.stats.plan.plan_statistics`); :func:`rsa_bridge.stats.plan.choose_scheme`
            decides, the result's attrs record which ran.
        executor: where the exact scheme's samples are computed, e.g. batches on a dask cluster
            (:mod:`rsa_bridge.stats.executors`; None: the innermost ``use_executor`` block, else here);
            the samples equal the serial ones bit for bit; ``bootstrap_executor`` records what ran.

    Example::

        >>> BootstrapOptions(scheme="exact", progress=False).scheme
        'exact'
    """

    stimulus_indices: np.ndarray | None = None
    rdm_indices: Mapping[str, np.ndarray] | None = None
    progress: bool | None = None
    device: str | None = None
    scheme: str | SchemeChoice = "auto"
    executor: Any = None



@dataclass(frozen=True)
class PermutationOptions:
    """How :func:`rsa_bridge.stats.permutation_test` runs (what it tests is its own keywords: method,
    n_permutations, seed, alternative).

    Attributes:
        permutation_indices: (N, n) permutations to use instead of drawing them.
        keep_null: keep the (N, L, A) null statistics in the result.
        progress: a bar over permutations x areas (True/False; None = see :mod:`rsa_bridge.progress`).
        scheme: ``auto`` (exact up to :data:`rsa_bridge.stats.subset.EXACT_MAX_STIMULI` stimuli, above
            it the labels of one seeded random subset of stimuli are permuted; see
            :mod:`rsa_bridge.stats.subset`), ``exact`` or ``subset``, or a plan's
            :class:`rsa_bridge.stats.plan.SchemeChoice`. ``observed`` is then the subset's.
        executor: where the permuted statistics are computed, e.g. batches on a dask cluster
            (:mod:`rsa_bridge.stats.executors`; None: the innermost ``use_executor`` block, else here);
            equal to the serial ones bit for bit; ``permutation_executor`` records what ran.

    Example::

        >>> PermutationOptions(keep_null=False).keep_null
        False
    """

    permutation_indices: np.ndarray | None = None
    keep_null: bool = True
    progress: bool | None = None
    scheme: str | SchemeChoice = "auto"
    executor: Any = None


def checked(options, options_type: type, where: str):
    """``options`` (None: ``options_type()``), refused in one line when it is not an ``options_type``."""
    options = options_type() if options is None else options
    if not isinstance(options, options_type):
        raise RSABridgeError(f"{where}: options must be a {options_type.__name__} (rsa_bridge.stats); got "
                             f"{type(options).__name__}")
    return options
