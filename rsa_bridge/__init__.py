"""rsa-bridge: representational similarity analysis between deep networks and primate visual cortex.

The core (this package, less :mod:`rsa_bridge.app`) works on numpy arrays and xarray objects only; see
:mod:`extractors` for the hook layer and :mod:`rsa_bridge.app` for the end-to-end ``compare`` job, whose
entry points are also available here: :func:`compare_model`, :func:`compare_models`,
:func:`compare_precomputed`.

Names are imported on first use (PEP 562), so ``import rsa_bridge`` and the command line start fast.

Examples:
    >>> import rsa_bridge
    >>> sorted(rsa_bridge.METRICS)[:2]
    ['correlation', 'cosine']
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rsa_bridge import _siblings


def _warn_if_shadowed() -> None:
    import warnings

    for name, origin in _siblings.shadowed().items():
        warnings.warn(_siblings.message(name, origin), stacklevel=3)


_warn_if_shadowed()

#: public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "align_rdms": "rsa_bridge.align",
    "METHODS": "rsa_bridge.compare", "compare_rdms": "rsa_bridge.compare", "compare_vectors": "rsa_bridge.compare",
    "SHIPPED": "rsa_bridge.datasets", "list_datasets": "rsa_bridge.datasets", "load_dataset": "rsa_bridge.datasets",
    "save_dataset": "rsa_bridge.datasets", "validate_rdm_dataset": "rsa_bridge.datasets",
    "RSABridgeError": "rsa_bridge.errors",
    "compare_layers": "rsa_bridge.layer_scores", "select_datasets": "rsa_bridge.layer_scores",
    "read_model_rdms": "rsa_bridge.model_rdms",
    "set_progress": "rsa_bridge.progress",
    "package_version": "rsa_bridge.provenance",
    "METRICS": "rsa_bridge.rdm", "compute_rdm": "rsa_bridge.rdm", "upper_triangle": "rsa_bridge.rdm",
    # the application layer's entry points (imported only when asked for)
    "compare_model": "rsa_bridge.app.pipeline", "compare_models": "rsa_bridge.app.pipeline",
    "compare_precomputed": "rsa_bridge.app.pipeline",
    "RDMOptions": "rsa_bridge.options", "StatsOptions": "rsa_bridge.options",
    "NetworkOptions": "rsa_bridge.app.network",
    "CompareResult": "rsa_bridge.app.pipeline",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from rsa_bridge.provenance import package_version

        return package_version()
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rsa_bridge' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from rsa_bridge.align import align_rdms  # noqa: F401
    from rsa_bridge.compare import METHODS, compare_rdms, compare_vectors  # noqa: F401
    from rsa_bridge.datasets import SHIPPED, list_datasets, load_dataset, save_dataset, validate_rdm_dataset  # noqa
    from rsa_bridge.errors import RSABridgeError  # noqa: F401
    from rsa_bridge.layer_scores import compare_layers, select_datasets  # noqa: F401
    from rsa_bridge.model_rdms import read_model_rdms  # noqa: F401
    from rsa_bridge.progress import set_progress  # noqa: F401
    from rsa_bridge.rdm import METRICS, compute_rdm, upper_triangle  # noqa: F401
