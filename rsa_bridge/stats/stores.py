"""Statistics of model RDMs that live in a store (:mod:`rsa_bridge.rdm_store`), never stacked dense.

At 10,000 stimuli one dense float64 RDM is 800 MB; ``compare`` with 8 layers used to hold them
stacked, as float64 copies and as upper-triangle vectors at once. Here the model side is an
**RDM store**: anything with ``names`` (one label per RDM, e.g. ``alexnet:conv5``), ``ids`` (the
``stimulus_id`` s, in the RDMs' order), ``vector(name)`` (the (n(n-1)/2,) float64 upper triangle,
scipy ``squareform`` order) and ``take(name, index_sets)`` (the (k, k) float64 sub-RDM of each index
set, from one read of the stored RDM) — :class:`rsa_bridge.rdm_store.RDMStore`, or several of them
seen as one by :class:`StoreStack` (no copy). The brain side stays dense: the area RDMs come from
the dataset, (R, n, n) float64 per area.

What each statistic reads from the store:

- the full-N similarity (``observed``): each RDM's upper-triangle vector, one at a time
  (:func:`store_similarities`), compared with the area's vectors by :func:`rsa_bridge.compare.compare_vectors`
  — the same function as the dense path;
- the subset m-out-of-n bootstrap (:mod:`rsa_bridge.stats.subset`): every subset and its bootstrap
  index sets are drawn first, in the dense path's order from the same Generator, then **one**
  ``take`` per stored RDM gathers all G subsets' (k, k) sub-RDMs; the exact bootstrap on each subset is
  then the dense code. Same seed, same samples as the dense path (``tests/test_large_n.py``: 1e-12);
- the subset permutation test: the one subset's sub-RDMs by one ``take`` per RDM, then the dense test.

- the bootstrap over RDMs (``over='rdms'``): the full-N per-RDM similarities re-weighted by each sample's
  RDM counts (exact at any N, no dense RDM).

The bootstrap and the permutation test (:mod:`rsa_bridge.stats.bootstrap`, :mod:`rsa_bridge.stats.permutation`)
take these pieces when their model RDMs are a store; which scheme runs is the planner's choice
(:mod:`rsa_bridge.stats.plan`). This module imports neither: it is the data side of the store path.

The **exact** stimulus scheme (``scheme='exact'``, ``over='both'``, or given index sets) needs the
model RDMs dense: :func:`dense_model_rdms` builds them when they fit the memory available
(:func:`rsa_bridge.budget.needed_bytes`), otherwise it is one line of error naming the subset scheme.
Memory of the subset bootstrap: G x L x k^2 x 8 bytes for the gathered sub-RDMs (25 subsets x 8 layers x
1,000^2: 1.6 GB), independent of N, plus one RDM vector (4 n^2 bytes) at a time.

Peers: rsatoolbox holds every RDM as a dense (n_rdm, n_pairs) array; Brain-Score subsamples stimuli
for its ceilings but keeps the full activations in memory. Neither streams RDMs from disk.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import xarray as xr

from rsa_bridge.compare import compare_vectors
from rsa_bridge.definitions import COMPARISONS
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.rdm import COL, ROW

# STORE_METHODS (module __getattr__ below): the methods a store computes, those whose record has a ``chunked``
# form (sums over pairs, chunk by chunk: ``rsa_bridge.chunked_compare``); kendall_tau_a (pairs of pairs) and the
# whitened methods (each (n, n) RDM double-centred) need every pair at once and stay on the dense path
#: bytes the exact scheme may build dense from a store (None: the memory available now, via psutil)
DENSE_LIMIT_BYTES: float | None = None


def __getattr__(name: str):
    if name == "STORE_METHODS":  # live: a method registered later counts
        from rsa_bridge.methods import names_with

        return names_with("chunked")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def is_store(obj) -> bool:
    """True for an RDM store (or a :class:`StoreStack`): ``names``, ``ids``, ``vector`` and ``take``."""
    return not isinstance(obj, (np.ndarray, xr.DataArray)) and all(
        hasattr(obj, a) for a in ("names", "ids", "vector", "take"))


class StoreStack:
    """Several RDM stores seen as one, labels ``prefix:name`` (e.g. ``alexnet:conv5``); nothing is copied.

    Args:
        stores: (prefix, store) pairs in row order (a dict keeps its order). Every store must list the
            same ``stimulus_id`` s in the same order (they come from one stimulus set); otherwise a
            :class:`rsa_bridge.errors.RSABridgeError`.

    Example:
        >>> import numpy as np
        >>> from rsa_bridge.rdm_store import RDMStore
        >>> a, b = RDMStore(["s1", "s2", "s3", "s4"]), RDMStore(["s1", "s2", "s3", "s4"])
        >>> a.put("conv1", np.arange(1.0, 7.0)); b.put("fc", np.ones(6))   # condensed (6 pairs of 4 stimuli)
        >>> stack = StoreStack([("alexnet", a), ("vgg16", b)])
        >>> stack.names, stack.n
        (['alexnet:conv1', 'vgg16:fc'], 4)
        >>> stack.vector("alexnet:conv1")
        array([1., 2., 3., 4., 5., 6.])
    """

    def __init__(self, stores: Mapping[str, object] | Sequence[tuple[str, object]]):
        pairs = list(stores.items()) if isinstance(stores, Mapping) else list(stores)
        self._pairs = pairs
        if not pairs:
            raise RSABridgeError("a stack of RDM stores needs at least one store")
        self._ids = [str(s) for s in pairs[0][1].ids]
        self._where: dict[str, tuple[object, str]] = {}
        for prefix, store in pairs:
            ids = [str(s) for s in store.ids]
            if ids != self._ids:
                raise RSABridgeError(f"RDM store {prefix!r} lists other stimuli (or another order) than "
                                     f"{pairs[0][0]!r}: stores stacked for statistics must share one stimulus set")
            for name in store.names:
                label = f"{prefix}:{name}"
                if label in self._where:
                    raise RSABridgeError(f"RDM {label!r} appears twice in the stack of stores")
                self._where[label] = (store, name)
        self.storage = ",".join(dict.fromkeys(str(getattr(s, "storage", "float64")) for _, s in pairs))

    @property
    def names(self) -> list[str]:
        return list(self._where)

    @property
    def ids(self) -> list[str]:
        return list(self._ids)

    @property
    def n(self) -> int:
        return len(self._ids)

    def parts(self) -> list[tuple[object, list[str], list[str]]]:
        """(store, its labels in this stack, their names in the store) per stacked store, in row order."""
        return [(store, [f"{prefix}:{name}" for name in store.names], list(store.names))
                for prefix, store in self._pairs]

    def vector(self, label: str) -> np.ndarray:
        store, name = self._where[label]
        return store.vector(name)

    def chunks(self, label: str, size: int | None = None):
        store, name = self._where[label]
        return store.chunks(name, size)

    def take(self, label: str, index_sets) -> list[np.ndarray]:
        store, name = self._where[label]
        return store.take(name, index_sets)

    def square(self, label: str) -> np.ndarray:
        store, name = self._where[label]
        return _square(store, name)


def store_size(store) -> int:
    """n, the stimuli of a store's RDMs."""
    return int(getattr(store, "n", len(store.ids)))


