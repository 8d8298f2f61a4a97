"""Resource limits for untrusted input: archives, image sizes and memory, with documented defaults.

Every limit has a default that fits ordinary stimulus sets with a wide margin, and an environment
variable that overrides it (a plain number; sizes also take a suffix ``K``, ``M``, ``G``, ``T`` for
powers of 1024, e.g. ``RSA_BRIDGE_MAX_EXTRACT_BYTES=20G``):

==========================  =====================================  ==========================================
limit                        default                                environment variable
==========================  =====================================  ==========================================
archive: bytes extracted     4 GiB in all                           ``RSA_BRIDGE_MAX_EXTRACT_BYTES``
archive: members             100,000 files and folders              ``RSA_BRIDGE_MAX_EXTRACT_FILES``
archive: compression ratio   200 (uncompressed / compressed), per   ``RSA_BRIDGE_MAX_COMPRESSION_RATIO``
                             member and for the whole archive
image: pixels                50 million (e.g. 7071 x 7071)          ``RSA_BRIDGE_MAX_IMAGE_PIXELS``
memory for one step          80% of this machine's physical RAM     ``RSA_BRIDGE_MAX_MEMORY``
==========================  =====================================  ==========================================

Peers: Python's ``zipfile``/``tarfile`` docs warn about bombs but set no limits; Pillow's
``Image.MAX_IMAGE_PIXELS`` (89 million px, error at twice that) is the model for the image limit,
which rsa-bridge applies itself, before decoding, with a one-line error.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from stimuli.errors import StimulusError

_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(text: str | int | float, what: str = "size") -> int:
    """Bytes from ``'4G'``, ``'512M'``, ``'1000'`` (powers of 1024); a bad value is a :class:`StimulusError`."""
    raw = str(text).strip().upper().removesuffix("B").removesuffix("I")
    unit = raw[-1:] if raw[-1:] in _UNITS and raw[-1:] else ""
    try:
        value = float(raw[: len(raw) - len(unit)]) * _UNITS[unit]
    except ValueError:
        raise StimulusError(f"{what}: {text!r} is not a size; write e.g. 4G, 512M or 1000000") from None
    if not value >= 0 or value == float("inf"):
        raise StimulusError(f"{what}: {text!r} must be a size >= 0")
    return int(value)


def format_size(n_bytes: float) -> str:
    """``'58.2 TiB'``-style text for a byte count."""
    value = float(n_bytes)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"  # pragma: no cover


def _env_number(name: str, default: int, size: bool = False) -> int:
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    if size:
        return parse_size(text, name)
    try:
        value = int(float(text))
    except ValueError:
        raise StimulusError(f"{name}={text!r} is not a number; write a whole number such as 100000") from None
    except OverflowError:  # inf
        raise StimulusError(f"{name}={text!r} must be a finite whole number >= 1") from None
    if value < 1:
        raise StimulusError(f"{name}={text!r} must be >= 1")
    return value


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds on what one archive may extract to (see the module docstring for the defaults)."""

    max_bytes: int = 4 * 1024**3
    max_files: int = 100_000
    max_ratio: float = 200.0

    @classmethod
    def from_env(cls) -> "ArchiveLimits":
        """The defaults, overridden by ``RSA_BRIDGE_MAX_EXTRACT_BYTES/_FILES`` and ``..._COMPRESSION_RATIO``."""
        d = cls()
        return cls(max_bytes=_env_number("RSA_BRIDGE_MAX_EXTRACT_BYTES", d.max_bytes, size=True),
                   max_files=_env_number("RSA_BRIDGE_MAX_EXTRACT_FILES", d.max_files),
                   max_ratio=float(_env_number("RSA_BRIDGE_MAX_COMPRESSION_RATIO", int(d.max_ratio))))


DEFAULT_MAX_IMAGE_PIXELS = 50_000_000


def max_image_pixels() -> int:
    """The largest image (width x height) rsa-bridge decodes: ``RSA_BRIDGE_MAX_IMAGE_PIXELS`` or 50 million."""
    return _env_number("RSA_BRIDGE_MAX_IMAGE_PIXELS", DEFAULT_MAX_IMAGE_PIXELS)


def check_image_pixels(width: int, height: int, where: str) -> None:
    """Refuse an image larger than :func:`max_image_pixels` before it is decoded."""
    limit = max_image_pixels()
    if int(width) * int(height) > limit:
        raise StimulusError(f"{where}: {width} x {height} = {int(width) * int(height):,} pixels is more than the "
                            f"limit of {limit:,} (a decompression bomb?); shrink the image, or raise "
                            "RSA_BRIDGE_MAX_IMAGE_PIXELS if you trust it")


def memory_budget() -> int:
    """Bytes one step may allocate: ``RSA_BRIDGE_MAX_MEMORY`` (e.g. ``16G``) or 80% of physical memory."""
    text = os.environ.get("RSA_BRIDGE_MAX_MEMORY")
    if text and text.strip():
        return parse_size(text, "RSA_BRIDGE_MAX_MEMORY")
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: assume 16 GiB
        total = 16 * 1024**3
    return int(0.8 * total)


def check_memory(n_bytes: float, what: str, advice: str, error: type[Exception] = StimulusError) -> None:
    """Refuse a step that would need more than :func:`memory_budget`: one line saying how much and what to do.

    Args:
        n_bytes: the estimate (bytes), e.g. ``n_samples * n_stimuli * 8``.
        what: what needs it, e.g. ``"--bootstrap 1000000000000"``.
        advice: what to change, e.g. ``"use fewer samples, e.g. --bootstrap 1000"``.
        error: the exception type to raise (rsa_bridge passes its ``RSABridgeError``).
    """
    budget = memory_budget()
    if n_bytes > budget:
        raise error(f"{what} needs about {format_size(n_bytes)} of memory, more than the limit of "
                    f"{format_size(budget)} (80% of RAM, or RSA_BRIDGE_MAX_MEMORY); {advice}")
