"""RDMs that need not fit in memory: named upper triangles over one stimulus set, in memory or on disk.

An :class:`RDMStore` holds a set of named RDMs (model layers, or the brain RDMs of one area) over the
same ``ids`` (n stimuli) as **condensed upper triangles**: the m = n(n-1)/2 dissimilarities d(i, j),
i < j, in the order of ``np.triu_indices(n, 1)`` (scipy ``squareform`` order). Row i starts at
``i n - i (i + 1) / 2``. A dense (n, n) float64 RDM is 8 n^2 bytes (3.9 GB at 22,000 stimuli); its upper
triangle is 4 n^2 bytes in float64 and 2 n^2 in float32.

**Budget** (like the extraction's, :mod:`extractors.streaming`): vectors stay in memory while their total
is within ``memory_budget`` bytes (None: no limit; 0: every vector on disk); the others are written to
one HDF5 file (h5py) in a temporary folder under ``spill_dir``, deleted on :meth:`RDMStore.close`, on
leaving a ``with`` block (also on errors) and when the store is garbage-collected. On disk each vector
is a 1-D chunked dataset of ~4 MiB chunks, read in whole chunks, front to back: every operation here
(:meth:`~RDMStore.chunks`, :meth:`~RDMStore.take`, ranking, chunked comparison) is one sequential pass,
so the chunk size only sets the unit of I/O (``benchmarks/bench_rdm_store.py`` measures the passes).

**float32 storage** (``storage="float32"``) halves memory and disk. Each entry is rounded to the nearest
float32: the absolute error of an entry d is at most ``|d| * 2**-24`` <= ``max|d| * 2**-24`` (6e-8
relative; tested; for |d| >= 1.2e-38, float32's smallest normal number; values beyond 3.4e38 are refused).
Rounding can make distinct distances equal, which changes average ranks and so
Spearman by a measured amount (docs/guide/scale.md, "RDMs that need not fit in memory").
Reads always return float64.

**Ranks** are stored as uint32 of 2 x rank where that is exact (:mod:`rsa_bridge.rank_storage`; ``storage=HALF_RANKS``).

Peers: rsatoolbox keeps RDMs as condensed vectors in memory (``RDMs.dissimilarities``); scipy's
``squareform`` defines the order. Neither spills to disk.

Example::

    >>> import numpy as np
    >>> from scipy.spatial.distance import pdist, squareform
    >>> x = np.random.default_rng(0).normal(size=(6, 4))
    >>> with RDMStore([f"s{i}" for i in range(6)], memory_budget=0) as store:  # 0: on disk
    ...     store.put("layer1", squareform(pdist(x)), module_path="features.0")
    ...     bool(np.allclose(store.vector("layer1"), pdist(x))), store.spilled
    (True, ['layer1'])
"""
from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rsa_bridge.condensed import check_square, condense_rows, fill_square, n_pairs, panel_rows, row_offset
from rsa_bridge.duplicates import duplicates
from rsa_bridge.errors import RSABridgeError, preview
from rsa_bridge.precisions import PRECISIONS
from rsa_bridge.rank_storage import HALF_RANKS, encode_ranks, rank_storage  # noqa: F401 (re-exported)
from rsa_bridge.spill import spill_folder

#: bytes of one on-disk chunk (and of one read) of a condensed vector
CHUNK_BYTES = 4 * 1024 * 1024
#: storage dtypes: name -> numpy dtype, a view of :data:`rsa_bridge.precisions.PRECISIONS`
STORAGE = {name: p.numpy_dtype() for name, p in PRECISIONS.items()}
#: storage name -> (numpy dtype, factor applied when writing; reads divide by it)
ENCODINGS = {**{name: (dtype, 1.0) for name, dtype in STORAGE.items()}, HALF_RANKS: (np.dtype(np.uint32), 2.0)}


def _as_numpy(rdm: Any) -> np.ndarray:
    if hasattr(rdm, "detach"):  # a torch tensor (CPU or not), without importing torch here
        rdm = rdm.detach().cpu().numpy()
    values = np.asarray(rdm)
    if values.dtype.kind not in "biuf":
        raise RSABridgeError(f"an RDM holds numbers; got dtype {values.dtype}")
    return values


