"""Id patterns such as ``'image{n:04d}'``: the only mini-language rsa-bridge reads from a command line for ids.

A pattern is checked with :class:`string.Formatter` before anything is formatted, so a few characters can
neither run attribute look-ups (``'{i.real.foo}'``) nor ask for a 300-million-character id
(``'{n:>300000000}'``). What is allowed:

* fields ``{n}`` (1-based position) and ``{i}`` (0-based position), at least one of them;
* no attribute or index access (``{n.real}``, ``{n[0]}``), no conversion (``{n!r}``);
* a format spec of at most an optional fill and alignment (``<``, ``>``, ``^``, ``=``), an optional ``0``
  (zero padding), a width up to :data:`MAX_WIDTH` and the integer type ``d``: ``{n:04d}``, ``{i:>6}``,
  ``{n:_<8d}``;
* literal text around the fields (``{{``/``}}`` for a literal brace), the whole pattern at most
  :data:`MAX_PATTERN` characters.

Every id is then at most ``len(pattern) + fields * MAX_WIDTH`` characters (positions below 10**64).

Example:
    >>> format_ids("image{n:04d}", 3)
    ['image0001', 'image0002', 'image0003']
    >>> format_ids("V4_{i:>3}", 2)
    ['V4_  0', 'V4_  1']
"""
from __future__ import annotations

import re
import string

from rsa_bridge.errors import RSABridgeError

#: the largest width a field may ask for
MAX_WIDTH = 64
#: the longest pattern accepted, in characters
MAX_PATTERN = 256
#: field name -> what it stands for
FIELDS = {"n": "1-based position", "i": "0-based position"}
_SPEC = re.compile(r"(?:(?P<fill>.)?(?P<align>[<>^=]))?(?P<zero>0)?(?P<width>[0-9]*)(?P<type>d?)", re.S)
ALLOWED = ("fields {n} (1-based) or {i} (0-based), optionally with fill/alignment, zero padding, a width "
           f"up to {MAX_WIDTH} and type d, e.g. 'image{{n:04d}}'")


def check_pattern(pattern: str, what: str = "ids") -> list[tuple[str, str]]:
    """The (field, spec) pairs of a pattern, or :class:`RSABridgeError` (one line) saying what is allowed."""

    def refuse(why: str) -> RSABridgeError:
        return RSABridgeError(f"bad {what} pattern {pattern[:80]!r}: {why}; allowed: {ALLOWED}")

    if len(pattern) > MAX_PATTERN:
        raise refuse(f"it is {len(pattern):,} characters, more than {MAX_PATTERN}")
    try:
        parts = list(string.Formatter().parse(pattern))
    except ValueError as err:  # unbalanced braces
        raise refuse(str(err)) from None
    fields = []
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in FIELDS:
            raise refuse(f"field {{{name}}} is not n or i (no attribute or index access, no positional fields)")
        if conversion is not None:
            raise refuse(f"conversion !{conversion} is not allowed")
        match = _SPEC.fullmatch(spec or "")
        if match is None or "{" in (spec or ""):
            raise refuse(f"format spec {spec!r} is not fill/align, 0, width and d")
        if match["width"] and int(match["width"]) > MAX_WIDTH:  # at most MAX_PATTERN digits: int() is cheap
            raise refuse(f"width {match['width'][:12]} is more than {MAX_WIDTH}")
        fields.append((name, spec or ""))
    if not fields:
        raise refuse("it has no {n} or {i} field, so every id would be the same")
    return fields


def format_ids(pattern: str, count: int, what: str = "ids") -> list[str]:
    """``count`` ids from a checked pattern (``{n}`` = k + 1, ``{i}`` = k for k = 0 .. count - 1)."""
    check_pattern(pattern, what)
    return [pattern.format(i=k, n=k + 1) for k in range(count)]
