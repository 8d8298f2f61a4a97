"""Will the RDMs of a job fit? One line before any computing when they cannot.

A dense float64 RDM over n stimuli is 8 n^2 bytes: 0.07 MB at 92 stimuli, 11.5 MB at 1,200, 800 MB at
10,000, 3.9 GB at 22,000. ``compare`` holds every model-layer RDM and every brain RDM dense in memory,
and the statistics copy them once more (stacking across models, upper-triangle vectors), so its peak is
about :data:`COPIES` x (model RDMs + brain RDMs) x 8 n^2 bytes. :func:`check_rdm_memory` compares that
with the memory this process can have (``psutil`` available memory, or ``budget`` bytes) and
:func:`check_disk` the ``model_rdms.nc`` the job writes with the free space of its output folder.
Both raise :class:`rsa_bridge.errors.RSABridgeError` with how much is needed and what to change.

**The store path** (:class:`rsa_bridge.rdm_store.RDMStore`, issue 19 item 3): RDMs are kept as upper
triangles, in memory up to a byte budget and on disk beyond it, ranked out of core and compared chunk by
chunk, so its peak is :data:`STORE_SQUARES` dense (n, n) float64 matrices (the Gram/RDM being finished and
one more: a brain RDM being stored, or the layer being written to ``model_rdms.nc``) plus the budgets:
:func:`store_needed_bytes`. :func:`plan_store` picks the budgets from the memory available and checks the
spill folder's disk (:func:`spill_bytes`); only when even the two squares cannot fit, or the disk cannot
take what is spilled, is the job refused, in one line. Not done: the squares themselves are dense (a Gram
over n stimuli is n x n): on 16 GiB, 2 x 8 n^2 <= 75% of it stops at about 28,000 stimuli.

**Eigendecompositions** (the Procrustes, shape-metric and CCA measures, ``Measure.eigen``): each (n, n) Gram
is centred and eigendecomposed (LAPACK ``syevd``: n^3 time; :data:`EIGEN_SQUARES` dense float64 n x n
arrays at its peak: the Gram, its centred copy, the eigenvectors, the workspace, the bootstrap's resampled
copy). :func:`check_eigen_memory` refuses, before the forward pass, a job whose one decomposition cannot
fit, and names the alternative (``--measure cka``: the Gram only, no decomposition).
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from rsa_bridge.errors import RSABridgeError

#: dense copies of every RDM at the peak of a compare job (the RDMs, the stack and vectors of the statistics):
#: measured about 5 at 5,000 stimuli (docs/guide/scale.md, "End-to-end"); it was 2.5 by count, which let a
#: dense 10,000-stimulus job pass the check and then run out of memory
COPIES = 5.0
#: model-layer RDMs assumed per model when the layers are not named (the default lists have 5 to 10)
DEFAULT_LAYERS = 8


#: dense float64 (n, n) arrays alive during one Gram eigendecomposition (see the module docstring)
EIGEN_SQUARES = 6


def eigen_bytes(n_stimuli: int) -> int:
    """Peak bytes of one Gram eigendecomposition over ``n_stimuli`` (:data:`EIGEN_SQUARES` dense squares)."""
    return EIGEN_SQUARES * rdm_bytes(n_stimuli)


def check_eigen_memory(n_stimuli: int, measures, budget: float | None = None) -> None:
    """Raise when ``measures`` (names of eigendecomposing measures; none: nothing to check) cannot decompose an
    (n, n) Gram within ``budget`` bytes (None: the memory available now).

    Example::

        >>> check_eigen_memory(100_000, ["procrustes"], budget=2 ** 34)
        Traceback (most recent call last):
        ...
        rsa_bridge.errors.RSABridgeError: --measure procrustes eigendecomposes each 100000 x 100000 stimulus Gram (n^3 time, about 447.0 GiB at the peak), but 16.0 GiB is available; use --measure cka (no decomposition) or fewer stimuli
    """
    measures = list(measures or ())
    if not measures:
        return
    if budget is None:
        import psutil

        budget = psutil.virtual_memory().available
    need = eigen_bytes(n_stimuli)
    if need > budget:
        raise RSABridgeError(f"--measure {'/'.join(measures)} eigendecomposes each {n_stimuli} x {n_stimuli} stimulus "
                             f"Gram (n^3 time, about {_gib(need)} at the peak), but {_gib(budget)} is available; "
                             "use --measure cka (no decomposition) or fewer stimuli")


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2 ** 30:.1f} GiB"


def rdm_bytes(n_stimuli: int, itemsize: int = 8) -> int:
    """Bytes of one dense (n, n) RDM."""
    return int(n_stimuli) ** 2 * itemsize


def needed_bytes(n_stimuli: int, n_model_rdms: int, n_brain_rdms: int) -> float:
    """Estimated peak bytes of a compare job's RDMs (see the module docstring)."""
    return COPIES * (n_model_rdms + n_brain_rdms) * rdm_bytes(n_stimuli)


