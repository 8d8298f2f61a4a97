"""Is ``import stimuli`` / ``extractors`` / ``analyses`` rsa-bridge's own package, or a folder that shadows it?

rsa-bridge installs four top-level packages (``rsa_bridge``, ``stimuli``, ``extractors``, ``analyses``).
A lab notebook whose working folder holds its own ``analyses/`` (a common name) comes first on
``sys.path`` and shadows ours: rsa-bridge's own imports of it would then fail with a confusing
``ModuleNotFoundError`` deep inside. Renaming the installed packages would break every user's imports,
so instead ``import rsa_bridge`` looks (without importing anything) where each sibling would be found
and, when it is not next to ``rsa_bridge``, warns once with the folder that shadows it and what to do.
The core itself never imports ``extractors`` or ``analyses``, so it keeps working either way.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

SIBLINGS = ("stimuli", "extractors", "analyses")


def _root(origin: str | None) -> Path | None:
    return Path(origin).resolve().parent.parent if origin else None


def shadowed() -> dict[str, str]:
    """Sibling package name -> where Python would import it from, for each one that is not rsa-bridge's."""
    ours = Path(__file__).resolve().parent.parent
    found: dict[str, str] = {}
    for name in SIBLINGS:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        origin = getattr(spec, "origin", None)
        if spec is None or _root(origin) != ours:
            found[name] = str(origin or (list(spec.submodule_search_locations or []) if spec else "nowhere"))
    return found


def message(name: str, origin: str) -> str:
    """One line saying which package is shadowed, by what, and what to do."""
    return (f"rsa-bridge: `import {name}` finds {origin}, not rsa-bridge's own {name!r} package; rsa-bridge's "
            f"{name} tools will fail in this process. Rename your folder {name!r} (or start Python from another "
            f"folder) to use them.")
