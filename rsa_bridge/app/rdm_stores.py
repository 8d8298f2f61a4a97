"""How ``compare`` holds the model RDMs: dense ``(layer, n, n)`` arrays, or an RDM store (``--rdm-store``).

A dense float64 RDM is 8 n^2 bytes (800 MB at 10,000 stimuli); ``compare`` used to hold every layer's
dense, stack all models for the statistics and copy them once more as upper-triangle vectors
(:mod:`rsa_bridge.budget`: about 5 copies at the peak, measured). With a store
(``rsa_bridge.rdm_store.RDMStore``) each layer is one condensed upper triangle (4 n^2 bytes in float64,
2 n^2 in float32), in memory up to a budget and spilled to an HDF5 file beyond it, and every later step
reads it without a dense copy: the similarities chunk by chunk (:func:`rsa_bridge.layer_scores.compare_layers`),
the statistics through a :class:`rsa_bridge.stats.stores.StoreStack` of all models
(:mod:`rsa_bridge.stats.stores`), ``model_rdms.nc`` one layer at a time.

``--rdm-store`` (:data:`rsa_bridge.options.RDM_STORES`; ``--rdm-storage``: :data:`rsa_bridge.options.RDM_STORAGES`):

- ``auto`` (default): dense while the estimate of :func:`rsa_bridge.budget.needed_bytes` fits the memory
  available (nothing changes for the sizes of the shipped datasets), else a store that keeps in memory what
  :func:`rsa_bridge.budget.plan_store` allows and spills the rest; ``--rdm-storage float32`` always uses a store;
- ``memory``: a store, every vector in memory; ``disk``: a store, every vector on disk.

The results' attrs say what ran: ``rdm_store`` (``none (dense arrays)``, ``memory``, ``disk`` or
``memory+disk`` when part spilled), ``rdm_storage`` and, for float32, ``rdm_storage_error`` (the bound on
each stored entry).

What a store does not do: ``--measure cka/linear`` (their Gram matrices are dense n x n per layer),
time-resolved areas beyond the dense size, and the comparison methods that need every pair at once
(:data:`rsa_bridge.stats.stores.STORE_METHODS`): each is one line of error before any forward pass.
"""
from __future__ import annotations

from dataclasses import dataclass

from rsa_bridge.errors import RSABridgeError

from rsa_bridge.options import RDM_STORAGES as STORAGES, RDM_STORES as STORE_MODES
# the public names (the docs list these; the rest are the pipeline's helpers)
__all__ = ["FLOAT32_ERROR", "StorePlan", "plan_rdm_store", "read_precomputed", "write_model_rdms"]

FLOAT32_ERROR = ("each stored entry rounded to float32: |error| <= |d| 2^-24 (relative 6e-8); ranks of distances "
                 "closer than that may tie")


@dataclass(frozen=True)
class StorePlan:
    """Where one compare job keeps its model RDMs.

    Attributes:
        store: False: dense arrays; True: an RDM store.
        memory_budget: bytes of RDM vectors a store keeps in memory (None: all; 0: all on disk).
        storage: ``float64`` or ``float32`` (stored values; reads are float64).
        mode: the ``--rdm-store`` asked for.
    """

    store: bool
    memory_budget: float | None
    storage: str
    mode: str

    def attrs(self, stores=()) -> dict:
        """Provenance: ``rdm_store`` (what ran, from the stores themselves), ``rdm_storage`` (+ its error)."""
        if not self.store:
            return {"rdm_store": "none (dense arrays)", "rdm_store_requested": self.mode, "rdm_storage": "float64"}
        spilled = [bool(getattr(s, "spilled", [])) for s in stores]
        in_memory = [len(getattr(s, "spilled", [])) < len(s.names) for s in stores]
        where = "+".join(w for w, hit in (("memory", any(in_memory)), ("disk", any(spilled))) if hit) or "memory"
        out = {"rdm_store": where, "rdm_store_requested": self.mode, "rdm_storage": self.storage}
        if self.storage == "float32":
            out["rdm_storage_error"] = FLOAT32_ERROR
        return out


