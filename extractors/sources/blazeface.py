"""``blazeface`` (or ``mediapipe:blazeface``): MediaPipe's short-range BlazeFace, read from its TFLite file.

The network is written in PyTorch (:mod:`extractors.sources.blazeface_net`) and its float16 weights
are read from ``face_detection_short_range.tflite`` with the ``tflite`` package
(``pip install 'rsa-bridge[blazeface]'``); the file is never shipped with rsa-bridge.

Weights:

* a path ``FILE.tflite``: the file must be MediaPipe's (SHA-256 :data:`KNOWN_FILES`); another file is
  refused, since the network is only checked for that one.
* ``default``: the file named by the environment variable :data:`ENV` (a file, or a folder holding
  ``face_detection_short_range.tflite``); unset or missing is one error line saying where to put it.
* ``none``: untrained, PyTorch's initialisation under a private RNG seeded by ``seed``.
* another path: a PyTorch state-dict file of this network (e.g. fine-tuned), loaded strictly.

Preprocessing (``ModelInfo.transform``): resize to 128 x 128 (bilinear, aspect ratio not kept), RGB
scaled to [-1, 1]. Layers: ``block1`` ... ``block16`` = ``backbone.blocks.0`` ... ``.15``.

Example::

    >>> from extractors import load_model
    >>> net = load_model("blazeface", "path/to/face_detection_short_range.tflite")   # doctest: +SKIP
    >>> reg, logits = net(torch.zeros(1, 3, 128, 128))                                 # doctest: +SKIP
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from extractors.sources.blazeface_net import SHORT_RANGE, BlazeFace, config_and_state
from extractors.sources.common import attach, load_file, seeded
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.provenance import file_sha256

#: environment variable naming the .tflite file (or its folder) that ``--weights default`` reads
ENV = "RSA_BRIDGE_BLAZEFACE"
#: model name -> (file name, SHA-256) of the TFLite file it is checked against
KNOWN_FILES = {
    "blazeface": ("face_detection_short_range.tflite",
                  "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"),
}
WHERE = ("the file is in the PyPI wheel of mediapipe 0.10.14 at mediapipe/modules/face_detection/"
         "face_detection_short_range.tflite")


def _check_name(name: str) -> str:
    if name not in KNOWN_FILES:
        raise RSABridgeError(f"unknown BlazeFace model {name!r}; this source has {', '.join(KNOWN_FILES)}")
    return name


def _transform():
    from torchvision import transforms as T

    transform = T.Compose([T.Resize((128, 128), interpolation=T.InterpolationMode.BILINEAR, antialias=True),
                           T.ToTensor(), T.Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])])
    transform.crop_size = [128]  # the input side, read by extractors.shapes.input_size
    return transform


def default_file(name: str = "blazeface") -> Path:
    """The .tflite file ``--weights default`` reads: ``$RSA_BRIDGE_BLAZEFACE`` (file or folder); RSABridgeError if unset/missing."""
    filename, _ = KNOWN_FILES[_check_name(name)]
    text = os.environ.get(ENV, "").strip()
    if not text:
        raise RSABridgeError(f"BlazeFace weights are a TFLite file that rsa-bridge does not ship: pass --weights "
                             f"PATH/{filename} or set {ENV} to that file or its folder ({WHERE})")
    path = Path(text)
    path = path / filename if path.is_dir() else path
    if not path.is_file():
        raise RSABridgeError(f"{ENV}={text!r} names no file {filename}; put the file there or pass --weights "
                             f"PATH/{filename} ({WHERE})")
    return path


def read_tflite(path: str | Path, name: str = "blazeface") -> tuple[BlazeFace, str]:
    """The network with the weights of MediaPipe's .tflite file ``path``, and the file's SHA-256.

    Raises:
        RSABridgeError: the file is missing, is not the known file (SHA-256 differs), or tflite is missing.
    """
    filename, expected = KNOWN_FILES[_check_name(name)]
    path = Path(path)
    if not path.is_file():
        raise RSABridgeError(f"BlazeFace weights file {str(path)!r} does not exist; pass --weights PATH/{filename} "
                             f"({WHERE})")
    sha = file_sha256(path)
    if sha != expected:
        raise RSABridgeError(f"{str(path)!r} is not MediaPipe's {filename} (SHA-256 {sha[:12]}... instead of "
                             f"{expected[:12]}...); only that file's network is checked, pass that file")
    from extractors.sources.tflite_graph import read_graph

    config, state = config_and_state(read_graph(path))
    if config != SHORT_RANGE:  # cannot happen for the hashed file; guards a changed reader
        raise RuntimeError(f"graph of {path} reads as {config}, not the short-range BlazeFace")
    net = BlazeFace(config)
    net.load_state_dict(state, strict=True)
    return net, sha


def load(name: str, weights, device, seed: int) -> nn.Module:
    """``mediapipe:NAME`` with ``weights`` (see the module doc), on ``device``, eval mode."""
    _check_name(name)
    text = "none" if weights is None else str(weights).strip()
    recorded_seed, sha = None, ""
    if text.lower() == "none":
        net, label, recorded_seed = seeded(lambda: BlazeFace(SHORT_RANGE), seed), "none", seed
    elif text.lower() == "default" or text.lower().endswith(".tflite"):
        path = default_file(name) if text.lower() == "default" else Path(text)
        net, sha = read_tflite(path, name)
        label = str(path)
    else:
        path = Path(text)
        if not path.is_file():
            raise RSABridgeError(f"weights {text!r} for blazeface is neither default, none, a .tflite file nor an "
                                 "existing state-dict file")
        net = seeded(lambda: BlazeFace(SHORT_RANGE), seed)
        sha, label = load_file(net, path, "blazeface"), str(path)
    extra = {"input_size": 128, "input_range": "[-1, 1]", "anchors": 896}
    return attach(net.eval().to(device), name="blazeface", weights=label, source="mediapipe",
                  transform=_transform(), weights_sha256=sha, seed=recorded_seed, extra=extra)


def skeleton(name: str) -> nn.Module:
    """The untrained network (seed 0), for listing layers; needs no weights file."""
    return load(name, "none", torch.device("cpu"), 0)


def _source():
    from extractors.sources.registry import ModelSource

    return ModelSource(
        name="mediapipe", load=load, skeleton=skeleton, library=None, extra="rsa-bridge[blazeface]",
        weights_cache=f"a .tflite file passed with --weights, or ${ENV}",
        preprocessing="resize to 128 x 128 (bilinear), RGB scaled to [-1, 1]",
        offline=f"copy face_detection_short_range.tflite from the mediapipe 0.10.14 wheel and pass --weights PATH "
                f"or set {ENV}", bare_names=tuple(KNOWN_FILES))


SOURCE = _source()
