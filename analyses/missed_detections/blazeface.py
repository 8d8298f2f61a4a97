"""BlazeFace as a detector of the missed-detection analysis: the torchvision detector interface around the network.

:class:`BlazeFaceDetector` wraps the PyTorch BlazeFace of :mod:`extractors.sources.blazeface` (weights
from MediaPipe's ``.tflite``) so that :func:`analyses.missed_detections.hooks.run_detector` records it
like an SSD: ``transform`` (resize to 128 x 128, scale to [-1, 1]), ``anchor_generator`` (the 896
nominal anchor squares in pixels of the 128 x 128 input), ``net.backbone`` (the 16 x 16 and 8 x 8
feature maps), ``net.head.classification_head`` (score logits (B, 896, 1)).

Its output is a list (one per image) of ``{"boxes": (D, 4) x1, y1, x2, y2 in the image's own pixels,
"scores": (D,), "labels": (D,) zeros (class 0 = face), "keypoints": (D, 6, 2) pixels}``: regressors
decoded with the anchors (MediaPipe's decoding), scores sigmoid(logit clipped to +-100), kept at
``score_thresh`` or more, then **hard non-maximum suppression** (``torchvision.ops.nms`` at IoU
``nms_iou`` = 0.3) by default - MediaPipe's graph uses *weighted* NMS (a kept box is the score-weighted
mean of the boxes it suppresses) with the same threshold, available as ``nms="weighted"``
(:func:`weighted_nms`); the analysis and its command line use the hard one. Images are stretched to 128 x 128 (MediaPipe letterboxes instead);
boxes are mapped back per axis.

Example::

    >>> det = load_blazeface_detector("none")
    >>> out = det([torch.rand(3, 96, 160)])
    >>> sorted(out[0])
    ['boxes', 'keypoints', 'labels', 'scores']
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection.image_list import ImageList
from torchvision.ops import box_iou, nms

from extractors import load_model
from extractors.sources.blazeface_anchors import (
    SHORT_RANGE_ANCHORS,
    decode_boxes,
    scores_from_logits,
    ssd_anchors,
)
from rsa_bridge.errors import RSABridgeError

#: class names of the detector's outputs (index = label)
CATEGORIES = ["face"]


def hard_nms(boxes: Tensor, scores: Tensor, keypoints: Tensor, iou: float) -> tuple[Tensor, Tensor, Tensor]:
    """``torchvision.ops.nms``: keep the highest-scoring box, drop those overlapping it at IoU > ``iou``; repeat.

    Args: boxes (D, 4), scores (D,), keypoints (D, K, 2). Returns the kept ones, highest score first.
    """
    keep = nms(boxes, scores, iou)
    return boxes[keep], scores[keep], keypoints[keep]


def weighted_nms(boxes: Tensor, scores: Tensor, keypoints: Tensor, iou: float) -> tuple[Tensor, Tensor, Tensor]:
    """MediaPipe's weighted NMS: the highest-scoring box and every box overlapping it at IoU > ``iou`` form a
    group; the group's box and keypoints are their score-weighted mean, its score the top score; repeat
    on the rest. Shapes as :func:`hard_nms`."""
    remaining = torch.argsort(scores, descending=True, stable=True)
    out_b, out_s, out_k = [], [], []
    while remaining.numel():
        top = remaining[0]
        group = box_iou(boxes[top][None], boxes[remaining])[0] > iou
        group[0] = True  # the top box belongs to its group even when degenerate (IoU 0 / 0)
        members = remaining[group]
        weight = scores[members] / scores[members].sum()
        out_b.append((weight[:, None] * boxes[members]).sum(0))
        out_k.append((weight[:, None, None] * keypoints[members]).sum(0))
        out_s.append(scores[top])
        remaining = remaining[~group]
    if not out_s:
        return boxes[:0], scores[:0], keypoints[:0]
    return torch.stack(out_b), torch.stack(out_s), torch.stack(out_k)


#: name -> non-maximum suppression(boxes, scores, keypoints, iou) -> kept (boxes, scores, keypoints)
NMS = {"hard": hard_nms, "weighted": weighted_nms}


class BlazeTransform(nn.Module):
    """Images (3, H, W) in [0, 1] -> (ImageList of (B, 3, 128, 128) in [-1, 1], None), like torchvision's transform."""

    def __init__(self, size: int = 128) -> None:
        super().__init__()
        self.size = size

    def forward(self, images: Sequence[Tensor]) -> tuple[ImageList, None]:
        resized = [F.interpolate(im[None].float(), size=(self.size, self.size), mode="bilinear",
                                 align_corners=False, antialias=True)[0] for im in images]
        batch = torch.stack(resized) * 2.0 - 1.0
        return ImageList(batch, [(self.size, self.size)] * len(resized)), None


