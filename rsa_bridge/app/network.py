"""Which networks ``compare`` scores and what they read: :class:`NetworkOptions`, one object instead of six keywords.

:func:`rsa_bridge.app.pipeline.compare_models` / :func:`~rsa_bridge.app.pipeline.compare_model` take the
network's weights, layers, built modules, image transform, token pooling, stimulus folder and model-RDM cache
as one ``network=NetworkOptions(...)`` (as they take ``rdm=RDMOptions(...)`` and ``stats=StatsOptions(...)``).
The old keywords (``weights=``, ``layers=``, ``models=``/``model=``, ``transform=``, ``tokens=``, ``stimuli=``,
``cache=``) still work for one release, with one DeprecationWarning (:func:`network_from_keywords`).

Example:
    >>> from rsa_bridge.app.network import NetworkOptions
    >>> NetworkOptions(weights="none", layers=["conv1", "fc8"]).layers
    ('conv1', 'fc8')
    >>> NetworkOptions(layers=[])
    Traceback (most recent call last):
    ...
    rsa_bridge.errors.RSABridgeError: layers is empty; name layers, e.g. layers=["conv1", "fc6"], or leave it None for the model's default layers
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, fields, replace
from typing import Any, Mapping, Sequence

from rsa_bridge.errors import RSABridgeError

__all__ = ["NetworkOptions"]  # network_from_keywords / split_keywords: the pipeline's helpers


@dataclass(frozen=True)
class NetworkOptions:
    """The networks of a ``compare`` job and what they read.

    Attributes:
        weights: ``"default"`` (torchvision enum, from the local cache), ``"none"`` (untrained) or a state-dict
            path (for every model).
        layers: layer aliases or module paths (None: each model's default list); stored as a tuple.
        models: already built ``nn.Module`` s, one per model name (None: load them by name); a tuple.
        transform: PIL image -> tensor (3, H, W) for ``models`` that carry no preprocessing of their own.
        tokens: units of transformer token layers, ``all`` (None: the default), ``cls`` or ``mean``
            (:mod:`extractors.tokens`; recorded as ``token_pooling``).
        stimuli: the stimulus folder the networks see, for a user dataset (None: the dataset's own).
        cache: the model-RDM cache (:mod:`rsa_bridge.app.cache`): None = ``$RSA_BRIDGE_CACHE`` or
            ``~/.cache/rsa-bridge``, False = off, a folder, or a cache object.

    Examples:
        >>> network = NetworkOptions(weights="none", layers=["conv1", "fc8"], cache=False)
        >>> network.weights, network.layers, network.cache
        ('none', ('conv1', 'fc8'), False)
        >>> NetworkOptions(layers="conv1")
        Traceback (most recent call last):
        ...
        rsa_bridge.errors.RSABridgeError: layers is a list of layer names, e.g. ['conv1']; got the string 'conv1'
    """

    weights: str | os.PathLike = "default"
    layers: Sequence[str] | None = None
    models: Sequence[Any] | None = None
    transform: Any = None
    tokens: str | None = None
    stimuli: str | os.PathLike | None = None
    cache: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.weights, (str, os.PathLike)):
            raise RSABridgeError(f"weights is 'default', 'none' or a state-dict path; got {self.weights!r}")
        if self.layers is not None:
            if isinstance(self.layers, str):
                raise RSABridgeError(f"layers is a list of layer names, e.g. [{self.layers!r}]; got the string "
                                     f"{self.layers!r}")
            if not list(self.layers):
                raise RSABridgeError('layers is empty; name layers, e.g. layers=["conv1", "fc6"], or leave it None '
                                     "for the model's default layers")
            object.__setattr__(self, "layers", tuple(str(layer) for layer in self.layers))
        if self.models is not None:
            object.__setattr__(self, "models", tuple(self.models))
        if self.stimuli is not None and not isinstance(self.stimuli, (str, os.PathLike)):
            raise RSABridgeError(f"stimuli is a stimulus folder (or None); got {self.stimuli!r}")
        if self.tokens is not None and not isinstance(self.tokens, str):
            raise RSABridgeError(f"tokens is 'all', 'cls' or 'mean' (or None); got {self.tokens!r}")


_FIELDS = frozenset(f.name for f in fields(NetworkOptions))


def network_from_keywords(network: NetworkOptions | None, legacy: Mapping[str, Any], where: str,
                          stacklevel: int = 3) -> NetworkOptions:
    """``network`` (default ``NetworkOptions()``) updated by old-style keywords, with one DeprecationWarning.

    ``legacy`` holds only the keywords the caller passed that are :class:`NetworkOptions` fields (``model=``,
    one built module, counts as ``models=[model]``); the caller routes any other keyword elsewhere.
    """
    network = NetworkOptions() if network is None else network
    if not isinstance(network, NetworkOptions):
        raise RSABridgeError(f"{where}: network must be a NetworkOptions (rsa_bridge.app.network); got "
                             f"{type(network).__name__}")
    if not legacy:
        return network
    legacy = dict(legacy)
    if "model" in legacy:
        model = legacy.pop("model")
        legacy["models"] = None if model is None else [model]
    unknown = sorted(set(legacy) - _FIELDS)
    if unknown:
        raise TypeError(f"{where}() got an unexpected keyword argument {unknown[0]!r}")
    warnings.warn(f"{where}({', '.join(f'{k}=' for k in legacy)}) is deprecated and will be removed in the next "
                  f"release: pass one network=rsa_bridge.NetworkOptions({', '.join(f'{k}=...' for k in legacy)}) "
                  "instead", DeprecationWarning, stacklevel=stacklevel)
    return replace(network, **legacy)


def split_keywords(keywords: Mapping[str, Any]) -> tuple[dict, dict]:
    """(the keywords that are :class:`NetworkOptions` fields or ``model``, the rest)."""
    net = {k: v for k, v in keywords.items() if k in _FIELDS or k == "model"}
    return net, {k: v for k, v in keywords.items() if k not in net}
