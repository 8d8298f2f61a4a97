"""Turn model and neural RDM inputs (arrays, DataArrays, Datasets) into aligned float64 stacks."""
from __future__ import annotations

from typing import Mapping

import numpy as np
import xarray as xr

from rsa_bridge.align import check_same_ids, reorder_rdm
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.rdm import COL, ROW


def _check_matrices(values: np.ndarray, what: str) -> np.ndarray:
    if values.ndim != 3 or values.shape[1] != values.shape[2]:
        raise RSABridgeError(f"{what} must be square RDMs (k, n, n); got shape {values.shape}")
    if values.shape[1] < 3:
        raise RSABridgeError(f"{what} cover {values.shape[1]} stimuli; RDM statistics need at least 3")
    if values.shape[0] == 0:
        raise RSABridgeError(f"{what}: no RDMs given")
    if not np.isfinite(values).all():
        bad = np.flatnonzero(~np.isfinite(values).reshape(values.shape[0], -1).all(axis=1))
        raise RSABridgeError(f"{what}: RDM(s) {bad.tolist()} contain NaN or inf")
    return values


def model_stack(model_rdms) -> tuple[list[str], np.ndarray, list[str] | None]:
    """Labels, (L, n, n) float64 matrices and stimulus ids (None for plain arrays) of model RDMs.

    Accepts a (layer, stimulus_row, stimulus_col) DataArray (any name for the first dim), a single
    (n, n) RDM, or an (L, n, n) array.
    """
    ids = None
    if isinstance(model_rdms, xr.DataArray):
        if {ROW, COL} <= set(model_rdms.dims):
            ids = [str(s) for s in model_rdms[ROW].values]
            da = model_rdms.transpose(..., ROW, COL)
            if da.ndim == 2:
                da = da.expand_dims(layer=["rdm"])
            lead = da.dims[0]
            labels = [str(v) for v in (da[lead].values if lead in da.coords else range(da.sizes[lead]))]
            values = np.asarray(da.values, dtype=np.float64).reshape((-1,) + da.shape[-2:])
        else:
            values = np.asarray(model_rdms.values, dtype=np.float64)
            labels = None
    else:
        values = np.asarray(model_rdms, dtype=np.float64)
        labels = None
    if values.ndim == 2:
        values = values[None]
    if labels is None or len(labels) != values.shape[0]:
        labels = [str(k) for k in range(values.shape[0])]
    return labels, _check_matrices(values, "the model RDMs"), ids


def neural_stacks(neural, ids: list[str] | None, n: int) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """Per area: (R, n, n) float64 RDMs in the model's stimulus order, and replicate labels.

    Accepts a Mapping area -> RDMs ((R, n, n) / (n, n) arrays or DataArrays with replicate dims before
    ``stimulus_row``, ``stimulus_col``), an RDM Dataset (all its areas), or one area's RDMs.
    DataArrays are matched to the model's ``stimulus_id``s by label; arrays must already be in order.
    """
    from rsa_bridge.datasets import area_rdms, areas

    if isinstance(neural, xr.Dataset):
        neural = {a: area_rdms(neural, a) for a in areas(neural)}
    elif not isinstance(neural, Mapping):
        neural = {"area": neural}
    out, replicates = {}, {}
    for area, rdms in neural.items():
        if isinstance(rdms, xr.DataArray) and {ROW, COL} <= set(rdms.dims):
            if ids is not None:
                check_same_ids(ids, rdms[ROW].values, "the model RDMs' stimuli", f"area {area!r}")
                rdms = reorder_rdm(rdms, ids)
            da = rdms.transpose(..., ROW, COL)
            lead = [d for d in da.dims if d not in (ROW, COL)]
            values = np.asarray(da.values, dtype=np.float64).reshape((-1,) + da.shape[-2:])
            if len(lead) == 1 and lead[0] in da.coords:
                labels = [str(v) for v in da[lead[0]].values]
            else:
                labels = [str(k) for k in range(values.shape[0])]
        else:
            values = np.asarray(rdms.values if isinstance(rdms, xr.DataArray) else rdms, dtype=np.float64)
            if values.ndim == 2:
                values = values[None]
            labels = [str(k) for k in range(values.shape[0])]
        values = _check_matrices(values, f"the RDMs of area {area!r}")
        if values.shape[1] != n:
            raise RSABridgeError(f"area {area!r} RDMs cover {values.shape[1]} stimuli, the model RDMs {n}")
        out[str(area)] = values
        replicates[str(area)] = labels
    if not out:
        raise RSABridgeError("no neural RDMs given")
    return out, replicates


def check_method(method: str) -> str:
    """The canonical name of a comparison method (aliases accepted); an unknown one is a user error."""
    from rsa_bridge.definitions import COMPARISONS

    return COMPARISONS.resolve(method)


def comparison_inputs(model_rdms, neural_rdms, method: str):
    """Everything a resampling statistic starts from, checked.

    Returns:
        labels (L,), model matrices (L, n, n), per area its matrices (R, n, n), model upper-triangle
        vectors (L, m) and per area its vectors (R, m), m = n(n-1)/2 in scipy ``squareform`` order.
    """
    check_method(method)
    labels, model_mat, ids = model_stack(model_rdms)
    neural_mat, _ = neural_stacks(neural_rdms, ids, model_mat.shape[1])
    rows, cols = np.triu_indices(model_mat.shape[1], k=1)
    return (labels, model_mat, neural_mat, model_mat[:, rows, cols],
            {a: v[:, rows, cols] for a, v in neural_mat.items()})