class BlazeAnchorGenerator(nn.Module):
    """The 896 nominal anchor squares (x1, y1, x2, y2, pixels of the 128 x 128 input): ImageList -> [(896, 4)] per image."""

    def __init__(self, size: int = 128) -> None:
        super().__init__()
        self.anchors = ssd_anchors(SHORT_RANGE_ANCHORS)
        self.register_buffer("boxes", self.anchors.nominal_boxes(size), persistent=False)

    def num_anchors_per_location(self) -> list[int]:
        """Anchors per grid cell of each level: [2, 6]."""
        return list(self.anchors.per_cell)

    def forward(self, image_list: ImageList) -> list[Tensor]:
        return [self.boxes.clone() for _ in range(image_list.tensors.shape[0])]


class BlazeFaceDetector(nn.Module):
    """BlazeFace with decoding and NMS (see the module doc); ``forward(images) -> list of detection dicts``.

    Attributes:
        score_thresh: scores below are dropped before NMS (0.05; the analysis applies its own threshold).
        nms_iou: IoU of hard NMS (0.3, MediaPipe's suppression threshold).
        detections_per_img: at most this many boxes per image (100).
        nms: ``"hard"`` (``torchvision.ops.nms``, the default) or ``"weighted"`` (MediaPipe's), see :data:`NMS`.
    """

    def __init__(self, net: nn.Module, *, score_thresh: float = 0.05, nms_iou: float = 0.3,
                 detections_per_img: int = 100, nms: str = "hard") -> None:
        super().__init__()
        if nms not in NMS:
            raise RSABridgeError(f"unknown NMS {nms!r}; choose one of {', '.join(NMS)}")
        self.nms = nms
        self.transform = BlazeTransform(128)
        self.net = net
        self.anchor_generator = BlazeAnchorGenerator(128)
        self.score_thresh, self.nms_iou, self.detections_per_img = score_thresh, nms_iou, detections_per_img

    def forward(self, images: Sequence[Tensor]) -> list[dict[str, Tensor]]:
        images = list(images)
        image_list, _ = self.transform(images)
        self.anchor_generator(image_list)  # recorded by the analysis' hooks
        raw, logits = self.net(image_list.tensors)
        boxes, keypoints = decode_boxes(raw, self.anchor_generator.anchors, 128.0)
        scores = scores_from_logits(logits[..., 0])
        out = []
        for b, im in enumerate(images):
            h, w = int(im.shape[-2]), int(im.shape[-1])
            keep = torch.nonzero(scores[b] >= self.score_thresh).flatten()
            kept_b, kept_s, kept_k = NMS[self.nms](boxes[b, keep], scores[b, keep], keypoints[b, keep], self.nms_iou)
            n = min(self.detections_per_img, kept_s.numel())
            scale = torch.tensor([w, h, w, h], dtype=boxes.dtype, device=boxes.device)
            out.append({"boxes": kept_b[:n] * scale, "scores": kept_s[:n],
                        "labels": torch.zeros(n, dtype=torch.int64, device=boxes.device),
                        "keypoints": kept_k[:n] * scale[:2]})
        return out


def load_blazeface_detector(weights: str | os.PathLike | None = "default", device: str = "cpu",
                            seed: int = 0, nms: str = "hard") -> BlazeFaceDetector:
    """The eval-mode detector with ``weights`` (a MediaPipe .tflite, ``default`` = ``$RSA_BRIDGE_BLAZEFACE``,
    ``none`` or a state dict; see :mod:`extractors.sources.blazeface`) and the network's ``rsa_bridge_info``;
    ``nms`` picks the suppression (:data:`NMS`; the analysis' command line uses ``"hard"``)."""
    if nms not in NMS:
        raise RSABridgeError(f"unknown NMS {nms!r}; choose one of {', '.join(NMS)}")
    net = load_model("blazeface", "none" if weights is None else weights, device=device, seed=seed)
    det = BlazeFaceDetector(net, nms=nms).eval().to(device)
    det.rsa_bridge_info = net.rsa_bridge_info
    return det