def check_rdm_memory(n_stimuli: int, n_model_rdms: int, n_brain_rdms: int, budget: float | None = None) -> None:
    """Raise when the job's RDMs cannot fit in ``budget`` bytes (None: the memory available now)."""
    if budget is None:
        import psutil

        budget = psutil.virtual_memory().available
    need = needed_bytes(n_stimuli, n_model_rdms, n_brain_rdms)
    if need > budget:
        raise RSABridgeError(
            f"{n_stimuli} stimuli: {n_model_rdms} model-layer RDMs and {n_brain_rdms} brain RDMs need about "
            f"{_gib(need)} held as dense float64 matrices ({_gib(rdm_bytes(n_stimuli))} each, {COPIES:g} copies at "
            f"the peak), but {_gib(budget)} is available; score fewer layers (--layers), fewer models at once, or "
            "fewer stimuli, or use a machine with more memory")


def check_disk(folder: str | Path, n_stimuli: int, n_model_rdms: int, itemsize: int = 8) -> None:
    """Raise when ``folder`` lacks room for the model RDMs written there (dense, ``itemsize`` bytes)."""
    folder = Path(folder)
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    need = n_model_rdms * rdm_bytes(n_stimuli, itemsize)
    if need > free:
        raise RSABridgeError(f"{folder}: model_rdms.nc needs about {_gib(need)} ({n_model_rdms} RDMs of {n_stimuli} "
                             f"stimuli) but the disk has {_gib(free)} free; write to a larger disk (--out DIR) or "
                             "score fewer layers (--layers)")


#: dense (n, n) float64 matrices in memory at once on the store path (see the module docstring)
STORE_SQUARES = 2
#: share of the available memory the store path plans to use (the rest: the model, Python, the page cache)
STORE_SHARE = 0.75
#: smallest useful budgets: vectors kept in memory, and the out-of-core ranking's working memory
MIN_STORE_BUDGET = 64 * 2 ** 20
#: share of the available memory a ranking takes when no rank budget is given (:func:`auto_rank_budget`)
RANK_SHARE = 0.25
#: working bytes per value of an in-memory ranking (as rsa_bridge.ranking.IN_MEMORY_BYTES_PER_VALUE; this
#: module imports nothing heavy)
RANK_BYTES_PER_VALUE = 72


def _pairs(n_stimuli: int) -> int:
    return int(n_stimuli) * (int(n_stimuli) - 1) // 2


def store_vector_bytes(n_stimuli: int, n_rdms: int, storage: str = "float64", ranks: bool = True) -> int:
    """Bytes of ``n_rdms`` condensed vectors in ``storage`` plus, with ``ranks``, their ranks (uint32 of 2 x rank
    while ``2 m < 2**32``, else float64: :func:`rsa_bridge.rank_storage.rank_storage`)."""
    from rsa_bridge.rank_storage import rank_storage

    item = {"float64": 8, "float32": 4}[storage]
    rank_item = 4 if rank_storage(_pairs(n_stimuli)) != "float64" else 8
    return n_rdms * _pairs(n_stimuli) * (item + (rank_item if ranks else 0))


def store_needed_bytes(n_stimuli: int, memory_budget: float, rank_budget: float) -> float:
    """Peak bytes of the store path: :data:`STORE_SQUARES` (n, n) float64 squares + the vectors kept in memory
    (``memory_budget``) + the ranking's working memory (``rank_budget``)."""
    return STORE_SQUARES * rdm_bytes(n_stimuli) + memory_budget + rank_budget


def spill_bytes(n_stimuli: int, n_rdms: int, storage: str = "float64", memory_budget: float = 0.0,
                ranks: bool = True) -> float:
    """Bytes written to the spill folder: the vectors (and ranks) beyond ``memory_budget``."""
    return max(0.0, store_vector_bytes(n_stimuli, n_rdms, storage, ranks) - memory_budget)


@dataclass(frozen=True)
class StoreBudget:
    """Budgets of the store path for one job (bytes): pass ``memory_budget`` to the
    :class:`~rsa_bridge.rdm_store.RDMStore` and ``rank_budget`` to the ranking / chunked comparison."""

    memory_budget: float
    rank_budget: float
    needed: float
    spill: float


