"""The one exception type that rsa-bridge raises for user errors.

A :class:`RSABridgeError` says what was wrong and what to do about it; the command line turns it
into one line on stderr and exit code 2. Internal bugs raise ordinary Python exceptions.
"""
from __future__ import annotations

# defined in the lowest layer so that StimulusError is an RSABridgeError (see stimuli.errors)
from stimuli.errors import RSABridgeError, StimulusError


#: Every exception type that signals a user error, for ``except USER_ERRORS``.
USER_ERRORS: tuple[type[Exception], ...] = (RSABridgeError, StimulusError)


def preview(ids, n: int = 5) -> str:
    """Format at most ``n`` ids for an error message: ``'a', 'b', ... (12 in all)``."""
    ids = list(ids)
    shown = ", ".join(repr(str(i)) for i in ids[:n])
    if len(ids) > n:
        shown += f", ... ({len(ids)} in all)"
    return shown
