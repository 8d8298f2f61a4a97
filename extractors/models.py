"""Build torchvision models with known weights, and say exactly which weights they carry.

:func:`load_model` never falls back to random weights: pretrained weights come from the torch hub
cache (``$TORCH_HOME/hub/checkpoints``) or a download, ``"none"`` builds an untrained network from a
fixed seed, and a path loads a state-dict file strictly. The result carries a :class:`ModelInfo`
as ``model.rsa_bridge_info`` (weights label, file hash, preprocessing, layer aliases).
"""
from __future__ import annotations

import difflib
import inspect
import os
import pickle
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision import models as tvm

from extractors.aliases import alias_table
from extractors.cornet import OWN_MODELS
from extractors.model_code import holds_code
from extractors.provenance import USER_MODULE, describe_transform, state_dict_sha256
from extractors.shapes import parameters_on_meta as _parameters_on_meta
from rsa_bridge.errors import RSABridgeError, preview
from rsa_bridge.provenance import file_sha256

#: set to 1 to forbid weight downloads (fail at once when the cache lacks the file)
OFFLINE_ENV = "RSA_BRIDGE_OFFLINE"
#: seed of the random initialisation of untrained ("none") models
DEFAULT_SEED = 0
#: keys under which training checkpoints commonly nest the state dict
_NESTED_KEYS = ("state_dict", "model_state_dict", "model")


