"""The mask network G: image -> per-pixel mask in (0, 1) at the input resolution (sigmoid head).

The paper's G is a DRN-D-22 encoder with up-projection decoder blocks. :class:`TinyMaskNet` is a
small CPU-friendly stand-in with the same shape contract (a U-Net: three stride-2 encoder stages,
bilinear-upsampling decoder with skip connections, one-channel sigmoid head). Any ``nn.Module``
mapping (B, 3, H, W) normalised images to (B, 1, H, W) or (B, H, W) values in (0, 1) can be used
instead.

Optionally (``coords=True``, the default) two coordinate channels (row and column in [-1, 1]) are
appended to the input, so that a small network can express "keep this part of the frame" quickly;
DRN-size encoders learn position from content and padding, which a tiny network trained for a few
hundred steps on a CPU does slowly.
"""
from __future__ import annotations

from typing import Callable, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

M = TypeVar("M", bound=nn.Module)


def seeded(factory: Callable[[], M], seed: int) -> M:
    """Build a module with its random initialisation drawn from ``torch.manual_seed(seed)`` in a
    forked RNG: the caller's global torch RNG state is left exactly as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory()


def conv_block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    """3x3 convolution (padding 1) and ReLU."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.ReLU(inplace=True))


def coordinate_channels(x: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W): row and column coordinates of every pixel, each linearly from -1 to 1."""
    b, _, h, w = x.shape
    rows = torch.linspace(-1.0, 1.0, h, dtype=x.dtype, device=x.device)[:, None].expand(h, w)
    cols = torch.linspace(-1.0, 1.0, w, dtype=x.dtype, device=x.device)[None, :].expand(h, w)
    return torch.stack([rows, cols])[None].expand(b, 2, h, w)


def upsample_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Bilinear resize of ``x`` to the spatial size of ``like`` (align_corners=False)."""
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


def unet_features(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The shared encoder-decoder pass of the small U-Nets here: ``net`` has ``enc1..enc4`` (each halving
    or keeping the size) and ``dec3..dec1`` (each fed the upsampled deeper map concatenated with the skip).

    Returns the last decoder map (B, C, H1, W1) at ``enc1``'s resolution, before the network's head.
    """
    e1 = net.enc1(x)
    e2 = net.enc2(e1)
    e3 = net.enc3(e2)
    e4 = net.enc4(e3)
    d3 = net.dec3(torch.cat([upsample_to(e4, e3), e3], dim=1))
    d2 = net.dec2(torch.cat([upsample_to(d3, e2), e2], dim=1))
    return net.dec1(torch.cat([upsample_to(d2, e1), e1], dim=1))


class TinyMaskNet(nn.Module):
    """A small encoder-decoder with a sigmoid head: (B, 3, H, W) -> (B, 1, H, W) in (0, 1).

    Args:
        width: channels of the first stage (stages have width, 2 width, 4 width, 4 width).
        coords: append row/column coordinate channels to the input (see the module docstring).
        init_bias: initial bias of the head (0 -> every mask value starts near 0.5).
    """

    def __init__(self, width: int = 8, coords: bool = True, init_bias: float = 0.0) -> None:
        super().__init__()
        self.coords = coords
        w = width
        self.enc1 = conv_block(3 + (2 if coords else 0), w)
        self.enc2 = conv_block(w, 2 * w, stride=2)
        self.enc3 = conv_block(2 * w, 4 * w, stride=2)
        self.enc4 = conv_block(4 * w, 4 * w, stride=2)
        self.dec3 = conv_block(8 * w, 2 * w)
        self.dec2 = conv_block(4 * w, w)
        self.dec1 = conv_block(2 * w, w)
        self.head = nn.Conv2d(w, 1, 3, padding=1)
        nn.init.constant_(self.head.bias, init_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.coords:
            x = torch.cat([x, coordinate_channels(x)], dim=1)
        return torch.sigmoid(self.head(unet_features(self, x)))


def build_mask_net(seed: int = 0, **kwargs) -> TinyMaskNet:
    """A :class:`TinyMaskNet` initialised from ``seed`` (keyword arguments go to its constructor)."""
    return seeded(lambda: TinyMaskNet(**kwargs), seed)
