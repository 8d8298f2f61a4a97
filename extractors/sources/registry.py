"""The registry of model sources and the entry-point plugins that extend it.

A plugin package declares, in its ``pyproject.toml``::

    [project.entry-points."rsa_bridge.model_sources"]
    mylab = "mylab_models.rsa:SOURCE"      # a ModelSource, or a function returning one

and ``--model mylab:NAME`` then works. A plugin that fails to import, or names no ModelSource, is one
clear error line (exit 2 on the command line), never a traceback and never another model.
"""
from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable

from torch import nn

from rsa_bridge.errors import RSABridgeError

#: the entry-point group plugins register their sources in
ENTRY_POINT_GROUP = "rsa_bridge.model_sources"


@dataclass(frozen=True)
class ModelSource:
    """One source of models.

    Attributes:
        name: the prefix (``timm``).
        load: ``load(name, weights, device, seed) -> nn.Module`` with ``rsa_bridge_info`` set;
            ``weights`` is ``"default"``, ``"none"`` or a state-dict path.
        skeleton: ``skeleton(name) -> nn.Module`` without pretrained weights (for ``rsa-bridge layers``).
        weights_cache: where pretrained weights are looked for (for docs and error messages).
        preprocessing: how the source prepares images (for docs).
        offline: how to supply weights without a network (one sentence, used in error messages).
        library: the Python module the source needs (``timm``), or None.
        extra: the pip extra that installs it (``rsa-bridge[timm]``), or None.
        bare_names: model names that also work without the prefix (``blazeface`` for
            ``mediapipe:blazeface``); they must not be torchvision builders.
    """

    name: str
    load: Callable[[str, Any, Any, int], nn.Module]
    skeleton: Callable[[str], nn.Module]
    weights_cache: str
    preprocessing: str
    offline: str
    library: str | None = None
    extra: str | None = None
    bare_names: tuple[str, ...] = ()

    def require(self) -> Any:
        """Import the source's library; one line naming the extra when it is missing."""
        if self.library is None:
            return None
        try:
            return importlib.import_module(self.library)
        except ImportError as err:
            raise RSABridgeError(
                f"model source {self.name!r} needs the {self.library} library, which is not installed "
                f"({err}); install it with: pip install '{self.extra}'"
            ) from None


def _builtin() -> dict[str, ModelSource]:
    from extractors.sources import blazeface, hf, openclip, own, timm_source

    return {s.name: s for s in (timm_source.SOURCE, openclip.SOURCE, hf.SOURCE, blazeface.SOURCE, own.SOURCE)}


#: prefix -> source (built-ins; plugins are added by :func:`get_source` on first use)
SOURCES: dict[str, ModelSource] = _builtin()


def split_name(spec: str) -> tuple[str | None, str]:
    """``"timm:resnet18"`` -> ``("timm", "resnet18")``; ``"alexnet"`` -> ``(None, "alexnet")``."""
    if ":" not in spec:
        return None, spec
    prefix, _, name = spec.partition(":")
    if not name.strip():
        raise RSABridgeError(f"model {spec!r} names a source but no model; write SOURCE:NAME, e.g. timm:resnet18")
    return prefix.strip().lower(), name.strip()


def bare_spec(name: str) -> str | None:
    """``"blazeface"`` -> ``"mediapipe:blazeface"`` when a built-in source lists ``name`` in its bare names, else None."""
    for source in SOURCES.values():
        if name in source.bare_names:
            return f"{source.name}:{name}"
    return None


def _plugin(prefix: str) -> ModelSource | None:
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name.lower() != prefix:
            continue
        try:
            obj = ep.load()
            source = obj() if callable(obj) and not isinstance(obj, ModelSource) else obj
        except Exception as err:  # any failure of third-party code: one line, never a traceback
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            raise RSABridgeError(
                f"model source plugin {prefix!r} ({ep.value}) failed to load: {type(err).__name__}: {first}; "
                "fix or uninstall the package that registers it"
            ) from None
        if not isinstance(source, ModelSource):
            raise RSABridgeError(f"model source plugin {prefix!r} ({ep.value}) gave a {type(source).__name__}, "
                                 "not an extractors.sources.ModelSource")
        return source
    return None


def get_source(prefix: str) -> ModelSource:
    """The source for ``prefix``: built-in or plugin; RSABridgeError naming the known ones otherwise."""
    if prefix in SOURCES:
        return SOURCES[prefix]
    found = _plugin(prefix)
    if found is not None:
        SOURCES[prefix] = found
        return found
    known = sorted({*SOURCES, *(ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP))})
    close = difflib.get_close_matches(prefix, known, n=1)
    hint = f" (did you mean {close[0]}:?)" if close else ""
    raise RSABridgeError(
        f"unknown model source {prefix!r}{hint}; known sources: {', '.join(known)} (or no prefix for torchvision); "
        f"plugins register more in the entry-point group {ENTRY_POINT_GROUP!r}"
    )


def load_from_source(spec: str, weights: Any = "default", *, device: Any = "cpu", seed: int = 0) -> nn.Module:
    """Load ``SOURCE:NAME`` with ``weights`` (``default``, ``none`` or a state-dict path), in eval mode."""
    from extractors.models import check_device

    prefix, name = split_name(spec)
    source = get_source(prefix)
    source.require()
    dev = check_device(device)
    model = source.load(name, weights, dev, seed)
    return model.eval().to(dev)


def skeleton_from_source(spec: str) -> nn.Module:
    """``SOURCE:NAME`` without pretrained weights, for listing its layers."""
    prefix, name = split_name(spec)
    source = get_source(prefix)
    source.require()
    return source.skeleton(name).eval()
