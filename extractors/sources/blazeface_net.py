"""BlazeFace (Bazarevsky et al. 2019, arXiv 1907.05047) in PyTorch, built from a TFLite operator graph.

The short-range face detector of MediaPipe, ``face_detection_short_range.tflite``: a 128 x 128 RGB
input in [-1, 1] (channels first here, (B, 3, 128, 128)) -> regressors (B, 896, 16) and score
logits (B, 896, 1), one row per anchor (:mod:`extractors.sources.blazeface_anchors`).

Network (read off the graph, checked against :data:`SHORT_RANGE`):

* ``backbone.stem``: 5 x 5 convolution, stride 2, TF "SAME" padding, 3 -> 24 channels, ReLU.
* ``backbone.blocks``: 16 BlazeBlocks. Each: 3 x 3 depthwise convolution (stride 1 or 2, "SAME")
  -> 1 x 1 pointwise convolution (no activation between), plus a residual branch (2 x 2 max pool when
  the stride is 2; zero channels appended when the block widens), summed, then ReLU.
  "SAME" padding follows TensorFlow: total ``max((ceil(n/s) - 1) s + k - n, 0)``, the smaller half
  before, so a stride-2 3 x 3 convolution on an even size pads 0 before and 1 after (PyTorch's
  symmetric ``padding=1`` would shift the grid by one pixel).
* ``backbone`` returns the outputs of block 11 (88 x 16 x 16) and block 16 (96 x 8 x 8) as
  ``{"0": ..., "1": ...}``; ``head.classification_head`` and ``head.regression_head`` apply 1 x 1
  convolutions (2 and 6 anchors per cell) and flatten channels-last, row-major: anchor index
  ``offset_level + (y * W + x) * A + a``, exactly TFLite's RESHAPE of an NHWC tensor.

Example::

    >>> import torch
    >>> net = build_blazeface(SHORT_RANGE)
    >>> reg, logit = net(torch.zeros(1, 3, 128, 128))
    >>> tuple(reg.shape), tuple(logit.shape)
    ((1, 896, 16), (1, 896, 1))
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding (before, after) of one axis of length ``size``.

    >>> same_padding(64, 3, 2), same_padding(128, 5, 2), same_padding(16, 3, 1)
    ((0, 1), (1, 2), (1, 1))
    """
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow "SAME" padding computed from the input size (no built-in padding)."""

    def forward(self, x: Tensor) -> Tensor:
        top, bottom = same_padding(x.shape[-2], self.kernel_size[0], self.stride[0])
        left, right = same_padding(x.shape[-1], self.kernel_size[1], self.stride[1])
        return super().forward(F.pad(x, (left, right, top, bottom)))


class BlazeBlock(nn.Module):
    """Depthwise 3 x 3 (``stride``) -> pointwise 1 x 1, plus the residual (max-pooled, zero-channel-padded), ReLU.

    Args:
        in_channels, out_channels: C_in <= C_out; stride: 1 or 2.
    Shapes: (B, C_in, H, W) -> (B, C_out, ceil(H / stride), ceil(W / stride)).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        if out_channels < in_channels or stride not in (1, 2):
            raise ValueError(f"a BlazeBlock widens (C_out >= C_in) with stride 1 or 2; got {in_channels} -> "
                             f"{out_channels}, stride {stride}")
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.depthwise = SameConv2d(in_channels, in_channels, 3, stride=stride, groups=in_channels)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1)
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        residual = x
        if self.stride == 2:
            top, bottom = same_padding(x.shape[-2], 2, 2)
            left, right = same_padding(x.shape[-1], 2, 2)
            residual = F.max_pool2d(F.pad(x, (left, right, top, bottom), value=-math.inf), 2, 2)
        if self.out_channels > self.in_channels:
            residual = F.pad(residual, (0, 0, 0, 0, 0, self.out_channels - self.in_channels))
        return self.act(self.pointwise(self.depthwise(x)) + residual)


@dataclass(frozen=True)
class BlazeConfig:
    """The shape of a BlazeFace network.

    Attributes:
        stem: (out_channels, kernel, stride) of the first convolution.
        blocks: (in_channels, out_channels, stride) per BlazeBlock, in order.
        feature_blocks: 0-based indices of the blocks whose outputs feed the heads, one per level.
        anchors_per_cell: anchors per grid cell of each level.
        coords: regression values per anchor (4 box + 2 x keypoints).
        input_size: square input side in pixels.
    """

    stem: tuple[int, int, int]
    blocks: tuple[tuple[int, int, int], ...]
    feature_blocks: tuple[int, ...]
    anchors_per_cell: tuple[int, ...]
    coords: int = 16
    input_size: int = 128


