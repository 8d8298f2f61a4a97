"""``model_rdms.nc`` written from, and read into, :class:`rsa_bridge.rdm_store.RDMStore` objects one layer at a time.

The file is the one the report writes with xarray (``rsa_bridge.app.report``: one variable ``rdm`` with dims
``(layer, stimulus_row, stimulus_col)`` and coordinates ``module_path``/``n_units`` along ``layer``; with
several models the variables, dims and coordinates of model k carry the suffix ``_k`` and the attr
``key``), but the variable is created first and filled layer by layer through h5netcdf, so only one
(n, n) matrix exists in memory (xarray's ``to_netcdf`` needs the whole (L, n, n) array). Reading it back
with :func:`xarray.open_dataset`, :func:`xarray.open_dataarray` or :func:`rsa_bridge.model_rdms.read_model_rdms`
gives the same Dataset as the dense write (``tests/test_rdm_store.py``). The write is atomic
(:func:`rsa_bridge.io.atomic_path`).

Example::

    >>> import numpy as np, xarray as xr, tempfile, os
    >>> from scipy.spatial.distance import pdist, squareform
    >>> from rsa_bridge.rdm_store import RDMStore
    >>> x = np.random.default_rng(0).normal(size=(5, 3))
    >>> path = os.path.join(tempfile.mkdtemp(), "model_rdms.nc")
    >>> with RDMStore(list("abcde"), attrs={"metric": "euclidean"}) as store:
    ...     store.put("conv1", squareform(pdist(x)), module_path="features.0", n_units=3)
    ...     _ = write_model_rdms(path, store)
    >>> xr.open_dataarray(path).sizes["layer"]
    1
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.io import atomic_path
from rsa_bridge.provenance import clean_attrs

if TYPE_CHECKING:
    from rsa_bridge.rdm_store import RDMStore

DIMS = ("layer", "stimulus_row", "stimulus_col")
#: rows of the square written at a time (converted to the file's dtype panel by panel)
PANEL_ELEMENTS = 1 << 22


def _values(values: list) -> tuple[np.ndarray, Any]:
    """A coordinate's values and the h5netcdf dtype xarray would write (variable-length str for text)."""
    import h5py

    array = np.asarray(values)
    if array.dtype.kind in "UO":
        return np.asarray([str(v) for v in values], dtype=object), h5py.string_dtype("utf-8")
    return array, array.dtype


