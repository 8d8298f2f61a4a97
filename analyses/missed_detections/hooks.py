"""What to record from torchvision's anchor-based detectors, through the shared hook layer.

One :class:`DetectorSpec` per detector family (a registry keyed by model class) names the module
paths that :func:`extractors.run_recorded` records and says how to read them:

=================  ==========================  ===============================  =========  ==========
family             anchors (module output)     per-anchor logits                 score      classes K
=================  ==========================  ===============================  =========  ==========
``ssd``            ``anchor_generator``        ``head.classification_head``      softmax    incl. bg 0
``retinanet``      ``anchor_generator``        ``head.classification_head``      sigmoid    per class
``fasterrcnn``     ``rpn.anchor_generator``    ``rpn.head`` (objectness/level)   sigmoid    1 (objectness)
``blazeface``      ``anchor_generator``        ``net.head.classification_head``  sigmoid    1 (face)
=================  ==========================  ===============================  =========  ==========

SSD covers SSD300-VGG16 and SSDlite320-MobileNetV3 (same class). Faster R-CNN's anchors are the
RPN's: its per-anchor score is class-agnostic objectness; its final detections come from the
second stage.

**Anchor order.** Every family flattens anchors and logits the same way: levels in the order of
the feature maps (``backbone`` output values), and inside level ``l`` with grid ``(H_l, W_l)`` and
``A_l`` anchors per location, index ``offset_l + (y * W_l + x) * A_l + a`` - row-major over cells
``(y, x)``, anchor ``a`` fastest. :func:`anchor_layout` decodes an index into
``(level, cell_y, cell_x, aspect)``. What ``a`` means depends on the generator: for SSD's
``DefaultBoxGenerator`` a=0 is the square of scale s_k, a=1 the square of scale sqrt(s_k s_k+1),
then for each aspect ratio r a (wide, tall) pair; for ``AnchorGenerator`` (RetinaNet, RPN)
``a = ratio_index * n_sizes + size_index``; for BlazeFace, squares of MediaPipe's SSD scales
(level 0: 0.148, 0.228 of the input; level 1: 0.349, 0.438, 0.549, 0.642, 0.750, 0.866). :func:`anchor_shapes` reports every (w, h).

**Frames.** Anchors live in the *resized* image (after ``model.transform``; padded batches keep the
top-left origin). Ground-truth boxes in the original frame go through :func:`to_resized_frame`,
the same per-axis scaling as torchvision's ``resize_boxes``, using the transform's recorded
``image_sizes``. Final detections come back in the original frame (the model's postprocess).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torchvision.models.detection import FasterRCNN, RetinaNet
from torchvision.models.detection.ssd import SSD

from analyses.missed_detections.blazeface import BlazeFaceDetector
from extractors import run_recorded
from rsa_bridge.errors import RSABridgeError


def _flatten_head(output: Tensor) -> Tensor:
    """SSD/RetinaNet classification heads already return (B, N, K) in anchor order."""
    return output


def _flatten_rpn(output: Any) -> Tensor:
    """RPN head output ``(objectness per level (B, A, H, W), deltas per level)`` -> (B, N, 1)."""
    logits = output[0]
    flat = [lvl.permute(0, 2, 3, 1).reshape(lvl.shape[0], -1, 1) for lvl in logits]  # (B, H, W, A) order
    return torch.cat(flat, dim=1)


def _rpn_grid(output: Any) -> list[tuple[int, int]]:
    return [(int(t.shape[-2]), int(t.shape[-1])) for t in output[0]]


@dataclass(frozen=True)
class DetectorSpec:
    """Where a detector family keeps its anchors, per-anchor logits and features.

    Attributes:
        family: ``"ssd"``, ``"retinanet"`` or ``"fasterrcnn"``.
        anchors: module path of the anchor generator (output: list of (N, 4) per image).
        logits: module path whose output holds the per-anchor class logits.
        features: module path of the feature maps the heads read (backbone / FPN).
        transform: module path of the ``GeneralizedRCNNTransform``.
        score: ``"softmax"`` (over K classes, background 0) or ``"sigmoid"`` (per class).
        class_agnostic: the per-anchor score ignores the object's label (RPN objectness).
        flatten: raw ``logits`` module output -> (B, N, K) tensor in anchor order.
        matcher_attr: attribute path of the training matcher (``proposal_matcher``).
    """

    family: str
    anchors: str
    logits: str
    features: str
    transform: str
    score: str
    class_agnostic: bool
    flatten: Callable[[Any], Tensor] = field(repr=False, default=_flatten_head)
    matcher_attr: str = "proposal_matcher"

    def layers(self, features: bool = True) -> dict[str, str]:
        """name -> module path for :func:`extractors.run_recorded`."""
        out = {"transform": self.transform, "anchors": self.anchors, "logits": self.logits}
        if features:
            out["features"] = self.features
        return out


SSD_SPEC = DetectorSpec("ssd", "anchor_generator", "head.classification_head", "backbone", "transform",
                        "softmax", False)
RETINANET_SPEC = DetectorSpec("retinanet", "anchor_generator", "head.classification_head", "backbone",
                              "transform", "sigmoid", False)
FASTERRCNN_SPEC = DetectorSpec("fasterrcnn", "rpn.anchor_generator", "rpn.head", "backbone", "transform",
                               "sigmoid", True, flatten=_flatten_rpn, matcher_attr="rpn.proposal_matcher")

#: BlazeFace (:mod:`analyses.missed_detections.blazeface`): one class (face = 0), sigmoid scores
BLAZEFACE_SPEC = DetectorSpec("blazeface", "anchor_generator", "net.head.classification_head", "net.backbone",
                              "transform", "sigmoid", False)

#: model class -> spec (checked in order with isinstance, so subclasses such as MaskRCNN fit too)
SPECS: dict[type[nn.Module], DetectorSpec] = {SSD: SSD_SPEC, RetinaNet: RETINANET_SPEC, FasterRCNN: FASTERRCNN_SPEC,
                                              BlazeFaceDetector: BLAZEFACE_SPEC}


def detector_spec(model: nn.Module) -> DetectorSpec:
    """The :class:`DetectorSpec` of ``model``; RSABridgeError for a model that is not anchor-based."""
    for cls, spec in SPECS.items():
        if isinstance(model, cls):
            return spec
    raise RSABridgeError(
        f"{type(model).__name__} is not one of the anchor-based torchvision detectors this analysis reads "
        f"({', '.join(c.__name__ for c in SPECS)}); use ssdlite320, ssd300, retinanet, fasterrcnn or blazeface"
    )


def anchors_per_location(model: nn.Module, spec: DetectorSpec | None = None) -> list[int]:
    """A_l, the number of anchors per grid cell of each level, from the model's anchor generator."""
    spec = spec or detector_spec(model)
    return list(model.get_submodule(spec.anchors).num_anchors_per_location())