class RDMStore:
    """Named condensed RDMs over one stimulus set, in memory within a byte budget, else on disk.

    Args:
        ids: the n stimulus ids (rows and columns of every RDM, in this order; unique).
        storage: ``"float64"`` (exact) or ``"float32"`` (entry error <= max|d| 2^-24; see the module docstring).
        memory_budget: bytes of condensed vectors kept in memory (None: no limit; 0: all on disk).
        spill_dir: folder for the temporary spill folder (default: the system temp folder).
        attrs: provenance of the whole set (metric, model ...), kept as the DataArray's attrs.

    Attributes:
        names: RDM names in insertion order.
        ids: the stimulus ids; ``n`` their number, ``m`` = n(n-1)/2 the pairs.
        storage: ``"float64"`` or ``"float32"``.
        nbytes: bytes of the vectors in memory; ``spilled``: the names on disk.
        coords: name -> its per-RDM coordinates (``module_path``, ``n_units`` ...).
    """

    def __init__(self, ids: Sequence[str], *, storage: str = "float64", memory_budget: float | None = None,
                 spill_dir: str | Path | None = None, attrs: Mapping[str, Any] | None = None) -> None:
        self.ids = [str(s) for s in ids]
        if len(set(self.ids)) != len(self.ids):
            dup = duplicates(self.ids)
            raise RSABridgeError(f"duplicate stimulus ids: {preview(dup)}")
        if len(self.ids) < 3:
            raise RSABridgeError(f"an RDM needs at least 3 stimuli; got {len(self.ids)}")
        if storage not in ENCODINGS:
            raise RSABridgeError(f"unknown RDM storage {storage!r}; choose one of {', '.join(STORAGE)}")
        if memory_budget is not None and not memory_budget >= 0:
            raise RSABridgeError(f"memory_budget is a number of bytes >= 0 (or None = no limit); got {memory_budget!r}")
        self.n, self.m, self.storage = len(self.ids), n_pairs(len(self.ids)), storage
        self.dtype, self.scale = ENCODINGS[storage]
        if storage == HALF_RANKS and 2 * self.m >= 2 ** 32:
            raise RSABridgeError(f"2 x the ranks of {self.m} pairs exceed uint32; store ranks of {self.n} stimuli "
                                 "as float64")
        self.memory_budget = math.inf if memory_budget is None else float(memory_budget)
        self.spill_dir = spill_dir
        self.attrs: dict[str, Any] = dict(attrs or {})
        self.coords: dict[str, dict[str, Any]] = {}
        self.names: list[str] = []
        self._memory: dict[str, np.ndarray] = {}
        self._disk: dict[str, str] = {}  # name -> dataset name in the HDF5 file
        self._folder: tempfile.TemporaryDirectory | None = None
        self._file = None
        self.chunk = max(1, min(self.m, CHUNK_BYTES // self.dtype.itemsize))
        self._writes = 0  # counts every change of the vectors: a derived store older than it is stale
        self._derived: dict[str, tuple[int, RDMStore]] = {}

    # ---- lifetime -------------------------------------------------------------------------------------
    def __enter__(self) -> RDMStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Drop every vector and delete the spill file and its folder (and those of its derived stores)."""
        self.drop_derived()
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None
        self._memory.clear()
        self._disk.clear()

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self.coords

    def __repr__(self) -> str:
        return (f"RDMStore({len(self.names)} RDMs over {self.n} stimuli, {self.storage}, "
                f"{self.nbytes / 2 ** 20:.1f} MiB in memory, {len(self.spilled)} on disk)")

    @property
    def nbytes(self) -> int:
        """Bytes of the vectors held in memory."""
        return int(sum(v.nbytes for v in self._memory.values()))

    @property
    def spilled(self) -> list[str]:
        """Names of the RDMs on disk, in insertion order."""
        return [name for name in self.names if name in self._disk]

    @property
    def vector_bytes(self) -> int:
        """Bytes of one stored condensed vector."""
        return self.m * self.dtype.itemsize

    @property
    def spill_path(self) -> Path | None:
        """The HDF5 spill file (None while nothing is on disk)."""
        return None if self._folder is None else Path(self._folder.name) / "rdms.h5"

    # ---- writing --------------------------------------------------------------------------------------
    def _h5(self):
        if self._file is None:
            import h5py

            self._folder = spill_folder("rsa-bridge-rdms-", self.spill_dir)  # sweeps killed runs' folders
            self._file = h5py.File(self.spill_path, "w")
        return self._file

    def allocate(self, name: str, **coords: Any) -> None:
        """Reserve a (zero) vector for ``name`` in memory or on disk by the budget; fill it with :meth:`write`."""
        name = str(name)
        if name in self.coords:
            raise RSABridgeError(f"the store already holds an RDM named {name!r}")
        if self.nbytes + self.vector_bytes <= self.memory_budget:
            self._memory[name] = np.zeros(self.m, dtype=self.dtype)
        else:
            key = f"rdm{len(self.names):05d}"
            self._h5().create_dataset(key, shape=(self.m,), dtype=self.dtype, chunks=(self.chunk,))
            self._h5()[key].attrs["encoding"] = self.storage
            self._disk[name] = key
        self.names.append(name)
        self.coords[name] = dict(coords)

    def write(self, name: str, start: int, values: np.ndarray) -> None:
        """Write condensed entries ``[start, start + len(values))`` of ``name`` (converted to the storage dtype)."""
        if self.scale != 1.0:
            values = encode_ranks(name, values, self.scale)
        with np.errstate(over="ignore"):  # an overflow becomes inf, refused just below
            values = np.asarray(values).astype(self.dtype, copy=False)
        if self.dtype == np.float32 and not np.isfinite(values).all():
            raise RSABridgeError(f"the {name} RDM has dissimilarities beyond the float32 range (3.4e38); "
                                 "store it as float64")
        self._writes += 1
        if name in self._memory:
            self._memory[name][start:start + values.shape[0]] = values
        else:
            self._file[self._disk[name]][start:start + values.shape[0]] = values

    def put(self, name: str, rdm: Any, *, check: bool = True, **coords: Any) -> None:
        """Store one RDM.

        Args:
            name: its name (a layer); new in this store.
            rdm: (n, n) square RDM (numpy or a torch tensor) in the order of ``ids``, or its (m,) condensed
                upper triangle. A square is checked (finite, symmetric, zero diagonal, as
                :func:`check_square`) unless ``check=False``; its upper triangle is kept.
            coords: per-RDM values kept as coordinates along ``layer`` (``module_path``, ``n_units`` ...).
        """
        values = _as_numpy(rdm)
        name = str(name)
        if values.ndim == 1:
            if values.shape[0] != self.m:
                raise RSABridgeError(f"a condensed RDM over {self.n} stimuli has {self.m} entries; "
                                     f"{name!r} has {values.shape[0]}")
            if not np.isfinite(values).all():
                raise RSABridgeError(f"the {name} RDM contains NaN or inf")
            self.allocate(name, **coords)
            try:
                for start in range(0, self.m, self.chunk):
                    self.write(name, start, values[start:start + self.chunk])
            except BaseException:
                self.drop(name)
                raise
            return
        if values.shape != (self.n, self.n):
            raise RSABridgeError(f"RDM {name!r} has shape {values.shape}; this store holds ({self.n}, {self.n}) "
                                 "RDMs (or condensed vectors)")
        if check:
            check_square(values, name)
        self.allocate(name, **coords)
        try:
            start, row = 0, 0
            step = panel_rows(self.n, self.chunk)
            while row < self.n - 1:
                stop_row = min(self.n - 1, row + step)
                piece = condense_rows(values, row, stop_row)
                self.write(name, start, piece)
                start, row = start + piece.shape[0], stop_row
        except BaseException:
            self.drop(name)
            raise

    def drop(self, name: str) -> None:
        """Remove one RDM (its disk space is not returned until :meth:`close`)."""
        self._writes += 1
        self._memory.pop(name, None)
        key = self._disk.pop(name, None)
        if key is not None and self._file is not None:
            del self._file[key]
        self.coords.pop(name, None)
        if name in self.names:
            self.names.remove(name)

    def derived(self, key: str, build: Callable[[], RDMStore]) -> tuple[RDMStore, bool]:
        """A store computed from this one (e.g. its ranks), built once and kept until this store changes.

        ``build()`` makes it the first time, or again after a ``put``/``write``/``drop`` (the old one is closed);
        it lives, and is closed, with this store. Returns the store and whether it was built by this call.
        """
        held = self._derived.get(key)
        if held is not None and held[0] == self._writes:
            return held[1], False
        if held is not None:
            held[1].close()
            del self._derived[key]
        out = build()
        self._derived[key] = (self._writes, out)
        return out, True

    def derived_stores(self) -> list[RDMStore]:
        """The derived stores held now (their memory counts against budgets shared with this store)."""
        return [store for _, store in self._derived.values()]

    def drop_derived(self) -> None:
        """Close the derived stores (e.g. once a job's comparisons and statistics are done)."""
        for _, derived in self._derived.values():
            derived.close()
        self._derived.clear()

    # ---- reading --------------------------------------------------------------------------------------
    def _check_name(self, name: str) -> None:
        if name not in self.coords:
            raise RSABridgeError(f"no RDM named {name!r} in this store; it holds {preview(self.names)}")

    def read(self, name: str, start: int, stop: int) -> np.ndarray:
        """Condensed entries [start, stop) of ``name`` as float64."""
        self._check_name(name)
        if name in self._memory:
            values = self._memory[name][start:stop].astype(np.float64)
        else:
            values = self._file[self._disk[name]][start:stop].astype(np.float64, copy=False)
        return values / self.scale if self.scale != 1.0 else values

    def chunks(self, name: str, size: int | None = None) -> Iterator[tuple[int, int, np.ndarray]]:
        """``(start, stop, values)`` over the condensed vector of ``name`` front to back; values float64,
        ``size`` entries each (default: one on-disk chunk)."""
        self._check_name(name)
        size = self.chunk if size is None else max(1, int(size))
        for start in range(0, self.m, size):
            stop = min(self.m, start + size)
            yield start, stop, self.read(name, start, stop)

    def vector(self, name: str) -> np.ndarray:
        """The (m,) condensed RDM of ``name``, float64, in memory."""
        self._check_name(name)
        out = np.empty(self.m, dtype=np.float64)
        for start, stop, values in self.chunks(name):
            out[start:stop] = values
        return out

    def square(self, name: str, out: np.ndarray | None = None) -> np.ndarray:
        """The (n, n) float64 RDM of ``name`` (into ``out`` when given), symmetric with a zero diagonal."""
        self._check_name(name)
        out = np.empty((self.n, self.n), dtype=np.float64) if out is None else out
        return fill_square(out, self.chunks(name))

    def take(self, name: str, index_sets: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The (k, k) float64 sub-RDMs of ``name`` over each index set, reading the vector once for all sets.

        Args:
            index_sets: integer arrays of stimulus positions (each strictly increasing, in 0..n-1).

        Returns:
            One (k, k) square per set (symmetric, zero diagonal), rows in the set's order.

        The condensed positions of a sorted set's pairs increase in the vector's order, so each chunk read
        serves every set with one ``searchsorted``.
        """
        self._check_name(name)
        plans, triangles = [], {}
        for index in index_sets:
            idx = np.asarray(index, dtype=np.int64)
            if idx.ndim != 1 or (idx.size and (idx[0] < 0 or idx[-1] >= self.n)) or np.any(np.diff(idx) <= 0):
                raise RSABridgeError("take: each index set must be strictly increasing stimulus positions in "
                                     f"0..{self.n - 1}")
            if idx.size not in triangles:  # shared by the sets of one size
                triangles[idx.size] = np.triu_indices(idx.size, 1)
            rows, cols = triangles[idx.size]
            i, j = idx[rows], idx[cols]
            plans.append((idx.size, rows, cols, row_offset(i, self.n) + (j - i - 1)))
        gathered = [np.empty(p[3].shape[0], dtype=np.float64) for p in plans]
        if name in self._memory:
            for (_, _, _, pos), got in zip(plans, gathered):
                got[:] = self._memory[name][pos]
                if self.scale != 1.0:
                    got /= self.scale
        else:
            for start, stop, values in self.chunks(name):
                for (_, _, _, pos), got in zip(plans, gathered):
                    a, b = np.searchsorted(pos, [start, stop])
                    got[a:b] = values[pos[a:b] - start]
        out = []
        for (k, rows, cols, _), got in zip(plans, gathered):
            sq = np.zeros((k, k), dtype=np.float64)
            sq[rows, cols] = got
            sq[cols, rows] = got
            out.append(sq)
        return out

    # ---- xarray ---------------------------------------------------------------------------------------
    def layer_coords(self) -> dict[str, tuple[str, list]]:
        """Coordinates along ``layer``: each per-RDM coord that every RDM has."""
        keys = [k for k in dict.fromkeys(k for c in self.coords.values() for k in c)
                if all(k in self.coords[name] for name in self.names)]
        return {k: ("layer", [self.coords[name][k] for name in self.names]) for k in keys}

    def to_dataarray(self, max_bytes: float | None = None):
        """All RDMs dense as ``(layer, stimulus_row, stimulus_col)`` float64 (what ``stream_rdms`` returns).

        Args:
            max_bytes: refuse above this many bytes (default: the memory available now, psutil).

        Raises:
            RSABridgeError: the dense array (8 L n^2 bytes) does not fit; the message says what to use instead.
        """
        import xarray as xr

        from rsa_bridge.provenance import clean_attrs

        need = 8.0 * len(self.names) * self.n ** 2
        if max_bytes is None:
            import psutil

            max_bytes = psutil.virtual_memory().available
        if need > max_bytes:
            raise RSABridgeError(
                f"{len(self.names)} dense RDMs of {self.n} stimuli need {need / 2 ** 30:.1f} GiB but "
                f"{max_bytes / 2 ** 30:.1f} GiB is available; keep them in the RDMStore (compare with "
                "rsa_bridge.chunked_compare.compare_store, write with RDMStore.to_netcdf) or use fewer stimuli")
        data = np.empty((len(self.names), self.n, self.n), dtype=np.float64)
        for k, name in enumerate(self.names):
            self.square(name, out=data[k])
        return xr.DataArray(data, dims=("layer", "stimulus_row", "stimulus_col"),
                            coords={"layer": list(self.names), "stimulus_row": self.ids, "stimulus_col": self.ids,
                                    **self.layer_coords()},
                            attrs=clean_attrs(self.attrs))

    @classmethod
    def from_dataarray(cls, rdms, *, storage: str = "float64", memory_budget: float | None = None,
                       spill_dir: str | Path | None = None) -> RDMStore:
        """A store of the RDMs of a ``(layer, stimulus_row, stimulus_col)`` DataArray (or one (n, n) RDM, named
        ``rdm``); coordinates along ``layer`` become per-RDM coords, attrs the store's attrs."""
        from rsa_bridge.model_rdms import as_model_rdms

        rdms = as_model_rdms(rdms)
        rows = [str(s) for s in rdms["stimulus_row"].values]
        cols = [str(s) for s in rdms["stimulus_col"].values]
        if rows != cols:
            raise RSABridgeError("stimulus_row and stimulus_col ids differ or are in another order")
        extra = [c for c in rdms.coords if rdms[c].dims == ("layer",) and c != "layer"]
        store = cls(rows, storage=storage, memory_budget=memory_budget, spill_dir=spill_dir, attrs=rdms.attrs)
        try:
            for k, name in enumerate(rdms["layer"].values):
                coords = {c: rdms[c].values[k].item() for c in extra}
                store.put(str(name), rdms.values[k], **coords)
        except BaseException:
            store.close()
            raise
        return store

    def to_netcdf(self, path: str | Path, dtype: str | None = None, *, key: str | None = None) -> Path:
        """Write ``model_rdms.nc`` as the report does (:func:`rsa_bridge.rdm_netcdf.write_model_rdms`), one
        layer at a time; ``dtype`` of the file (default: the storage dtype); ``key``: the ``key`` attr."""
        from rsa_bridge.rdm_netcdf import write_model_rdms

        return write_model_rdms(path, {key: self} if key is not None else self, dtype=dtype)
