"""Training matchers: which anchors are positive for which object (the remedies of Hosoya et al.).

Every matcher is a callable ``matcher(iou, anchors, gt_boxes, level) -> matches`` with

    iou       (M, N)  IoU of M ground-truth boxes with N anchors (resized frame)
    anchors   (N, 4)  anchor boxes x1, y1, x2, y2
    gt_boxes  (M, 4)  ground-truth boxes x1, y1, x2, y2
    level     (N,)    feature level of each anchor (int64)
    matches   (N,)    int64: index of the matched box (positive), -1 negative, -2 ignored

torchvision's own matchers use the same codes (``Matcher.BELOW_LOW_THRESHOLD = -1``,
``BETWEEN_THRESHOLDS = -2``). torchvision's SSD loss has no ignore band: it treats -2 as
background; RetinaNet's loss skips -2.

Registry :data:`MATCHERS` (name -> factory):

- ``iou_threshold`` (a): torchvision's default rule - IoU >= ``high`` positive, < ``low``
  negative, in between ignored, plus every object's best anchor (``force_best``, SSD: the one
  argmax anchor per object) or torchvision's "low-quality matches" (RetinaNet / RPN: all anchors
  that tie an object's highest IoU keep their best object).
- ``best_delta`` (b), ``topk`` (c), ``atss`` (d): the threshold rule plus extra positives, see each
  class. Each carries an ``interpretation`` string: Hosoya et al. (WACV 2020) say the cure is a
  better choice of positive anchors so that an object on an anchor boundary is not positive for
  one anchor and negative for its nearly identical neighbour; their exact rule is not reproduced
  here, so (b)-(d) are labelled as interpretations.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor


class AnchorMatcher(Protocol):
    name: str
    interpretation: str

    def __call__(self, iou: Tensor, anchors: Tensor, gt_boxes: Tensor, level: Tensor) -> Tensor: ...


@dataclass
class IoUThresholdMatcher:
    """(a) torchvision's IoU-threshold matching.

    Args:
        high: IoU >= high is positive (for the object it overlaps most).
        low: IoU < low is negative; low <= IoU < high is ignored (-2). None: low = high (SSD).
        force_best: SSD's rule - each object's single best anchor (first argmax) is positive for it.
        low_quality: RetinaNet/RPN rule - every anchor tying an object's highest IoU keeps the
            object *it* overlaps most (torchvision ``allow_low_quality_matches``).
    """

    high: float = 0.5
    low: float | None = None
    force_best: bool = True
    low_quality: bool = False
    name: str = "iou_threshold"
    interpretation: str = "torchvision default (not an interpretation)"

    def __call__(self, iou: Tensor, anchors: Tensor | None = None, gt_boxes: Tensor | None = None,
                 level: Tensor | None = None) -> Tensor:
        if iou.numel() == 0:
            raise ValueError("matching needs at least one ground-truth box and one anchor")
        low = self.high if self.low is None else self.low
        best_val, best_gt = iou.max(dim=0)
        matches = best_gt.clone()
        matches[best_val < low] = -1
        matches[(best_val >= low) & (best_val < self.high)] = -2
        if self.low_quality:
            ties = torch.where(iou == iou.max(dim=1).values[:, None])[1]
            matches[ties] = best_gt[ties]
        if self.force_best:
            best_anchor = iou.argmax(dim=1)
            matches[best_anchor] = torch.arange(iou.shape[0], device=iou.device)
        return matches


def _add_positives(matches: Tensor, iou: Tensor, extra: Tensor) -> Tensor:
    """Make anchors in ``extra`` (M, N bool) positive where ``matches`` is not already positive."""
    masked = torch.where(extra, iou, torch.full_like(iou, -1.0))
    val, gt = masked.max(dim=0)
    take = (val >= 0) & (matches < 0)
    out = matches.clone()
    out[take] = gt[take]
    return out


@dataclass
class BestDeltaMatcher:
    """(b) The threshold rule, plus: every anchor whose IoU with an object is within ``delta`` of that
    object's best anchor IoU (and above ``min_iou``) is positive for it.

    At an anchor boundary the two neighbouring anchors have almost the same IoU, so both become
    positive instead of one positive and one negative. An anchor that qualifies for several objects
    goes to the one it overlaps most.
    """

    delta: float = 0.1
    min_iou: float = 0.1
    base: IoUThresholdMatcher = field(default_factory=IoUThresholdMatcher)
    name: str = "best_delta"
    interpretation: str = ("interpretation of Hosoya et al.: positives = anchors within delta IoU of the "
                           "object's best anchor, so both anchors at a boundary are positive")

    def __call__(self, iou: Tensor, anchors: Tensor | None = None, gt_boxes: Tensor | None = None,
                 level: Tensor | None = None) -> Tensor:
        matches = self.base(iou)
        best = iou.max(dim=1).values[:, None]
        extra = (iou >= best - self.delta) & (iou > self.min_iou)
        return _add_positives(matches, iou, extra)


@dataclass
class TopKMatcher:
    """(c) The threshold rule, plus each object's ``k`` highest-IoU anchors (IoU > ``min_iou``) positive."""

    k: int = 2
    min_iou: float = 0.1
    base: IoUThresholdMatcher = field(default_factory=IoUThresholdMatcher)
    name: str = "topk"
    interpretation: str = ("interpretation of Hosoya et al.: a fixed number k of best anchors per object is "
                           "positive, so the runner-up anchor at a boundary is never a negative")

    def __call__(self, iou: Tensor, anchors: Tensor | None = None, gt_boxes: Tensor | None = None,
                 level: Tensor | None = None) -> Tensor:
        matches = self.base(iou)
        k = min(self.k, iou.shape[1])
        top = iou.topk(k, dim=1).indices
        extra = torch.zeros_like(iou, dtype=torch.bool).scatter_(1, top, True) & (iou > self.min_iou)
        return _add_positives(matches, iou, extra)