@dataclass(frozen=True)
class AnchorLayout:
    """Decoded anchor indices: arrays of shape (N,), one entry per anchor in the flat order.

    Attributes:
        level, cell_y, cell_x, aspect: the anchor's feature level, grid row, grid column and
            index within its cell.
        grid_sizes: (H_l, W_l) per level.
        per_location: A_l per level.
        offsets: index of each level's first anchor (len = levels + 1, last = N).
    """

    level: np.ndarray
    cell_y: np.ndarray
    cell_x: np.ndarray
    aspect: np.ndarray
    grid_sizes: tuple[tuple[int, int], ...]
    per_location: tuple[int, ...]
    offsets: np.ndarray

    @property
    def size(self) -> int:
        return int(self.offsets[-1])

    def index(self, level: int, y: int, x: int, a: int) -> int:
        """Flat anchor index of (level, y, x, a): ``offset_l + (y * W_l + x) * A_l + a``."""
        _, width = self.grid_sizes[level]
        return int(self.offsets[level] + (y * width + x) * self.per_location[level] + a)


def anchor_layout(grid_sizes: Sequence[tuple[int, int]], per_location: Sequence[int]) -> AnchorLayout:
    """Decode every flat anchor index into (level, y, x, a) for levels of ``grid_sizes`` (H, W).

    Returns:
        :class:`AnchorLayout` with arrays of length N = sum_l H_l * W_l * A_l.
    """
    if len(grid_sizes) != len(per_location):
        raise ValueError(f"{len(grid_sizes)} feature levels but {len(per_location)} anchor counts")
    parts: dict[str, list[np.ndarray]] = {"level": [], "y": [], "x": [], "a": []}
    counts = []
    for lvl, ((height, width), n_a) in enumerate(zip(grid_sizes, per_location, strict=True)):
        j = np.arange(height * width * n_a)
        cell = j // n_a
        parts["level"].append(np.full(j.size, lvl))
        parts["y"].append(cell // width)
        parts["x"].append(cell % width)
        parts["a"].append(j % n_a)
        counts.append(j.size)
    cat = {k: np.concatenate(v).astype(np.int64) for k, v in parts.items()}
    return AnchorLayout(cat["level"], cat["y"], cat["x"], cat["a"],
                        tuple((int(h), int(w)) for h, w in grid_sizes), tuple(int(a) for a in per_location),
                        np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))


