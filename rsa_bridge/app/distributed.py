"""Many models x datasets on a dask cluster: each model's RDMs over each stimulus set is one dask task, and the
statistics' bootstrap samples and permutations run as batches of tasks on the same cluster.

    from rsa_bridge.app.distributed import compare_many
    result = compare_many(["alexnet", "vgg16", "resnet50"], ["V4", "IT"], scheduler="tcp://host:8786")
    result.table        # the same table as compare_models(...) gives, row for row

The expensive part (loading a network, extracting activations, computing its layer RDMs) runs on the
workers: each task runs :func:`rsa_bridge.app.pipeline.compare_models` itself on its one model and one
dataset, with **the same keyword options** the client's call receives (one dict, so an option such as
``tokens`` cannot reach one and miss the other), and hands back the RDMs it computed (through
:func:`rsa_bridge.app.cache.cached_network_rdms`, so a worker reuses and fills the on-disk cache). The
client then runs ``compare_models`` with those RDMs handed over in memory: it re-loads each network (no
forward pass) to recompute the cache keys, and a worker result whose key does not match is an error,
never a silent substitute. Comparisons and noise ceilings are those of a serial run; the bootstrap
and permutation samples (one generator over all models, so model differences stay paired) are drawn
on the client and evaluated in batches on the cluster (:mod:`rsa_bridge.stats.dask_bootstrap`), equal
to the serial run bit for bit. ``bootstrap_executor`` / ``permutation_executor`` in the results' attrs
say where they ran (the cluster's kind and size, never its address).

The unit of an RDM task is the model, not a group of its layers: every layer's Gram matrix comes from
one streamed forward pass over all stimuli (:mod:`extractors.streaming`), so a task per layer group
would decode the images and run the network once per group; ``benchmarks/bench_dask.py`` measures it
(docs/guide/scale.md, "On a dask cluster").

``scheduler``: None or ``"local"`` (a :class:`dask.distributed.LocalCluster` with 2 single-threaded
in-process workers), ``"local:N"`` (N workers), a scheduler address (``tcp://host:8786``), or a
:class:`dask.distributed.Client`.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import xarray as xr

from rsa_bridge.app.cache import MemoryCache, RDMCache, resolve_cache
from rsa_bridge.app.network import NetworkOptions
from rsa_bridge.errors import RSABridgeError

#: torchvision initialises untrained weights from torch's global RNG (extractors seeds it under fork_rng), so two
#: worker threads of one process building models at once would interleave their draws: build one at a time
_BUILD_LOCK = threading.Lock()


class _Recording:
    """A cache that remembers the key it was asked for and the RDMs it saw, backed by an optional on-disk cache."""

    def __init__(self, inner: RDMCache | None):
        self.inner = inner
        self.key: str | None = None
        self.rdms: xr.DataArray | None = None
        self.root = inner.root if inner is not None else "memory"
        self.memo_dir = inner.root if inner is not None else None

    def _seen(self, rdms: xr.DataArray | None) -> xr.DataArray | None:
        if rdms is not None:  # a copy: the caller adds its attrs to the object it gets
            self.rdms = rdms.copy(deep=False)
            self.rdms.attrs = dict(rdms.attrs)
        return rdms

    def get(self, key: str) -> xr.DataArray | None:
        self.key = key
        return self._seen(self.inner.get(key) if self.inner is not None else None)

    def put(self, key: str, rdms: xr.DataArray, description: dict) -> None:
        self.key = key
        self._seen(rdms)
        if self.inner is not None:
            self.inner.put(key, rdms, description)


#: keywords of compare_models that compare_many sets itself (per task or on the client), not forwarded as given
_OWN = ("model_names", "areas_wanted", "progress", "cache")


def _normalise(options: dict) -> None:
    """Check the keywords against :func:`rsa_bridge.app.pipeline.compare_models`, in place: its named keywords
    stay; old-style network keywords (``weights=``, ``layers=``, ``models=`` ...) become one ``network``
    (:func:`rsa_bridge.app.network.network_from_keywords`; one DeprecationWarning here, not one per task); the
    removed old-style RDM keywords (``metric=``, ``batch_size=``, ``rdm_options=`` ...) and anything else are a
    TypeError, as Python itself says it (:func:`rsa_bridge.options.options_from_keywords` names the RDMOptions
    field to use)."""
    import inspect

    from rsa_bridge.app.network import network_from_keywords, split_keywords
    from rsa_bridge.app.pipeline import compare_models
    from rsa_bridge.options import options_from_keywords

    named = {k for k, p in inspect.signature(compare_models).parameters.items()
             if p.kind is inspect.Parameter.KEYWORD_ONLY} - set(_OWN)
    legacy = {k: options.pop(k) for k in list(options) if k not in named}
    net_legacy, rdm_legacy = split_keywords(legacy)
    if net_legacy:
        options["network"] = network_from_keywords(options.get("network"), net_legacy, "compare_many", stacklevel=4)
    if rdm_legacy:
        options["rdm"] = options_from_keywords(options.get("rdm"), rdm_legacy, "compare_many", stacklevel=4)


def _device(options: dict) -> str:
    """The device of the options' :class:`rsa_bridge.options.RDMOptions` (default ``cpu``)."""
    return str(getattr(options.get("rdm"), "device", None) or "cpu")


