"""Typed option objects: how model RDMs are computed (:class:`RDMOptions`) and which statistics ``compare``
adds (:class:`StatsOptions`).

Each is a frozen dataclass: hashable, picklable (a dask task receives it as it is), validated once when it is
built (a bad value is one :class:`rsa_bridge.errors.RSABridgeError` line saying what to pass instead), and
changed only through :func:`dataclasses.replace`. :meth:`RDMOptions.cache_fields` names what decides the
numbers (the model-RDM cache hashes exactly those, :mod:`rsa_bridge.app.cache`); performance knobs (batch
size, memory budget, spill folder) are left out because they do not change a single value by design.
Peers: scikit-learn passes estimator parameters as one object, rsatoolbox's ``calc_rdm`` keyword lists,
Brain-Score a benchmark's ``parameters`` dict; here one object carries them from the command line to the
streaming engine (:func:`extractors.streaming.stream_rdms`), the cache and dask workers.

This module is core: it imports no torch (``device`` is a string such as ``"cpu"`` or ``"cuda:0"``).
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import asdict, dataclass, fields, replace
from numbers import Integral, Real
from typing import Any, Mapping

from rsa_bridge.definitions import METRICS
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.precisions import PRECISIONS as _PRECISIONS
from rsa_bridge.provenance import clean_attrs
from rsa_bridge.registry import Registry

__all__ = ["BOOTSTRAP_OVER", "DEFAULT_CHUNK_BYTES", "DEFAULT_GRAM_BUDGET", "DEFAULT_MEMORY_BUDGET", "NORMALIZE", "PRECISIONS", "RDM_STORAGES",
           "RDM_STORES", "RDMOptions", "STATS_SCHEMES", "StatsOptions"]  # the parsing helpers below are internal

#: bytes of one working block of the Gram products (n stimuli x w units in the working precision)
DEFAULT_CHUNK_BYTES = 64 * 1024 * 1024
#: the smallest automatic activation budget (and the fixed default before it was sized from the memory available):
#: ``RDMOptions(memory_budget=None)`` keeps :func:`rsa_bridge.budget.auto_memory_budget` bytes of activations in
#: memory, a quarter of the memory available, at least this and at most 2 GiB
DEFAULT_MEMORY_BUDGET = 64 * 1024 * 1024
#: how an automatic memory budget is described in provenance and errors
AUTO_MEMORY_BUDGET = "auto: a quarter of the memory available, 64 MiB to 2 GiB"
#: bytes of the out-of-core Gram's unit-block buffers (RDMOptions.gram_budget None; rsa_bridge.gram_blocks)
DEFAULT_GRAM_BUDGET = 1024 * 1024 * 1024
#: RDM working precisions -> bytes per value: a view of :data:`rsa_bridge.precisions.PRECISIONS`
PRECISIONS: Registry[int] = Registry("RDM precision", {name: p.itemsize for name, p in _PRECISIONS.items()})
#: where ``compare`` keeps the model RDMs (``--rdm-store``; :mod:`rsa_bridge.app.rdm_stores`) -> what it does
RDM_STORES: Registry[str] = Registry("RDM store", {
    "auto": "dense arrays while they fit the memory available, else an RDM store (memory, then disk)",
    "memory": "an RDM store of upper triangles, all in memory",
    "disk": "an RDM store of upper triangles, all on disk (a temporary HDF5 file)"})
#: stored values of an RDM store (``--rdm-storage``) -> bytes per value: a view of the same registry
RDM_STORAGES: Registry[int] = Registry("RDM storage", {name: p.itemsize for name, p in _PRECISIONS.items()})
#: what a bootstrap resamples (``StatsOptions.bootstrap_over``)
BOOTSTRAP_OVER = ("stimuli", "rdms", "both")
#: the ceiling bound similarities may be divided by (``StatsOptions.normalize_by_ceiling``)
NORMALIZE = ("upper", "lower")
#: the stimulus schemes of the bootstrap and permutation test (``StatsOptions.scheme``; chosen by
#: :func:`rsa_bridge.stats.plan.plan_statistics`)
STATS_SCHEMES = ("auto", "exact", "subset")


def check_reduce_units(reduce_units: Any) -> int | None:
    """``reduce_units`` as an int >= 1 or None; RSABridgeError otherwise."""
    if reduce_units is None:
        return None
    if isinstance(reduce_units, bool) or not isinstance(reduce_units, Integral) or reduce_units < 1:
        raise RSABridgeError(f"reduce_units must be a whole number of units >= 1 (or None); got {reduce_units!r}")
    return int(reduce_units)


def check_memory_budget(memory_budget: Any, none: str = AUTO_MEMORY_BUDGET) -> float | None:
    """``memory_budget`` as bytes >= 0 (``math.inf``: no limit) or None; RSABridgeError otherwise."""
    if memory_budget is None:
        return None
    if isinstance(memory_budget, bool) or not isinstance(memory_budget, Real) or not memory_budget >= 0:
        raise RSABridgeError(f"memory_budget is a number of bytes >= 0 (or None = {none}); got {memory_budget!r}")
    return memory_budget


def _whole(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise RSABridgeError(f"{name} must be a whole number >= {low}; got {value!r}")
    return int(value)


@dataclass(frozen=True)
class RDMOptions:
    """How a network's layer RDMs are computed (:func:`extractors.streaming.stream_rdms`).

    Attributes:
        metric: RDM metric, a name or alias of :data:`rsa_bridge.definitions.METRICS` (stored resolved).
        precision: ``"float64"`` (equals :func:`rsa_bridge.rdm.compute_rdm` to ~1e-12) or ``"float32"``
            (faster; ~1e-6 absolute on correlation distances).
        reduce_units: K: sketch every layer wider than K units to K (None = exact RDMs); reduce_seed: the
            sketches' seed (see :mod:`extractors.streaming`).
        memory_budget: bytes of float32 activations kept in memory rather than spilled to disk; None = sized
            from the memory available when the RDMs are computed (:func:`rsa_bridge.budget.auto_memory_budget`: a
            quarter of it, 64 MiB to 2 GiB; the RDMs' attrs record the bytes used); ``math.inf`` = never spill.
        batch_size: images per forward pass; None = as many as fit a share of the memory available, at most 64
            (:func:`rsa_bridge.budget.auto_batch_size`; the RDMs' attrs record the size used).
        decode_workers: threads decoding and preprocessing the next batches while the network runs
            (:mod:`extractors.feed`); None = one per two cores, 0 = decode in the main thread.
        device: torch device name (``"cpu"``, ``"cuda"``, ``"cuda:1"``); its type enters the cache key.
        spill_dir: folder for the temporary spill files (None = the system temp folder).
        store: where ``compare`` keeps the layer RDMs, :data:`RDM_STORES` (``auto``: dense while they fit,
            ``memory``/``disk``: an RDM store; :mod:`rsa_bridge.app.rdm_stores`); storage: the store's values,
            :data:`RDM_STORAGES` (``float32``: each entry within |d| 2^-24). Neither changes the dense RDMs, so
            neither enters the cache key; the results record what ran (``rdm_store``, ``rdm_storage``).
        chunk_bytes: bytes of one working block of the Gram products (changes the order of the float
            sums, so a non-default value enters the cache key).
        gram_budget: bytes of the out-of-core Gram's buffers for a spilled layer (:mod:`rsa_bridge.gram_blocks`:
            two unit blocks of all stimuli); None = :data:`DEFAULT_GRAM_BUDGET` (1 GiB). Each spilled byte is read
            once whatever the budget; fewer bytes, narrower blocks (more, smaller products).

    Examples:
        >>> from rsa_bridge.options import RDMOptions
        >>> options = RDMOptions(metric="Correlation", precision="float32")
        >>> options.metric, options.precision          # names resolve as the command line resolves them
        ('correlation', 'float32')
        >>> smaller_batches = RDMOptions(metric="correlation", precision="float32", batch_size=8)
        >>> options.cache_fields() == smaller_batches.cache_fields()   # batch size does not change the numbers
        True
        >>> RDMOptions(reduce_units=0)
        Traceback (most recent call last):
        ...
        rsa_bridge.errors.RSABridgeError: reduce_units must be a whole number of units >= 1 (or None); got 0
    """

    metric: str = "correlation"
    precision: str = "float64"
    reduce_units: int | None = None
    reduce_seed: int = 0
    memory_budget: float | None = None
    batch_size: int | None = None
    device: str = "cpu"
    spill_dir: str | os.PathLike | None = None
    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    store: str = "auto"
    storage: str = "float64"
    gram_budget: float | None = None
    decode_workers: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.device, str):  # e.g. a torch.device: kept as its name, so the core needs no torch
            object.__setattr__(self, "device", str(self.device))
        if self.spill_dir is not None and not isinstance(self.spill_dir, (str, os.PathLike)):
            raise RSABridgeError(f"spill_dir is a folder path (or None); got {self.spill_dir!r}")
        object.__setattr__(self, "metric", METRICS.resolve(self.metric))
        object.__setattr__(self, "precision", PRECISIONS.resolve(self.precision))
        object.__setattr__(self, "reduce_units", check_reduce_units(self.reduce_units))
        object.__setattr__(self, "reduce_seed", _whole("reduce_seed", self.reduce_seed, 0))
        object.__setattr__(self, "memory_budget", check_memory_budget(self.memory_budget))
        object.__setattr__(self, "gram_budget", check_memory_budget(self.gram_budget, "1 GiB"))
        if self.batch_size is not None:
            object.__setattr__(self, "batch_size", _whole("batch_size", self.batch_size, 1))
        if self.decode_workers is not None:
            object.__setattr__(self, "decode_workers", _whole("decode_workers", self.decode_workers, 0))
        object.__setattr__(self, "chunk_bytes", _whole("chunk_bytes", self.chunk_bytes, 1))
        object.__setattr__(self, "store", RDM_STORES.resolve(self.store))
        object.__setattr__(self, "storage", RDM_STORAGES.resolve(self.storage))

    @property
    def device_type(self) -> str:
        """``"cpu"``, ``"cuda"``, ... (the device name without its index)."""
        return self.device.split(":", 1)[0].strip().lower()

    @property
    def storage_itemsize(self) -> int:
        """Bytes per value of ``model_rdms.nc``: 8, or 4 when an RDM store keeps float32 (``storage``)."""
        return RDM_STORAGES[self.storage]

    @property
    def gram_budget_bytes(self) -> float:
        """The out-of-core Gram's buffer budget in bytes, None resolved to :data:`DEFAULT_GRAM_BUDGET`."""
        return DEFAULT_GRAM_BUDGET if self.gram_budget is None else self.gram_budget

    @property
    def budget_bytes(self) -> float:
        """The memory budget in bytes; None is resolved now, from the memory available
        (:func:`rsa_bridge.budget.auto_memory_budget`), so read it once per job."""
        if self.memory_budget is not None:
            return self.memory_budget
        from rsa_bridge.budget import auto_memory_budget

        return auto_memory_budget()

    def cache_fields(self) -> dict:
        """The fields that change the RDMs' values: metric, device type, precision, reduce_units and
        reduce_seed (and chunk_bytes when it is not the default). Batch size, memory budget and spill folder
        are left out: they change speed and memory, not a single number."""
        out = {"metric": self.metric, "device": self.device_type, "precision": self.precision,
               "reduce_units": self.reduce_units, "reduce_seed": self.reduce_seed}
        if self.chunk_bytes != DEFAULT_CHUNK_BYTES:
            out["chunk_bytes"] = self.chunk_bytes
        return out

    def key(self) -> str:
        """SHA-256 (hex) of :meth:`cache_fields`: equal for options that give equal RDMs."""
        return hashlib.sha256(json.dumps(self.cache_fields(), sort_keys=True).encode()).hexdigest()

    def attrs(self) -> dict:
        """Provenance attrs (``rdm_*``) of every field, performance knobs included (what ran; None spelled out)."""
        out = {f"rdm_{k}": v for k, v in asdict(self).items() if k not in ("store", "storage")}
        out["rdm_store_requested"] = self.store  # what ran (rdm_store, rdm_storage) is recorded by compare
        out.update(rdm_memory_budget=AUTO_MEMORY_BUDGET if self.memory_budget is None else self.memory_budget,
                   rdm_gram_budget=self.gram_budget_bytes,
                   rdm_spill_dir=str(self.spill_dir or "system temp folder"),
                   rdm_reduce_units="none (exact RDMs)" if self.reduce_units is None else self.reduce_units,
                   rdm_batch_size="auto (memory budget)" if self.batch_size is None else self.batch_size,
                   rdm_decode_workers="auto (one per two cores)" if self.decode_workers is None
                   else self.decode_workers)
        return clean_attrs(out)


@dataclass(frozen=True)
class StatsOptions:
    """What statistics ``compare`` adds (all off but the noise ceiling by default in the Python API).

    Attributes:
        bootstrap: bootstrap samples for CIs and best layers (0 = none). Differs from the command line on
            purpose: ``rsa-bridge compare`` defaults to ``--bootstrap 1000`` (what a reader of its table
            needs), the Python API to 0 (a fast, deterministic call in loops and tests); pass
            ``StatsOptions(bootstrap=1000)`` for the command line's numbers. bootstrap_over: ``stimuli``,
            ``rdms`` (subjects/sessions) or ``both``; ci_level: CI level.
        permutations: permutations for p-values (0 = none).
        seed: seed of the one Generator behind every random step (stored in the result's attrs).
        ceiling: Nili noise ceiling of areas with >= 2 RDMs.
        normalize_by_ceiling: ``upper``/``lower`` adds ``similarity_normalized`` = similarity / that bound.
        progress: bars over bootstrap samples and permutations (None: the ``progress`` of
            :func:`rsa_bridge.app.pipeline.compare_models`, then :mod:`rsa_bridge.progress`; not stored in attrs).
        group_by: the unit of resampling for ceilings, SEM and the bootstrap over RDMs: ``auto`` (the
            subject/animal coordinate when the RDMs carry one), ``none`` (each RDM), or a replicate
            coordinate name (see :mod:`rsa_bridge.stats.grouping`).
        time: inference over the time bins of time-resolved areas (cluster tests, per-bin ceilings, cross-temporal
            RSA), a :class:`rsa_bridge.stats.time_inference.TimeInferenceOptions`; None: none.
        scheme: the stimulus scheme of the bootstrap and the permutation test, :data:`STATS_SCHEMES`:
            ``auto`` (exact up to :data:`rsa_bridge.stats.subset.EXACT_MAX_STIMULI` stimuli, random subsets
            above), ``exact`` or ``subset``; :func:`rsa_bridge.stats.plan.plan_statistics` decides once and the
            results record what ran (``bootstrap_scheme``, ``permutation_scheme``).

    Validated when built, like :class:`RDMOptions`: a negative count, a CI level outside (0, 1) or an unknown
    name is one :class:`rsa_bridge.errors.RSABridgeError` line.

    Examples:
        >>> from rsa_bridge.options import StatsOptions
        >>> StatsOptions(bootstrap=1000, ci_level=0.9).ci_level
        0.9
        >>> StatsOptions(bootstrap=-5)
        Traceback (most recent call last):
        ...
        rsa_bridge.errors.RSABridgeError: bootstrap must be a whole number >= 0 (0 turns it off); got -5
    """

    bootstrap: int = 0
    permutations: int = 0
    seed: int | None = 0
    bootstrap_over: str = "stimuli"
    ci_level: float = 0.95
    ceiling: bool = True
    normalize_by_ceiling: str | None = None
    progress: bool | None = None
    group_by: str | None = "auto"
    scheme: str = "auto"
    time: Any = None

    def __post_init__(self) -> None:
        from rsa_bridge.limits import check_seed

        if self.time is not None:  # imported only then: a job without time inference never loads that module
            from rsa_bridge.stats.time_inference import TimeInferenceOptions

            if not isinstance(self.time, TimeInferenceOptions):
                raise RSABridgeError("time must be a TimeInferenceOptions (rsa_bridge.stats.time_inference) or None")

        for name in ("bootstrap", "permutations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
                raise RSABridgeError(f"{name} must be a whole number >= 0 (0 turns it off); got {value!r}")
            object.__setattr__(self, name, int(value))
        if self.seed is not None:
            object.__setattr__(self, "seed", check_seed(int(self.seed) if isinstance(self.seed, Integral)
                                                        and not isinstance(self.seed, bool) else self.seed, "seed"))
        ci = self.ci_level
        if isinstance(ci, bool) or not isinstance(ci, Real) or not 0.0 < ci < 1.0:
            raise RSABridgeError(f"ci_level must lie strictly between 0 and 1, e.g. 0.95; got {ci!r}")
        object.__setattr__(self, "ci_level", float(ci))
        _one_of("bootstrap_over", self.bootstrap_over, BOOTSTRAP_OVER)
        _one_of("scheme", self.scheme, STATS_SCHEMES)
        if self.normalize_by_ceiling is not None:
            _one_of("normalize_by_ceiling", self.normalize_by_ceiling, NORMALIZE, " (or None)")
        for name in ("ceiling", "progress"):
            value = getattr(self, name)
            if not (isinstance(value, bool) or (name == "progress" and value is None)):
                raise RSABridgeError(f"{name} is True or False{' (or None)' if name == 'progress' else ''}; "
                                     f"got {value!r}")
        if self.group_by is not None and (not isinstance(self.group_by, str) or not self.group_by.strip()):
            raise RSABridgeError(f"group_by is 'auto', 'none' or a replicate coordinate name (or None); "
                                 f"got {self.group_by!r}")

    def attrs(self) -> dict:
        out = {f"stats_{k}": v for k, v in asdict(self).items() if k not in ("progress", "time")}
        out["stats_seed"] = "none (fresh entropy)" if self.seed is None else self.seed
        out["stats_p_correction_family"] = "the model layers tested against one area"
        out["stats_ceiling_definition"] = ("per area in the ceiling_definition/ceiling_note variables: nili (several "
                                           "RDMs; lower: leave one unit out, upper: all units) or split-half (one RDM "
                                           "with repeat-level rates; lower: Spearman-Brown split-half reliability R, "
                                           "upper: sqrt R) or n/a")
        return clean_attrs(out)


def _one_of(name: str, value: Any, choices: tuple, none: str = "") -> None:
    if not isinstance(value, str) or value not in choices:
        raise RSABridgeError(f"{name} must be one of {', '.join(choices)}{none}; got {value!r}")


_RDM_FIELDS = frozenset(f.name for f in fields(RDMOptions))


def options_from_keywords(options: RDMOptions | None, legacy: Mapping[str, Any], where: str,
                          stacklevel: int = 3) -> RDMOptions:
    """``options`` (default ``RDMOptions()``), checked; ``legacy``: the stray keywords a caller received.

    The old-style RDM keywords (``metric=``, ``batch_size=``, ``rdm_options={...}`` ...) were deprecated for
    one release and are removed (CHANGELOG.md): any keyword in ``legacy`` is a TypeError, as Python itself
    says of a keyword a function does not take, naming the ``RDMOptions`` field to use where there is one.
    ``stacklevel`` is kept for the callers' signatures and unused.

    Example::

        >>> options_from_keywords(None, {}, "stream_rdms") == RDMOptions()
        True
    """
    options = RDMOptions() if options is None else options
    if not isinstance(options, RDMOptions):
        raise RSABridgeError(f"{where}: options must be an RDMOptions (rsa_bridge.options); got "
                             f"{type(options).__name__}")
    if not legacy:
        return options
    name = sorted(legacy)[0]
    fields_given = sorted(set(legacy) & _RDM_FIELDS)
    if fields_given:
        raise TypeError(f"{where}() got an unexpected keyword argument {fields_given[0]!r}: the separate RDM keywords "
                        f"were removed; pass one rsa_bridge.RDMOptions({', '.join(f'{k}=...' for k in fields_given)})")
    if name == "rdm_options":
        raise TypeError(f"{where}() got an unexpected keyword argument 'rdm_options': the dict was removed; pass one "
                        "rsa_bridge.RDMOptions(...) with the same fields")
    raise TypeError(f"{where}() got an unexpected keyword argument {name!r} (RDM options: "
                    f"{', '.join(sorted(_RDM_FIELDS))})")
