"""RDM comparison methods: one :class:`Method` object per method, in one registry (:data:`METHODS`).

Each built-in method is one module here (``spearman``, ``pearson``, ``kendall_tau_a``, ``rho_a``, ``cosine``,
``whitened_pearson``, ``whitened_cosine``) holding its record ``METHOD``: definition, peers' names, similarity
and every optional capability (pooling for noise ceilings, the prepared fast path of bootstrap and permutation,
chunk sums for RDM stores, the rank kernel; see :mod:`rsa_bridge.methods.base`). The statistics ask the record
what it can do and never branch on its name; a capability a method lacks is a one-line
:class:`~rsa_bridge.errors.RSABridgeError` before any compute.

More methods come from

- :func:`register` (e.g. in a lab's own module, imported before use), or
- the entry-point group ``rsa_bridge.methods`` (an installed package's ``Method`` object, loaded at import).

This package imports only the standard library (the numeric code is imported when a method is called).

Example:
    >>> from rsa_bridge.methods import METHODS, get
    >>> METHODS.resolve("corr"), get("tau-a").bootstrap, get("spearman").chunkable
    ('pearson', 'masked', True)
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, Iterator, Mapping

from rsa_bridge.methods import (cosine, kendall_tau_a, pearson, rho_a, spearman, whitened_cosine,
                                whitened_pearson)
from rsa_bridge.methods.base import CAPABILITIES, KERNELS, SHIFTS, TRANSFORMS, Chunked, DotPath, Method
from rsa_bridge.registry import Registry

__all__ = ["CAPABILITIES", "Chunked", "DotPath", "KERNELS", "METHODS", "Method", "MethodRegistry", "SHIFTS",
           "TRANSFORMS", "get", "names_with", "register", "unregister", "view"]

#: the entry-point group of comparison-method plugins (each entry point names a :class:`Method`)
ENTRY_POINT_GROUP = "rsa_bridge.methods"


class MethodRegistry(Registry[Method]):
    """The comparison-method registry: :class:`Registry` semantics plus :meth:`register` / :meth:`unregister`."""

    def register(self, method: Method, *, replace: bool = False) -> Method:
        """Add ``method`` (and its aliases); a name or alias taken by another method is an RSABridgeError."""
        from rsa_bridge.errors import RSABridgeError

        if not isinstance(method, Method):
            raise RSABridgeError(f"a comparison method is registered as a rsa_bridge.methods.Method; got "
                                 f"{type(method).__name__}")
        if self._entries.get(method.name) is method:
            return method
        taken = {method.name, *method.aliases} & (set(self._entries) | set(self.aliases))
        if replace and method.name in self._entries:
            self.unregister(method.name)
            taken = {method.name, *method.aliases} & (set(self._entries) | set(self.aliases))
        if taken:
            raise RSABridgeError(f"comparison method {method.name!r}: the name(s) {', '.join(sorted(taken))} are "
                                 "already registered; choose another name (or replace=True)")
        self._entries[method.name] = method
        self.aliases.update({alias: method.name for alias in method.aliases})
        return method

    def unregister(self, name: str) -> None:
        """Remove a method and its aliases (e.g. at the end of a test)."""
        self._entries.pop(name)
        for alias in [a for a, target in self.aliases.items() if target == name]:
            del self.aliases[alias]


class RegistryView(Registry[Any]):
    """A live read-only view ``name -> select(method)`` of the methods for which ``keep(method)`` holds.

    Same lookups as :class:`Registry` (aliases, case, did-you-mean); it follows later registrations.
    """

    def __init__(self, what: str, select: Callable[[Method], Any], keep: Callable[[Method], bool] | None = None):
        self.what, self.hint = what, ""
        self._select, self._keep = select, keep or (lambda m: True)

    @property
    def _entries(self) -> dict[str, Any]:  # type: ignore[override]
        return {name: self._select(m) for name, m in METHODS._entries.items() if self._keep(m)}

    @property
    def aliases(self) -> dict[str, str]:  # type: ignore[override]
        entries = self._entries
        return {a: t for a, t in METHODS.aliases.items() if t in entries}

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, name: str) -> Any:
        method = METHODS[name]
        if not self._keep(method):
            raise KeyError(name)
        return self._select(method)


#: comparison method name -> its :class:`Method`; rsatoolbox's names (``corr``, ``tau-a`` ...) are aliases
METHODS = MethodRegistry("comparison method", {})
for _module in (spearman, pearson, kendall_tau_a, rho_a, cosine, whitened_pearson, whitened_cosine):
    METHODS.register(_module.METHOD)


def register(method: Method, *, replace: bool = False) -> Method:
    """Register a comparison method; it is then accepted everywhere a method name is (``--method`` too)."""
    return METHODS.register(method, replace=replace)


def unregister(name: str) -> None:
    """Remove a registered method (its aliases too)."""
    METHODS.unregister(name)


def get(method: str | Method) -> Method:
    """The :class:`Method` of a name or alias (case ignored); a Method is returned as it is."""
    return method if isinstance(method, Method) else METHODS.get_record(method)


def names_with(capability: str) -> tuple[str, ...]:
    """Names of the methods that have ``capability`` (a :data:`CAPABILITIES` field), in registry order."""
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}; one of {', '.join(CAPABILITIES)}")
    return tuple(name for name, m in METHODS.items() if m.has(capability))


def view(what: str, select: Callable[[Method], Any], keep: Callable[[Method], bool] | None = None) -> Registry:
    """A live :class:`RegistryView` of one part of every method (e.g. ``lambda m: m.similarity``)."""
    return RegistryView(what, select, keep)


def _load_plugins() -> None:
    """Register every :class:`Method` named in the ``rsa_bridge.methods`` entry-point group; a broken one warns."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            register(obj() if callable(obj) and not isinstance(obj, Method) else obj)
        except Exception as err:  # noqa: BLE001 - a broken plugin must not break the built-in methods
            warnings.warn(f"comparison-method plugin {ep.name!r} ({ep.value}) was not loaded: {err}",
                          RuntimeWarning, stacklevel=2)


_load_plugins()


def _check_names(entries: Mapping[str, Method]) -> None:  # pragma: no cover - a guard for edits
    assert all(name == m.name for name, m in entries.items())


_check_names(METHODS)
