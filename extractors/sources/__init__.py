"""Model sources: where a network comes from, by a prefix of its name (``timm:resnet18``).

One registry (:data:`SOURCES`, name -> :class:`ModelSource`) holds the built-in sources and, on first
use, those that installed packages declare in the entry-point group ``rsa_bridge.model_sources``
(see :mod:`extractors.sources.registry`), so a lab can add its own models without editing rsa-bridge.

======== ==================================== ============================ =================
prefix   name after the prefix                weights cache                extra
======== ==================================== ============================ =================
(none)   torchvision builder (``alexnet``)    ``$TORCH_HOME/hub/checkpoints`` (core)
timm     ``timm.list_models()`` name          Hugging Face hub cache       ``rsa-bridge[timm]``
openclip ``ARCH`` or ``ARCH/PRETRAINED``      Hugging Face hub cache       ``rsa-bridge[openclip]``
hf       repo id or local folder              Hugging Face hub cache       ``rsa-bridge[hf]``
======== ==================================== ============================ =================

``mediapipe:blazeface`` (also plain ``blazeface``): MediaPipe's BlazeFace face detector, built in PyTorch
from a ``.tflite`` file passed with ``--weights`` or named by ``$RSA_BRIDGE_BLAZEFACE``
(extra ``rsa-bridge[blazeface]``; see :mod:`extractors.sources.blazeface`).

Every source returns a module with :class:`extractors.ModelInfo` (weights label, preprocessing,
aliases) and never falls back to random weights: weights it cannot find are one
:class:`rsa_bridge.errors.RSABridgeError` line naming the cache and how to supply them offline.
"""
from extractors.sources.registry import (
    ENTRY_POINT_GROUP,
    SOURCES,
    ModelSource,
    bare_spec,
    get_source,
    load_from_source,
    skeleton_from_source,
    split_name,
)

__all__ = ["ENTRY_POINT_GROUP", "SOURCES", "ModelSource", "bare_spec", "get_source", "load_from_source",
           "skeleton_from_source", "split_name"]
