"""Content checksums of RDM DataArrays, so a stored entry can be verified on read (issue 17).

:func:`content_sha256` hashes what decides the numbers and their identity: dims, shape, the float64
values in C order, every coordinate (name, dims, values as text) and the attrs (JSON with sorted keys,
values normalised the way NetCDF gives them back). It is stable under a NetCDF round trip, so the
model-RDM cache (:mod:`rsa_bridge.app.cache`) stores it with each entry and recomputes it on every read.
Peers: Brain-Score and rsatoolbox keep no checksums of stored results; ``pooch`` checks downloaded files by
their bytes' SHA-256 (here the content is hashed, not the file, so re-encoding does not matter).
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import xarray as xr


def _normal(value: Any) -> Any:
    """A value as NetCDF gives it back (bools as ints, arrays as lists), for :func:`content_sha256`."""
    array = np.asarray(value)
    if array.dtype == bool:
        array = array.astype(np.int64)
    if array.dtype.kind in "SUO":
        array = array.astype(str)
    return array.tolist()


def content_sha256(rdms: xr.DataArray) -> str:
    """SHA-256 of an RDM DataArray's content: dims, shape, float64 values (C order), every coordinate
    (name, dims, values as text) and attrs (JSON, sorted keys). Stable under a NetCDF round trip.

    Example: ``content_sha256(rdms) == content_sha256(rdms.copy())``; any changed value, id or attr changes it.
    """
    h = hashlib.sha256()
    h.update(json.dumps({"dims": list(map(str, rdms.dims)), "shape": list(rdms.shape)}).encode())
    h.update(np.ascontiguousarray(rdms.values, dtype=np.float64).tobytes())
    for name in sorted(map(str, rdms.coords)):
        coord = rdms.coords[name]
        h.update(json.dumps([name, list(map(str, coord.dims)), np.asarray(coord.values).astype(str).tolist()]).encode())
    attrs = {str(k): _normal(v) for k, v in rdms.attrs.items()}
    h.update(json.dumps(attrs, sort_keys=True, default=str).encode())
    return h.hexdigest()
