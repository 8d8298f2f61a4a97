"""Duplicate checks over ids in linear time (issue 30, item 5).

One helper for every "are these ids unique?" check in the core, so that 200,000 ids with one duplicate
are refused in milliseconds rather than in the minutes a ``list.count`` per id takes.

Example:
    >>> duplicates(["a", "b", "a", "c", "b", "a"])
    ['a', 'b']
    >>> duplicates(["x", "y"])
    []
"""
from __future__ import annotations

from collections import Counter
from typing import Hashable, Iterable


def duplicates(keys: Iterable[Hashable]) -> list:
    """The keys that occur more than once, each once, in the order of their first occurrence; O(n)."""
    return [k for k, c in Counter(keys).items() if c > 1]