def _write_one(handle, store: RDMStore, suffix: str, key: str | None, dtype: np.dtype) -> None:
    dims = tuple(f"{d}{suffix}" for d in DIMS)
    handle.dimensions.update({dims[0]: len(store.names), dims[1]: store.n, dims[2]: store.n})
    for dim, values in zip(dims, (store.names, store.ids, store.ids)):
        data, kind = _values(list(values))
        handle.create_variable(dim, (dim,), dtype=kind)[:] = data
    extra = []
    for coord, (_, values) in store.layer_coords().items():
        data, kind = _values(values)
        handle.create_variable(f"{coord}{suffix}", (dims[0],), dtype=kind)[:] = data
        extra.append(f"{coord}{suffix}")
    var = handle.create_variable(f"rdm{suffix}", dims, dtype=dtype, fillvalue=np.asarray(np.nan, dtype=dtype))
    attrs = clean_attrs({**store.attrs, **({"key": key} if key is not None else {})})
    for name, value in attrs.items():
        var.attrs[name] = value
    if extra:
        var.attrs["coordinates"] = " ".join(extra)
    square = np.empty((store.n, store.n), dtype=np.float64)
    step = max(1, PANEL_ELEMENTS // store.n)
    for k, name in enumerate(store.names):
        store.square(name, out=square)
        for a in range(0, store.n, step):
            var[k, a:a + step, :] = square[a:a + step].astype(dtype, copy=False)


def write_model_rdms(path: str | Path, stores: RDMStore | Mapping[str, RDMStore], dtype: str | None = None) -> Path:
    """Write ``model_rdms.nc`` streaming one layer at a time.

    Args:
        path: the file (replaced atomically).
        stores: one store (variable ``rdm``, no ``key`` attr), or ``{key: store}`` as the report's
            ``result.model_rdms`` (one model: ``rdm`` with attr ``key``; several: ``rdm_0``, ``rdm_1`` ...).
        dtype: ``"float64"`` or ``"float32"`` in the file (default: each store's storage dtype).

    Returns:
        The path. Memory: one (n, n) float64 matrix plus one panel of ~4 M entries.
    """
    import h5netcdf

    items = [(None, stores)] if not isinstance(stores, Mapping) else list(stores.items())
    if dtype is not None and dtype not in ("float64", "float32"):
        raise RSABridgeError(f"model_rdms.nc is written as float64 or float32; got dtype={dtype!r}")
    with atomic_path(path) as tmp:
        with h5netcdf.File(tmp, "w") as handle:
            for k, (key, store) in enumerate(items):
                suffix = "" if len(items) == 1 else f"_{k}"
                own = store.storage if store.storage in ("float64", "float32") else "float64"  # a uint32 rank store
                _write_one(handle, store, suffix, key, np.dtype(dtype or own))
    return Path(path)


def read_model_rdm_store(path: str | Path, layers: list[str] | None = None, *, storage: str = "float64",
                         memory_budget: float | None = None, spill_dir: str | Path | None = None) -> RDMStore:
    """Precomputed model RDMs from a NetCDF file into an :class:`~rsa_bridge.rdm_store.RDMStore`, one layer
    at a time (what :func:`rsa_bridge.model_rdms.read_model_rdms` reads whole).

    Args:
        path: a ``model_rdms.nc`` (variable ``rdm`` over ``layer``, as written here or by the report), or an RDM
            dataset whose variables are one ``(stimulus_row, stimulus_col)`` RDM each (a layer per variable).
        layers: which layers, in this order (default: all, in file order); a name the file lacks is an error.
        storage, memory_budget, spill_dir: the store's (see :class:`~rsa_bridge.rdm_store.RDMStore`).

    Returns:
        The store (the caller closes it): the layers asked for (in file order by default), the file's ids, per-layer
        coordinates along ``layer`` (``module_path``, ``n_units`` ...) and the file's attrs plus
        ``source_file``. Each layer is checked as it is read (finite, symmetric, zero diagonal, as
        :func:`rsa_bridge.datasets.validate_rdm_dataset`). Memory: one (n, n) layer in the file's dtype and
        the store's budget (at 22,000 stimuli a float32 layer is 1.9 GB, where the whole file is read at
        8 x 3.9 GB by the dense reader).

    Raises:
        RSABridgeError: no such file, not NetCDF, no RDM variable, ids that differ between rows and columns or
            repeat, or a layer that is not a valid RDM (the message names it).
    """
    import xarray as xr

    from rsa_bridge.io import reading
    from rsa_bridge.rdm import COL, ROW
    from rsa_bridge.rdm_store import RDMStore

    with reading(path, "NetCDF model RDMs") as p, xr.open_dataset(p) as ds:
        if "rdm" in ds.data_vars and DIMS[0] in ds["rdm"].dims:
            var = ds["rdm"].transpose(DIMS[0], ROW, COL)
            found = {str(name): var.isel({DIMS[0]: k}) for k, name in enumerate(var[DIMS[0]].values)}
            extra = [c for c in var.coords if c not in DIMS and var[c].dims == (DIMS[0],)]
            attrs = {**ds.attrs, **var.attrs}
        else:
            found = {str(v): ds[v] for v in ds.data_vars if {ROW, COL} <= set(ds[v].dims)}
            for name, rdm in found.items():
                if rdm.ndim != 2:
                    raise RSABridgeError(f"{str(p)!r}: variable {name!r} has dims {rdm.dims}; a layer per "
                                         "variable is one (stimulus_row, stimulus_col) RDM")
            extra, attrs = [], dict(ds.attrs)
        if not found:
            raise RSABridgeError(f"{str(p)!r} holds no model RDMs (a variable 'rdm' over 'layer', or RDM variables "
                                 "with dims (stimulus_row, stimulus_col))")
        missing = [name for name in layers or () if name not in found]
        if missing:
            raise RSABridgeError(f"{str(p)!r} has no layer {missing[0]!r}; it has {', '.join(list(found)[:10])}")
        rows, cols = [str(s) for s in ds[ROW].values], [str(s) for s in ds[COL].values]
        if rows != cols:
            raise RSABridgeError(f"{str(p)!r}: stimulus_row and stimulus_col ids differ or are in another order")
        store = RDMStore(rows, storage=storage, memory_budget=memory_budget, spill_dir=spill_dir,
                         attrs={**attrs, "source_file": str(p)})
        try:
            for name in layers or list(found):
                rdm = found[name]
                coords = {c: rdm[c].item() for c in extra}
                store.put(name, np.asarray(rdm.transpose(ROW, COL).values), **coords)  # put checks the square
        except RSABridgeError as err:
            store.close()
            raise RSABridgeError(f"{str(p)!r}: {err}") from None
        except BaseException:
            store.close()
            raise
    return store
