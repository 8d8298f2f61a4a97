"""Errors raised by :mod:`stimuli` (kept free of imports from the rest of rsa-bridge).

:class:`RSABridgeError`, the one user-error type of the whole toolkit, is defined here, in the lowest
layer, so that :class:`StimulusError` can be one of them; :mod:`rsa_bridge.errors` re-exports it under
its public name. ``except RSABridgeError`` therefore also catches every stimulus-set error.
"""
from __future__ import annotations


class RSABridgeError(ValueError):
    """A problem with the user's input, data, weights or options (not a bug in rsa-bridge).

    Its text is always one line (line breaks of wrapped library messages become spaces), because the
    command line prints it as the one line on stderr.
    """

    def __str__(self) -> str:
        return " ".join(super().__str__().split())


RSABridgeError.__module__ = "rsa_bridge.errors"


class StimulusError(RSABridgeError):
    """A stimulus set is unusable: missing or unreadable image, bad manifest, duplicate id."""
