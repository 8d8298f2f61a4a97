"""Which stages of the depth network does the mask preserve? Activations of N for I and for I ⊙ M.

Activations are recorded with :func:`extractors.extract` - the same hook layer as ``compare`` -
for the whole images and for the masked inputs (the visualizer's fill), at the layers asked for.
Per layer and per mask condition (the learned mask, and control masks of equal density from
:data:`analyses.depth_mask.metrics.CONTROLS`):

- ``rdm_similarity``: similarity (``method``, default Spearman) of the RDM of the masked inputs'
  activations with the RDM of the whole images' activations, across the stimulus set
  (:func:`rsa_bridge.compute_rdm`, :func:`rsa_bridge.compare_rdms`);
- ``pattern_correlation``: the mean over stimuli of the Pearson correlation between a stimulus's
  activation pattern for the masked and for the whole image.

Both are 1 when the mask changes nothing at that layer.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import xarray as xr

from analyses.depth_mask.metrics import CONTROLS
from analyses.depth_mask.visualizer import DepthMaskVisualizer, as_image_tensor
from extractors import extract
from rsa_bridge.compare import compare_rdms
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.provenance import clean_attrs, package_version
from rsa_bridge.rdm import compute_rdm


def masked_activations(
    visualizer: DepthMaskVisualizer,
    images: Any,
    layers: Sequence[str] | str,
    masks: torch.Tensor | None = None,
    *,
    stimulus_ids: Sequence[str] | None = None,
    batch_size: int = 32,
) -> tuple[dict[str, xr.DataArray], dict[str, xr.DataArray]]:
    """Activations of the visualizer's depth network for the whole and for the masked images.

    Args:
        visualizer: a (fitted) :class:`DepthMaskVisualizer`.
        images: (N, 3, H, W) pixels in [0, 1].
        layers: aliases or module paths of ``visualizer.depth_net`` (see ``extractors.resolve_layers``).
        masks: (N, H, W) masks; default the visualizer's G(I).
        stimulus_ids: ids (default "0".."N-1").

    Returns:
        (full, masked): layer -> float32 DataArray (presentation, neuroid) from :func:`extractors.extract`.
    """
    pixels = as_image_tensor(images)
    x = visualizer.normalize(pixels)
    m = visualizer.masks(pixels) if masks is None else torch.as_tensor(masks, dtype=torch.float32)
    with torch.no_grad():
        xm = visualizer.apply_mask(x, m)
    ids = [str(i) for i in (stimulus_ids if stimulus_ids is not None else range(len(x)))]
    kwargs = {"stimulus_ids": ids, "batch_size": batch_size, "progress": False}
    full = extract(visualizer.depth_net, x, layers, **kwargs)
    masked = extract(visualizer.depth_net, xm, layers, **kwargs)
    return full, masked


def _pattern_correlation(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    denom = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(axis=1) / denom
    return float(np.nanmean(r)) if np.isfinite(r).any() else float("nan")


def layer_preservation(
    visualizer: DepthMaskVisualizer,
    images: Any,
    layers: Sequence[str] | str,
    *,
    controls: Sequence[str] = ("shuffled", "uniform"),
    metric: str = "correlation",
    method: str = "spearman",
    seed: int = 0,
    stimulus_ids: Sequence[str] | None = None,
    masks: torch.Tensor | None = None,
) -> xr.Dataset:
    """How much of each layer's representation the learned mask (and control masks) preserve.

    Args:
        visualizer: a fitted :class:`DepthMaskVisualizer`.
        images: (N, 3, H, W) pixels in [0, 1], N >= 3 (an RDM needs 3 stimuli).
        layers: layers of the depth network (aliases or module paths).
        controls: names in :data:`~analyses.depth_mask.metrics.CONTROLS`, masks of equal density.
        metric: RDM metric (:data:`rsa_bridge.rdm.METRICS`); method: RDM comparison
            (:data:`rsa_bridge.compare.METHODS`).
        seed: seed of the control masks' torch.Generator.
        masks: (N, H, W) learned masks (e.g. from a saved sweep); default the visualizer's G(I).

    Returns:
        Dataset with ``rdm_similarity`` and ``pattern_correlation`` (layer, condition), conditions
        ``learned`` then the controls; ``rdm_full`` (layer, stimulus_row, stimulus_col) and
        ``rdm_masked`` (condition, layer, stimulus_row, stimulus_col); ``mask_mean`` (condition).
    """
    unknown = [c for c in controls if c not in CONTROLS]
    if unknown:
        raise RSABridgeError(f"unknown control mask(s) {unknown}; choose from {sorted(CONTROLS)}")
    pixels = as_image_tensor(images)
    learned = visualizer.masks(pixels) if masks is None else torch.as_tensor(np.asarray(masks), dtype=torch.float32)
    if learned.shape != (pixels.shape[0], *pixels.shape[-2:]):
        raise RSABridgeError(f"masks must be (N, H, W) = {(pixels.shape[0], *pixels.shape[-2:])}, not {tuple(learned.shape)}")
    gen = torch.Generator().manual_seed(seed)
    conditions = {"learned": learned, **{c: CONTROLS[c](learned, gen) for c in controls}}
    full: dict[str, xr.DataArray] | None = None
    rdm_full: dict[str, xr.DataArray] = {}
    sims, corrs, rdms_masked = {}, {}, {}
    for cond, masks in conditions.items():
        f, masked = masked_activations(visualizer, pixels, layers, masks, stimulus_ids=stimulus_ids)
        if full is None:
            full = f
            rdm_full = {name: compute_rdm(act, metric) for name, act in full.items()}
        for name, act in masked.items():
            rdm = compute_rdm(act, metric)
            rdms_masked[cond, name] = rdm
            sims[cond, name] = compare_rdms(rdm, rdm_full[name], method)
            corrs[cond, name] = _pattern_correlation(act.values.astype(np.float64), full[name].values.astype(np.float64))
    names = list(rdm_full)
    conds = list(conditions)
    first = rdm_full[names[0]]
    ids = list(first["stimulus_row"].values)
    rdm_dims = ("stimulus_row", "stimulus_col")
    return xr.Dataset(
        {
            "rdm_similarity": (("layer", "condition"), np.array([[sims[c, n] for c in conds] for n in names])),
            "pattern_correlation": (("layer", "condition"), np.array([[corrs[c, n] for c in conds] for n in names])),
            "rdm_full": (("layer", *rdm_dims), np.stack([rdm_full[n].values for n in names])),
            "rdm_masked": (
                ("condition", "layer", *rdm_dims),
                np.stack([np.stack([rdms_masked[c, n].values for n in names]) for c in conds]),
            ),
            "mask_mean": ("condition", np.array([float(conditions[c].mean()) for c in conds])),
        },
        coords={
            "layer": names,
            "condition": conds,
            "stimulus_row": ids,
            "stimulus_col": ids,
            "module_path": ("layer", [str(full[n].attrs.get("module_path", n)) for n in names]),
        },
        attrs=clean_attrs(
            {**visualizer.provenance(), "metric": metric, "comparison": method, "control_seed": seed,
             "rsa_bridge_version": package_version()}
        ),
    )
