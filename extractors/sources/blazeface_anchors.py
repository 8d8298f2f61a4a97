"""BlazeFace's anchors (MediaPipe's SSD anchor options) and the decoding of its regressors into boxes.

MediaPipe's short-range face-detection graph generates its anchors with ``SsdAnchorsCalculator``:
4 layers, strides 8, 16, 16, 16, min scale 0.1484375, max scale 0.75, aspect ratio 1.0, an extra
anchor of interpolated scale sqrt(s_i s_(i+1)) per layer (s after the last layer = 1), offsets 0.5,
fixed anchor size. Layers of equal stride share one grid, so the 16 x 16 grid (stride 8) has 2 anchors
per cell and the 8 x 8 grid (stride 16) has 3 x 2 = 6: 512 + 384 = 896, ordered per grid, row-major
over cells, anchor fastest (index ``offset + (y * W + x) * A + a``).

Two sizes per anchor:

* ``decode_sizes``: what decoding multiplies by. With ``fixed_anchor_size`` every anchor is 1 x 1
  (the whole image), so a box is ``centre = anchor centre + raw[0:2] / 128`` and
  ``size = raw[2:4] / 128`` (normalised to the input; MediaPipe's x/y/w/h scales are 128).
* ``nominal_sizes``: the anchor's SSD scale (s_i or the interpolated scale) - the box the anchor
  stands for when matching objects to anchors. The missed-detection analysis uses these squares for
  anchor-object IoU.

Example::

    >>> a = ssd_anchors(SHORT_RANGE_ANCHORS)
    >>> a.centers.shape, a.grid_sizes, a.per_cell
    ((896, 2), ((16, 16), (8, 8)), (2, 6))
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class SsdAnchorOptions:
    """MediaPipe ``SsdAnchorsCalculatorOptions`` (the fields BlazeFace uses).

    Attributes:
        input_size: square input side in pixels.
        min_scale, max_scale: scales of the first and last layer (fractions of the input).
        strides: stride of each layer in pixels; consecutive equal strides share a grid.
        aspect_ratios: aspect ratios per layer (w / h).
        interpolated_scale_aspect_ratio: aspect ratio of the extra anchor of scale sqrt(s_i s_(i+1)) (0: none).
        offset: anchor centre within its cell, in cells.
        fixed_anchor_size: decode with 1 x 1 anchors (MediaPipe's BlazeFace does).
    """

    input_size: int = 128
    min_scale: float = 0.1484375
    max_scale: float = 0.75
    strides: tuple[int, ...] = (8, 16, 16, 16)
    aspect_ratios: tuple[float, ...] = (1.0,)
    interpolated_scale_aspect_ratio: float = 1.0
    offset: float = 0.5
    fixed_anchor_size: bool = True


#: the options of MediaPipe's face_detection_short_range graph
SHORT_RANGE_ANCHORS = SsdAnchorOptions()


@dataclass(frozen=True)
class Anchors:
    """Anchors in the flat order of the network's outputs (N anchors; coordinates normalised to [0, 1]).

    Attributes:
        centers: (N, 2) x, y.
        decode_sizes: (N, 2) w, h used to decode regressors (ones with a fixed anchor size).
        nominal_sizes: (N, 2) w, h of the anchor's SSD scale.
        grid_sizes: (H, W) per grid; per_cell: anchors per cell of each grid.
    """

    centers: np.ndarray
    decode_sizes: np.ndarray
    nominal_sizes: np.ndarray
    grid_sizes: tuple[tuple[int, int], ...]
    per_cell: tuple[int, ...]

    def nominal_boxes(self, size: float) -> Tensor:
        """(N, 4) x1, y1, x2, y2 of the nominal anchor squares in pixels of a ``size`` x ``size`` input."""
        half = self.nominal_sizes / 2
        boxes = np.concatenate([self.centers - half, self.centers + half], axis=1) * size
        return torch.from_numpy(boxes.astype(np.float32))


def _scale(options: SsdAnchorOptions, layer: int) -> float:
    n = len(options.strides)
    if n == 1:
        return (options.min_scale + options.max_scale) / 2
    return options.min_scale + (options.max_scale - options.min_scale) * layer / (n - 1)


def ssd_anchors(options: SsdAnchorOptions = SHORT_RANGE_ANCHORS) -> Anchors:
    """Generate the anchors of ``options`` the way MediaPipe's SsdAnchorsCalculator does (see the module doc)."""
    centers, nominal, grids, per_cell = [], [], [], []
    layer, n = 0, len(options.strides)
    while layer < n:
        scales, ratios = [], []
        last = layer
        while last < n and options.strides[last] == options.strides[layer]:
            scale = _scale(options, last)
            for ratio in options.aspect_ratios:
                scales.append(scale)
                ratios.append(ratio)
            if options.interpolated_scale_aspect_ratio > 0:
                following = 1.0 if last == n - 1 else _scale(options, last + 1)
                scales.append(math.sqrt(scale * following))
                ratios.append(options.interpolated_scale_aspect_ratio)
            last += 1
        wh = np.array([[s * math.sqrt(r), s / math.sqrt(r)] for s, r in zip(scales, ratios, strict=True)])
        rows = cols = math.ceil(options.input_size / options.strides[layer])
        y, x, _ = np.meshgrid(np.arange(rows), np.arange(cols), np.arange(len(scales)), indexing="ij")
        centers.append(np.stack([(x.ravel() + options.offset) / cols, (y.ravel() + options.offset) / rows], 1))
        nominal.append(np.tile(wh, (rows * cols, 1)))
        grids.append((rows, cols))
        per_cell.append(len(scales))
        layer = last
    c, nom = np.concatenate(centers), np.concatenate(nominal)
    decode = np.ones_like(nom) if options.fixed_anchor_size else nom
    return Anchors(c, decode, nom, tuple(grids), tuple(per_cell))


def decode_boxes(raw: Tensor, anchors: Anchors, scale: float = 128.0) -> tuple[Tensor, Tensor]:
    """Regressors (B, N, 4 + 2K) -> boxes (B, N, 4) x1, y1, x2, y2 and keypoints (B, N, K, 2), normalised.

    MediaPipe's TensorsToDetectionsCalculator with ``reverse_output_order`` (raw = x, y, w, h, then
    keypoint x, y pairs) and x/y/w/h scales ``scale``: centre = anchor centre + raw / scale * anchor size,
    size = raw / scale * anchor size.
    """
    centers = torch.as_tensor(anchors.centers, dtype=raw.dtype, device=raw.device)
    sizes = torch.as_tensor(anchors.decode_sizes, dtype=raw.dtype, device=raw.device)
    xy = raw[..., :2] / scale * sizes + centers
    wh = raw[..., 2:4] / scale * sizes
    boxes = torch.cat([xy - wh / 2, xy + wh / 2], dim=-1)
    kp = raw[..., 4:].reshape(*raw.shape[:-1], -1, 2) / scale * sizes[:, None, :] + centers[:, None, :]
    return boxes, kp


def scores_from_logits(logits: Tensor, clip: float = 100.0) -> Tensor:
    """sigmoid(clip(logits, -clip, clip)), as MediaPipe (``score_clipping_thresh`` 100)."""
    return torch.sigmoid(logits.clamp(-clip, clip))
