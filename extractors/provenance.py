"""What a network *is*, for provenance: a label that cannot claim trained weights it does not carry.

rsa-bridge's weights vocabulary: an enum member name (``IMAGENET1K_V1``: torchvision's pretrained
file, exactly), ``none`` (untrained, initialised from a recorded seed), a file path (a state dict,
with its SHA-256), and **``user-module``**: an ``nn.Module`` the user built or changed, whose weights
rsa-bridge cannot vouch for. A user module is identified by the SHA-256 of its state dict
(:func:`state_dict_sha256`: names, dtypes, shapes and bytes of every parameter and buffer) and by
whether it was in training mode when it was handed over (extraction always runs it in eval mode).

A model from :func:`extractors.load_model` records the state-dict hash it was loaded with; if the
module's state differs later (fine-tuned, edited, weights swapped), it is a user module again. A
``transform=`` given by the caller is recorded by its repr, and it replaces the model's own
preprocessing in the record. Peers: thingsvision and Net2Brain record a model name and a weights
tag only; Brain-Score keys on an identifier string the submitter chooses.

    >>> import torch
    >>> record = module_provenance(torch.nn.Linear(2, 2))
    >>> record["weights"], len(record["state_sha256"])
    ('user-module', 64)
"""
from __future__ import annotations

import hashlib
from typing import Any

import torch
from torch import nn

#: weights label of a module rsa-bridge did not load itself (or that changed since)
USER_MODULE = "user-module"


def state_dict_sha256(model: nn.Module) -> str:
    """Hex SHA-256 over ``model.state_dict()``: each entry's name, dtype, shape and raw bytes, in order."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        if not isinstance(tensor, torch.Tensor):
            digest.update(f"{name}|{type(tensor).__name__}|{tensor!r}".encode())
            continue
        t = tensor.detach()
        if t.device.type == "meta":
            digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|meta".encode())
            continue
        t = t.to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        if t.numel():
            digest.update(t.reshape(-1).view(torch.uint8).numpy())  # the buffer itself: no copy of the weights
    return digest.hexdigest()


def describe_transform(transform: Any) -> str:
    """One-line repr of a transform (``ImageClassification(crop_size=[224], ...)``); ``none`` for None."""
    if transform is None:
        return "none"
    lines = [line.strip() for line in repr(transform).splitlines() if line.strip()]
    if len(lines) <= 2:
        return " ".join(lines)
    return lines[0] + ", ".join(lines[1:-1]) + lines[-1]


def module_provenance(model: nn.Module, transform: Any = None) -> dict[str, Any]:
    """The record of what ``model`` is, for attrs, tables and cache keys.

    Args:
        model: any ``nn.Module``; one from :func:`extractors.load_model` carries ``rsa_bridge_info``.
        transform: the caller's preprocessing (PIL image -> tensor), or None for the model's own.

    Returns:
        dict with ``model`` (name), ``weights`` (enum member, ``none``, a file path, or
        ``user-module``), ``weights_sha256`` (the weights file's hash, else ""), ``state_sha256``
        (the state dict's hash; always set for a user module), ``module_training`` (True when the
        module was in training mode when handed over), ``weights_origin`` (for a loaded model whose
        state changed since: what it was loaded as), ``transform`` (the given transform's repr, or
        None), ``preprocessing`` (what will actually prepare the pixels), ``seed``, ``source``.
    """
    from extractors.models import ModelInfo  # the ModelInfo record lives with the loaders

    info = getattr(model, "rsa_bridge_info", None)
    current = state_dict_sha256(model)
    given = None if transform is None else describe_transform(transform)
    record: dict[str, Any] = {"module_training": bool(model.training), "transform": given}
    if not isinstance(info, ModelInfo):
        record.update(model=type(model).__name__.lower(), weights=USER_MODULE, weights_sha256="",
                      state_sha256=current, preprocessing=given or "none", seed=None, source="user",
                      weights_origin=None)
        return record
    changed = bool(info.state_sha256) and info.state_sha256 != current
    record.update(
        model=info.name,
        weights=USER_MODULE if changed else info.weights,
        weights_sha256="" if changed else info.weights_sha256,
        state_sha256=current,
        weights_origin=f"loaded as {info.weights}, state changed since" if changed else None,
        preprocessing=given or info.preprocessing or "none",
        seed=None if changed else info.seed,
        source=info.source,
    )
    record.update(info.extra)
    return record