def plan_rdm_store(mode: str, storage: str, n_stimuli: int, n_model_rdms: int, n_brain_rdms: int,
                   available: float | None = None) -> StorePlan:
    """The :class:`StorePlan` for ``--rdm-store mode --rdm-storage storage`` (see the module docstring).

    ``available``: bytes of memory (None: what psutil reports now). Example: 8 layers and one area RDM
    need about 34 GiB dense at 10,000 stimuli (5 copies), so ``auto`` on 16 GiB takes a store:

    >>> plan_rdm_store("auto", "float64", 10_000, 8, 1, available=16 * 2**30).store
    True
    >>> plan_rdm_store("auto", "float64", 1_200, 8, 1, available=16 * 2**30).store
    False
    >>> plan_rdm_store("disk", "float32", 1_200, 8, 1).memory_budget
    0.0
    """
    from rsa_bridge.budget import needed_bytes, plan_store

    mode, storage = STORE_MODES.resolve(mode), STORAGES.resolve(storage)
    if available is None:
        import psutil

        available = psutil.virtual_memory().available
    if mode == "memory":
        return StorePlan(True, None, storage, mode)
    if mode == "disk":
        return StorePlan(True, 0.0, storage, mode)
    if storage == "float64" and needed_bytes(n_stimuli, n_model_rdms, n_brain_rdms) <= available:
        return StorePlan(False, None, storage, mode)
    # what a store keeps in memory: rsa_bridge.budget.plan_store's budget of the memory left once the brain RDMs
    # are held dense (12 n^2 bytes each); it refuses in one line when even the squares cannot fit
    left = max(0.0, available - 12.0 * n_brain_rdms * n_stimuli ** 2)
    try:
        budget = plan_store(n_stimuli, n_model_rdms, n_brain_rdms, storage=storage, available=left)
    except RSABridgeError:  # neither fits: say what the dense path needs, as before stores
        from rsa_bridge.budget import check_rdm_memory

        check_rdm_memory(n_stimuli, n_model_rdms, n_brain_rdms, available)
        raise
    return StorePlan(True, budget.memory_budget, storage, mode)


def check_store_job(plan: StorePlan, method: str, measures=()) -> None:
    """One line before any forward pass when the job needs what a store does not give (module docstring)."""
    if not plan.store:
        return
    from rsa_bridge.stats.stores import check_store_method

    check_store_method(method)
    extra = [m for m in measures or () if m != "rsa"]
    if extra:
        raise RSABridgeError(f"--measure {', '.join(extra)} needs each layer's dense n x n Gram matrix, which an RDM "
                             "store does not keep: drop --measure or use --rdm-store auto with fewer stimuli")


def new_store(plan: StorePlan, ids, spill_dir=None, attrs=None):
    """An empty ``RDMStore`` over ``ids`` for ``plan``."""
    from rsa_bridge.rdm_store import RDMStore

    return RDMStore(ids, storage=plan.storage, memory_budget=plan.memory_budget, spill_dir=spill_dir, attrs=attrs)


def into_store(rdms, plan: StorePlan, spill_dir=None):
    """A dense ``(layer, n, n)`` DataArray moved into a store for ``plan`` (the caller drops the array)."""
    from rsa_bridge.rdm_store import RDMStore

    if not hasattr(rdms, "dims"):
        return rdms
    return RDMStore.from_dataarray(rdms, storage=plan.storage, memory_budget=plan.memory_budget, spill_dir=spill_dir)


def statistics_stack(pieces, ids):
    """All models' RDMs of one dataset as one :class:`rsa_bridge.stats.stores.StoreStack` (labels
    ``model:layer``; dense pieces, e.g. image-statistics controls, are put in an in-memory store in the
    order of ``ids``), or None when no piece holds a store (the caller stacks dense arrays as before)."""
    from rsa_bridge.align import reorder_rdm
    from rsa_bridge.rdm_store import RDMStore
    from rsa_bridge.stats.stores import StoreStack, is_store

    if not any(is_store(p.model_rdms) for p in pieces):
        return None
    parts = []
    for p in pieces:
        rdms = p.model_rdms
        parts.append((p.model, rdms if is_store(rdms) else RDMStore.from_dataarray(reorder_rdm(rdms, ids))))
    return StoreStack(parts)


def layer_info(rdms) -> tuple[list[str], int]:
    """(module path per layer, n stimuli) of a dense DataArray or a store."""
    from rsa_bridge.model_rdms import LAYER
    from rsa_bridge.rdm import ROW
    from rsa_bridge.stats.stores import is_store

    if is_store(rdms):
        coords = getattr(rdms, "coords", {})
        return [str(coords.get(name, {}).get("module_path", "")) for name in rdms.names], len(rdms.ids)
    paths = rdms["module_path"].values if "module_path" in rdms.coords else [""] * rdms.sizes[LAYER]
    return [str(p) for p in paths], int(rdms.sizes[ROW])


def write_model_rdms(model_rdms: dict, path) -> bool:
    """Write ``model_rdms.nc`` from stores one layer at a time (``rsa_bridge.rdm_netcdf``); False (nothing
    written) when every entry is dense (the report writes those as before)."""
    from rsa_bridge.rdm_store import RDMStore
    from rsa_bridge.stats.stores import is_store

    if not any(is_store(r) for r in model_rdms.values()):
        return False
    from rsa_bridge.rdm_netcdf import write_model_rdms as write

    write(path, {key: r if is_store(r) else RDMStore.from_dataarray(r) for key, r in model_rdms.items()})
    return True  # each model in its storage dtype: float64 as the dense write, float32 for --rdm-storage float32


