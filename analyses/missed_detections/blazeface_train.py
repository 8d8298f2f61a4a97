"""BlazeFace's training loss: SSD-style matching of the 896 anchors to face boxes, focal + smooth-L1 losses.

MediaPipe does not publish how BlazeFace was trained; this is a standard SSD/RetinaNet-style loss so that
:func:`analyses.missed_detections.train.fine_tune` can fine-tune BlazeFace under each training matcher of
:data:`analyses.missed_detections.matchers.MATCHERS` (registered in ``train.LOSSES`` as ``"blazeface"``):

* **matching**: the face boxes, mapped into the 128 x 128 input, against the 896 *nominal* anchor squares
  (the boxes the analysis uses, ``detector.anchor_generator.boxes``) with the matcher: ``>= 0`` positive for
  that box, ``-1`` negative, ``-2`` ignored (left out of both losses).
* **score**: sigmoid focal loss (``torchvision.ops.sigmoid_focal_loss``, alpha 0.25, gamma 2) of the score
  logit of every non-ignored anchor (target 1 = positive), summed and divided by the number of positives.
* **box**: smooth-L1 (beta 1) between the first four regressors of each positive anchor and the matched
  box in MediaPipe's encoding (:func:`encode_boxes`, the inverse of
  :func:`extractors.sources.blazeface_anchors.decode_boxes`; units: pixels of the 128 px input), summed
  and divided by the number of positives. Keypoints have no ground truth here and get no loss.

Example::

    >>> anchors = ssd_anchors()
    >>> box = torch.tensor([[0.40, 0.30, 0.60, 0.55]])
    >>> raw = encode_boxes(box.expand(896, 4), anchors)
    >>> torch.allclose(decode_boxes(torch.cat([raw, torch.zeros(896, 12)], 1)[None], anchors)[0][0], box.expand(896, 4))
    True
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import box_iou, sigmoid_focal_loss

from analyses.missed_detections.hooks import anchor_layout, to_resized_frame
from analyses.missed_detections.matchers import AnchorMatcher
from extractors.sources.blazeface_anchors import Anchors, decode_boxes, ssd_anchors  # noqa: F401 (doctest)
from rsa_bridge.errors import RSABridgeError

__all__ = ["blazeface_losses", "encode_boxes", "match_faces"]


def encode_boxes(boxes: Tensor, anchors: Anchors, scale: float = 128.0) -> Tensor:
    """Boxes (..., N, 4) x1, y1, x2, y2 normalised to [0, 1] -> the regressors (..., N, 4) x, y, w, h that decode to them.

    The inverse of MediaPipe's decoding (:func:`~extractors.sources.blazeface_anchors.decode_boxes`):
    ``raw_xy = (box centre - anchor centre) / anchor size * scale``, ``raw_wh = box size / anchor size * scale``
    (anchor size 1 with BlazeFace's fixed anchor size, so the regressors are pixels of the 128 px input).
    """
    centers = torch.as_tensor(anchors.centers, dtype=boxes.dtype, device=boxes.device)
    sizes = torch.as_tensor(anchors.decode_sizes, dtype=boxes.dtype, device=boxes.device)
    xy = ((boxes[..., :2] + boxes[..., 2:]) / 2 - centers) / sizes * scale
    wh = (boxes[..., 2:] - boxes[..., :2]) / sizes * scale
    return torch.cat([xy, wh], dim=-1)


def match_faces(detector: nn.Module, images: list[Tensor], targets: list[dict[str, Tensor]],
                matcher: AnchorMatcher) -> tuple[Tensor, Tensor]:
    """Each image's face boxes against the 896 nominal anchors with ``matcher``.

    Args:
        detector: a :class:`~analyses.missed_detections.blazeface.BlazeFaceDetector`.
        images: B tensors (3, H, W); targets: B dicts with ``boxes`` (M >= 1, 4) in that image's pixels.

    Returns:
        matches (B, 896) int64 (box index, -1 negative, -2 ignored) and the boxes (B, M_max, 4) normalised to
        the input (padded with zeros beyond each image's M).

    Raises:
        RSABridgeError: an image without a face box, or a box with NaN / non-positive size.
    """
    generator = detector.anchor_generator
    anchors = generator.boxes.float()
    size = float(detector.transform.size)
    level = torch.from_numpy(anchor_layout(generator.anchors.grid_sizes, generator.anchors.per_cell).level)
    matched, boxes = [], []
    for image, target in zip(images, targets, strict=True):
        gt = torch.as_tensor(target["boxes"], dtype=torch.float32).reshape(-1, 4)
        if gt.shape[0] == 0:
            raise RSABridgeError("a training frame has no face box; every BlazeFace training frame needs at least one")
        if not torch.isfinite(gt).all() or (gt[:, 2:] <= gt[:, :2]).any():
            raise RSABridgeError(f"face boxes must be finite with x1 < x2 and y1 < y2; got {gt.tolist()}")
        gt = to_resized_frame(gt, tuple(image.shape[-2:]), (int(size), int(size)))
        matched.append(matcher(box_iou(gt, anchors), anchors, gt, level))
        boxes.append(gt / size)
    padded = torch.zeros(len(boxes), max(b.shape[0] for b in boxes), 4)
    for i, b in enumerate(boxes):
        padded[i, : b.shape[0]] = b
    return torch.stack(matched), padded


def blazeface_losses(detector: nn.Module, images: list[Tensor], targets: list[dict[str, Tensor]],
                     matcher: AnchorMatcher) -> dict[str, Tensor]:
    """``{"score": focal loss, "box": smooth-L1}`` of BlazeFace on a batch (see the module doc); scalars."""
    matches, boxes = match_faces(detector, images, targets, matcher)
    image_list, _ = detector.transform(images)
    raw, logits = detector.net(image_list.tensors)
    positive, keep = matches >= 0, matches != -2
    n_pos = positive.sum().clamp(min=1).to(logits.dtype)
    score = sigmoid_focal_loss(logits[..., 0][keep], positive[keep].to(logits.dtype), alpha=0.25, gamma=2.0,
                               reduction="sum") / n_pos
    gt = torch.gather(boxes, 1, matches.clamp(min=0)[..., None].expand(-1, -1, 4))  # (B, 896, 4)
    target = encode_boxes(gt, detector.anchor_generator.anchors)
    box = F.smooth_l1_loss(raw[..., :4][positive], target[positive], beta=1.0, reduction="sum") / n_pos
    return {"score": score, "box": box}
