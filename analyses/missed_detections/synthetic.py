"""A seeded synthetic video and a tiny SSD detector trained on it on a CPU.

The video: a solid-coloured square translating smoothly (sub-pixel steps, exact area anti-aliasing)
across a static textured background, so its best-matching anchor hands over from cell to cell at
known frames. The detector: torchvision's own :class:`~torchvision.models.detection.ssd.SSD` class
(so every hook, anchor and matcher path is the one real SSD/SSDlite models take) on a four-layer
convolutional backbone with two feature levels (strides 8 and 16 for a 64 x 64 input).

With the defaults, level-0 anchors are 10 px squares every 8 px and the object is a 10 px square:
its best-anchor IoU is 1 at a cell centre and (10 - 4) / (10 + 4) = 0.43 at a cell boundary, so
torchvision's SSD matcher (IoU >= 0.5, plus each object's single best anchor) makes exactly one
anchor positive near a boundary and its equally good neighbour negative.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
from torchvision.models.detection.ssd import SSD

#: object colour (RGB in [0, 1]); backgrounds are desaturated so colour alone separates them
OBJECT_COLOR = (0.95, 0.35, 0.1)


@dataclass(frozen=True)
class TinyConfig:
    """Geometry of the tiny detector and its synthetic data (pixels unless noted).

    Attributes:
        image_size: square input side.
        object_size: side of the square object.
        scales: SSD box scales s_0, s_1, s_2 as fractions of ``image_size`` (two levels).
        aspect_ratios: extra aspect ratios per level (each adds a wide and a tall anchor).
        width: channels of the backbone's last layers.
    """

    image_size: int = 64
    object_size: float = 10.0
    scales: tuple[float, ...] = (10 / 64, 24 / 64, 40 / 64)
    aspect_ratios: tuple[tuple[int, ...], ...] = ((2,), (2,))
    width: int = 32


#: the geometry used throughout (10 px object, 10 px level-0 anchors every 8 px, 64 px frames)
DEFAULT_CONFIG = TinyConfig()


class TinyBackbone(nn.Module):
    """Conv-ReLU stack: (B, 3, S, S) -> {"0": (B, w, S/8, S/8), "1": (B, w, S/16, S/16)}."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, 24, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(24, width, 3, stride=2, padding=1), nn.ReLU(),
        )
        self.down = nn.Sequential(nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU())
        self.out_channels = [width, width]

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        c8 = self.stem(x)
        return OrderedDict([("0", c8), ("1", self.down(c8))])