def _square(store, name: str) -> np.ndarray:
    if hasattr(store, "square"):
        return np.asarray(store.square(name), dtype=np.float64)
    n = store_size(store)
    full = np.zeros((n, n))
    rows, cols = np.triu_indices(n, k=1)
    full[rows, cols] = store.vector(name)
    return full + full.T


def check_store_method(method: str) -> str:
    """The canonical ``method`` when a store can compute it (its record has a ``chunked`` form); else one line."""
    from rsa_bridge.methods import names_with

    method = COMPARISONS.resolve(method)
    if not COMPARISONS[method].chunkable:
        raise RSABridgeError(f"comparison {method!r} is not available when the model RDMs live in a store "
                             f"(--rdm-store): it has no chunked form (sums over pairs); use one of "
                             f"{', '.join(names_with('chunked'))}, or --rdm-store memory with fewer stimuli")
    return method


def dense_model_rdms(store, what: str, n_brain_rdms: int = 0) -> xr.DataArray:
    """The store's RDMs as a dense (model_layer, stimulus_row, stimulus_col) DataArray, if they fit.

    ``what``: the statistic that needs them (for the error). The estimate is that of
    :func:`rsa_bridge.budget.needed_bytes`; the limit :data:`DENSE_LIMIT_BYTES` or the memory available.
    """
    from rsa_bridge.budget import needed_bytes
    from rsa_bridge.stats import subset

    n, names = store_size(store), list(store.names)
    need = needed_bytes(n, len(names), n_brain_rdms)
    limit = DENSE_LIMIT_BYTES
    if limit is None:
        import psutil

        limit = psutil.virtual_memory().available
    if need > limit:
        raise RSABridgeError(f"{what} needs the {len(names)} model RDMs of {n} stimuli dense (about "
                             f"{need / 2 ** 30:.1f} GiB) but {limit / 2 ** 30:.1f} GiB is available: use the subset "
                             f"scheme (scheme='subset', the default above {subset.EXACT_MAX_STIMULI} stimuli with "
                             "over='stimuli') or fewer stimuli")
    values = np.stack([_square(store, name) for name in names])
    ids = list(store.ids)
    return xr.DataArray(values, dims=("model_layer", ROW, COL),
                        coords={"model_layer": names, ROW: ids, COL: ids})