def model_rdms_task(model_name: str, area_names: Sequence[str] | None, dataset: Any, module: Any,
                    options: dict, cache_root: str | None) -> tuple[str, xr.DataArray]:
    """One dask task: (cache key, RDMs (layer, n, n)) of ``model_name`` over ``dataset``'s stimuli.

    Runs :func:`rsa_bridge.app.pipeline.compare_models` on this one model and dataset with the caller's
    keyword ``options`` (the same dict the client's call receives; no statistics here), ``module`` (an
    already built network) or the model loaded here. ``cache_root``: the worker's on-disk cache folder,
    or None for none.
    """
    from dataclasses import replace

    from extractors import load_model
    from rsa_bridge.app.pipeline import StatsOptions, compare_models

    network = options.get("network") or NetworkOptions()
    if module is None:
        with _BUILD_LOCK:
            module = load_model(model_name, network.weights, device=_device(options))
    recorder = _Recording(None if cache_root is None else RDMCache(cache_root))
    stats = replace(options.get("stats") or StatsOptions(), bootstrap=0, permutations=0, ceiling=False)
    compare_models([model_name], area_names, **{**options, "dataset": dataset, "stats": stats,
                                                "network": replace(network, models=[module], cache=recorder)},
                   progress=False)
    if recorder.key is None or recorder.rdms is None:
        raise RSABridgeError(f"the RDMs of {model_name} cannot be keyed, so they cannot be matched on the client")
    return recorder.key, recorder.rdms


