"""``hf:REPO_ID``: a Hugging Face transformers vision model (``AutoModel``) and its image processor.

``REPO_ID`` is a hub id (``google/vit-base-patch16-224-in21k``) or a local folder written by
``save_pretrained``. Weights: ``default`` = the repo's weights, from the Hugging Face hub cache (or
downloaded; ``RSA_BRIDGE_OFFLINE=1`` reads the cache only); a checkpoint whose keys do not cover the
architecture is an error (transformers would initialise the missing weights at random). ``none`` =
``AutoModel.from_config`` under a seeded RNG. Preprocessing: the repo's ``AutoImageProcessor``
(its resize, crop, rescale and normalisation), one image at a time. Label: ``hf:<REPO_ID>``.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from extractors.sources.common import attach, first_line, hub_cache, load_file, offline, seeded, weights_kind
from rsa_bridge.errors import RSABridgeError


class ProcessorTransform:
    """PIL image -> tensor (3, H, W) through a transformers image processor."""

    def __init__(self, processor: Any):
        self.processor = processor

    def __call__(self, image) -> torch.Tensor:
        return self.processor(images=image, return_tensors="pt")["pixel_values"][0]

    def __repr__(self) -> str:
        keys = ("do_resize", "size", "do_center_crop", "crop_size", "do_rescale", "rescale_factor",
                "do_normalize", "image_mean", "image_std", "resample")
        settings = ", ".join(f"{k}={getattr(self.processor, k)!r}" for k in keys if hasattr(self.processor, k))
        return f"{type(self.processor).__name__}({settings})"


def _fail(repo: str, what: str, err: BaseException) -> RSABridgeError:
    return RSABridgeError(
        f"hf:{repo}: {what} is not in the Hugging Face cache at {hub_cache()} (or the folder) and could not be "
        f"downloaded ({first_line(err)}); to supply it offline, copy the cache of a machine that ran "
        f"AutoModel.from_pretrained({repo!r}) (or set HF_HOME to it), or pass a local folder written by "
        "save_pretrained, or --weights none"
    )


def _parts(repo: str):
    from transformers import AutoConfig, AutoImageProcessor

    local = offline()
    try:
        config = AutoConfig.from_pretrained(repo, local_files_only=local)
    except Exception as err:
        raise _fail(repo, "its config", err) from None
    try:
        processor = AutoImageProcessor.from_pretrained(repo, local_files_only=local)
    except Exception as err:
        raise _fail(repo, "its image processor", err) from None
    return config, ProcessorTransform(processor)


def _prefix_tokens(model: nn.Module) -> int:
    """Tokens before the patch tokens: a class token (ViT, DeiT, BEiT, DINOv2) plus any register tokens."""
    embeddings = getattr(model, "embeddings", None)
    registers = getattr(embeddings, "register_tokens", None)
    return int(getattr(embeddings, "cls_token", None) is not None) + (int(registers.shape[1]) if registers is not None
                                                                       else 0)


def load(name: str, weights, device, seed: int) -> nn.Module:
    from transformers import AutoModel

    config, transform = _parts(name)
    kind, path = weights_kind(weights)
    sha, label, recorded_seed = "", "none", None
    if kind == "default":
        try:
            model, info = AutoModel.from_pretrained(name, local_files_only=offline(), output_loading_info=True)
        except Exception as err:
            raise _fail(name, "its weights", err) from None
        missing = list(info.get("missing_keys", []))
        if missing:
            raise RSABridgeError(f"hf:{name}: the checkpoint's keys do not match the architecture: "
                                 f"{len(missing)} weights missing ({', '.join(missing[:3])}), which transformers "
                                 "would initialise at random; use a checkpoint of this architecture")
        label = f"hf:{name}"
    else:
        model = seeded(lambda: AutoModel.from_config(config), seed)
        if kind == "file":
            sha, label = load_file(model, path, f"hf:{name}"), str(path)
        else:
            recorded_seed = seed
    return attach(model, name=f"hf:{name}", weights=label, source="hf", transform=transform, weights_sha256=sha,
                  seed=recorded_seed, extra={"num_prefix_tokens": _prefix_tokens(model)})


def skeleton(name: str) -> nn.Module:
    from transformers import AutoModel

    config, transform = _parts(name)
    model = seeded(lambda: AutoModel.from_config(config), 0)
    return attach(model, name=f"hf:{name}", weights="none", source="hf", transform=transform, seed=0,
                  extra={"num_prefix_tokens": _prefix_tokens(model)})


def _source():
    from extractors.sources.registry import ModelSource

    return ModelSource(
        name="hf", load=load, skeleton=skeleton, library="transformers", extra="rsa-bridge[hf]",
        weights_cache="Hugging Face hub cache ($HF_HOME/hub) or a save_pretrained folder",
        preprocessing="the repo's AutoImageProcessor (resize, crop, rescale, normalise)",
        offline="copy the Hugging Face cache, or pass a local save_pretrained folder")


SOURCE = _source()
