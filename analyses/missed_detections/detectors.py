"""Load the detectors the analysis knows by short name (a registry), with known weights.

Real detectors come from :func:`extractors.load_model` (torchvision weights from the torch hub
cache or a download, ``"none"`` for an untrained seeded network, or a state-dict file);
missing pretrained weights raise :class:`~rsa_bridge.errors.RSABridgeError` with the offline
options. ``blazeface`` is MediaPipe's trained face detector read from its ``.tflite``
(:mod:`analyses.missed_detections.blazeface`); ``tiny`` is the synthetic-video SSD of
:mod:`analyses.missed_detections.synthetic`.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from torch import nn
from torchvision import models as tvm

from analyses.missed_detections.synthetic import build_tiny_detector
from extractors import ModelInfo, load_model, read_state_dict
from rsa_bridge.errors import RSABridgeError, preview
from rsa_bridge.provenance import file_sha256

#: short name -> torchvision builder name
TORCHVISION_DETECTORS: dict[str, str] = {
    "ssdlite320": "ssdlite320_mobilenet_v3_large",
    "ssd300": "ssd300_vgg16",
    "retinanet": "retinanet_resnet50_fpn",
    "retinanet_v2": "retinanet_resnet50_fpn_v2",
    "fasterrcnn": "fasterrcnn_resnet50_fpn",
    "fasterrcnn_v2": "fasterrcnn_resnet50_fpn_v2",
    "fasterrcnn_mobilenet": "fasterrcnn_mobilenet_v3_large_fpn",
}


def _load_tiny(weights: str | os.PathLike | None, device: str, seed: int) -> nn.Module:
    text = "none" if weights is None else str(weights)
    model = build_tiny_detector(seed=seed)
    sha = ""
    if text.strip().lower() == "default":
        raise RSABridgeError("the tiny synthetic detector has no pretrained weights; train one with "
                             "analyses.missed_detections.synthetic.train_tiny_detector, save its state_dict and "
                             "pass --weights PATH (or --weights none for an untrained one)")
    if text.strip().lower() != "none":
        path = Path(text)
        state = read_state_dict(path)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise RSABridgeError(f"weights file {text!r} does not fit the tiny detector ({str(err).splitlines()[0]}); "
                                 "pass a state dict saved from build_tiny_detector()") from None
        sha = file_sha256(path)
    model.rsa_bridge_info = ModelInfo(name="tiny", weights=text, weights_sha256=sha,
                                      seed=seed if text.lower() == "none" else None)
    return model.eval().to(device)


def _load_torchvision(name: str) -> Callable[..., nn.Module]:
    def load(weights: str | os.PathLike | None, device: str, seed: int) -> nn.Module:
        return load_model(name, weights, device=device, seed=seed)
    return load


def _load_blazeface(weights: str | os.PathLike | None, device: str, seed: int) -> nn.Module:
    from analyses.missed_detections.blazeface import load_blazeface_detector

    return load_blazeface_detector(weights, device=device, seed=seed)


#: short name -> loader(weights, device, seed)
DETECTORS: dict[str, Callable[..., nn.Module]] = {
    **{short: _load_torchvision(full) for short, full in TORCHVISION_DETECTORS.items()},
    "tiny": _load_tiny,
    "blazeface": _load_blazeface,
}

#: short name -> class names of a detector whose classes do not depend on its weights
FIXED_CATEGORIES: dict[str, list[str]] = {"blazeface": ["face"]}


def load_detector(name: str, weights: str | os.PathLike | None = "default", *, device: str = "cpu",
                  seed: int = 0) -> nn.Module:
    """An eval-mode detector by short name (:data:`DETECTORS`) with ``model.rsa_bridge_info``.

    Args:
        name: ``ssdlite320``, ``ssd300``, ``retinanet``, ``fasterrcnn``, ..., ``blazeface`` or ``tiny``.
        weights: ``"default"`` (torchvision's COCO weights; RSABridgeError when they are neither cached
            nor downloadable; for blazeface the .tflite named by ``$RSA_BRIDGE_BLAZEFACE``), ``"none"``
            (untrained, from ``seed``), a state-dict path or (blazeface) MediaPipe's ``.tflite`` file.
    """
    if name not in DETECTORS:
        raise RSABridgeError(f"unknown detector {name!r}; choose one of {preview(sorted(DETECTORS), 10)}")
    return DETECTORS[name](weights, device, seed)


def category_names(name: str, weights: str | os.PathLike | None) -> list[str] | None:
    """Class names of a detector (index = label): fixed ones, or a torchvision detector's pretrained weights'; or None."""
    if name in FIXED_CATEGORIES:
        return list(FIXED_CATEGORIES[name])
    if name not in TORCHVISION_DETECTORS or weights is None or str(weights).lower() == "none":
        return None
    enum = tvm.get_model_weights(TORCHVISION_DETECTORS[name])
    text = str(weights).strip()
    member = enum.DEFAULT if text.lower() == "default" else enum.__members__.get(text.split(".")[-1].upper())
    return list(member.meta["categories"]) if member is not None else None
