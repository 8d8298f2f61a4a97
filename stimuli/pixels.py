"""Any decoded image -> 8-bit RGB by documented rules, so no pixel is silently saturated, blacked out or lost.

Every image a network sees goes through :func:`to_rgb` (via :func:`stimuli.read_image`):

==========================  ===============================================================================
image mode (Pillow)          conversion to uint8 RGB
==========================  ===============================================================================
``RGB``, ``L``, ``1``        as they are (grey copied to R, G and B; 1-bit black/white -> 0/255)
``P`` (palette)              through its palette; a palette with transparency is treated as alpha (below)
``CMYK``, ``YCbCr``, ...     Pillow's conversion to RGB (naive CMYK: R = 255 - C - K, clipped)
16-bit integer (``I;16*``)   by the full 16-bit range: v8 = round(v16 * 255 / 65535) (40000 -> 156)
32-bit integer (``I``)       by the 16-bit range when every value lies in 0..65535 (how Pillow holds 16-bit
                             PNGs); other values are refused
float (``F``)                values must lie in [0, 1] (non-finite values are refused): v8 = round(255 v);
                             a float image outside [0, 1] is refused (rescale it yourself: its range says
                             nothing about its meaning)
with alpha (``RGBA``, ``LA``  composited onto the background :data:`BACKGROUND` (mid grey 128, 128, 128):
``PA``, transparent ``P``)   out = alpha * colour + (1 - alpha) * background, rounded. An alpha that is
                             opaque everywhere changes nothing. ``alpha="refuse"`` raises instead.
==========================  ===============================================================================

Before any conversion the EXIF orientation tag (JPEG, TIFF, WebP, PNG ``eXIf``) is applied
(:func:`apply_exif_orientation`, Pillow's ``ImageOps.exif_transpose``): the network sees the image as a viewer
displays it, not the sensor's row order. Results record this as the attribute ``exif_orientation = "applied"``
(:data:`IMAGE_READING_ATTRS`).

Peers: torchvision's ``read_image(mode=RGB)`` drops alpha and keeps 16-bit as uint16; timm and Brain-Score
call Pillow's ``convert("RGB")``, which saturates 16-bit values at 255 and maps floats to 0.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

from stimuli.errors import StimulusError

#: the colour transparent pixels are composited onto (mid grey, the usual background of object stimuli)
BACKGROUND = (128, 128, 128)

#: what to do with a transparent image: composite onto ``background`` or refuse it
ALPHA_POLICIES = ("composite", "refuse")

#: provenance attributes of images read by :func:`to_rgb` (copied into results' attrs)
IMAGE_READING_ATTRS = {"exif_orientation": "applied"}
#: the EXIF tag number of Orientation (1 = as stored; 2..8 = mirrored and/or rotated)
EXIF_ORIENTATION_TAG = 0x0112

_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


def _grey_to_rgb(values: np.ndarray) -> Image.Image:
    grey = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return Image.fromarray(np.repeat(grey[..., None], 3, axis=-1))


def _high_depth(img: Image.Image, where: str) -> Image.Image:
    values = np.asarray(img)
    if img.mode in _SIXTEEN_BIT:
        return _grey_to_rgb(values.astype(np.float64) * (255.0 / 65535.0))
    if img.mode == "I":
        low, high = (int(values.min()), int(values.max())) if values.size else (0, 0)
        if low < 0 or high > 65535:
            raise StimulusError(f"{where}: 32-bit integer image with values {low}..{high}; rsa-bridge reads integer "
                                "images by the 16-bit range 0..65535; save it as 8- or 16-bit")
        return _grey_to_rgb(values.astype(np.float64) * (255.0 / 65535.0))
    values = values.astype(np.float64)  # mode "F"
    if not np.isfinite(values).all():
        raise StimulusError(f"{where}: float image with NaN or infinite values; replace them before use")
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if low < 0.0 or high > 1.0:
        raise StimulusError(f"{where}: float image with values {low:g}..{high:g}; rsa-bridge reads float images "
                            "as intensities in [0, 1]; rescale it to [0, 1] or save it as 8-bit")
    return _grey_to_rgb(values * 255.0)


def apply_exif_orientation(img: Image.Image) -> Image.Image:
    """``img`` turned the way its EXIF Orientation tag says it is displayed (the tag then removed).

    An image without the tag, or with Orientation 1, is returned as it is. Example: a 40 x 20 JPEG with
    Orientation 6 ("rotate 90 degrees clockwise to display") becomes 20 x 40.
    """
    try:
        orientation = img.getexif().get(EXIF_ORIENTATION_TAG, 1)
    except (OSError, ValueError, SyntaxError):  # a damaged EXIF block: the pixels as stored
        return img
    if orientation not in (2, 3, 4, 5, 6, 7, 8):
        return img
    return ImageOps.exif_transpose(img)


def to_rgb(img: Image.Image, where: str = "image", alpha: str = "composite",
           background: tuple[int, int, int] = BACKGROUND) -> Image.Image:
    """An 8-bit RGB copy of a loaded Pillow image, turned by its EXIF orientation, by the rules in the module docstring.

    Args:
        img: a loaded image of any mode.
        where: how to name the image in an error message (e.g. its path).
        alpha: ``"composite"`` (default) onto ``background`` or ``"refuse"`` a non-opaque image.
        background: RGB of the background, 0..255 each.

    Example: ``to_rgb(Image.fromarray(np.full((2, 2), 40000, np.uint16))).getpixel((0, 0)) == (156, 156, 156)``.
    """
    if alpha not in ALPHA_POLICIES:
        raise StimulusError(f"alpha must be one of {', '.join(ALPHA_POLICIES)}; got {alpha!r}")
    img = apply_exif_orientation(img)
    mode = img.mode
    if mode in _SIXTEEN_BIT or mode in ("I", "F"):
        return _high_depth(img, where)
    transparent = mode in _ALPHA_MODES or (mode in ("P", "L", "RGB") and "transparency" in img.info)
    if not transparent:
        return img.convert("RGB")
    rgba = np.asarray(img.convert("RGBA"), dtype=np.float64)
    a = rgba[..., 3:4] / 255.0
    if (a >= 1.0).all():
        return Image.fromarray(rgba[..., :3].astype(np.uint8))
    if alpha == "refuse":
        raise StimulusError(f"{where}: the image is transparent in places (alpha channel); flatten it onto a "
                            "background first, or read it with alpha='composite'")
    out = a * rgba[..., :3] + (1.0 - a) * np.asarray(background, dtype=np.float64)
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8))
