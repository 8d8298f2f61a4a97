"""Units of hooked layers, streamed batch by batch and pooled over space as they arrive.

A *unit* is a channel of a layer whose output is (C, H, W) (or any (C, ...) shape): its activations
are pooled over the remaining axes (``max`` by default, or ``mean``) so a batch (B, C*H*W) becomes
(B, C) at once and only the small (n_stimuli, C) matrix is kept. ``pooling="none"`` keeps every
position as its own unit (C*H*W columns, C order). A layer with a flat (units,) output is left as it is.
Activations come from :func:`extractors.extract_batches` (the project's one hook layer).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from rsa_bridge.errors import RSABridgeError

from analyses.unit_attributes.defaults import DEFAULT_POOLING  # noqa: E402,F401


def _max(x: torch.Tensor) -> torch.Tensor:
    return x.amax(dim=2)


def _mean(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=2)


#: pooling name -> function of a (B, C, positions) tensor -> (B, C); "none" keeps every position
POOLING: dict[str, Callable[[torch.Tensor], torch.Tensor] | None] = {"max": _max, "mean": _mean, "none": None}


def pool_batch(batch: torch.Tensor, unit_shape: Sequence[int], pooling: str) -> np.ndarray:
    """(B, prod(unit_shape)) flattened activations -> (B, n_units) float64 after spatial pooling.

    Args:
        batch: a layer's output flattened in C order, as :func:`extractors.extract_batches` yields it.
        unit_shape: the per-stimulus output shape, e.g. (64, 55, 55) or (4096,).
        pooling: a key of :data:`POOLING`.
    """
    if pooling not in POOLING:
        raise RSABridgeError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLING)}")
    fn = POOLING[pooling]
    if fn is None or len(unit_shape) < 2:
        return batch.double().numpy()
    grouped = batch.reshape(batch.shape[0], int(unit_shape[0]), -1)
    return fn(grouped).double().numpy()


@dataclass
class LayerUnits:
    """One layer's pooled activations.

    Attributes:
        values: (n_stimuli, n_units) float64.
        module_path: the hooked module.
        unit_shape: the layer's per-stimulus output shape before pooling.
    """

    values: np.ndarray
    module_path: str
    unit_shape: tuple[int, ...]


@dataclass
class PooledActivations:
    """Pooled activations of several layers over the same stimuli.

    Attributes:
        layers: layer name -> :class:`LayerUnits`, in the order requested.
        stimulus_ids: the n_stimuli ids in row order.
        provenance: model, weights, weights_sha256, preprocessing, seed, stimulus_set (when known).
    """

    layers: dict[str, LayerUnits]
    stimulus_ids: list[str]
    provenance: dict[str, Any] = field(default_factory=dict)


def pooled_activations(model, images, layers: Sequence[str] | str | None = None, *, pooling: str = DEFAULT_POOLING,
                       batch_size: int = 32, device: str = "cpu", transform=None, progress: bool | None = None,
                       stimulus_ids: Sequence[str] | None = None) -> PooledActivations:
    """Stream ``model``'s layer outputs over ``images`` and pool each batch at once.

    Args:
        model: an ``nn.Module`` (e.g. from :func:`extractors.load_model`).
        images: a :class:`stimuli.StimulusSet` or a preprocessed float tensor (N, 3, H, W).
        layers: aliases or module paths (None: the model's default layers).
        pooling: ``max`` | ``mean`` over space per channel, or ``none``.
        stimulus_ids: for a set, the ids to use (in this order); for a tensor, its row ids.
        batch_size, device, transform, progress: as in :func:`extractors.extract`.

    Returns:
        :class:`PooledActivations`; the output shapes are learnt from one probe extraction of the
        first stimulus, then every batch is pooled as it arrives.
    """
    from extractors import extract, extract_batches

    if pooling not in POOLING:
        raise RSABridgeError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLING)}")
    if isinstance(images, torch.Tensor):
        first_images, first_ids = images[:1], (None if stimulus_ids is None else [str(stimulus_ids[0])])
    else:
        ids = list(stimulus_ids) if stimulus_ids is not None else list(images.stimulus_ids)
        first_images, first_ids = images, ids[:1]
    probe = extract(model, first_images, layers, batch_size=1, device=device, transform=transform, progress=False,
                    stimulus_ids=first_ids)
    names = list(probe)
    shapes = {name: tuple(int(s) for s in np.atleast_1d(probe[name].attrs["unit_shape"])) for name in names}
    paths = {name: str(probe[name].attrs.get("module_path", name)) for name in names}
    first_attrs = dict(probe[names[0]].attrs)
    del probe
    pooled: dict[str, list[np.ndarray]] = {name: [] for name in names}
    seen: list[str] = []
    stream = extract_batches(model, images, names, batch_size=batch_size, device=device, transform=transform,
                             progress=progress, stimulus_ids=stimulus_ids)
    for batch_ids, batch in stream:
        seen.extend(batch_ids)
        for name in names:
            pooled[name].append(pool_batch(batch[name], shapes[name], pooling))
    result = {name: LayerUnits(np.concatenate(pooled.pop(name), axis=0), paths[name], shapes[name])
              for name in names}
    keys = ("model", "weights", "weights_sha256", "preprocessing", "seed", "stimulus_set")
    provenance = {k: first_attrs[k] for k in keys if k in first_attrs}
    return PooledActivations(result, seen, provenance)