def build_tiny_detector(config: TinyConfig = DEFAULT_CONFIG, *, seed: int = 0, num_classes: int = 2) -> SSD:
    """An untrained tiny SSD (torchvision's SSD class), initialised under a private RNG seeded by ``seed``.

    Classes: 0 background, 1 the synthetic object. Eval-time score threshold 0.01, like SSD300.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = TinyBackbone(config.width)
        anchors = DefaultBoxGenerator([list(r) for r in config.aspect_ratios], scales=list(config.scales))
        model = SSD(backbone, anchors, (config.image_size, config.image_size), num_classes,
                    image_mean=[0.5, 0.5, 0.5], image_std=[0.25, 0.25, 0.25], score_thresh=0.01,
                    nms_thresh=0.45, detections_per_img=20, topk_candidates=100)
    return model.eval()


def textured_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth random texture (3, size, size) in about [0.15, 0.85], low saturation.

    Sum of a coarse (size/8) and a medium (size/4) random grid, bilinearly upsampled, plus a
    little pixel noise; the colour channels share most of the pattern (grey-ish).
    """
    def layer(cells: int, amp: float) -> Tensor:
        grid = torch.from_numpy(rng.normal(0.0, amp, size=(1, 1, cells, cells))).float()
        return F.interpolate(grid, size=(size, size), mode="bilinear", align_corners=False)[0, 0]

    luminance = 0.5 + layer(max(2, size // 8), 0.18) + layer(max(2, size // 4), 0.1)
    tint = torch.from_numpy(rng.normal(0.0, 0.04, size=(3, 1, 1))).float()
    noise = torch.from_numpy(rng.normal(0.0, 0.02, size=(3, size, size))).float()
    return (luminance[None] + tint + noise).clamp(0.15, 0.85).numpy()


def box_coverage(box: tuple[float, float, float, float], height: int, width: int) -> np.ndarray:
    """Fraction (H, W) of each pixel [j, j+1) x [i, i+1) covered by the box x1, y1, x2, y2 (exact area)."""
    x1, y1, x2, y2 = box
    px = np.arange(width, dtype=np.float64)
    py = np.arange(height, dtype=np.float64)
    cover_x = np.clip(np.minimum(px + 1, x2) - np.maximum(px, x1), 0.0, 1.0)
    cover_y = np.clip(np.minimum(py + 1, y2) - np.maximum(py, y1), 0.0, 1.0)
    return cover_y[:, None] * cover_x[None, :]


def render(background: np.ndarray, boxes: list[tuple[float, float, float, float]],
           color: tuple[float, float, float] = OBJECT_COLOR) -> Tensor:
    """Paint solid squares ``boxes`` (x1, y1, x2, y2, sub-pixel) over ``background`` (3, H, W) -> tensor."""
    image = background.copy()
    _, height, width = image.shape
    col = np.asarray(color, dtype=np.float64)[:, None, None]
    for box in boxes:
        alpha = box_coverage(box, height, width)[None]
        image = (1.0 - alpha) * image + alpha * col
    return torch.from_numpy(image).float()


@dataclass
class SyntheticVideo:
    """Frames and per-frame boxes of one synthetic clip.

    Attributes:
        frames: (T, 3, H, W) floats in [0, 1].
        boxes: one row per (frame, object): frame, object_id, x1, y1, x2, y2, label.
        attrs: provenance (seed, speed, path).
    """

    frames: Tensor
    boxes: pd.DataFrame
    attrs: dict = field(default_factory=dict)


def translation_video(config: TinyConfig = DEFAULT_CONFIG, *, n_frames: int = 81,
                      start: tuple[float, float] = (12.25, 28.0), end: tuple[float, float] = (52.25, 28.0),
                      seed: int = 0) -> SyntheticVideo:
    """One object moving in a straight line at constant speed from centre ``start`` to ``end`` (x, y px).

    The defaults move 0.5 px per frame along row y = 28 (a level-0 cell centre), so the best
    level-0 anchor switches every 16 frames: the cell boundaries x = 16, 24, 32, 40, 48 are crossed
    half-way between frames 7|8, 23|24, 39|40, 55|56 and 71|72 (no frame sits exactly on a tie).
    """
    rng = np.random.default_rng(seed)
    background = textured_background(rng, config.image_size)
    t = np.linspace(0.0, 1.0, n_frames)
    cx = start[0] + t * (end[0] - start[0])
    cy = start[1] + t * (end[1] - start[1])
    half = config.object_size / 2
    frames, rows = [], []
    for k in range(n_frames):
        box = (cx[k] - half, cy[k] - half, cx[k] + half, cy[k] + half)
        frames.append(render(background, [box]))
        rows.append({"frame": k, "object_id": "square", "x1": box[0], "y1": box[1], "x2": box[2], "y2": box[3],
                     "label": 1})
    speed = float(np.hypot(end[0] - start[0], end[1] - start[1]) / max(1, n_frames - 1))
    return SyntheticVideo(torch.stack(frames), pd.DataFrame(rows),
                          {"seed": seed, "speed_px_per_frame": speed, "start": list(start), "end": list(end)})


def gaussian_blur(image: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of a (3, H, W) image (kernel radius 3 sigma, reflect padding)."""
    radius = max(1, int(np.ceil(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    img = F.pad(image[:, None], (radius, radius, radius, radius), mode="reflect")
    img = F.conv2d(img, kernel.view(1, 1, 1, -1))
    img = F.conv2d(img, kernel.view(1, 1, -1, 1))
    return img[:, 0]


def blur_frames(video: SyntheticVideo, frames: list[int], sigma: float = 5.0) -> SyntheticVideo:
    """A copy of ``video`` with ``frames`` Gaussian-blurred (an 'external' cause of a miss)."""
    out = video.frames.clone()
    for k in frames:
        out[k] = gaussian_blur(out[k], sigma)
    return SyntheticVideo(out, video.boxes.copy(), {**video.attrs, "blurred_frames": list(frames),
                                                     "blur_sigma": sigma})


def training_batch(rng: np.random.Generator, batch_size: int,
                   config: TinyConfig = DEFAULT_CONFIG) -> tuple[list[Tensor], list[dict[str, Tensor]]]:
    """``batch_size`` images with one object each at a uniformly random sub-pixel position.

    Returns:
        images: list of (3, S, S) tensors; targets: list of {"boxes": (1, 4), "labels": (1,)}.
    """
    size, obj = config.image_size, config.object_size
    images, targets = [], []
    for _ in range(batch_size):
        background = textured_background(rng, size)
        x1, y1 = rng.uniform(0.5, size - obj - 0.5, size=2)
        box = (float(x1), float(y1), float(x1 + obj), float(y1 + obj))
        images.append(render(background, [box]))
        targets.append({"boxes": torch.tensor([box], dtype=torch.float32),
                        "labels": torch.tensor([1], dtype=torch.int64)})
    return images, targets
