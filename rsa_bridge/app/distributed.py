"""Many models x datasets on a dask cluster: each model's RDMs over each stimulus set is one dask task.

    from rsa_bridge.app.distributed import compare_many
    result = compare_many(["alexnet", "vgg16", "resnet50"], ["V4", "IT"], scheduler="tcp://host:8786")
    result.table        # the same table as compare_models(...) gives, row for row

The expensive part (loading a network, extracting activations, computing its layer RDMs) runs on the
workers through :func:`rsa_bridge.app.cache.cached_network_rdms` (so a worker reuses and fills the on-disk
cache). The client then runs :func:`rsa_bridge.app.pipeline.compare_models` with those RDMs handed over in
memory: comparisons, noise ceilings and bootstrap/permutation statistics (one generator over all models,
so model differences stay paired) are exactly those of a serial run. The client re-loads each network
(no forward pass) to recompute the cache keys; a worker result whose key does not match is an error, never
a silent substitute.

``scheduler``: None or ``"local"`` (a :class:`dask.distributed.LocalCluster` with 2 single-threaded
in-process workers), ``"local:N"`` (N workers), a scheduler address (``tcp://host:8786``), or a
:class:`dask.distributed.Client`.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import xarray as xr

from rsa_bridge.app.cache import MemoryCache, RDMCache, cached_network_rdms, resolve_cache
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.options import RDMOptions, options_from_keywords

#: torchvision initialises untrained weights from torch's global RNG (extractors seeds it under fork_rng), so two
#: worker threads of one process building models at once would interleave their draws: build one at a time
_BUILD_LOCK = threading.Lock()


class _Recording:
    """A cache that remembers the key it was asked for, backed by an optional on-disk cache."""

    def __init__(self, inner: RDMCache | None):
        self.inner = inner
        self.key: str | None = None
        self.root = inner.root if inner is not None else "memory"
        self.memo_dir = inner.root if inner is not None else None

    def get(self, key: str) -> xr.DataArray | None:
        self.key = key
        return self.inner.get(key) if self.inner is not None else None

    def put(self, key: str, rdms: xr.DataArray, description: dict) -> None:
        self.key = key
        if self.inner is not None:
            self.inner.put(key, rdms, description)


def model_rdms_task(model_name: str, weights: Any, stimulus_set, layers: Sequence[str] | None,
                    options: RDMOptions, cache_root: str | None) -> tuple[str, xr.DataArray]:
    """One dask task: load ``model_name`` and return (cache key, RDMs (layer, n, n)) over ``stimulus_set``.

    ``options``: the run's :class:`rsa_bridge.options.RDMOptions` (pickled to the worker as it is);
    ``cache_root``: the worker's on-disk cache folder, or None for none.
    """
    from extractors import load_model
    from rsa_bridge.app.pipeline import network_rdms

    with _BUILD_LOCK:
        net = load_model(model_name, weights, device=options.device)
    recorder = _Recording(None if cache_root is None else RDMCache(cache_root))
    rdms = cached_network_rdms(network_rdms, net, stimulus_set, layers, options, progress=False, cache=recorder)
    if recorder.key is None:
        raise RSABridgeError(f"the RDMs of {model_name} cannot be keyed, so they cannot be matched on the client")
    return recorder.key, rdms


@contextmanager
def connect(scheduler: Any = None) -> Iterator[Any]:
    """A ``dask.distributed.Client`` for ``scheduler`` (see the module docstring); closes what it opened."""
    from dask.distributed import Client, LocalCluster

    if isinstance(scheduler, Client):
        yield scheduler
        return
    text = "local" if scheduler is None else str(scheduler).strip()
    if text == "local" or text.startswith("local:"):
        count = text.partition(":")[2] or "2"
        if not count.isdigit() or int(count) < 1:
            raise RSABridgeError(f"--scheduler {text!r}: write local or local:N with N >= 1 workers")
        with LocalCluster(n_workers=int(count), threads_per_worker=1, processes=False,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            yield client
        return
    try:
        client = Client(text, timeout="20s")
    except (OSError, TimeoutError, ValueError) as err:
        raise RSABridgeError(f"cannot reach the dask scheduler at {text!r} ({err}); start one with "
                             "`dask scheduler` and workers with `dask worker ADDRESS`, or use --scheduler local") from None
    try:
        yield client
    finally:
        client.close()


def compare_many(model_names: Sequence[str], areas_wanted: Sequence[str] | None = None, *, scheduler: Any = None,
                 weights: str = "default", dataset: str | None = None, stimuli: str | Path | None = None,
                 layers: Sequence[str] | None = None, method: str = "spearman", rdm: RDMOptions | None = None,
                 stats=None, progress: bool | None = None, cache: Any = None, **old_keywords):
    """:func:`rsa_bridge.app.pipeline.compare_models` with the model RDMs computed as dask tasks.

    Args:
        model_names: torchvision model names; each (model, dataset) pair is one task.
        scheduler: None/``"local"``/``"local:N"``/address/Client (see the module docstring).
        cache: the workers' on-disk cache (None = default folder, False = off, a folder); the folder must
            be reachable from the workers (on a remote cluster it is the workers' own disk).
        rdm: :class:`rsa_bridge.options.RDMOptions`, sent to every task as one object.
        Other arguments: as for :func:`rsa_bridge.app.pipeline.compare_models` (the old ``metric=``,
            ``batch_size=``, ``device=``, ``rdm_options=`` keywords too, with a DeprecationWarning).

    Returns:
        The :class:`rsa_bridge.app.pipeline.CompareResult` that the serial ``compare_models`` gives.
    """
    from rsa_bridge.datasets import load_dataset
    from rsa_bridge.app.pipeline import compare_models, select_datasets, stimuli_for

    rdm = options_from_keywords(rdm, old_keywords, "compare_many")
    names = list(model_names)
    if not names or len(set(names)) != len(names):
        raise RSABridgeError("name each model once: --model NAME (repeat it for several models)")
    plan = select_datasets(areas_wanted, dataset)
    stim_sets = [stimuli_for(load_dataset(ds_name), stimuli) for ds_name, _ in plan]  # a list: a Dataset is no key
    disk = resolve_cache(cache)
    root = str(disk.root) if isinstance(disk, RDMCache) else None
    with connect(scheduler) as client:
        futures = [client.submit(model_rdms_task, name, weights, stim, layers, rdm, root, pure=False)
                   for name in names for stim in stim_sets]
        from rsa_bridge.progress import progress_bar, progress_enabled

        if progress_enabled(progress):
            from dask.distributed import as_completed

            for _ in progress_bar(as_completed(futures), total=len(futures), desc="model RDMs (dask tasks)",
                                  unit="task", progress=True):
                pass
        results = client.gather(futures)
    memory = MemoryCache(dict(results), strict=True, label="the dask workers' results")
    if stats is not None and stats.progress is None and progress is not None:  # progress= covers the statistics
        from dataclasses import replace
        stats = replace(stats, progress=progress)
    return compare_models(names, areas_wanted, weights=weights, dataset=dataset, stimuli=stimuli, layers=layers,
                          method=method, rdm=rdm, progress=False, stats=stats, cache=memory)
