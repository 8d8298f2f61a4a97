"""``openclip:ARCH`` or ``openclip:ARCH/PRETRAINED``: the image tower (``model.visual``) of an OpenCLIP model.

``ARCH`` is an ``open_clip.list_models()`` name (``ViT-B-32``, ``RN50``); ``PRETRAINED`` a tag from
``open_clip.list_pretrained()`` (``laion2b_s34b_b79k``). Weights: ``default`` needs the tag and reads
it from the Hugging Face hub cache (or downloads it; not with ``RSA_BRIDGE_OFFLINE=1``); ``none`` = the
architecture's random initialisation (seeded); a path = a state-dict file of the image tower, loaded
strictly. Preprocessing: OpenCLIP's own evaluation transform for the model (resize, centre crop,
CLIP mean/std). Label of pretrained weights: ``openclip:<ARCH>/<TAG>``.
"""
from __future__ import annotations

import difflib

from torch import nn

from extractors.sources.common import attach, first_line, hub_cache, load_file, offline, seeded, weights_kind
from extractors.sources.timm_source import hub_offline
from rsa_bridge.errors import RSABridgeError


def _parse(open_clip, name: str) -> tuple[str, str | None]:
    arch, _, tag = name.partition("/")
    if arch not in open_clip.list_models():
        close = difflib.get_close_matches(arch, open_clip.list_models(), n=4, cutoff=0.5)
        raise RSABridgeError(f"unknown model {arch!r} in source 'openclip'; close names: {', '.join(close) or 'none'} "
                             "(open_clip.list_models())")
    return arch, tag or None


def _build(open_clip, arch: str, tag: str | None, seed: int):
    model, _, preprocess = seeded(lambda: open_clip.create_model_and_transforms(arch, pretrained=tag), seed)
    return model.visual, preprocess


def load(name: str, weights, device, seed: int) -> nn.Module:
    import open_clip

    arch, tag = _parse(open_clip, name)
    kind, path = weights_kind(weights)
    sha, label, recorded_seed = "", "none", None
    if kind == "default":
        if tag is None:
            tags = ", ".join(t for a, t in open_clip.list_pretrained() if a == arch)[:200] or "none"
            raise RSABridgeError(f"openclip:{arch} names no pretrained tag; write openclip:{arch}/TAG (tags: {tags}) "
                                 "or pass --weights none for an untrained tower")
        try:
            with hub_offline(offline()):
                visual, preprocess = _build(open_clip, arch, tag, seed)
        except Exception as err:
            raise RSABridgeError(
                f"OpenCLIP weights {arch}/{tag} are not in the Hugging Face cache at {hub_cache()} and could not be "
                f"downloaded ({first_line(err)}); to supply them offline, copy that cache from a machine that ran "
                f"open_clip.create_model({arch!r}, pretrained={tag!r}) (or set HF_HOME to it), "
                "or pass --weights PATH (an image-tower state dict) or --weights none"
            ) from None
        label = f"openclip:{arch}/{tag}"
    else:
        visual, preprocess = _build(open_clip, arch, None, seed)
        if kind == "file":
            sha, label = load_file(visual, path, f"openclip:{arch} image tower"), str(path)
        else:
            recorded_seed = seed
    return attach(visual, name=f"openclip:{arch}", weights=label, source="openclip", transform=preprocess,
                  weights_sha256=sha, seed=recorded_seed)


def skeleton(name: str) -> nn.Module:
    import open_clip

    arch, _ = _parse(open_clip, name)
    visual, preprocess = _build(open_clip, arch, None, 0)
    return attach(visual, name=f"openclip:{arch}", weights="none", source="openclip", transform=preprocess, seed=0)


def _source():
    from extractors.sources.registry import ModelSource

    return ModelSource(
        name="openclip", load=load, skeleton=skeleton, library="open_clip", extra="rsa-bridge[openclip]",
        weights_cache="Hugging Face hub cache ($HF_HOME/hub)",
        preprocessing="OpenCLIP's evaluation transform of the model (resize, centre crop, CLIP mean/std)",
        offline="copy the Hugging Face cache of a machine that ran open_clip.create_model(ARCH, pretrained=TAG)")


SOURCE = _source()
