"""``rsa-bridge:NAME`` (or the bare ``NAME``): networks rsa-bridge builds itself, untrained (:mod:`extractors.cornet`)."""
from __future__ import annotations

from extractors.cornet import OWN_MODELS, cornet_skeleton, load_cornet
from extractors.sources.registry import ModelSource

SOURCE = ModelSource(
    name="rsa-bridge", load=load_cornet, skeleton=cornet_skeleton,
    weights_cache="none: untrained networks built here (--weights none, or --weights PATH to a state dict)",
    preprocessing="resize 256, centre crop 224, ImageNet mean/std (torchvision ImageClassification)",
    offline="nothing to download: build with --weights none or pass --weights PATH", bare_names=OWN_MODELS)
