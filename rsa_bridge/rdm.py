"""Representational dissimilarity matrices (RDMs) from activations or firing rates.

Every metric is one (chunked) matrix product over units, never a loop over stimulus pairs: the same
Gram engine (:mod:`rsa_bridge.gram`, float64 here) that streams network layers in :mod:`extractors.streaming`.
An RDM is an ``xarray.DataArray`` with dims ``(stimulus_row, stimulus_col)``; both dimensions carry
the stimulus ids as their index coordinate, so RDMs are aligned by identity, not by position.

Metric names say exactly what they compute (one record each in :data:`rsa_bridge.definitions.METRICS`) (``x_i`` is stimulus i's response vector over ``p`` units):

============== ===================================================== =====================================
name           dissimilarity d(i, j)                                 peers
============== ===================================================== =====================================
correlation    1 - Pearson r(x_i, x_j) across units                  rsatoolbox ``correlation``, scipy
euclidean      ||x_i - x_j||                                         scipy ``euclidean``
sqeuclidean    ||x_i - x_j||^2                                       scipy ``sqeuclidean``; rsatoolbox
                                                                     ``euclidean`` is this divided by p
cosine         1 - x_i.x_j / (||x_i|| ||x_j||)                       scipy ``cosine``
============== ===================================================== =====================================
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import torch
import xarray as xr

from rsa_bridge.duplicates import duplicates
from rsa_bridge.errors import RSABridgeError, preview
from rsa_bridge.definitions import METRICS
from rsa_bridge.gram import gram_rdm
from rsa_bridge.provenance import clean_attrs, package_version
from rsa_bridge.value_checks import real_numbers

ROW = "stimulus_row"
COL = "stimulus_col"
#: floats of the (n_stimuli x chunk) float64 block converted at a time (~128 MiB)
DEFAULT_CHUNK_ELEMENTS = 16 * 1024 * 1024


def stimulus_dim(activations: xr.DataArray) -> str:
    """The stimulus dimension of a DataArray: the one its 1-D ``stimulus_id`` coordinate lies along
    (or the dim named ``stimulus_id``); without that coordinate, the first dim."""
    if "stimulus_id" in activations.dims:
        return "stimulus_id"
    if "stimulus_id" in activations.coords:
        dims = activations["stimulus_id"].dims
        if len(dims) != 1:
            raise RSABridgeError(f"the stimulus_id coordinate must lie along one dimension; it has dims {dims}")
        return str(dims[0])
    return str(activations.dims[0])


def _as_matrix(activations, stimulus_ids: Sequence[str] | None) -> tuple[np.ndarray, list[str], dict]:
    """(n_stimuli, n_units) array, ids and attrs from a DataArray or an array."""
    attrs: dict = {}
    if isinstance(activations, xr.DataArray):
        attrs = dict(activations.attrs)
        stim_dim = stimulus_dim(activations)
        activations = activations.transpose(stim_dim, ...)
        if stimulus_ids is None:
            if "stimulus_id" in activations.coords:
                stimulus_ids = [str(s) for s in activations["stimulus_id"].values]
            elif stim_dim in activations.coords:
                stimulus_ids = [str(s) for s in activations[stim_dim].values]
        data = np.asarray(activations.values)
    else:
        data = np.asarray(activations)
    if data.dtype.kind != "b":  # binary activations stay allowed; complex or text: one line, never a dropped part
        data = real_numbers(data, "activations")
    if data.ndim < 2:
        raise RSABridgeError(f"activations must be (n_stimuli, n_units); got shape {data.shape}")
    if data.shape[0] < 3:  # before the reshape, which cannot infer units for 0 stimuli
        raise RSABridgeError(f"an RDM needs at least 3 stimuli; got {data.shape[0]}")
    data = data.reshape(data.shape[0], -1)
    n = data.shape[0]
    if stimulus_ids is None:
        stimulus_ids = [str(i) for i in range(n)]
    stimulus_ids = [str(s) for s in stimulus_ids]
    if len(stimulus_ids) != n:
        raise RSABridgeError(f"{len(stimulus_ids)} stimulus ids for {n} stimuli")
    if len(set(stimulus_ids)) != n:
        dup = duplicates(stimulus_ids)
        raise RSABridgeError(f"duplicate stimulus ids: {preview(dup)}")
    if n < 3:
        raise RSABridgeError(f"an RDM needs at least 3 stimuli; got {n}")
    if data.shape[1] == 0:
        raise RSABridgeError("activations have no units")
    return data, stimulus_ids, attrs


def rdm_dataarray(matrix: np.ndarray, stimulus_ids: Sequence[str], attrs: dict | None = None) -> xr.DataArray:
    """Wrap a square (n, n) matrix as an RDM DataArray with ids on both dimensions."""
    ids = [str(s) for s in stimulus_ids]
    return xr.DataArray(
        real_numbers(matrix, "RDM").astype(np.float64, copy=False),  # complex or text: one line, not dropped
        dims=(ROW, COL),
        coords={ROW: ids, COL: ids},
        attrs=clean_attrs(attrs or {}),
    )


def compute_rdm(
    activations: xr.DataArray | np.ndarray,
    metric: str = "correlation",
    *,
    stimulus_ids: Sequence[str] | None = None,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> xr.DataArray:
    """The RDM of a set of response patterns.

    Args:
        activations: (n_stimuli, n_units) responses — a DataArray whose stimulus dim is the one its
            ``stimulus_id`` coordinate lies along (the first dim if it has none; ids from that
            coordinate), or any array with stimuli first. Further dims are flattened into units. Any
            float dtype; arithmetic is float64.
        metric: one of :data:`METRICS` (see the module docstring for the exact definitions; case is
            ignored).
        stimulus_ids: ids for the rows (default: from the DataArray, else ``'0'..'n-1'``).
        chunk_elements: how many float64 values to convert at a time; bounds extra memory.

    Returns:
        (n_stimuli, n_stimuli) float64 DataArray, dims ``(stimulus_row, stimulus_col)``, symmetric with
        an exact zero diagonal; attrs keep the input's provenance plus ``metric``.

    Raises:
        RSABridgeError: unknown metric, NaN/inf responses, fewer than 3 stimuli, duplicate ids, or a
            stimulus whose pattern is constant (correlation) or zero (cosine).

    Examples:
        Three stimuli, three units; the same numbers as scipy's ``pdist``:

        >>> import numpy as np
        >>> from scipy.spatial.distance import pdist, squareform
        >>> x = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [1.0, 2.0, 4.0]])
        >>> rdm = compute_rdm(x, "correlation", stimulus_ids=["a", "b", "c"])
        >>> rdm.dims
        ('stimulus_row', 'stimulus_col')
        >>> print(rdm.values.round(3))
        [[0.    2.    0.018]
         [2.    0.    1.982]
         [0.018 1.982 0.   ]]
        >>> bool(np.allclose(rdm, squareform(pdist(x, "correlation"))))
        True
    """
    metric = METRICS.resolve(metric)
    data, ids, attrs = _as_matrix(activations, stimulus_ids)
    with warnings.catch_warnings():  # a read-only array (e.g. a memmap) is only read: blocks are copied first
        warnings.filterwarnings("ignore", message=".*not writable.*", category=UserWarning)
        tensor = torch.from_numpy(np.ascontiguousarray(data))
    matrix = gram_rdm(tensor, metric, ids=ids, precision="float64", chunk_bytes=chunk_elements * 8).numpy()
    attrs.update(metric=metric, n_units=int(data.shape[1]), rsa_bridge_version=package_version())
    return rdm_dataarray(matrix, ids, attrs)


def upper_triangle(rdm: xr.DataArray | np.ndarray) -> np.ndarray:
    """The strictly upper triangle of a square matrix, row by row (scipy ``squareform`` order).

    Works on (..., n, n) arrays: returns (..., n*(n-1)/2).
    """
    values = rdm.values if isinstance(rdm, xr.DataArray) else np.asarray(rdm)
    n = values.shape[-1]
    rows, cols = np.triu_indices(n, k=1)
    return values[..., rows, cols]
