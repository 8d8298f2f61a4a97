"""Token outputs of transformers as units: the class token, the mean over patch tokens, or all tokens.

A transformer block outputs (B, tokens, dim): a class token (and register tokens, ``num_prefix_tokens``
in all) followed by one token per image patch. ``--tokens`` chooses the units of such layers:

- ``all`` (the default, as for CNN feature maps): every token's every feature, flattened (tokens x dim);
- ``cls``: the first token only (dim units); an error for a layer without a class token;
- ``mean``: the mean over the patch tokens, prefix tokens excluded (dim units).

Swin feature maps (B, H, W, C, channels last) and MaxViT maps (B, C, H, W) have no class token: ``mean``
averages over positions (C units), ``cls`` is an error, ``all`` flattens. Layers that are neither
(convolution maps of a CNN, the logits) are left whole. The choice is recorded as ``token_pooling``.
Peers: timm's ``global_pool='token'|'avg'``, thingsvision's ``token`` / ``avg`` extraction options.

    >>> import torch
    >>> pool(torch.ones(2, 5, 8), "mean", "tokens", n_prefix=1).shape
    torch.Size([2, 8])
"""
from __future__ import annotations

import torch

from rsa_bridge.errors import RSABridgeError

MODES = ("all", "cls", "mean")


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise RSABridgeError(f"--tokens must be one of {', '.join(MODES)}; got {mode!r}")
    return mode


def layout_for(model, info, path: str, output: torch.Tensor) -> str | None:
    """``tokens``, ``nhwc``, ``nchw`` or None (leave whole) for the output of module ``path``."""
    from torchvision.models import MaxVit

    from extractors.families import layout_of, spec_for

    declared = layout_of(spec_for(model), path)
    if declared:
        return declared
    if isinstance(model, MaxVit) and path.startswith("blocks") and output.ndim == 4:
        return "nchw"
    if info.source in ("timm", "hf", "openclip") and output.ndim == 3:
        return "tokens"
    return None


def pool(output: torch.Tensor, mode: str, layout: str | None, n_prefix: int = 1, where: str = "") -> torch.Tensor:
    """The units of one layer's batch output under ``mode`` (see the module docstring)."""
    if mode == "all" or layout is None:
        return output
    if layout == "tokens":
        if output.ndim != 3:
            return output
        if mode == "cls":
            if n_prefix < 1:
                raise RSABridgeError(f"--tokens cls: {where} has no class token; use --tokens mean or all")
            return output[:, 0]
        return output[:, n_prefix:].mean(dim=1)
    if mode == "cls":
        raise RSABridgeError(f"--tokens cls: {where} is a feature map without a class token; "
                             "use --tokens mean or all")
    dims = (1, 2) if layout == "nhwc" else (2, 3)
    return output.mean(dim=dims)