@dataclass
class ModelInfo:
    """What a model is: name, weights and how its inputs must be prepared.

    Attributes:
        name: torchvision builder name (``"alexnet"``) or the class name of a hand-made model.
        weights: ``"IMAGENET1K_V1"`` (torchvision weights enum member), ``"none"`` or a file path.
        weights_sha256: hex SHA-256 of the weights file when ``weights`` is a path, else ``""``.
        transform: callable ``PIL.Image -> torch.Tensor (3, H, W)`` (the weights' own preprocessing);
            None when torchvision defines no weights for the model.
        preprocessing: one-line description of ``transform``.
        aliases: readable layer name -> module path, in network order.
        default_layers: aliases (or module paths) used when no layers are requested.
        seed: seed of the random initialisation for untrained models, else None.
        state_sha256: SHA-256 of the state dict as loaded (:func:`extractors.provenance.state_dict_sha256`);
            a later mismatch relabels the module ``user-module``. "" when not recorded.
        source: the model source (``torchvision``, ``timm``, ``openclip``, ``hf``, a plugin's name).
        presets: named groups of layers for ``--layers`` (``blocks``; see :mod:`extractors.families`).
        extra: further provenance fields (e.g. ``token_pooling``), copied into the record as they are.
    """

    name: str
    weights: str
    weights_sha256: str = ""
    transform: Callable[[Any], torch.Tensor] | None = None
    preprocessing: str = ""
    aliases: dict[str, str] = field(default_factory=dict)
    default_layers: list[str] = field(default_factory=list)
    seed: int | None = None
    state_sha256: str = ""
    source: str = "torchvision"
    presets: dict[str, list[str]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def provenance(self) -> dict[str, Any]:
        """Attrs for results: model, weights, weights_sha256, preprocessing, seed (None dropped later)."""
        return {
            "model": self.name,
            "weights": self.weights,
            "weights_sha256": self.weights_sha256,
            "preprocessing": self.preprocessing,
            "seed": self.seed,
            "state_sha256": self.state_sha256 or None,
            "source": self.source,
            **self.extra,
        }


def model_info(model: nn.Module) -> ModelInfo:
    """``model.rsa_bridge_info``, or an info made from the module itself (class name, aliases).

    A module without ``rsa_bridge_info`` is labelled ``weights="user-module"`` (never ``default`` or an
    enum name); its state-dict hash is computed by :func:`extractors.provenance.module_provenance`.
    """
    info = getattr(model, "rsa_bridge_info", None)
    if isinstance(info, ModelInfo):
        return info
    table = alias_table(model)
    return ModelInfo(
        name=type(model).__name__.lower(),
        weights=USER_MODULE,
        source="user",
        aliases=dict(table.aliases),
        default_layers=list(table.defaults),
        presets=dict(table.presets),
    )


def check_device(device: str | torch.device) -> torch.device:
    """Parse ``device`` and check that it exists here; RSABridgeError otherwise."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise RSABridgeError(f"device {str(device)!r} is not a torch device; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RSABridgeError(
                f"device {str(device)!r} was requested but CUDA is not available here "
                f"(torch {torch.__version__}); use --device cpu"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise RSABridgeError(
                f"device {str(device)!r} does not exist: {torch.cuda.device_count()} CUDA device(s) here"
            )
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise RSABridgeError(f"device {str(device)!r} was requested but MPS is not available here; use --device cpu")
    return dev


def check_model_name(name: str) -> str:
    """``name`` if torchvision has a builder of that name, else RSABridgeError with close matches."""
    known = tvm.list_models()
    if name in known:
        return name
    close = difflib.get_close_matches(str(name), [*known, *OWN_MODELS], n=5, cutoff=0.5) or known[:5]
    raise RSABridgeError(
        f"unknown model {name!r}: torchvision has no builder of that name; close names: {preview(close)} "
        f"({len(known)} in torchvision.models.list_models())"
    )


def _weights_enum(name: str) -> type[tvm.WeightsEnum] | None:
    try:
        return tvm.get_model_weights(name)
    except (ValueError, KeyError, AttributeError, TypeError):  # builders without a weights enum
        return None


def cache_path(weights: tvm.WeightsEnum) -> Path:
    """Where torchvision looks for (and downloads) a weights enum's file: ``$TORCH_HOME/hub/checkpoints/<file>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def _offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:300]


#: torch's RNG is process-global: builds in several threads (e.g. dask workers) take turns
_BUILD_LOCK = threading.Lock()


def _build(name: str, weights: tvm.WeightsEnum | None, seed: int) -> nn.Module:
    """Run the torchvision builder with its random initialisation under a private, seeded RNG.

    The global torch RNG is left exactly as it was. For ``weights=None``, a backbone that the
    builder would otherwise download (detection models) is left untrained too.
    """
    kwargs: dict[str, Any] = {"weights": weights}
    if weights is None and "weights_backbone" in inspect.signature(tvm.get_model_builder(name)).parameters:
        kwargs["weights_backbone"] = None
    with _BUILD_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*default weight initialization.*", category=FutureWarning)
            return tvm.get_model(name, **kwargs)


def cached_members(weights: tvm.WeightsEnum) -> list[str]:
    """Names of the members of ``weights``' enum whose files are in the torch hub cache now."""
    return [m.name for m in type(weights) if cache_path(m).is_file()]


def _missing_weights_message(name: str, weights: tvm.WeightsEnum, path: Path, reason: str) -> str:
    file = path.name
    here = [m for m in cached_members(weights) if m != weights.name]
    also = (f"; the cache does hold {', '.join(here)} for {name}: pass --weights {here[0]}" if here else "")
    default = " (the DEFAULT)" if type(weights).DEFAULT == weights else ""
    return (
        f"pretrained weights {type(weights).__name__}.{weights.name}{default} for {name} are not in the torch hub "
        f"cache at {path} and could not be downloaded ({reason}){also}; to supply them offline, copy {file} "
        f"(from {weights.url}) to that path (or set TORCH_HOME to a folder whose hub/checkpoints/ holds it), "
        f"or pass --weights PATH to a state-dict file, or --weights none for an untrained network"
    )


def _load_enum(name: str, weights: tvm.WeightsEnum, seed: int) -> nn.Module:
    path = cache_path(weights)
    cached = path.is_file()
    if not cached and _offline():
        raise RSABridgeError(_missing_weights_message(name, weights, path, f"{OFFLINE_ENV}=1 forbids downloads"))
    try:
        return _build(name, weights, seed)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, ValueError) as err:
        if not path.is_file():  # the download failed
            raise RSABridgeError(_missing_weights_message(name, weights, path, _first_line(err))) from err
        raise RSABridgeError(
            f"the weights file {path} for {name} could not be loaded ({_first_line(err)}); it may be corrupt or "
            f"partial: delete it and run again, copy a good {path.name} there, or pass --weights PATH / --weights none"
        ) from err


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a ``torch.save`` file (plain, or nested under ``state_dict``/``model``).

    A uniform ``module.`` prefix (from ``nn.DataParallel``) is removed. Raises RSABridgeError for a
    missing, unreadable or non-state-dict file.
    """
    if not path.is_file():
        raise RSABridgeError(f"weights file {str(path)!r} does not exist; pass --weights PATH to a state-dict file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, ValueError, AttributeError, IndexError,
            KeyError, TypeError, UnicodeDecodeError) as err:  # the weights-only unpickler on arbitrary bytes
        if holds_code(path):  # TorchScript or a pickled module: never loaded here, with or without consent
            raise RSABridgeError(
                f"weights file {str(path)!r} holds model code (TorchScript or a pickled Python object), not a state "
                "dict of tensors; --weights reads tensors only and never runs a file's code: save the weights with "
                "torch.save(model.state_dict(), PATH)"
            ) from None
        raise RSABridgeError(
            f"cannot read weights file {str(path)!r} as a PyTorch state dict ({_first_line(err)}); "
            "save one with torch.save(model.state_dict(), PATH)"
        ) from None
    for key in _NESTED_KEYS:
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise RSABridgeError(
            f"weights file {str(path)!r} holds a {type(obj).__name__}, not a state dict of tensors; "
            "save one with torch.save(model.state_dict(), PATH)"
        )
    state = dict(obj)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _load_state_strict(model: nn.Module, state: dict[str, torch.Tensor], name: str, path: Path) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys ({preview(missing, 3)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys ({preview(unexpected, 3)})")
        if wrong:
            parts.append(f"{len(wrong)} shape mismatches ({'; '.join(wrong[:2])})")
        raise RSABridgeError(
            f"weights file {str(path)!r} does not fit torchvision's {name}: {', '.join(parts)}; "
            f"pass a state dict saved from torchvision.models.{name}()"
        )
    model.load_state_dict(state, strict=True)


def _parse_weights(
    name: str, weights: Any, enum: type[tvm.WeightsEnum] | None
) -> tuple[str, tvm.WeightsEnum | Path | None]:
    """("enum", member) | ("none", None) | ("file", path) from the user's ``weights`` argument."""
    if weights is None or (isinstance(weights, str) and weights.strip().lower() == "none"):
        return "none", None
    if isinstance(weights, tvm.WeightsEnum):
        return "enum", weights
    if isinstance(weights, str):
        text = weights.strip()
        if text.lower() == "default":
            if enum is None:
                raise RSABridgeError(
                    f"torchvision has no pretrained weights for {name}; pass --weights PATH or --weights none"
                )
            return "enum", enum.DEFAULT
        if enum is not None:
            member = text.split(".")[-1].upper() if text.startswith(enum.__name__ + ".") else text.upper()
            if member in enum.__members__ and not Path(text).exists():
                return "enum", enum[member]
        path = Path(text)
        if not path.exists():
            names = ["default", "none", *(enum.__members__ if enum else [])]
            raise RSABridgeError(
                f"weights {text!r} for {name} is neither one of {preview(names, 8)} nor an existing file; "
                "pass --weights default, --weights none or --weights PATH to a state-dict file"
            )
        return "file", path
    if isinstance(weights, os.PathLike):
        return "file", Path(weights)
    raise RSABridgeError(f"weights must be 'default', 'none', None or a file path, not {type(weights).__name__}")