def store_path_bytes(store_plan: StorePlan, n_stimuli: int, n_model_rdms: int, n_brain_rdms: int) -> float:
    """Estimated peak bytes of the store path: :func:`rsa_bridge.budget.store_needed_bytes` (the extraction's
    two n x n squares, the vectors a store keeps in memory, n^2 / 2 values each at most its budget, and one
    global ranking, :func:`rsa_bridge.budget.auto_rank_budget`) plus the brain RDMs (dense float64, their
    vectors and a copy: 12 n^2 bytes each)."""
    from rsa_bridge.budget import auto_rank_budget, store_needed_bytes

    kept = 0.0 if store_plan.memory_budget == 0.0 else n_model_rdms * STORAGES[store_plan.storage] * n_stimuli ** 2 / 2
    if store_plan.memory_budget:
        kept = min(kept, store_plan.memory_budget)
    return store_needed_bytes(n_stimuli, kept, auto_rank_budget(n_stimuli)) + 12.0 * n_brain_rdms * n_stimuli ** 2


def job_store_plans(rdm, method: str, measures, loaded, plan, n_model_rdms: int) -> list[StorePlan]:
    """One :class:`StorePlan` per dataset of a compare job (``rdm``: its RDMOptions), checked before any
    forward pass: dense plans by :func:`rsa_bridge.budget.check_rdm_memory` as before, store plans by
    :func:`check_plan`. ``loaded``/``plan``: the job's datasets and their (name, areas)."""
    import psutil

    from rsa_bridge.datasets import areas
    from rsa_bridge.rdm import ROW

    out = []
    for ds, (_, area_names) in zip(loaded, plan):
        n, n_brain = ds.sizes[ROW], sum(_n_rdms(ds[a]) for a in (area_names or areas(ds)))
        available = psutil.virtual_memory().available
        store_plan = plan_rdm_store(rdm.store, rdm.storage, n, n_model_rdms, n_brain, available=available)
        check_plan(store_plan, n, n_model_rdms, n_brain, available, rdm.spill_dir, method, measures)
        out.append(store_plan)
    return out


def check_plan(store_plan: StorePlan, n: int, n_model_rdms: int, n_brain: int, available: float, spill_dir=None,
               method: str = "spearman", measures=()) -> None:
    """One line, before any computing, when ``store_plan`` cannot run: dense RDMs beyond the memory
    (:func:`rsa_bridge.budget.check_rdm_memory`), what a store cannot do (:func:`check_store_job`), the store
    path's memory (:func:`store_path_bytes`) or its spill beyond the disk (:func:`rsa_bridge.budget.check_spill_disk`)."""
    from rsa_bridge.budget import check_rdm_memory, check_spill_disk, spill_bytes

    if not store_plan.store:
        check_rdm_memory(n, n_model_rdms, n_brain, available)
        return
    check_store_job(store_plan, method, measures)
    need = store_path_bytes(store_plan, n, n_model_rdms, n_brain)
    if need > available:
        if store_plan.mode == "auto":  # neither fits: say what the dense path needs, as before stores
            check_rdm_memory(n, n_model_rdms, n_brain, available)
        raise RSABridgeError(
            f"{n} stimuli: even with --rdm-store {store_plan.mode} the job needs about {need / 2 ** 30:.1f} GiB "
            f"(two n x n squares while each layer is finished, the brain RDMs and one ranking) but "
            f"{available / 2 ** 30:.1f} GiB is available; use --rdm-store disk, fewer layers (--layers) or "
            "fewer stimuli")
    spill = spill_bytes(n, n_model_rdms, store_plan.storage, store_plan.memory_budget or 0.0)
    if store_plan.memory_budget is not None and spill > 0:  # the spill's disk, before any forward pass
        check_spill_disk(spill_dir, spill, n)


def placed(rdms, store_plan: StorePlan, rdm):
    """The layer RDMs where ``store_plan`` keeps them (a store, or the dense array as it is), with the
    ``rdm_store``/``rdm_storage`` attrs of what ran."""
    if store_plan.store:
        rdms = into_store(rdms, store_plan, rdm.spill_dir)
    rdms.attrs.update(store_plan.attrs([rdms] if store_plan.store else ()))
    return rdms


