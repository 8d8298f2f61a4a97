"""Numbers on the command line: every numeric option is finite and inside documented bounds before any work.

``type=float`` accepts ``nan``, ``inf`` and ``1e308``; ``type=int`` accepts ``10**12``. Either can ask for
terabytes of memory or an endless loop a few lines later. Every numeric option of every sub-command
therefore uses :func:`count`, :func:`integer` or :func:`real` as its argparse ``type``: the value is checked
when the command line is parsed, and a bad one is one line and exit code 2 (``rsa-bridge compare: error:
argument --bootstrap: must be a whole number from 0 to 100000; got 1e12``). The bounds are part of the
option's help (argparse shows them with ``%(type)s``-free text built here). ``tests/test_cli_numbers.py``
walks every parser and fails on a bare ``int``/``float`` type, so a new option cannot skip the rule.

Bounds protect the machine, not the science: they are wide (a bootstrap of 100,000 samples, windows of a
day); the estimates of what an accepted value costs (memory, disk) are checked by the planners before the
compute.

Example::

    p.add_argument("--bootstrap", type=count("--bootstrap", maximum=100_000), default=1000)
    p.add_argument("--ci-level", type=real("--ci-level", minimum=0, maximum=1, open_ends=True))
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

from rsa_bridge.limits import MAX_SEED


@dataclass(frozen=True)
class NumberType:
    """An argparse ``type``: parses one number and checks it is finite and within ``[minimum, maximum]``.

    Attributes:
        option: the option's name, for messages.
        whole: a whole number is required (``"3"``, ``"3.0"`` and ``"1e3"`` are accepted, ``"2.5"`` is not).
        minimum, maximum: inclusive bounds (None: unbounded on that side, but always finite).
        open_ends: the bounds themselves are excluded (e.g. a CI level in (0, 1)).
    """

    option: str
    whole: bool
    minimum: float | None = None
    maximum: float | None = None
    open_ends: bool = False
    maximum_text: str | None = None  # how the maximum is written in messages (e.g. "2**63 - 1")

    @property
    def __name__(self) -> str:  # argparse names the type in some messages
        return "whole number" if self.whole else "number"

    def bounds_text(self) -> str:
        lo, hi = _fmt(self.minimum), self.maximum_text or _fmt(self.maximum)
        if self.minimum is not None and self.maximum is not None:
            return (f"between {lo} and {hi} (exclusive)" if self.open_ends else f"from {lo} to {hi}")
        if self.minimum is not None:
            return f"{'>' if self.open_ends else '>='} {lo}"
        if self.maximum is not None:
            return f"{'<' if self.open_ends else '<='} {hi}"
        return "finite"

    def __call__(self, text: str) -> int | float:
        kind = "a whole number" if self.whole else "a number"
        want = f"must be {kind} {self.bounds_text()}".replace(" finite", " (finite)")
        try:
            value = float(str(text).strip().replace("_", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{want}; got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{want}; got {text!r}")
        if self.whole:
            if value != int(value):
                raise argparse.ArgumentTypeError(f"{want}; got {text!r}")
            value = int(value)
            # beyond 2**53 a float is not exact: re-read the text as an integer where it is one
            if abs(value) > 2**53 and str(text).strip().lstrip("+-").isdigit():
                value = int(str(text).strip())
        low_bad = self.minimum is not None and (value <= self.minimum if self.open_ends else value < self.minimum)
        high_bad = self.maximum is not None and (value >= self.maximum if self.open_ends else value > self.maximum)
        if low_bad or high_bad:
            raise argparse.ArgumentTypeError(f"{want}; got {text!r}")
        return value


def _fmt(x: float | None) -> str:
    if x is None:
        return ""
    return f"{int(x):,}" if isinstance(x, int) or (float(x).is_integer() and abs(x) < 1e15) else f"{x:g}"


def count(option: str, maximum: int, minimum: int = 0) -> NumberType:
    """A count (samples, splits, folds, images ...): a whole number in ``[minimum, maximum]``."""
    return NumberType(option, whole=True, minimum=minimum, maximum=maximum)


def integer(option: str, minimum: int | None = None, maximum: int | None = None) -> NumberType:
    """A whole number in ``[minimum, maximum]`` (e.g. a seed: ``integer("--seed", 0, MAX_SEED)``)."""
    return NumberType(option, whole=True, minimum=minimum, maximum=maximum)


def seed(option: str = "--seed") -> NumberType:
    """A seed: a whole number from 0 to 2**63 - 1 (what NumPy, PyTorch and NetCDF attributes hold)."""
    return NumberType(option, whole=True, minimum=0, maximum=MAX_SEED, maximum_text="2**63 - 1")


def real(option: str, minimum: float | None = None, maximum: float | None = None,
         open_ends: bool = False) -> NumberType:
    """A finite real number in ``[minimum, maximum]`` (``open_ends``: in ``(minimum, maximum)``)."""
    return NumberType(option, whole=False, minimum=minimum, maximum=maximum, open_ends=open_ends)


__all__ = ["MAX_SEED", "NumberType", "count", "integer", "real", "seed"]