def _source_spec(name: str) -> str | None:
    """``SOURCE:NAME`` for a prefixed name or a source's bare name (``blazeface``); None for torchvision."""
    if ":" in str(name):
        return str(name)
    if str(name) in tvm.list_models():
        return None
    from extractors.sources import bare_spec

    return bare_spec(str(name))


def load_model(
    name: str,
    weights: str | os.PathLike | None = "default",
    *,
    device: str | torch.device = "cpu",
    seed: int = DEFAULT_SEED,
) -> nn.Module:
    """A torchvision model in eval mode on ``device``, with ``model.rsa_bridge_info`` (:class:`ModelInfo`).

    Args:
        name: a ``torchvision.models`` builder name (``"alexnet"``, ``"vgg16"``, ``"resnet50"``, ...).
        weights: ``"default"`` - the weights enum's DEFAULT, read from ``$TORCH_HOME/hub/checkpoints``
            or downloaded (no download when env ``RSA_BRIDGE_OFFLINE=1``); a member name such as
            ``"IMAGENET1K_V2"``; ``"none"``/None - untrained, initialised from ``seed``; or the path
            of a ``torch.save`` state-dict file, loaded strictly (its SHA-256 is recorded).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        seed: seed of the random initialisation (a private RNG; the global torch RNG is untouched).

    Raises:
        RSABridgeError: unknown model, weights that are neither cached nor downloadable (the message
            names the cache path and the offline options), a bad weights file, an unavailable device.
    """
    source_spec = _source_spec(name)
    if source_spec:  # SOURCE:NAME (timm:, openclip:, hf:, plugins) or a source's bare name: extractors.sources
        from extractors.sources import load_from_source

        return load_from_source(source_spec, weights, device=device, seed=seed)
    name = check_model_name(name)
    dev = check_device(device)
    enum = _weights_enum(name)
    kind, spec = _parse_weights(name, weights, enum)
    sha, recorded_seed = "", None
    if kind == "enum":
        assert isinstance(spec, tvm.WeightsEnum)
        model, label = _load_enum(name, spec, seed), spec.name
    elif kind == "none":
        model, label, recorded_seed = _build(name, None, seed), "none", seed
    else:
        assert isinstance(spec, Path)
        state = read_state_dict(spec)
        sha = file_sha256(spec)
        model, label = _build(name, None, seed), str(spec)
        _load_state_strict(model, state, name, spec)
    transform_source = spec if kind == "enum" else (enum.DEFAULT if enum is not None else None)
    transform = transform_source.transforms() if transform_source is not None else None
    table = alias_table(model)
    model.eval().to(dev)
    model.rsa_bridge_info = ModelInfo(
        name=name,
        weights=label,
        weights_sha256=sha,
        transform=transform,
        preprocessing=describe_transform(transform),
        aliases=dict(table.aliases),
        default_layers=list(table.defaults),
        presets=dict(table.presets),
        seed=recorded_seed,
        state_sha256=state_dict_sha256(model),
    )
    return model


def build_skeleton(name: str) -> nn.Module:
    """The untrained module tree of ``name`` without allocating weights (meta device), for listing layers."""
    source_spec = _source_spec(name)
    if source_spec:
        from extractors.sources import skeleton_from_source

        return skeleton_from_source(source_spec)
    name = check_model_name(name)
    try:
        with torch.device("meta"):
            model = _build(name, None, DEFAULT_SEED)
    except (RuntimeError, NotImplementedError, TypeError, ValueError):  # a builder that computes on tensors
        with _parameters_on_meta():
            model = _build(name, None, DEFAULT_SEED)
    enum = _weights_enum(name)
    transform = enum.DEFAULT.transforms() if enum is not None else None
    table = alias_table(model)
    model.rsa_bridge_info = ModelInfo(
        name=name,
        weights="none",
        transform=transform,
        preprocessing=describe_transform(transform),
        aliases=dict(table.aliases),
        default_layers=list(table.defaults),
        presets=dict(table.presets),
        seed=DEFAULT_SEED,
    )
    return model.eval()