def plan_store(n_stimuli: int, n_model_rdms: int, n_brain_rdms: int, *, storage: str = "float64",
               ranks: bool = True, available: float | None = None, spill_dir: str | Path | None = None) -> StoreBudget:
    """Budgets for the store path within :data:`STORE_SHARE` of ``available`` bytes (None: psutil's available
    memory), or one line saying why the job cannot run.

    Half of what is left after the two squares goes to the ranking (no more than an in-memory ranking needs),
    the rest to vectors kept in memory; what does not fit is spilled to ``spill_dir`` (None: the system
    temporary folder), whose disk is checked.

    Raises:
        RSABridgeError: the squares and the smallest budgets exceed the memory, or the spill exceeds the free disk.
    """
    if available is None:
        import psutil

        available = psutil.virtual_memory().available
    squares = STORE_SQUARES * rdm_bytes(n_stimuli)
    usable = STORE_SHARE * available
    if squares + 2 * MIN_STORE_BUDGET > usable:
        raise RSABridgeError(
            f"{n_stimuli} stimuli: even with RDMs kept as upper triangles on disk, {STORE_SQUARES} dense matrices of "
            f"{_gib(rdm_bytes(n_stimuli))} each (the Gram being finished and one RDM) need "
            f"{_gib(squares + 2 * MIN_STORE_BUDGET)}, but {_gib(available)} is available ({STORE_SHARE:.0%} of it "
            "is planned); use fewer stimuli or a machine with more memory")
    left = usable - squares
    n_rdms = n_model_rdms + n_brain_rdms
    rank_budget = min(_pairs(n_stimuli) * RANK_BYTES_PER_VALUE, left / 2) if ranks else 0.0
    memory_budget = min(store_vector_bytes(n_stimuli, n_rdms, storage, ranks), left - rank_budget)
    spill = spill_bytes(n_stimuli, n_rdms, storage, memory_budget, ranks)
    if spill > 0:
        check_spill_disk(spill_dir, spill, n_stimuli)
    return StoreBudget(memory_budget, rank_budget, store_needed_bytes(n_stimuli, memory_budget, rank_budget), spill)


def auto_rank_budget(n_stimuli: int, available: float | None = None) -> float:
    """Working bytes of one global ranking when none is given: what ranking one RDM in memory needs, at most
    :data:`RANK_SHARE` of ``available`` (None: psutil's available memory now), so that a ranking never takes
    the memory the RDMs themselves need (beyond it :func:`rsa_bridge.ranking.rank_store` ranks out of core)."""
    if available is None:
        import psutil

        available = psutil.virtual_memory().available
    return float(min(_pairs(n_stimuli) * RANK_BYTES_PER_VALUE, max(MIN_STORE_BUDGET, RANK_SHARE * available)))


def _spill_free(spill_dir: str | Path | None) -> tuple[Path, int]:
    """(the spill folder, free bytes on its disk); None: the system temporary folder (``$TMPDIR``)."""
    import tempfile

    folder = Path(spill_dir) if spill_dir is not None else Path(tempfile.gettempdir())
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return folder, shutil.disk_usage(probe).free


def check_activation_disk(spill_dir: str | Path | None, need: float, n_stimuli: int, n_layers: int) -> None:
    """Raise (one line) when the layer activations that :func:`extractors.streaming.stream_rdms` spills (float32,
    n x units per layer beyond its memory budget, plus the RDM store's spilled layers written meanwhile) would
    not fit the disk of ``spill_dir``. At 22,000 stimuli AlexNet's 8 default layers spill 43.5 GB."""
    folder, free = _spill_free(spill_dir)
    if need > free:
        raise RSABridgeError(
            f"{folder}: the activations of {n_layers} layer(s) for {n_stimuli} stimuli need about {_gib(need)} of "
            f"spill space while their RDMs are computed, but the disk has {_gib(free)} free; set TMPDIR (or "
            "RDMOptions(spill_dir=...)) to a folder on a larger disk, sketch wide layers (--reduce-units 4096), "
            "or score fewer layers (--layers)")


def check_spill_disk(spill_dir: str | Path | None, need: float, n_stimuli: int) -> None:
    """Raise when the disk of ``spill_dir`` (None: the system temporary folder) has less than ``need`` bytes free."""
    folder, free = _spill_free(spill_dir)
    if need > free:
        raise RSABridgeError(
            f"{folder}: the RDMs of {n_stimuli} stimuli that do not fit in memory need about {_gib(need)} of spill "
            f"space but the disk has {_gib(free)} free; point the spill folder at a larger disk (spill_dir), store "
            "RDMs as float32, or score fewer layers (--layers)")


