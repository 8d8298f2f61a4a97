"""Alignment of RDMs by ``stimulus_id``: reorder by identity, or fail with the ids that differ."""
from __future__ import annotations

from typing import Sequence

import xarray as xr

from rsa_bridge.errors import RSABridgeError, preview
from rsa_bridge.rdm import COL, ROW


def check_same_ids(reference: Sequence[str], other: Sequence[str], what_ref: str, what_other: str) -> None:
    """Raise when two id collections are not the same set, listing a few ids on each side."""
    ref, oth = set(map(str, reference)), set(map(str, other))
    if ref == oth:
        return
    only_ref = sorted(ref - oth)
    only_other = sorted(oth - ref)
    parts = []
    if only_ref:
        parts.append(f"{len(only_ref)} only in {what_ref} ({preview(only_ref, 3)})")
    if only_other:
        parts.append(f"{len(only_other)} only in {what_other} ({preview(only_other, 3)})")
    raise RSABridgeError(
        f"stimulus ids of {what_ref} and {what_other} differ: " + "; ".join(parts)
        + ". Stimuli are matched by stimulus_id; use the stimulus set that belongs to the dataset"
    )


def reorder_rdm(rdm: xr.DataArray, stimulus_ids: Sequence[str]) -> xr.DataArray:
    """The RDM (any leading dims) with rows and columns in the order of ``stimulus_ids`` (by label).

    Ids are compared as strings, so a file whose ``stimulus_id`` coordinate is integer (``0, 1, ...``) matches
    the ids ``'0', '1', ...``; the result carries the string ids.
    """
    ids = [str(s) for s in stimulus_ids]
    position = {str(s): k for k, s in enumerate(rdm[ROW].values)}
    rows = [position[s] for s in ids]  # the caller checked the id sets (check_same_ids)
    return rdm.isel({ROW: rows, COL: rows}).assign_coords({ROW: ids, COL: ids})


def align_rdms(
    model_rdm: xr.DataArray, neural_rdm: xr.DataArray, what_model: str = "the model RDM",
    what_neural: str = "the neural RDM",
) -> tuple[xr.DataArray, xr.DataArray]:
    """Both RDMs over the same stimuli in the model's order; differing id sets raise.

    Examples:
        >>> import numpy as np
        >>> from rsa_bridge.rdm import rdm_dataarray
        >>> d = np.array([[0, 1, 2], [1, 0, 3], [2, 3, 0]], dtype=float)
        >>> model = rdm_dataarray(d, ["a", "b", "c"])
        >>> brain = model.sel(stimulus_row=["c", "a", "b"], stimulus_col=["c", "a", "b"])
        >>> model, brain = align_rdms(model, brain)
        >>> [str(s) for s in brain["stimulus_row"].values]
        ['a', 'b', 'c']
        >>> align_rdms(model, rdm_dataarray(d, ["a", "b", "x"]))
        Traceback (most recent call last):
        ...
        rsa_bridge.errors.RSABridgeError: stimulus ids of the model RDM and the neural RDM differ: 1 only in the model RDM ('c'); 1 only in the neural RDM ('x')...
    """
    ids = [str(s) for s in model_rdm[ROW].values]
    check_same_ids(ids, neural_rdm[ROW].values, what_model, what_neural)
    return model_rdm, reorder_rdm(neural_rdm, ids)
