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
``nms_iou`` = 0.3) - MediaPipe's graph uses *weighted* NMS (a kept box is the score-weighted mean of
the boxes it suppresses) with the same threshold; boxes and scores of the kept anchors are MediaPipe's,
only their averaging is left out. Images are stretched to 128 x 128 (MediaPipe letterboxes instead);
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
from torchvision.ops import nms

from extractors import load_model
from extractors.sources.blazeface_anchors import SHORT_RANGE_ANCHORS, decode_boxes, scores_from_logits, ssd_anchors

#: class names of the detector's outputs (index = label)
CATEGORIES = ["face"]


class BlazeTransform(nn.Module):
    """Images (3, H, W) in [0, 1] -> (ImageList of (B, 3, 128, 128) in [-1, 1], None), like torchvision's transform."""

    def __init__(self, size: int = 128) -> None:
        super().__init__()
        self.size = size

    def forward(self, images: Sequence[Tensor]) -> tuple[ImageList, None]:  # noqa: D102
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

    def forward(self, image_list: ImageList) -> list[Tensor]:  # noqa: D102
        return [self.boxes.clone() for _ in range(image_list.tensors.shape[0])]


class BlazeFaceDetector(nn.Module):
    """BlazeFace with decoding and NMS (see the module doc); ``forward(images) -> list of detection dicts``.

    Attributes:
        score_thresh: scores below are dropped before NMS (0.05; the analysis applies its own threshold).
        nms_iou: IoU of hard NMS (0.3, MediaPipe's suppression threshold).
        detections_per_img: at most this many boxes per image (100).
    """

    def __init__(self, net: nn.Module, *, score_thresh: float = 0.05, nms_iou: float = 0.3,
                 detections_per_img: int = 100) -> None:
        super().__init__()
        self.transform = BlazeTransform(128)
        self.net = net
        self.anchor_generator = BlazeAnchorGenerator(128)
        self.score_thresh, self.nms_iou, self.detections_per_img = score_thresh, nms_iou, detections_per_img

    def forward(self, images: Sequence[Tensor]) -> list[dict[str, Tensor]]:  # noqa: D102
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
            keep = keep[nms(boxes[b, keep], scores[b, keep], self.nms_iou)][: self.detections_per_img]
            scale = torch.tensor([w, h, w, h], dtype=boxes.dtype, device=boxes.device)
            out.append({"boxes": boxes[b, keep] * scale, "scores": scores[b, keep],
                        "labels": torch.zeros(keep.numel(), dtype=torch.int64, device=boxes.device),
                        "keypoints": keypoints[b, keep] * scale[:2]})
        return out


def load_blazeface_detector(weights: str | os.PathLike | None = "default", device: str = "cpu",
                            seed: int = 0) -> BlazeFaceDetector:
    """The eval-mode detector with ``weights`` (a MediaPipe .tflite, ``default`` = ``$RSA_BRIDGE_BLAZEFACE``,
    ``none`` or a state dict; see :mod:`extractors.sources.blazeface`) and the network's ``rsa_bridge_info``."""
    net = load_model("blazeface", "none" if weights is None else weights, device=device, seed=seed)
    det = BlazeFaceDetector(net).eval().to(device)
    det.rsa_bridge_info = net.rsa_bridge_info
    return det