#: share of the available memory one batch's activations may take when the batch size is not given
BATCH_SHARE = 0.10
#: the largest batch chosen automatically: on CPU AlexNet and MobileNetV2 run no faster per image beyond it
#: (docs/guide/scale.md, "Forward pass"), and a larger one only delays the first results
MAX_AUTO_BATCH = 64


def auto_batch_size(per_stimulus_bytes: float, n_stimuli: int, available: float | None = None) -> int:
    """Images per forward pass when the user gives none: as many as fit :data:`BATCH_SHARE` of ``available``
    bytes (None: psutil's available memory now), at least 1, at most :data:`MAX_AUTO_BATCH` and ``n_stimuli``.

    Args:
        per_stimulus_bytes: the pass's working bytes per image (input, captured layer outputs and their
            copies: :func:`extractors.extract.batch_bytes_per_stimulus`).
        n_stimuli: images to run (a batch larger than that is pointless).
        available: bytes of memory to plan within.

    Raises:
        RSABridgeError: not even one image fits ``available`` (the network cannot run here).

    >>> auto_batch_size(7e6, 640, available=16e9), auto_batch_size(7e6, 640, available=1.4e8)
    (64, 2)
    """
    if available is None:
        import psutil

        available = psutil.virtual_memory().available
    if per_stimulus_bytes > available:
        raise RSABridgeError(
            f"one image's activations need about {per_stimulus_bytes / 2 ** 20:.0f} MiB but {_gib(available)} is "
            "available; request fewer or earlier layers (--layers), or free memory")
    fit = int(BATCH_SHARE * available // max(per_stimulus_bytes, 1.0))
    return max(1, min(MAX_AUTO_BATCH, int(n_stimuli), fit))


#: share of the available memory the streaming engine keeps layer activations in when no budget is given
ACTIVATION_SHARE = 0.25
#: bounds of that automatic activation budget: never below the old fixed default, never above 2 GiB (the rest of
#: a large job's memory goes to its (n, n) squares, the RDM store and the page cache of spilled layers)
MIN_ACTIVATION_BUDGET = 64 * 2 ** 20
MAX_ACTIVATION_BUDGET = 2 * 2 ** 30
#: where Linux says how much memory can be had without swapping
MEMINFO = Path("/proc/meminfo")


def available_memory(meminfo: str | Path | None = None) -> float:
    """Bytes of memory available now: ``MemAvailable`` of ``meminfo`` (None: :data:`MEMINFO`, Linux's
    ``/proc/meminfo``), else psutil's estimate.

    >>> import tempfile, os
    >>> with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
    ...     _ = f.write("MemTotal:  24000000 kB\\nMemAvailable:  1048576 kB\\n")
    >>> available_memory(f.name) == 2 ** 30
    True
    >>> os.unlink(f.name)
    """
    try:
        for line in Path(MEMINFO if meminfo is None else meminfo).read_text().splitlines():
            if line.startswith("MemAvailable:"):
                parts = line.split()
                return float(parts[1]) * (1024 if parts[2:3] == ["kB"] else 1)
    except (OSError, ValueError, IndexError):
        pass
    import psutil

    return float(psutil.virtual_memory().available)


def auto_memory_budget(available: float | None = None) -> float:
    """Bytes of float32 activations :func:`extractors.streaming.stream_rdms` keeps in memory when no
    ``memory_budget`` is given: :data:`ACTIVATION_SHARE` of ``available`` (None: :func:`available_memory` now),
    at least :data:`MIN_ACTIVATION_BUDGET` (64 MiB) and at most :data:`MAX_ACTIVATION_BUDGET` (2 GiB).

    Layers that fit stay in memory and are one ``syrk`` each; only the rest spill to disk. The 640-stimulus
    AlexNet job's 8 layers (494,184 units) need 1.26 GB: on a machine with more than 5.1 GB available
    nothing spills (with the old fixed 64 MiB the five conv layers did).

    >>> auto_memory_budget(16 * 2 ** 30) == 2 ** 31, auto_memory_budget(4 * 2 ** 30) == 2 ** 30
    (True, True)
    >>> auto_memory_budget(10 * 2 ** 20) == 64 * 2 ** 20
    True
    """
    if available is None:
        available = available_memory()
    return float(min(MAX_ACTIVATION_BUDGET, max(MIN_ACTIVATION_BUDGET, ACTIVATION_SHARE * float(available))))
