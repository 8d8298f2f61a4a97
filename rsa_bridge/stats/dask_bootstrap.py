"""Bootstrap and permutation batches as dask tasks: samples computed on a cluster, equal to the serial run.

Every random draw happens on the client, in the order the serial code makes them (the stimulus index
sets, then each area's RDM index sets in area order, then the permutations); the workers only evaluate
batches of given index sets with the same functions the serial call runs (see
:mod:`rsa_bridge.stats.executors`). Batch boundaries fall on multiples of the statistic's chunk
(:data:`rsa_bridge.stats.backends.FAST_CHUNK` samples for the compiled rank kernel), so every sample
is computed exactly as in the serial run: the samples, intervals and p-values are equal **bit for bit**
(``tests/test_dask_statistics.py``). The arrays a batch reads are scattered to the workers once per call.

    from rsa_bridge.app.distributed import connect
    from rsa_bridge.stats import bootstrap_similarity
    from rsa_bridge.stats.dask_bootstrap import DaskExecutor

    with connect("local:2") as client:
        boot = bootstrap_similarity(model_rdms, {"V4": v4}, n_samples=1000, seed=0,
                                    executor=DaskExecutor(client, "local:2"))
    boot.attrs()["bootstrap_executor"]   # 'dask (4 batches of <= 256 samples on local:2)'

``rsa-bridge compare --scheduler`` runs its statistics this way on the scheduler of its model RDMs.
Only the exact schemes are distributed: above :data:`rsa_bridge.stats.subset.EXACT_MAX_STIMULI` stimuli
the subset bootstrap runs on the client (it is cheap); the subset permutation test distributes its
permutations of the subset. This module is core: it never imports dask, it calls the client it is given
(``submit``, ``scatter``, ``scheduler_info``). Peers: rsatoolbox and Brain-Score have no distributed
bootstrap; dask-ml's ``ParallelPostFit`` spreads predictions the same way (work split, data scattered).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from rsa_bridge.stats.bootstrap import BootstrapResult, bootstrap_similarity
from rsa_bridge.stats.executors import batch_slices, take
from rsa_bridge.stats.resample import Seed
from rsa_bridge.stats.run_options import BootstrapOptions

#: batches per worker when no batch size is given (a little slack for uneven workers)
TASKS_PER_WORKER = 2


class DaskExecutor:
    """Batches of samples as dask tasks on ``client`` (a ``dask.distributed.Client``).

    Args:
        client: the client of the cluster.
        label: how the cluster is named in provenance (e.g. ``local:2``); never an address (it may carry
            credentials). Default: ``a dask cluster of N workers``.
        batch_size: samples per task (rounded up to the statistic's chunk); None: about
            :data:`TASKS_PER_WORKER` tasks per worker.
    """

    def __init__(self, client: Any, label: str | None = None, *, batch_size: int | None = None):
        self.client = client
        self.label = label
        self.batch_size = batch_size

    def workers(self) -> int:
        """Workers the scheduler knows now (at least 1)."""
        return max(1, len(self.client.scheduler_info().get("workers", {})))

    def run(self, fn: Callable, shared: Sequence, split: Sequence, n: int, quantum: int = 1,
            progress: bool | None = None, desc: str = "samples") -> tuple[list, str]:
        """``fn(*shared, *split_batch, False)`` per batch as dask tasks; the parts in order, and what ran."""
        from rsa_bridge.progress import progress_bar

        workers = self.workers()
        slices = batch_slices(n, quantum, workers * TASKS_PER_WORKER, self.batch_size)
        # one future per argument, sent once; hash=False: equal data scattered by an earlier call (e.g. the same
        # method name or RDMs) must not share its key, which that call's release would take away ("lost dependencies")
        shipped = self.client.scatter(list(shared), broadcast=True, hash=False)
        futures = [self.client.submit(fn, *shipped, *(take(item, sl) for item in split), False, pure=False)
                   for sl in slices]
        bar = progress_bar(total=n, desc=f"{desc} (dask tasks)", unit="sample", progress=progress)
        parts = []
        for sl, future in zip(slices, futures):
            parts.append(future.result())
            bar.update(sl.stop - sl.start)
        bar.close()
        size = max(sl.stop - sl.start for sl in slices)
        where = self.label or f"a dask cluster of {workers} worker{'s' if workers != 1 else ''}"
        return parts, f"dask ({len(slices)} batch{'es' if len(slices) != 1 else ''} of <= {size} samples on {where})"


def bootstrap_on_dask(model_rdms, neural_rdms, *, client, method: str = "spearman", n_samples: int = 1000,
                      over: str = "stimuli", seed: Seed = None, ceiling: bool = False,
                      batch_size: int | None = None, label: str | None = None) -> BootstrapResult:
    """:func:`rsa_bridge.stats.bootstrap_similarity` (exact scheme) with batches of samples as dask tasks.

    Args:
        client: a ``dask.distributed.Client`` (see :func:`rsa_bridge.app.distributed.connect`).
        batch_size: samples per task (rounded up to the statistic's chunk); None: about two tasks per worker.
        label: the cluster's name in provenance (see :class:`DaskExecutor`).
        the rest: as :func:`rsa_bridge.stats.bootstrap_similarity`.

    Returns:
        the :class:`BootstrapResult` the serial call with the same seed returns, with
        ``executor`` saying where it ran.
    """
    return bootstrap_similarity(model_rdms, neural_rdms, method=method, n_samples=n_samples, over=over, seed=seed,
                                ceiling=ceiling,
                                options=BootstrapOptions(progress=False, scheme="exact",
                                                         executor=DaskExecutor(client, label, batch_size=batch_size)))