def store_inputs(store, neural_rdms, method: str):
    """Labels (L,), n, per area its (R, n, n) matrices and (R, m) vectors, for model RDMs in a store.

    The neural RDMs are matched to the store's ``ids`` by ``stimulus_id`` (DataArrays), as in the dense path.
    """
    from rsa_bridge.stats._inputs import neural_stacks

    method = check_store_method(method)
    labels, ids, n = list(store.names), [str(s) for s in store.ids], store_size(store)
    if not labels:
        raise RSABridgeError("the model RDMs: no RDMs given (the store is empty)")
    if n < 3:
        raise RSABridgeError(f"the model RDMs cover {n} stimuli; RDM statistics need at least 3")
    neural_mat, _ = neural_stacks(neural_rdms, ids, n)
    rows, cols = np.triu_indices(n, k=1)
    return labels, n, neural_mat, {a: v[:, rows, cols] for a, v in neural_mat.items()}


def _chunked(store, neural_vec: Mapping[str, np.ndarray], method: str) -> dict[str, np.ndarray] | None:
    """``rsa_bridge.chunked_compare.compare_store`` on an ``RDMStore`` (exact global ranks, chunk by chunk), or
    None where it does not apply (another store class, a method it does not chunk, the module absent)."""
    try:
        from rsa_bridge.chunked_compare import compare_store
        from rsa_bridge.rdm_store import RDMStore
    except ImportError:
        return None
    if not isinstance(store, RDMStore) or not COMPARISONS[method].chunkable:
        return None
    return compare_store(store, dict(neural_vec), method)


def store_similarities(store, neural_vec: Mapping[str, np.ndarray], method: str) -> dict[str, np.ndarray]:
    """Per area the (L, R) similarities of every stored RDM with every area RDM ((R, m) vectors).

    An ``RDMStore`` is compared chunk by chunk (``rsa_bridge.chunked_compare``, equal to
    :func:`rsa_bridge.compare.compare_vectors` to 1e-12); any other store one RDM vector at a time with
    :func:`rsa_bridge.compare.compare_vectors`. A :class:`StoreStack` does this per store.
    """
    method = check_store_method(method)
    labels = list(store.names)
    out = {a: np.empty((len(labels), v.shape[0])) for a, v in neural_vec.items()}
    parts = store.parts() if isinstance(store, StoreStack) else [(store, labels, labels)]
    for part, part_labels, names in parts:
        rows = [labels.index(label) for label in part_labels]
        fast = _chunked(part, neural_vec, method)
        if fast is not None:
            for area in out:
                out[area][rows] = fast[area]
            continue
        for i, label, name in zip(rows, part_labels, names):
            vec = np.asarray(part.vector(name), dtype=np.float64)[None]
            if not np.isfinite(vec).all():
                raise RSABridgeError(f"the model RDMs: RDM {label!r} contains NaN or inf")
            for area, v in neural_vec.items():
                out[area][i] = compare_vectors(vec, v, method)[0]
            del vec
    return out


class SubsetRDMs:
    """Every stored RDM's sub-RDMs over G index sets of k stimuli, gathered with **one** ``take`` per RDM and
    kept as condensed upper triangles (G x L x k(k-1)/2 float64: 25 x 8 x 1,000 stimuli = 800 MB);
    ``subs[g]`` is the (L, k, k) float64 stack of index set g, built when asked for."""

    def __init__(self, store, index_sets: list[np.ndarray]):
        sizes = {len(i) for i in index_sets}
        if len(sizes) != 1:
            raise RSABridgeError("the index sets of one gather must have one size")
        self.k = sizes.pop()
        self._rows, self._cols = np.triu_indices(self.k, k=1)
        self._vectors = []  # per RDM, per index set: (k(k-1)/2,) float64
        for label in store.names:
            squares = store.take(label, index_sets)
            self._vectors.append([sq[self._rows, self._cols] for sq in squares])
            del squares

    def __len__(self) -> int:
        return len(self._vectors[0]) if self._vectors else 0

    def __getitem__(self, g: int) -> np.ndarray:
        out = np.zeros((len(self._vectors), self.k, self.k))
        for i, vectors in enumerate(self._vectors):
            out[i, self._rows, self._cols] = vectors[g]
            out[i, self._cols, self._rows] = vectors[g]
        return out


def gather_subsets(store, index_sets: list[np.ndarray]) -> SubsetRDMs:
    """Per index set the (L, k, k) float64 sub-RDMs of every stored RDM: one ``take`` per RDM for all sets
    (:class:`SubsetRDMs`; index it by set)."""
    return SubsetRDMs(store, index_sets)