@dataclass
class ATSSMatcher:
    """(d) ATSS-style adaptive threshold (Zhang et al., CVPR 2020), on its own (no fixed threshold).

    For each object: on each level take the ``k`` anchors whose centres are nearest the object's
    centre; threshold = mean + standard deviation (n - 1 denominator) of their IoUs; positives are
    those candidates with IoU >= threshold whose centre lies inside the object (by more than
    ``eps`` px). An object left without any positive gets its best-IoU anchor (``force_best``, as in
    torchvision's SSD rule; plain ATSS has no such fallback). Everything else is negative. An anchor
    that qualifies for several objects goes to the one it overlaps most.
    """

    k: int = 9
    eps: float = 0.01
    force_best: bool = True
    name: str = "atss"
    interpretation: str = ("interpretation: an ATSS-style adaptive IoU threshold per object, which makes "
                           "near-equal neighbours at a boundary positive together")

    def __call__(self, iou: Tensor, anchors: Tensor, gt_boxes: Tensor, level: Tensor) -> Tensor:
        n_gt, n_anchor = iou.shape
        a_ctr = (anchors[:, :2] + anchors[:, 2:]) / 2
        g_ctr = (gt_boxes[:, :2] + gt_boxes[:, 2:]) / 2
        dist = torch.cdist(g_ctr.double(), a_ctr.double())  # (M, N)
        candidates = torch.zeros_like(iou, dtype=torch.bool)
        for lvl in torch.unique(level):
            idx = torch.where(level == lvl)[0]
            k = min(self.k, idx.numel())
            near = dist[:, idx].topk(k, dim=1, largest=False).indices
            candidates[torch.arange(n_gt)[:, None], idx[near]] = True
        cand_iou = torch.where(candidates, iou, torch.nan)
        mean = torch.nanmean(cand_iou, dim=1)
        count = candidates.sum(dim=1)
        var = torch.nansum((cand_iou - mean[:, None]) ** 2, dim=1) / (count - 1).clamp(min=1)
        threshold = mean + var.sqrt()
        inside = torch.stack([a_ctr[None, :, 0] - gt_boxes[:, None, 0], a_ctr[None, :, 1] - gt_boxes[:, None, 1],
                              gt_boxes[:, None, 2] - a_ctr[None, :, 0], gt_boxes[:, None, 3] - a_ctr[None, :, 1]],
                             dim=0).amin(dim=0) > self.eps
        positive = candidates & (iou >= threshold[:, None]) & inside
        if self.force_best:
            orphan = torch.where(~positive.any(dim=1))[0]
            positive[orphan, iou[orphan].argmax(dim=1)] = True
        return _add_positives(torch.full((n_anchor,), -1, dtype=torch.int64, device=iou.device), iou, positive)


#: torchvision's default matcher per detector family, as :class:`IoUThresholdMatcher` options
TORCHVISION_DEFAULTS: dict[str, dict[str, float | bool | None]] = {
    "ssd": {"high": 0.5, "low": None, "force_best": True, "low_quality": False},
    "retinanet": {"high": 0.5, "low": 0.4, "force_best": False, "low_quality": True},
    "fasterrcnn": {"high": 0.7, "low": 0.3, "force_best": False, "low_quality": True},
}


def _threshold(family: str, **options: float) -> IoUThresholdMatcher:
    return IoUThresholdMatcher(**{**TORCHVISION_DEFAULTS[family], **options})  # type: ignore[arg-type]


#: name -> factory(family, **options); the threshold part uses the family's torchvision defaults
MATCHERS: dict[str, Callable[..., AnchorMatcher]] = {
    "iou_threshold": _threshold,
    "best_delta": lambda family, **o: BestDeltaMatcher(base=_threshold(family), **o),
    "topk": lambda family, **o: TopKMatcher(base=_threshold(family), **o),
    "atss": lambda family, **o: ATSSMatcher(**o),
}


def make_matcher(name: str, family: str = "ssd", **options: float) -> AnchorMatcher:
    """A matcher from :data:`MATCHERS` with ``options`` (e.g. ``delta=0.1``, ``k=2``).

    Raises:
        KeyError: unknown matcher name or detector family (the message lists the valid ones).
    """
    if name not in MATCHERS:
        raise KeyError(f"unknown matcher {name!r}; choose one of {sorted(MATCHERS)}")
    if family not in TORCHVISION_DEFAULTS:
        raise KeyError(f"unknown detector family {family!r}; choose one of {sorted(TORCHVISION_DEFAULTS)}")
    return MATCHERS[name](family, **options)
