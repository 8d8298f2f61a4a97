"""``timm:NAME``: a model of the timm library (``timm.list_models()``; ``NAME.TAG`` picks pretrained weights).

Weights: ``default`` = the model's pretrained weights from timm's pretrained config, read from the
Hugging Face hub cache (``$HF_HOME/hub``) or downloaded (no download with ``RSA_BRIDGE_OFFLINE=1``);
a model without a pretrained config is an error, never random weights. ``none`` = timm's own random
initialisation under a seeded private RNG; a path = a state-dict file, loaded strictly.
Preprocessing: ``timm.data.create_transform(**resolve_data_config(model=model))`` (the weights' own
resize, crop, interpolation, mean and std). Label of pretrained weights: ``timm:<hf_hub_id or url>``.
"""
from __future__ import annotations

import difflib
import os
from contextlib import contextmanager

import torch
from torch import nn

from extractors.sources.common import attach, first_line, hub_cache, load_file, offline, seeded, weights_kind
from rsa_bridge.errors import RSABridgeError


@contextmanager
def hub_offline(active: bool):
    """Set ``HF_HUB_OFFLINE=1`` for the duration (when ``active``), so the hub library never downloads."""
    old = os.environ.get("HF_HUB_OFFLINE")
    if active:
        os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        if active:
            if old is None:
                os.environ.pop("HF_HUB_OFFLINE", None)
            else:
                os.environ["HF_HUB_OFFLINE"] = old


def _check(timm, name: str) -> None:
    arch = name.split(".")[0]
    if not timm.is_model(arch):
        close = difflib.get_close_matches(arch, timm.list_models(), n=4, cutoff=0.6)
        raise RSABridgeError(f"unknown model {arch!r} in source 'timm'; close names: {', '.join(close) or 'none'} "
                             f"(timm.list_models() lists {len(timm.list_models())})")


def _transform(timm, model: nn.Module):
    from timm.data import create_transform, resolve_data_config

    return create_transform(**resolve_data_config({}, model=model))


def load(name: str, weights, device, seed: int) -> nn.Module:
    import timm

    _check(timm, name)
    kind, path = weights_kind(weights)
    sha, label, recorded_seed = "", "none", None
    if kind == "default":
        cfg = timm.models.get_pretrained_cfg(name)
        where = cfg and (cfg.hf_hub_id or cfg.url or cfg.file)
        if not where:
            raise RSABridgeError(f"timm has no pretrained weights for {name!r}; pass --weights none or --weights PATH")
        try:
            with hub_offline(offline()):
                model = timm.create_model(name, pretrained=True)
        except Exception as err:  # download refused or failed, corrupt file: never random weights
            raise RSABridgeError(
                f"pretrained weights of timm:{name} ({where}) are not in the Hugging Face cache at {hub_cache()} and "
                f"could not be downloaded ({first_line(err)}); to supply them offline, run "
                f"timm.create_model({name!r}, pretrained=True) once on a machine with a network and copy that cache "
                "folder (or set HF_HOME to it), or pass --weights PATH to a state-dict file or --weights none"
            ) from None
        label = f"timm:{where}"
    else:
        model = seeded(lambda: timm.create_model(name, pretrained=False), seed)
        if kind == "file":
            sha, label = load_file(model, path, f"timm:{name}"), str(path)
        else:
            recorded_seed = seed
    extra = {"num_prefix_tokens": int(getattr(model, "num_prefix_tokens", 0) or 0)}
    return attach(model, name=f"timm:{name}", weights=label, source="timm", transform=_transform(timm, model),
                  weights_sha256=sha, seed=recorded_seed, extra=extra)


def skeleton(name: str) -> nn.Module:
    import timm

    _check(timm, name)
    try:
        with torch.device("meta"):
            model = timm.create_model(name, pretrained=False)
    except Exception:
        model = seeded(lambda: timm.create_model(name, pretrained=False), 0)
    extra = {"num_prefix_tokens": int(getattr(model, "num_prefix_tokens", 0) or 0)}
    return attach(model, name=f"timm:{name}", weights="none", source="timm", transform=_transform(timm, model),
                  seed=0, extra=extra)


def _source():
    from extractors.sources.registry import ModelSource

    return ModelSource(
        name="timm", load=load, skeleton=skeleton, library="timm", extra="rsa-bridge[timm]",
        weights_cache="Hugging Face hub cache ($HF_HOME/hub), files named by timm's pretrained config",
        preprocessing="timm.data.create_transform(**resolve_data_config(model=model)) (the weights' own)",
        offline="copy the Hugging Face cache of a machine that ran timm.create_model(NAME, pretrained=True)")


SOURCE = _source()
