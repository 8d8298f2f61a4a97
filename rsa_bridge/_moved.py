"""Old import paths of modules that moved to :mod:`rsa_bridge.app`, kept working as aliases.

``import rsa_bridge.pipeline`` gives the very module object ``rsa_bridge.app.pipeline`` (so monkeypatching
either name patches both). The alias is resolved on import through a finder on ``sys.meta_path`` rather
than a static import, so the core package never imports the application layer itself.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

#: old module name -> new module name
MOVED: dict[str, str] = {
    "rsa_bridge.pipeline": "rsa_bridge.app.pipeline",
    "rsa_bridge.cache": "rsa_bridge.app.cache",
    "rsa_bridge.distributed": "rsa_bridge.app.distributed",
    "rsa_bridge.report": "rsa_bridge.app.report",
    "rsa_bridge.cli": "rsa_bridge.app.cli",
    "rsa_bridge.commands": "rsa_bridge.app.commands",
}


def _target(name: str) -> str | None:
    for old, new in MOVED.items():
        if name == old or name.startswith(old + "."):
            return new + name[len(old):]
    return None


class _AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old names and loads them as the new modules."""

    def find_spec(self, fullname, path=None, target=None):  # noqa: D102
        new = _target(fullname)
        if new is None:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):  # noqa: D102
        return None  # a placeholder; exec_module swaps in the real module

    def exec_module(self, module):  # noqa: D102
        real = importlib.import_module(_target(module.__name__))
        sys.modules[module.__name__] = real  # the import system hands back what sys.modules holds


def install() -> None:
    """Put the alias finder first on ``sys.meta_path`` (once), so that submodules of a moved package
    (``rsa_bridge.commands.compare``) are aliased too instead of being loaded a second time."""
    if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _AliasFinder())