def scheduler_label(scheduler: Any, client: Any) -> str:
    """The cluster in provenance words: ``local:2 (in-process workers)``, ``a remote dask scheduler (4 workers)``;
    never the address (it may carry credentials)."""
    workers = len(client.scheduler_info().get("workers", {}))
    text = "" if scheduler is None else str(scheduler).strip() if isinstance(scheduler, str) else None
    if text is not None and (text in ("", "local") or text.startswith("local:")):
        return f"local:{text.partition(':')[2] or 2} (in-process workers)"
    who = "a given dask client" if text is None else "a remote dask scheduler"
    return f"{who} ({workers} worker{'s' if workers != 1 else ''})"


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
                 progress: bool | None = None, cache: Any = None, gram_tiles: Any = False, **options):
    """:func:`rsa_bridge.app.pipeline.compare_models` with the model RDMs and the statistics' samples as dask tasks.

    Args:
        model_names: model names; each (model, dataset) pair is one task (image-statistics controls are
            computed on the client: they need no forward pass).
        scheduler: None/``"local"``/``"local:N"``/address/Client (see the module docstring).
        cache: the workers' on-disk cache (None = default folder, False = off, a folder); the folder must
            be reachable from the workers (on a remote cluster it is the workers' own disk), as must the
            stimulus images (the datasets themselves are sent to the tasks).
        options: every other keyword of :func:`rsa_bridge.app.pipeline.compare_models` (``network``,
            ``dataset``, ``rdm``, ``stats`` ...; ``network.cache`` counts when ``cache`` is None): one dict, given as it is to the workers' and
            to the client's ``compare_models``; an unknown keyword is a TypeError.
        gram_tiles: True or a :class:`rsa_bridge.app.gram_routes.GramTiles` (route, read rate): instead of one
            task per model, run the forward passes here and each layer's Gram where
            :func:`rsa_bridge.app.gram_routes.plan_gram_route` puts it (in memory here, or as dask tiles of its
            spilled activations on storage the workers share: ``rdm.spill_dir``, or as dask tiles that recompute
            the forward pass per panel); the routes go to the results' attrs ``gram_routes``.

    Returns:
        The :class:`rsa_bridge.app.pipeline.CompareResult` that the serial ``compare_models`` gives, with
        ``bootstrap_executor`` / ``permutation_executor`` in its attrs.
    """
    from dataclasses import replace

    from rsa_bridge.app.pipeline import compare_models, select_datasets
    from rsa_bridge.control_rdms import is_control_model
    from rsa_bridge.datasets import load_dataset
    from rsa_bridge.measures import check_measures
    from rsa_bridge.progress import progress_bar, progress_enabled
    from rsa_bridge.stats.dask_bootstrap import DaskExecutor
    from rsa_bridge.stats.executors import use_executor

    _normalise(options)
    names = list(model_names)
    if not names or len(set(names)) != len(names):
        raise RSABridgeError("name each model once: --model NAME (repeat it for several models)")
    if [m for m in check_measures(options.get("measures")) if m != "rsa"]:
        raise RSABridgeError("--measure cka/linear need the Gram matrices of a local forward pass; drop --scheduler "
                             "for them")
    network = options.get("network") or NetworkOptions()
    models = network.models  # kept here: each task gets only its own module
    if cache is None:
        cache = network.cache
    options["network"] = replace(network, models=None, cache=None)
    if models is not None and len(models) != len(names):
        raise RSABridgeError(f"{len(models)} built models for {len(names)} names")
    # datasets loaded here and sent whole: a worker needs the images, not the dataset's file
    plan = [(load_dataset(ds), area_names) for ds, area_names in select_datasets(areas_wanted, options.get("dataset"))]
    disk = resolve_cache(cache)
    root = str(disk.root) if isinstance(disk, RDMCache) else None
    stats = options.get("stats")
    if stats is not None and stats.progress is None and progress is not None:  # progress= covers the statistics
        options["stats"] = replace(stats, progress=progress)
    if gram_tiles:
        from rsa_bridge.app.gram_routes import GramTiles

        tiles = gram_tiles if isinstance(gram_tiles, GramTiles) else GramTiles()
        return _compare_tiled(names, areas_wanted, (scheduler, tiles), progress, replace(network, cache=cache),
                              options)
    with connect(scheduler) as client:
        futures = [client.submit(model_rdms_task, name, area_names, ds, None if models is None else models[k],
                                 options, root, pure=False)
                   for k, name in enumerate(names) if models is not None or not is_control_model(name)
                   for ds, area_names in plan]
        if progress_enabled(progress):
            from dask.distributed import as_completed

            for _ in progress_bar(as_completed(futures), total=len(futures), desc="model RDMs (dask tasks)",
                                  unit="task", progress=True):
                pass
        memory = MemoryCache(dict(client.gather(futures)), strict=True, label="the dask workers' results")
        with use_executor(DaskExecutor(client, scheduler_label(scheduler, client))):
            network = replace(options.pop("network"), models=models, cache=memory)
            return compare_models(names, areas_wanted, **options, network=network, progress=False)


def _compare_tiled(names: list, areas_wanted: Any, where: tuple, progress: bool | None, network: NetworkOptions,
                   options: dict):
    """``compare_many(gram_tiles=...)``: forward passes here, each layer's Gram routed by the planner;
    ``where``: (scheduler, :class:`rsa_bridge.app.gram_routes.GramTiles`)."""
    from rsa_bridge.app.gram_routes import GramSetting, RoutedGram, shared_storage, use_spilled_gram
    from rsa_bridge.app.pipeline import compare_models
    from rsa_bridge.options import RDMOptions
    from rsa_bridge.stats.dask_bootstrap import DaskExecutor
    from rsa_bridge.stats.executors import use_executor

    scheduler, tiles = where
    rdm = options.get("rdm") or RDMOptions()
    options.pop("network", None)
    with connect(scheduler) as client:
        if tiles.route == "recompute":  # the workers read the stimuli, not the spill: no --spill-dir needed
            shared = rdm.spill_dir is not None
        else:
            shared = shared_storage(client, rdm.spill_dir)  # refused here, before any forward pass
        workers = len(client.scheduler_info().get("workers", {}))
        setting = GramSetting(workers, shared, rdm.gram_budget_bytes, tiles.route, tiles.read_rate)
        routed = RoutedGram(client, setting, rdm.chunk_bytes)
        try:
            with use_executor(DaskExecutor(client, scheduler_label(scheduler, client))), use_spilled_gram(routed):
                result = compare_models(names, areas_wanted, **options, network=network, progress=progress)
        finally:
            routed.close()
    result.results.attrs.update(routed.attrs())
    return result
