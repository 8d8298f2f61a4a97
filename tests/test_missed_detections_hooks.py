"""Anchor order, anchor/logit alignment and frame mapping for SSD, SSDlite, RetinaNet and Faster R-CNN.

The alignment tests plant one large logit at a known (level, y, x, anchor slot, class) in the raw
convolution output, silence the box regression, and check that the model's *own* decoding (its
postprocess / RPN proposals) puts the top box exactly on anchor ``layout.index(level, y, x, a)``
and that our recorded per-anchor scores peak at that same index.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.models import detection as tvd

from analyses.missed_detections.hooks import (
    AnchorLayout,
    anchor_layout,
    anchor_shapes,
    detector_spec,
    run_detector,
    to_resized_frame,
)
from analyses.missed_detections.synthetic import build_tiny_detector
from extractors import run_recorded
from rsa_bridge.errors import RSABridgeError


class Plant(nn.Module):
    """Wrap a conv: add ``value`` at (channel, y, x) of its output when the output has grid ``hw``."""

    def __init__(self, inner: nn.Module, hw: tuple[int, int] | None, channel: int, y: int, x: int,
                 value: float = 30.0) -> None:
        super().__init__()
        self.inner, self.hw, self.channel, self.y, self.x, self.value = inner, hw, channel, y, x, value

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        out = self.inner(t)
        if self.hw is None or tuple(out.shape[-2:]) == self.hw:
            out = out.clone()
            out[:, self.channel, self.y, self.x] += self.value
        return out


class Zero(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.inner(t) * 0.0


def _seeded(builder, **kwargs):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return builder(weights=None, weights_backbone=None, **kwargs).eval()


def _image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(3, h, w, generator=torch.Generator().manual_seed(seed))


def test_anchor_layout_hand_worked():
    lay = anchor_layout([(2, 3), (1, 1)], [2, 3])
    assert lay.size == 2 * 3 * 2 + 3
    assert lay.index(0, 1, 2, 1) == (1 * 3 + 2) * 2 + 1 == 11
    assert lay.index(1, 0, 0, 2) == 14
    assert (lay.level[11], lay.cell_y[11], lay.cell_x[11], lay.aspect[11]) == (0, 1, 2, 1)
    assert (lay.level[12], lay.cell_y[12], lay.cell_x[12], lay.aspect[12]) == (1, 0, 0, 0)
    assert list(lay.offsets) == [0, 12, 15]
    assert (lay.cell_y[3], lay.cell_x[3], lay.aspect[3]) == (0, 1, 1)
    # level 0 in C order over (H, W, A), level 1 over (1, 1, 3)
    y, x, a = np.unravel_index(np.arange(12), (2, 3, 2))
    np.testing.assert_array_equal(np.c_[lay.cell_y[:12], lay.cell_x[:12], lay.aspect[:12]], np.c_[y, x, a])
    np.testing.assert_array_equal(lay.aspect[12:], [0, 1, 2])
    with pytest.raises(ValueError):
        anchor_layout([(2, 2)], [1, 2])


def _check_ssd_alignment(model, image, level, y, x, a, k):
    spec = detector_spec(model)
    probe = run_detector(model, [image], features=True)
    lay: AnchorLayout = probe.layout
    n_classes = probe.scores.shape[-1]
    cls = model.head.classification_head.module_list
    cls[level] = Plant(cls[level], None, a * n_classes + k, y, x)
    reg = model.head.regression_head.module_list
    for i in range(len(reg)):
        reg[i] = Zero(reg[i])
    p = run_detector(model, [image], features=False, spec=spec)
    i = lay.index(level, y, x, a)
    assert (lay.level[i], lay.cell_y[i], lay.cell_x[i], lay.aspect[i]) == (level, y, x, a)
    assert int(p.scores[0, :, k].argmax()) == i
    det = p.detections[0]
    assert int(det["labels"][0]) == k
    top = to_resized_frame(det["boxes"][:1], p.original_sizes[0], p.resized_sizes[0])[0]
    torch.testing.assert_close(top, p.anchors[0, i], atol=1e-3, rtol=0)
    # anchor centre from the SSD default-box rule: ((x + 0.5) / W_l, (y + 0.5) / H_l) of the image
    hgt, wid = lay.grid_sizes[level]
    size_h, size_w = p.resized_sizes[0]
    centre = (p.anchors[0, i, :2] + p.anchors[0, i, 2:]) / 2
    torch.testing.assert_close(centre, torch.tensor([(x + 0.5) * size_w / wid, (y + 0.5) * size_h / hgt]),
                               atol=1e-3, rtol=0)
    return p


def test_tiny_ssd_anchor_and_logit_alignment():
    model = build_tiny_detector(seed=3)
    p = _check_ssd_alignment(model, _image(80, 100), level=0, y=3, x=5, a=2, k=1)
    assert p.resized_sizes[0] == (64, 64) and p.original_sizes[0] == (80, 100)
    shapes = anchor_shapes(p.anchors[0], p.layout)
    np.testing.assert_allclose(shapes[0][0], [10, 10], atol=1e-3)  # slot 0: the s_0 square
    np.testing.assert_allclose(shapes[0][2, 0] / shapes[0][2, 1], 2.0, rtol=1e-4)  # slot 2: wide, ratio 2


def test_tiny_ssd_second_level_alignment():
    _check_ssd_alignment(build_tiny_detector(seed=4), _image(64, 64, 1), level=1, y=2, x=1, a=1, k=1)


def test_ssdlite320_alignment():
    model = _seeded(tvd.ssdlite320_mobilenet_v3_large, num_classes=5)
    p = _check_ssd_alignment(model, _image(120, 160), level=2, y=2, x=3, a=3, k=4)
    assert p.spec.family == "ssd" and p.spec.score == "softmax"
    assert p.layout.per_location == (6,) * 6


def test_retinanet_alignment():
    model = _seeded(tvd.retinanet_resnet50_fpn, num_classes=4, min_size=96, max_size=128)
    image = _image(90, 120)
    probe = run_detector(model, [image], features=True)
    lay = probe.layout
    level, y, x, a, k = 1, 3, 5, 7, 2
    hw = lay.grid_sizes[level]
    head = model.head
    head.classification_head.cls_logits = Plant(head.classification_head.cls_logits, hw, a * 4 + k, y, x)
    head.regression_head.bbox_reg = Zero(head.regression_head.bbox_reg)
    p = run_detector(model, [image], features=False)
    i = lay.index(level, y, x, a)
    assert (lay.level[i], lay.cell_y[i], lay.cell_x[i], lay.aspect[i]) == (level, y, x, a)
    assert p.spec.score == "sigmoid"
    assert int(p.scores[0, :, k].argmax()) == i
    det = p.detections[0]
    assert int(det["labels"][0]) == k
    top = to_resized_frame(det["boxes"][:1], p.original_sizes[0], p.resized_sizes[0])[0]
    expected = p.anchors[0, i].clone()
    expected[0::2] = expected[0::2].clamp(0, p.resized_sizes[0][1])
    expected[1::2] = expected[1::2].clamp(0, p.resized_sizes[0][0])
    torch.testing.assert_close(top, expected, atol=1e-3, rtol=0)
    # AnchorGenerator: centre at (x * stride_x, y * stride_y) of the padded batch image
    batch_h, batch_w = (-(-s // 32) * 32 for s in p.resized_sizes[0])  # padded to multiples of 32
    assert p.resized_sizes[0] == (96, 128)
    centre = (p.anchors[0, i, :2] + p.anchors[0, i, 2:]) / 2
    torch.testing.assert_close(centre, torch.tensor([x * (batch_w // hw[1]), y * (batch_h // hw[0])],
                                                    dtype=torch.float32), atol=0.51, rtol=0)


def test_fasterrcnn_rpn_objectness_alignment():
    model = _seeded(tvd.fasterrcnn_resnet50_fpn, num_classes=3, min_size=96, max_size=128)
    image = _image(96, 128, 2)
    probe = run_detector(model, [image], features=True)
    assert probe.spec.class_agnostic and probe.scores.shape[-1] == 1
    lay = probe.layout
    level, y, x, a = 0, 10, 7, 1
    hw = lay.grid_sizes[level]
    model.rpn.head.cls_logits = Plant(model.rpn.head.cls_logits, hw, a, y, x)
    model.rpn.head.bbox_pred = Zero(model.rpn.head.bbox_pred)
    p = run_detector(model, [image], features=False)
    i = lay.index(level, y, x, a)
    assert (lay.level[i], lay.cell_y[i], lay.cell_x[i], lay.aspect[i]) == (level, y, x, a)
    assert int(p.scores[0, :, 0].argmax()) == i
    proposals = run_recorded(model, [image], {"rpn": "rpn"}, stop_early=True)["rpn"][0][0]
    torch.testing.assert_close(proposals[0], p.anchors[0, i], atol=1e-3, rtol=0)


def test_gt_mapping_matches_torchvision_transform():
    model = _seeded(tvd.ssdlite320_mobilenet_v3_large, num_classes=3)
    image = _image(90, 150)
    boxes = torch.tensor([[10.0, 20.0, 60.0, 80.0], [100.0, 5.5, 149.0, 33.25]])
    _, targets = model.transform([image], [{"boxes": boxes.clone(), "labels": torch.tensor([1, 2])}])
    torch.testing.assert_close(to_resized_frame(boxes, (90, 150), (320, 320)), targets[0]["boxes"])


def test_not_a_detector_and_training_mode():
    with pytest.raises(RSABridgeError, match="anchor-based"):
        detector_spec(nn.Conv2d(3, 3, 1))
    model = build_tiny_detector().train()
    with pytest.raises(RSABridgeError, match="training mode"):
        run_detector(model, [_image(64, 64)])


def test_fasterrcnn_frame_analysis_uses_objectness():
    import pandas as pd
    from scipy.special import expit

    from analyses.missed_detections.frames import analyse_frames

    model = _seeded(tvd.fasterrcnn_resnet50_fpn, num_classes=3, min_size=96, max_size=128)
    frames = [_image(96, 128, s) for s in (5, 6)]
    boxes = pd.DataFrame({"frame": [0, 1], "object_id": ["car", "car"], "x1": [10.0, 12.0], "y1": [20.0, 20.0],
                          "x2": [50.0, 52.0], "y2": [60.0, 60.0], "label": [2, 2]})
    ds = analyse_frames(model, frames, boxes)
    p = run_detector(model, frames, features=False)
    assert ds.attrs["family"] == "fasterrcnn" and ds.attrs["class_agnostic_anchor_score"] == 1
    for t in range(2):
        j = int(ds["best_anchor"].values[t, 0])
        assert float(ds["best_score"].values[t, 0]) == pytest.approx(float(expit(p.logits[t, j, 0].numpy())), abs=1e-6)
