"""A small, seeded fine-tuning loop for torchvision anchor detectors with a chosen training matcher.

The loop runs the detector's own pieces (``transform``, ``backbone``, ``head``, ``anchor_generator``)
and its own loss (``compute_loss``), replacing only the anchor-to-object assignment with a matcher
from :mod:`analyses.missed_detections.matchers`. Families: ``ssd`` (SSD300, SSDlite, the tiny
synthetic SSD), ``retinanet`` and ``blazeface`` (its loss: :mod:`analyses.missed_detections.blazeface_train`).
All randomness (batch sampling, torchvision's training-time
transform) runs under a private RNG seeded by ``seed``; the global torch RNG is left as it was.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn
from torchvision.ops import box_iou

from analyses.missed_detections.hooks import (
    anchor_layout,
    anchors_per_location,
    detector_spec,
)
from analyses.missed_detections.matchers import AnchorMatcher
from rsa_bridge.errors import RSABridgeError

Batch = tuple[list[Tensor], list[dict[str, Tensor]]]
#: sample(rng, batch_size) -> (images, targets), boxes in each image's original frame
Sampler = Callable[[np.random.Generator, int], Batch]


def _features(model: nn.Module, tensors: Tensor) -> list[Tensor]:
    out = model.backbone(tensors)
    return [out] if isinstance(out, Tensor) else list(out.values())


def _match_all(model: nn.Module, matcher: AnchorMatcher, anchors: list[Tensor], targets: list[dict[str, Tensor]],
               features: list[Tensor]) -> list[Tensor]:
    grid = [(int(f.shape[-2]), int(f.shape[-1])) for f in features]
    level = torch.from_numpy(anchor_layout(grid, anchors_per_location(model)).level)
    matched = []
    for anchors_i, target in zip(anchors, targets, strict=True):
        if target["boxes"].numel() == 0:
            matched.append(torch.full((anchors_i.shape[0],), -1, dtype=torch.int64))
            continue
        iou = box_iou(target["boxes"], anchors_i)
        matched.append(matcher(iou, anchors_i, target["boxes"], level.to(anchors_i.device)))
    return matched


def _ssd_losses(model: nn.Module, images: list[Tensor], targets: list[dict[str, Tensor]],
                matcher: AnchorMatcher) -> dict[str, Tensor]:
    image_list, targets = model.transform(images, targets)
    features = _features(model, image_list.tensors)
    head_outputs = model.head(features)
    anchors = model.anchor_generator(image_list, features)
    matched = [m.clamp(min=-1) for m in _match_all(model, matcher, anchors, targets, features)]  # SSD: no ignore
    return model.compute_loss(targets, head_outputs, anchors, matched)


def _retinanet_losses(model: nn.Module, images: list[Tensor], targets: list[dict[str, Tensor]],
                      matcher: AnchorMatcher) -> dict[str, Tensor]:
    image_list, targets = model.transform(images, targets)
    features = _features(model, image_list.tensors)
    head_outputs = model.head(features)
    anchors = model.anchor_generator(image_list, features)
    matched = _match_all(model, matcher, anchors, targets, features)
    return model.head.compute_loss(targets, head_outputs, anchors, matched)


def _blazeface_losses(model: nn.Module, images: list[Tensor], targets: list[dict[str, Tensor]],
                      matcher: AnchorMatcher) -> dict[str, Tensor]:
    from analyses.missed_detections.blazeface_train import blazeface_losses

    return blazeface_losses(model, images, targets, matcher)


#: detector family -> losses(model, images, targets, matcher) -> {name: scalar}
LOSSES: dict[str, Callable[..., dict[str, Tensor]]] = {"ssd": _ssd_losses, "retinanet": _retinanet_losses,
                                                       "blazeface": _blazeface_losses}


@dataclass
class TrainResult:
    """What :func:`fine_tune` did: the model (eval mode) and the loss after every step."""

    model: nn.Module
    losses: list[float] = field(default_factory=list)
    attrs: dict = field(default_factory=dict)


def fine_tune(model: nn.Module, sample: Sampler, matcher: AnchorMatcher, *, steps: int = 300,
              batch_size: int = 16, lr: float = 2e-3, seed: int = 0) -> TrainResult:
    """Train ``model`` in place for ``steps`` Adam steps on batches from ``sample`` with ``matcher``.

    Args:
        model: an SSD-family or RetinaNet torchvision detector, or BlazeFace (parameters with
            ``requires_grad`` False, e.g. a frozen backbone, are not trained).
        sample: ``sample(rng, batch_size)`` -> (images, targets) (see :data:`Sampler`).
        matcher: assigns anchors to boxes (see :mod:`~analyses.missed_detections.matchers`).
        steps, batch_size, lr: optimisation settings (Adam, cosine-decayed learning rate).
        seed: seeds batch sampling and every torch random step inside the loop.

    Returns:
        :class:`TrainResult` with the model back in eval mode and the total loss per step.
    """
    family = detector_spec(model).family
    if family not in LOSSES:
        raise RSABridgeError(f"fine-tuning is implemented for {sorted(LOSSES)} detectors, not {family!r}")
    losses_fn = LOSSES[family]
    rng = np.random.default_rng(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    history: list[float] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        optimizer = torch.optim.Adam(params, lr=lr)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, steps))
        model.train()
        try:
            for _ in range(steps):
                images, targets = sample(rng, batch_size)
                losses = losses_fn(model, images, targets, matcher)
                total = sum(losses.values())
                optimizer.zero_grad()
                total.backward()
                optimizer.step()
                schedule.step()
                history.append(float(total.detach()))
        finally:
            model.eval()
    attrs = {"matcher": getattr(matcher, "name", type(matcher).__name__),
             "matcher_interpretation": getattr(matcher, "interpretation", ""),
             "matcher_options": repr(matcher), "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed}
    return TrainResult(model, history, attrs)