#: MediaPipe's face_detection_short_range.tflite (checked against the file in tests)
SHORT_RANGE = BlazeConfig(
    stem=(24, 5, 2),
    blocks=((24, 24, 1), (24, 28, 1), (28, 32, 2), (32, 36, 1), (36, 42, 1), (42, 48, 2), (48, 56, 1),
            (56, 64, 1), (64, 72, 1), (72, 80, 1), (80, 88, 1), (88, 96, 2), (96, 96, 1), (96, 96, 1),
            (96, 96, 1), (96, 96, 1)),
    feature_blocks=(10, 15), anchors_per_cell=(2, 6))


class BlazeBackbone(nn.Module):
    """Stem + BlazeBlocks: (B, 3, S, S) in [-1, 1] -> {"0": block 11 output, "1": block 16 output}."""

    def __init__(self, config: BlazeConfig) -> None:
        super().__init__()
        out, kernel, stride = config.stem
        self.stem = nn.Sequential(SameConv2d(3, out, kernel, stride=stride), nn.ReLU())
        self.blocks = nn.Sequential(*(BlazeBlock(i, o, s) for i, o, s in config.blocks))
        self.feature_blocks = tuple(config.feature_blocks)

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        x = self.stem(x)
        feats: OrderedDict[str, Tensor] = OrderedDict()
        for k, block in enumerate(self.blocks):
            x = block(x)
            if k in self.feature_blocks:
                feats[str(len(feats))] = x
        return feats


class AnchorHead(nn.Module):
    """1 x 1 convolutions per level, flattened channels-last: list of (B, C_l, H_l, W_l) -> (B, N, values)."""

    def __init__(self, channels: list[int], anchors_per_cell: tuple[int, ...], values: int) -> None:
        super().__init__()
        self.values = values
        self.convs = nn.ModuleList(nn.Conv2d(c, a * values, 1) for c, a in zip(channels, anchors_per_cell,
                                                                                 strict=True))

    def forward(self, features: list[Tensor]) -> Tensor:
        out = [conv(f).permute(0, 2, 3, 1).reshape(f.shape[0], -1, self.values)
               for conv, f in zip(self.convs, features, strict=True)]
        return torch.cat(out, dim=1)


class BlazeHead(nn.Module):
    """``classification_head`` (score logits, (B, N, 1)) and ``regression_head`` ((B, N, coords))."""

    def __init__(self, config: BlazeConfig) -> None:
        super().__init__()
        channels = [config.blocks[k][1] for k in config.feature_blocks]
        self.classification_head = AnchorHead(channels, config.anchors_per_cell, 1)
        self.regression_head = AnchorHead(channels, config.anchors_per_cell, config.coords)


class BlazeFace(nn.Module):
    """The BlazeFace network: (B, 3, S, S) in [-1, 1] -> (regressors (B, N, coords), logits (B, N, 1)).

    Regressors are in input pixels relative to the anchor centre (x, y, w, h, then keypoint x, y
    pairs); decode them with :func:`extractors.sources.blazeface_anchors.decode_boxes`.
    """

    def __init__(self, config: BlazeConfig = SHORT_RANGE) -> None:
        super().__init__()
        self.config = config
        self.backbone = BlazeBackbone(config)
        self.head = BlazeHead(config)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        feats = list(self.backbone(x).values())
        return self.head.regression_head(feats), self.head.classification_head(feats)


def build_blazeface(config: BlazeConfig = SHORT_RANGE) -> BlazeFace:
    """An untrained :class:`BlazeFace` of shape ``config`` (PyTorch's default initialisation)."""
    return BlazeFace(config)


def _conv_weights(graph, op) -> tuple[np.ndarray, np.ndarray]:
    return graph.constant(op.inputs[1]), graph.constant(op.inputs[2])


