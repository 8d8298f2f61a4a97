"""Output shape and unit count of every module, inferred on the meta device (no weights, no data).

A meta tensor carries shape and dtype but no storage, so one forward pass of a model built on the
meta device (:func:`extractors.build_skeleton`) costs no memory and no arithmetic, and reads no
weights file. Input size: the crop size of the model's own preprocessing (224 for most torchvision
weights, 299 for Inception v3), else 224.

    >>> from extractors import build_skeleton
    >>> shapes = output_shapes(build_skeleton("alexnet"))
    >>> shapes["features.0"]
    (64, 55, 55)
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn


def input_size(model: nn.Module, default: int = 224) -> int:
    """Side of the square input the model's preprocessing produces (its ``crop_size``), else ``default``."""
    transform = getattr(getattr(model, "rsa_bridge_info", None), "transform", None)
    crop = getattr(transform, "crop_size", None)
    if isinstance(crop, (list, tuple)) and crop:
        return int(crop[0])
    return int(crop) if isinstance(crop, int) else default


def _describe(output: Any) -> tuple[int, ...] | str:
    if isinstance(output, torch.Tensor):
        return tuple(int(s) for s in output.shape[1:])
    return type(output).__name__  # a tuple / dict / None: not usable as one layer


def output_shapes(model: nn.Module, size: int | None = None) -> dict[str, tuple[int, ...] | str]:
    """Module path -> output shape without the batch dimension (or the output's type name when it is
    no tensor), for every module that runs in one forward pass of a (1, 3, size, size) meta input.

    The model must be on the meta device (see :func:`extractors.build_skeleton`); modules that do not
    run are absent. Returns an empty dict when the forward pass is impossible on the meta device.
    """
    return _meta_pass(model, size)[0]


def call_counts(model: nn.Module, size: int | None = None) -> dict[str, int]:
    """Module path -> how many times it runs in one forward pass (on the meta device, as
    :func:`output_shapes`); modules that run more than once are read per call (``V2@t``, ``V2@all``)."""
    return _meta_pass(model, size)[1]


def _meta_pass(model: nn.Module, size: int | None) -> tuple[dict[str, tuple[int, ...] | str], dict[str, int]]:
    side = size or input_size(model)
    found: dict[str, tuple[int, ...] | str] = {}
    counts: dict[str, int] = {}
    handles = []

    def hook(path: str):
        def store(_module, _inputs, output) -> None:  # returns None: the output is left unchanged
            found.setdefault(path, _describe(output))
            counts[path] = counts.get(path, 0) + 1
        return store

    for path, module in model.named_modules():
        if path:
            handles.append(module.register_forward_hook(hook(path)))
    try:
        with torch.no_grad():
            model(torch.empty(1, 3, side, side, device="meta"))
    except Exception:  # an operation without a meta kernel: shapes stay unknown, nothing else breaks
        return {}, {}
    finally:
        for handle in handles:
            handle.remove()
    return found, counts


def unit_count(shape: tuple[int, ...] | str) -> int | None:
    """Number of units of a layer output shape (product), None for a non-tensor output."""
    return math.prod(shape) if isinstance(shape, tuple) else None


@contextmanager
def parameters_on_meta():
    """Build on the CPU but move each parameter and buffer to the meta device as it is registered
    (for builders such as RegNet's that compute widths with real tensors): no weights are kept."""
    register_parameter, register_buffer = nn.Module.register_parameter, nn.Module.register_buffer

    def parameter(self, name, param):
        if param is not None and param.device.type != "meta":
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        register_parameter(self, name, param)

    def buffer(self, name, tensor, persistent=True):
        register_buffer(self, name, None if tensor is None else tensor.to("meta"), persistent)

    nn.Module.register_parameter, nn.Module.register_buffer = parameter, buffer
    try:
        yield
    finally:
        nn.Module.register_parameter, nn.Module.register_buffer = register_parameter, register_buffer
