"""Errors raised by :mod:`stimuli` (kept free of imports from the rest of rsa-bridge)."""
from __future__ import annotations


class StimulusError(ValueError):
    """A stimulus set is unusable: missing or unreadable image, bad manifest, duplicate id."""