def store_provenance(store_plans: list[StorePlan], pieces) -> dict:
    """The results' ``rdm_store`` / ``rdm_storage`` (/ ``rdm_storage_error``) attrs over all datasets."""
    from rsa_bridge.stats.stores import is_store

    stores = [p.model_rdms for p in pieces if is_store(p.model_rdms)]
    merged: dict[str, list[str]] = {}
    for store_plan in store_plans:
        for key, value in store_plan.attrs(stores).items():
            merged.setdefault(key, []).append(str(value))
    return {key: ",".join(dict.fromkeys(values)) for key, values in merged.items()}


def stimulus_ids(rdms) -> list[str]:
    """The ``stimulus_id`` s of a dense DataArray or a store, in their order."""
    from rsa_bridge.rdm import ROW
    from rsa_bridge.stats.stores import is_store

    return [str(s) for s in (rdms.ids if is_store(rdms) else rdms[ROW].values)]


def dense_stack(stacked, what: str):
    """``stacked`` as a dense (model_layer, n, n) DataArray: itself, or a store's RDMs when they fit
    (:func:`rsa_bridge.stats.stores.dense_model_rdms`; one line of error otherwise)."""
    from rsa_bridge.stats.stores import dense_model_rdms, is_store

    return dense_model_rdms(stacked, what) if is_store(stacked) else stacked


def read_precomputed(path, layers, mode: str, storage: str, datasets_plan, *, method: str = "spearman",
                     stimulus_ids=None, spill_dir=None):
    """``compare --model-rdms FILE`` held as ``--rdm-store``/``--rdm-storage`` say: ``(rdms, StorePlan)``.

    A NetCDF file is sized without reading it (layers, stimuli) and planned by :func:`plan_rdm_store` with the
    brain RDMs of ``datasets_plan`` (``[(dataset, areas)]``); a store is filled one layer at a time by
    :func:`rsa_bridge.rdm_netcdf.read_model_rdm_store` (memory: one layer in the file's dtype), dense RDMs are
    read by :func:`rsa_bridge.model_rdms.read_model_rdms` as before. A ``.mat`` file (small by nature) is read
    dense and moved into a store when the plan takes one. The RDMs' attrs gain the plan's ``rdm_store``
    provenance.
    """
    from pathlib import Path

    import xarray as xr

    from rsa_bridge.datasets import areas, dataset_header
    from rsa_bridge.io import reading
    from rsa_bridge.model_rdms import read_model_rdms
    from rsa_bridge.rdm import COL, ROW

    path = Path(path)
    n_brain, n_dataset = 0, 0
    for ds_name, area_names in datasets_plan:
        header = dataset_header(ds_name)
        n_dataset = max(n_dataset, header.sizes[ROW])
        n_brain += sum(_n_rdms(header[a]) for a in (area_names or areas(header)))
    netcdf = path.suffix.lower() != ".mat" and path.is_file()
    if netcdf:
        with reading(path, "NetCDF model RDMs") as p, xr.open_dataset(p) as ds:
            n = ds.sizes.get(ROW, n_dataset)
            n_layers = (len(layers) if layers else ds.sizes["layer"] if "rdm" in ds.data_vars and "layer" in ds["rdm"].dims
                        else sum(1 for v in ds.data_vars if {ROW, COL} <= set(ds[v].dims)))
    else:
        from rsa_bridge.budget import DEFAULT_LAYERS

        n, n_layers = n_dataset, len(layers) if layers else DEFAULT_LAYERS
    if netcdf and stimulus_ids is not None:
        raise RSABridgeError("--stimulus-ids is only for .mat files; NetCDF model RDMs carry their own ids")
    import psutil

    available = psutil.virtual_memory().available
    store_plan = plan_rdm_store(mode, storage, n, max(1, n_layers), n_brain, available=available)
    check_plan(store_plan, n, max(1, n_layers), n_brain, available, spill_dir, method)
    if store_plan.store and netcdf:
        from rsa_bridge.rdm_netcdf import read_model_rdm_store

        rdms = read_model_rdm_store(path, layers, storage=store_plan.storage, memory_budget=store_plan.memory_budget,
                                    spill_dir=spill_dir)
    else:
        rdms = read_model_rdms(path, stimulus_ids=stimulus_ids)
        if layers:
            missing = [name for name in layers if name not in rdms["layer"].values]
            if missing:
                raise RSABridgeError(f"{str(path)!r} has no layer {missing[0]!r}; "
                                     f"it has {', '.join(map(str, rdms['layer'].values[:10]))} ...")
            rdms = rdms.sel(layer=layers)
        rdms = into_store(rdms, store_plan, spill_dir) if store_plan.store else rdms
    rdms.attrs.update(store_plan.attrs([rdms] if store_plan.store else ()))
    return rdms, store_plan


def _n_rdms(var) -> int:
    """How many RDMs an area variable holds (its size over the two stimulus dims)."""
    from rsa_bridge.rdm import COL, ROW

    return int(var.size // (var.sizes[ROW] * var.sizes[COL]))