def anchor_shapes(anchors: Tensor, layout: AnchorLayout) -> list[np.ndarray]:
    """(w, h) in pixels of each anchor slot ``a`` per level: list of (A_l, 2) arrays (read off cell (0, 0))."""
    out = []
    for lvl, n_a in enumerate(layout.per_location):
        first = anchors[int(layout.offsets[lvl]): int(layout.offsets[lvl]) + n_a]
        out.append((first[:, 2:] - first[:, :2]).cpu().numpy())
    return out


def to_resized_frame(boxes: Tensor, original_size: tuple[int, int], resized_size: tuple[int, int]) -> Tensor:
    """Map (M, 4) boxes x1, y1, x2, y2 from the original image (h, w) into the resized image (h', w').

    The same per-axis scaling as torchvision's transform (x by w'/w, y by h'/h); the inverse of the
    mapping the model's postprocess applies to its detections.
    """
    (h0, w0), (h1, w1) = original_size, resized_size
    scale = torch.tensor([w1 / w0, h1 / h0, w1 / w0, h1 / h0], dtype=torch.float32, device=boxes.device)
    return boxes.to(torch.float32) * scale


def class_probabilities(logits: Tensor, score: str) -> Tensor:
    """Per-anchor class probabilities (B, N, K) from logits (B, N, K): softmax over K or sigmoid."""
    if score == "softmax":
        return torch.softmax(logits, dim=-1)
    if score == "sigmoid":
        return torch.sigmoid(logits)
    raise ValueError(f"unknown score kind {score!r}")


@dataclass
class DetectorPass:
    """Everything one recorded forward pass of a batch of B images yields.

    Attributes:
        anchors: (B, N, 4) anchor boxes x1, y1, x2, y2 in each resized image, pixels.
        layout: decoded anchor order (:class:`AnchorLayout`).
        logits: (B, N, K) per-anchor logits (K = 1 for RPN objectness).
        scores: (B, N, K) probabilities (softmax or sigmoid as the model uses).
        features: feature maps per level, list of (B, C_l, H_l, W_l) (empty unless requested).
        resized_sizes: (h, w) of each image after the transform (before batch padding).
        original_sizes: (h, w) of each input image.
        detections: the model's output, boxes in the original frame.
        spec: the detector spec used.
    """

    anchors: Tensor
    layout: AnchorLayout
    logits: Tensor
    scores: Tensor
    features: list[Tensor]
    resized_sizes: list[tuple[int, int]]
    original_sizes: list[tuple[int, int]]
    detections: list[dict[str, Tensor]]
    spec: DetectorSpec

    def gt_in_resized(self, b: int, boxes: Tensor) -> Tensor:
        """Boxes (M, 4) of image ``b`` in its original frame -> the frame of ``anchors[b]``."""
        return to_resized_frame(boxes, self.original_sizes[b], self.resized_sizes[b])


def _feature_list(features: Any) -> list[Tensor]:
    if isinstance(features, Tensor):
        return [features]
    return list(features.values())


def run_detector(model: nn.Module, images: Sequence[Tensor], *, features: bool = True,
                 spec: DetectorSpec | None = None) -> DetectorPass:
    """Run an eval-mode detector on ``images`` (each (3, H, W), floats in [0, 1]) and record its internals.

    Uses :func:`extractors.run_recorded` (the shared hook layer) for the transform output, the anchor
    generator, the per-anchor logits and (optionally) the feature maps, plus the model's detections.

    Raises:
        RSABridgeError: not an anchor-based detector, or the model is in training mode.
    """
    spec = spec or detector_spec(model)
    if model.training:
        raise RSABridgeError("the detector is in training mode; call model.eval() before analysing frames")
    images = list(images)
    outputs, detections = run_recorded(model, images, spec.layers(True), stop_early=False, return_output=True)
    image_list = outputs["transform"][0]
    all_feats = _feature_list(outputs["features"])
    if spec.family == "fasterrcnn":
        grid = _rpn_grid(outputs["logits"])
    else:
        grid = [(int(f.shape[-2]), int(f.shape[-1])) for f in all_feats]
    feats = all_feats if features else []
    layout = anchor_layout(grid, anchors_per_location(model, spec))
    anchors = torch.stack(list(outputs["anchors"]))
    logits = spec.flatten(outputs["logits"])
    if anchors.shape[1] != layout.size or logits.shape[1] != layout.size:
        raise RuntimeError(f"anchor count mismatch: {anchors.shape[1]} anchors, {logits.shape[1]} logits, "
                           f"layout {layout.size}")
    return DetectorPass(
        anchors=anchors, layout=layout, logits=logits, scores=class_probabilities(logits, spec.score),
        features=feats, resized_sizes=[(int(h), int(w)) for h, w in image_list.image_sizes],
        original_sizes=[(int(im.shape[-2]), int(im.shape[-1])) for im in images],
        detections=list(detections), spec=spec)

