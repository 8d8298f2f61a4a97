"""Model x model maps: a measure between every layer of one network and every layer of another (or itself).

Input: two stacks ``(layer, stimulus_row, stimulus_col)`` over the same stimuli (matched by ``stimulus_id``,
never by position): the layer Grams (:mod:`extractors.streaming` ``kernels_out``) for a measure whose record
has ``map_input == "gram"`` (cka, procrustes, shape, cca, svcca, pwcca, mutual_knn, cknna), the layer RDMs
for ``"rdm"`` (rsa, compared by ``method``: :func:`rsa_bridge.compare.compare_vectors`, one call for the whole
map). Output: an (L_a, L_b) DataArray ``similarity`` with dims ``layer_a`` x ``layer_b``, the measure in its
attrs. The machinery asks the record (:class:`rsa_bridge.measures.Measure`) what to do, never its name: each
layer's Gram is prepared once (``map_prepare``: e.g. one eigendecomposition, or the unit-norm centred Gram
of CKA), then every pair is scored (``map_score``): L_a + L_b preparations and L_a x L_b scores.

A layer that is constant over the stimuli gives a NaN row/column with a warning (as ``compare`` does); a
model whose layers are *all* constant, NaN in the input, different stimuli or fewer than 3 are refused.

Example::

    >>> rng = np.random.default_rng(0)
    >>> feats = [rng.normal(size=(10, p)) for p in (3, 5)]
    >>> grams = gram_stack([f @ f.T for f in feats], ["l1", "l2"], [f"s{i}" for i in range(10)])
    >>> m = model_map(grams, grams, "cka")
    >>> m.dims, [round(float(m[i, i]), 12) for i in range(2)]
    (('layer_a', 'layer_b'), [1.0, 1.0])
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import xarray as xr

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.rdm import COL, ROW

#: the map's dimensions: the first network's layers down, the second's across
MAP_DIMS = ("layer_a", "layer_b")


def unit_centred(k) -> np.ndarray:
    """The centred Gram ``H K H`` flattened and scaled to unit Frobenius norm (CKA's prepared form)."""
    from rsa_bridge.measures.cka import center_gram
    from rsa_bridge.measures.spectral import ConstantRepresentation

    kc = center_gram(k).ravel()
    norm = float(np.linalg.norm(kc))
    if not norm > 0:
        raise ConstantRepresentation("a representation is constant over the stimuli; its CKA is undefined")
    return kc / norm


def unit_dot(a: np.ndarray, b: np.ndarray) -> float:
    """Linear CKA of two :func:`unit_centred` Grams: their dot product."""
    return float(a @ b)


def gram_stack(grams: Sequence[np.ndarray], layers: Sequence[str], stimulus_ids: Sequence[str]) -> xr.DataArray:
    """(layer, stimulus_row, stimulus_col) float64 DataArray of L (n, n) matrices (Grams or RDMs) over ids."""
    ids = [str(s) for s in stimulus_ids]
    return xr.DataArray(np.stack([np.asarray(g, dtype=np.float64) for g in grams]),
                        dims=("layer", ROW, COL),
                        coords={"layer": [str(l) for l in layers], ROW: ids, COL: ids})


def map_record(measure: str):
    """The measure's record, or RSABridgeError when it has no layer x layer form (its ``map_refusal``)."""
    from rsa_bridge.measures import MEASURES, check_measures

    record = MEASURES[check_measures([measure])[0]]
    if record.map_input == "gram" and record.map_score is None:
        raise RSABridgeError(f"--measure {measure} cannot make a model x model map: {record.map_refusal or 'no map'}")
    return record


def _check_stack(stack: xr.DataArray, what: str) -> xr.DataArray:
    if not isinstance(stack, xr.DataArray) or stack.dims != ("layer", ROW, COL):
        raise RSABridgeError(f"{what} must be a (layer, {ROW}, {COL}) DataArray; got "
                             f"{getattr(stack, 'dims', type(stack).__name__)}")
    if stack.sizes[ROW] < 3:
        raise RSABridgeError(f"{what} covers {stack.sizes[ROW]} stimuli; a model x model map needs at least 3")
    if not np.isfinite(stack.values).all():
        raise RSABridgeError(f"{what} contains NaN or inf (a failed forward pass?); nothing to compare")
    return stack


def _aligned(a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
    """``b`` in ``a``'s stimulus order (by ``stimulus_id``); RSABridgeError when the id sets differ."""
    from rsa_bridge.align import check_same_ids

    ids_a, ids_b = [str(s) for s in a[ROW].values], [str(s) for s in b[ROW].values]
    if len(set(ids_a)) != len(ids_a) or len(set(ids_b)) != len(ids_b):
        raise RSABridgeError("a stimulus id appears twice in a layer stack; ids must be unique")
    check_same_ids(ids_a, ids_b, "the first network's stimuli", "the second network's stimuli")
    return b.sel({ROW: ids_a, COL: ids_a}) if ids_a != ids_b else b


def _prepared(record, stack: xr.DataArray, label: str) -> list:
    from rsa_bridge.measures.spectral import ConstantRepresentation

    out = []
    for layer, gram in zip(stack["layer"].values, stack.values):
        try:
            out.append(gram if record.map_prepare is None else record.map_prepare(gram))
        except ConstantRepresentation:
            warnings.warn(f"layer {layer} of {label} is constant over the stimuli; its {record.name} row/column "
                          "of the model map is NaN", RuntimeWarning, stacklevel=3)
            out.append(None)
    if all(p is None for p in out):
        raise RSABridgeError(f"every layer of {label} is constant over the stimuli; a model map of it is undefined")
    return out


def _rdm_map(a: xr.DataArray, b: xr.DataArray, method: str) -> np.ndarray:
    from rsa_bridge.compare import compare_vectors
    from rsa_bridge.rdm import upper_triangle

    va, vb = upper_triangle(a), upper_triangle(b)
    for label, v in (("the first network", va), ("the second network", vb)):
        flat = np.ptp(v, axis=1) == 0
        if flat.all():
            raise RSABridgeError(f"every layer RDM of {label} is constant; RSA of it is undefined")
        if flat.any():
            warnings.warn(f"{int(flat.sum())} layer RDM(s) of {label} are constant; their RSA is NaN",
                          RuntimeWarning, stacklevel=3)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(compare_vectors(va, vb, method), dtype=np.float64)


def model_map(a: xr.DataArray, b: xr.DataArray, measure: str = "cka", *, method: str = "spearman",
              options=None) -> xr.DataArray:
    """(layer_a, layer_b) ``measure`` between every layer of ``a`` and every layer of ``b`` (see the module).

    Args:
        a, b: (layer, stimulus_row, stimulus_col) float64 stacks over the same stimulus ids: layer Grams
            (``H X X^T H`` or uncentred) for a Gram measure, layer RDMs for ``rsa``. ``b`` may be ``a``.
        measure: a name in :data:`rsa_bridge.measures.MEASURES` with a layer x layer form (not ``linear``).
        method: the RDM comparison of ``rsa`` (:data:`rsa_bridge.definitions.COMPARISONS`); else unused.
        options: :class:`rsa_bridge.measures.scoring.MeasureOptions` for the measure's settings (shape alpha,
            k of k-NN, SVCCA's variance kept); None: the defaults.

    Returns:
        float64 DataArray ``similarity`` (layer_a, layer_b), coords ``layer_a``/``layer_b`` (and their
        ``module_path_a``/``_b`` when the stacks carry ``module_path``); attrs ``measure``,
        ``measure_definition``, ``measure_label``, ``method``, ``n_stimuli`` and the measure's settings.
    """
    from rsa_bridge.definitions import COMPARISONS
    from rsa_bridge.measures.scoring import MeasureOptions

    record = map_record(measure)
    options = MeasureOptions() if options is None else options
    a, b = _check_stack(a, "the first network's stack"), _check_stack(b, "the second network's stack")
    b = _aligned(a, b)
    if record.map_input == "rdm":
        method = COMPARISONS.resolve(method)
        values = _rdm_map(a, b, method)
    else:
        bound = record.bound(options)
        pa, pb = _prepared(bound, a, "the first network"), _prepared(bound, b, "the second network")
        values = np.full((len(pa), len(pb)), np.nan)
        for i, x in enumerate(pa):
            for j, y in enumerate(pb):
                if x is not None and y is not None:
                    values[i, j] = bound.map_score(x, y)
        method = record.name
    settings = record.settings(options) if record.settings else {}
    coords = {"layer_a": [str(l) for l in a["layer"].values], "layer_b": [str(l) for l in b["layer"].values]}
    for side, stack in (("a", a), ("b", b)):
        if "module_path" in stack.coords:
            coords[f"module_path_{side}"] = (f"layer_{side}", [str(p) for p in stack["module_path"].values])
    return xr.DataArray(values, dims=MAP_DIMS, coords=coords, name="similarity", attrs={
        "measure": record.name, "measure_definition": record.definition,
        "measure_label": record.axis_label.format(method=method), "method": method,
        "n_stimuli": int(a.sizes[ROW]), **{f"measure_{record.name}_{k}": v for k, v in settings.items()}})