def config_and_state(graph) -> tuple[BlazeConfig, dict[str, Tensor]]:
    """Read a BlazeFace graph (:class:`extractors.sources.tflite_graph.TFLiteGraph`) into a config and state dict.

    Walks the operators in order: the first CONV_2D is the stem; each DEPTHWISE_CONV_2D and the
    CONV_2D after it form a block; CONV_2Ds named ``classificator_*`` / ``regressor_*`` are the heads,
    attached to the block whose output they read. Kernels go from TFLite's channels-last layout to
    PyTorch's: conv (O, kH, kW, I) -> (O, I, kH, kW); depthwise (1, kH, kW, C) -> (C, 1, kH, kW).

    Raises:
        ValueError: the graph is not a BlazeFace of this form (unexpected operator, padding or layout).
    """
    convs = [op for op in graph.operators if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    def name(op) -> str:
        return graph.tensors[op.outputs[0]].name

    heads = [op for op in convs if name(op).startswith(("classificator", "regressor"))]
    body = [op for op in convs if not name(op).startswith(("classificator", "regressor"))]
    stem, rest = body[0], body[1:]
    if stem.kind != "CONV_2D" or stem.inputs[0] != graph.inputs[0] or len(rest) % 2:
        raise ValueError("the graph does not start with a stem convolution followed by depthwise/pointwise pairs")
    for op in body:  # a 1 x 1 convolution pads nothing either way; larger kernels must be SAME
        kernel = graph.tensors[op.inputs[1]].shape[1:3]
        if (op.options["padding"] != "SAME" and kernel != (1, 1)) or op.options["activation"] != "NONE":
            raise ValueError(f"{name(op)}: expected SAME padding without fused activation, got {op.options}")
    for op in graph.operators:  # the residual's channel padding appends zeros after the channels
        if op.kind == "PAD":
            pads = graph.constant(op.inputs[1]).astype(int)
            if pads[:3].any() or pads[3, 0] != 0:
                raise ValueError(f"PAD {graph.tensors[op.outputs[0]].name}: expected zeros appended to channels, "
                                 f"got paddings {pads.tolist()}")
    state: dict[str, Tensor] = {}
    k_stem, b_stem = _conv_weights(graph, stem)
    state["backbone.stem.0.weight"] = torch.from_numpy(k_stem.transpose(0, 3, 1, 2).copy())
    state["backbone.stem.0.bias"] = torch.from_numpy(b_stem)
    blocks, block_out = [], {}
    for k in range(0, len(rest), 2):
        dw, pw = rest[k], rest[k + 1]
        if dw.kind != "DEPTHWISE_CONV_2D" or pw.kind != "CONV_2D" or pw.inputs[0] != dw.outputs[0]:
            raise ValueError(f"operators {name(dw)}, {name(pw)} are not a depthwise -> pointwise pair")
        (k_dw, b_dw), (k_pw, b_pw) = _conv_weights(graph, dw), _conv_weights(graph, pw)
        i = len(blocks)
        blocks.append((int(k_dw.shape[-1]), int(k_pw.shape[0]), int(dw.options["stride"][0])))
        state[f"backbone.blocks.{i}.depthwise.weight"] = torch.from_numpy(k_dw.transpose(3, 0, 1, 2).copy())
        state[f"backbone.blocks.{i}.depthwise.bias"] = torch.from_numpy(b_dw)
        state[f"backbone.blocks.{i}.pointwise.weight"] = torch.from_numpy(k_pw.transpose(0, 3, 1, 2).copy())
        state[f"backbone.blocks.{i}.pointwise.bias"] = torch.from_numpy(b_pw)
        block_out[pw.outputs[0]] = i
    # the tensor a head reads is the ReLU after the block's ADD: map it back to the block
    relu_of = {}
    for op in graph.operators:
        if op.kind == "ADD":
            for t in op.inputs:
                if t in block_out:
                    relu_of[op.outputs[0]] = block_out[t]
        if op.kind == "RELU" and op.inputs[0] in relu_of:
            block_out[op.outputs[0]] = relu_of[op.inputs[0]]
    feature_blocks = sorted({block_out[op.inputs[0]] for op in heads})
    level = {b: n for n, b in enumerate(feature_blocks)}
    anchors = [0] * len(feature_blocks)
    for op in heads:
        kernel, bias = _conv_weights(graph, op)
        lvl, kind = level[block_out[op.inputs[0]]], "classification" if name(op).startswith("classif") else "regression"
        if kind == "classification":
            anchors[lvl] = int(kernel.shape[0])
        state[f"head.{kind}_head.convs.{lvl}.weight"] = torch.from_numpy(kernel.transpose(0, 3, 1, 2).copy())
        state[f"head.{kind}_head.convs.{lvl}.bias"] = torch.from_numpy(bias)
    coords = int(state["head.regression_head.convs.0.weight"].shape[0]) // anchors[0]
    size = graph.tensors[graph.inputs[0]].shape[1]
    config = BlazeConfig(stem=(int(k_stem.shape[0]), int(k_stem.shape[1]), int(stem.options["stride"][0])),
                         blocks=tuple(blocks), feature_blocks=tuple(feature_blocks),
                         anchors_per_cell=tuple(anchors), coords=coords, input_size=int(size))
    return config, state
