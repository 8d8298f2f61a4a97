"""The model-RDM cache on the RDM-store path: one cache entry per layer, written and read one layer at a time.

The dense path caches a model's (layer, n, n) RDMs as one entry (:func:`rsa_bridge.app.cache.cached_network_rdms`).
On the store path (``--rdm-store memory|disk``, or ``auto`` when the dense RDMs do not fit) that array never
exists, so here each layer is its own entry of the same :class:`rsa_bridge.app.cache.RDMCache`: key = SHA-256 of
(the model's cache key, the layer name, the store's storage dtype), holding one (1, n, n) float64 RDM with the
layer's coordinates and the store's attrs. A hit puts the layers into a new store one at a time; a miss computes
into the store (:func:`rsa_bridge.app.pipeline.network_rdms` with ``out_store``) and then writes one entry per
layer, reading one square at a time from the store. So memory holds one (n, n) square beyond the store, as
without the cache. A store's values read back from its entries are the values it held (float64 squares of its
float64 reads; the storage dtype is in the key, so a float32 store never feeds a float64 one).

Everything else is the dense cache's: the key (model, parameters, preprocessing, layers, RDM options, every
image's SHA-256, versions), atomic writes, a bad entry removed and recomputed, ``cache info`` / ``cache clear``
listing and removing the layer entries like any other.

Example: ``rsa-bridge compare --model alexnet --area V4 --rdm-store disk --cache DIR`` twice: the second run
reads ``DIR/rdms/<key>.nc``, one file per layer (``tests/test_cache_layers.py``).
"""
from __future__ import annotations

import hashlib
from typing import Any, Callable

import xarray as xr

from rsa_bridge.app.cache import RDMCache, _say, _stat_key, job_key, resolve_cache
from rsa_bridge.rdm_store import RDMStore


def layer_key(key: str, layer: str, storage: str) -> str:
    """The cache key of one layer of the entry ``key`` in a store of ``storage``."""
    return hashlib.sha256(f"{key}\0{layer}\0{storage}".encode()).hexdigest()


def _layer_array(store: RDMStore, name: str) -> xr.DataArray:
    """One layer of ``store`` as a (1, n, n) float64 DataArray with its coords and the store's attrs."""
    coords = {"layer": [name], "stimulus_row": store.ids, "stimulus_col": store.ids,
              **{c: ("layer", [v]) for c, v in store.coords[name].items()}}
    return xr.DataArray(store.square(name)[None], dims=("layer", "stimulus_row", "stimulus_col"), coords=coords,
                        attrs=dict(store.attrs))


def _from_entries(cache: RDMCache, keys: dict[str, str], out: RDMStore) -> bool:
    """Fill ``out`` from the layer entries; False (``out`` left partly filled) at the first missing one."""
    for name, key in keys.items():
        hit = cache.get(key)
        if hit is None:
            return False
        coords = {c: hit[c].values[0].item() for c in hit.coords if hit[c].dims == ("layer",) and c != "layer"}
        out.put(name, hit.values[0], check=False, **coords)
        out.attrs.update(hit.attrs)
    return True


def cached_store_rdms(compute: Callable[..., RDMStore], model: Any, stimulus_set: Any, layers: Any, options: Any, *,
                      make_store: Callable[[], RDMStore], progress: bool | None = None, transform: Any = None,
                      cache: Any = None) -> RDMStore:
    """``compute(model, stimulus_set, layers, options, progress=, transform=, out_store=make_store())`` through
    the on-disk cache, one entry per layer (see the module docstring).

    ``cache``: as :func:`rsa_bridge.app.cache.resolve_cache`; anything but an on-disk :class:`RDMCache` (off, or the
    in-memory cache of the dask path) computes without caching. Returns the filled store (the caller closes it).
    """
    disk = resolve_cache(cache)

    def fresh(out: RDMStore | None = None) -> RDMStore:
        return compute(model, stimulus_set, layers, options, progress=progress, transform=transform,
                       out_store=make_store() if out is None else out)

    if not isinstance(disk, RDMCache):
        return fresh()
    disk.claim()  # never write into a folder of other files (before any model runs)
    keyed = job_key(model, stimulus_set, layers, options, transform, disk.memo_dir)
    if keyed is None:
        return fresh()
    key, description, before = keyed
    out = make_store()
    keys = {name: layer_key(key, name, out.storage) for name, _ in description["layers"]}
    if all(disk.path_for(k).is_file() for k in keys.values()):
        if _from_entries(disk, keys, out):
            _say(f"model RDMs of {description['model']['name']} ({len(keys)} layers, one entry each) on "
                 f"{description['stimuli']['name']} read from {disk.root} (entry {key[:12]})")
            return out
        out.close()
        out = make_store()
    rdms = fresh(out)
    try:
        unchanged = [_stat_key(p) for p in stimulus_set.paths] == before
    except OSError:
        unchanged = False
    if unchanged:  # a file edited during the run would otherwise be stored under its old content's key
        paths = dict(map(tuple, description["layers"]))
        for name in rdms.names:
            disk.put(layer_key(key, name, rdms.storage), _layer_array(rdms, name),
                     {**description, "layers": [[name, paths.get(name, "unknown")]]})
    return rdms
