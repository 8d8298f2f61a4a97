"""Named choices: one lookup, one error message, one set of aliases for every registry.

A :class:`Registry` is a read-only mapping ``name -> record`` (an RDM metric, a comparison method, a
file format, a brain area ...). :meth:`Registry.resolve` turns what a user typed into the canonical
name:

1. the name itself;
2. an alias (e.g. rsatoolbox's ``corr`` for ``pearson``);
3. a name that differs only in case (``it`` -> ``IT``) when exactly one entry matches;

and otherwise raises :class:`~rsa_bridge.errors.RSABridgeError` with one message built by
:func:`unknown_name`: ``unknown comparison method 'pearsn'; choose one of cosine, pearson, ...;
did you mean 'pearson'?`` (close names found with :func:`difflib.get_close_matches`).

The command line uses the same object: :meth:`Registry.argparse_choices` for argparse ``choices`` (shown in
``--help``) and :meth:`Registry.argparse_type` to turn aliases into canonical names there; an unknown name
reaches the library, whose :class:`RSABridgeError` is one line and exit code 2. This module imports only the standard library,
so building a parser from a registry stays fast.

Example::

    >>> r = Registry("colour", {"red": 1, "green": 2}, aliases={"rot": "red"})
    >>> r.resolve("Red"), r.resolve("rot")
    ('red', 'red')
    >>> r.resolve("gren")
    Traceback (most recent call last):
    ...
    rsa_bridge.errors.RSABridgeError: unknown colour 'gren'; choose one of red, green; did you mean 'green'?
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from typing import Generic, TypeVar

from rsa_bridge.errors import RSABridgeError

T = TypeVar("T")


def close_matches(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Up to ``n`` candidates close to ``name`` (difflib ratio >= 0.6, >= 0.5 for names of up to 4
    characters such as areas, case ignored), best first."""
    candidates = list(dict.fromkeys(str(c) for c in candidates))
    by_lower: dict[str, str] = {}
    for c in candidates:
        by_lower.setdefault(c.lower(), c)
    found = difflib.get_close_matches(str(name).lower(), list(by_lower), n=n, cutoff=0.5 if len(str(name)) <= 4 else 0.6)
    return [by_lower[f] for f in found]


def unknown_name(what: str, name: object, choices: Iterable[str], *, candidates: Iterable[str] | None = None,
                 aliases: Mapping[str, str] | None = None, hint: str = "") -> str:
    """The message for an unknown name: ``unknown WHAT 'NAME'; choose one of A, B, C; did you mean 'B'?``.

    Args:
        what: what the name names (``comparison method``, ``RDM metric``, ``area`` ...).
        name: what the user gave.
        choices: the valid names, listed in the message in the given order.
        candidates: names to search for a close match (default ``choices``).
        aliases: alias -> canonical name; aliases are searched too and a close alias is suggested as the
            name it stands for.
        hint: appended after ``; `` (e.g. where to find the full list).
    """
    choices = [str(c) for c in choices]
    message = f"unknown {what} {str(name)!r}; choose one of {', '.join(choices) if choices else '(none)'}"
    aliases = dict(aliases or {})
    pool = [*(choices if candidates is None else candidates), *aliases]
    close = close_matches(str(name), pool, n=1)
    if close:
        message += f"; did you mean {aliases.get(close[0], close[0])!r}?"
    if hint:
        message += f" ({hint})"
    return message


class Registry(Mapping[str, T], Generic[T]):
    """A read-only ``name -> record`` mapping whose lookups accept aliases and case variants.

    Args:
        what: singular noun for messages (``comparison method``).
        entries: canonical name -> record, in the order they are listed to users.
        aliases: other name -> canonical name (peers' names, old names).
        hint: added to the unknown-name message.

    ``name in registry`` and ``registry[name]`` accept canonical names only (dict semantics); use
    :meth:`resolve` / :meth:`get_record` for what a user typed.
    """

    def __init__(self, what: str, entries: Mapping[str, T], *, aliases: Mapping[str, str] | None = None,
                 hint: str = "") -> None:
        self.what = what
        self._entries = dict(entries)
        self.aliases = dict(aliases or {})
        self.hint = hint
        for alias, target in self.aliases.items():
            if target not in self._entries:
                raise ValueError(f"alias {alias!r} of {what} points to unknown {target!r}")

    def __getitem__(self, name: str) -> T:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.what!r}, {list(self._entries)})"

    def choices(self) -> list[str]:
        """The canonical names, in registry order (argparse ``choices``)."""
        return list(self._entries)

    def resolve(self, name: object) -> str:
        """The canonical name for ``name`` (itself, an alias, or a case variant); RSABridgeError otherwise."""
        key = str(name)
        if key in self._entries:
            return key
        if key in self.aliases:
            return self.aliases[key]
        folded = [n for n in self._entries if n.lower() == key.lower()]
        folded += [self.aliases[a] for a in self.aliases if a.lower() == key.lower()]
        folded = list(dict.fromkeys(folded))
        if len(folded) == 1:
            return folded[0]
        raise RSABridgeError(self.message(key))

    def message(self, name: object) -> str:
        """The unknown-name message for ``name`` (a close alias is suggested as its canonical name)."""
        return unknown_name(self.what, name, self._entries, aliases=self.aliases, hint=self.hint)

    def get_record(self, name: object) -> T:
        """The record of ``name`` after :meth:`resolve`."""
        return self._entries[self.resolve(name)]

    def argparse_type(self, value: str) -> str:
        """``type=`` for argparse: the canonical name of a known name or alias; an unknown name is passed
        on unchanged, so the library refuses it with the one-line RSABridgeError (exit code 2 and a
        "did you mean") instead of argparse's usage block."""
        try:
            return self.resolve(value)
        except RSABridgeError:
            return str(value)

    def argparse_choices(self) -> "ShownChoices":
        """``choices=`` for argparse: shows the canonical names in usage and help, refuses nothing (the
        library does, see :meth:`argparse_type`)."""
        return ShownChoices(self._entries)


class ShownChoices(list):
    """A list of names that argparse shows as ``{a,b,c}`` but that contains every value (the check is
    left to :meth:`Registry.resolve`, which says "did you mean")."""

    def __contains__(self, value: object) -> bool:
        return True


def resolve_name(what: str, name: object, choices: Iterable[str], hint: str = "") -> str:
    """Resolve ``name`` against plain ``choices`` (exact, then case-insensitive), as :meth:`Registry.resolve`."""
    return Registry(what, {str(c): None for c in choices}, hint=hint).resolve(name)
