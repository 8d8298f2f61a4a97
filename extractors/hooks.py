"""Record the outputs of named modules of any ``torch.nn.Module`` during a forward pass.

This is rsa-bridge's one hooking mechanism (activations for RSA, the depth-mask and detector
analyses all use it). It works for any module and any input: outputs are captured by forward
hooks and **cloned at capture** (tensors nested in tuples, lists and dicts too), because later
in-place operations - torchvision AlexNet's ``ReLU(inplace=True)`` - would otherwise overwrite a
stored reference (a stored conv1 output silently turns into relu1). With ``stop_early`` the
forward pass is aborted as soon as every requested module has produced its output.

    with record(model, {"conv1": "features.0"}, stop_early=True) as rec:
        model(x)                      # stops after features.0; the with-block swallows the stop
    rec.outputs["conv1"]              # (B, 64, 55, 55) tensor, pre-ReLU

    outputs = run_recorded(model, x, {"conv1": "features.0"})   # the same in one call

A module that runs several times in one pass (a recurrent area, a shared ReLU) is read per call: the
path ``"V2@1"`` records its call 1 (0-based), ``"V2@all"`` a list of every call's output
(:func:`split_call`); a plain path on such a module is refused by :meth:`record.check_fired_once` with a
message suggesting both. ``record.call_order`` lists every call of the hooked modules in order.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from rsa_bridge.errors import RSABridgeError, preview

Forward = Callable[[nn.Module, Any], Any]


class StopForward(Exception):
    """Raised inside a forward hook to abort the pass once every requested module has fired."""

    def __init__(self, recorder: "record") -> None:
        super().__init__("forward pass stopped early: every requested module has produced its output")
        self.recorder = recorder


def clone_output(obj: Any) -> Any:
    """Detached copies of every tensor in ``obj`` (tensors, and tuples/lists/dicts of them, nested).

    Named tuples keep their type; other objects are returned as they are. Tensors are copied into the
    contiguous (row-major) layout whatever theirs was: a channels-last conv output is then flattened to
    (batch, units) as a view, not by a second copy (same values, same unit order).
    """
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone(memory_format=torch.contiguous_format)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # namedtuple
        return type(obj)(*(clone_output(v) for v in obj))
    if isinstance(obj, (tuple, list)):
        return type(obj)(clone_output(v) for v in obj)
    if isinstance(obj, Mapping):
        items = {k: clone_output(v) for k, v in obj.items()}
        try:
            return type(obj)(items)
        except TypeError:
            return items
    return obj


def get_module(model: nn.Module, path: str) -> nn.Module:
    """The submodule at dotted ``path`` (``"features.0"``); RSABridgeError when there is none."""
    if not path:
        raise RSABridgeError("an empty module path names the whole model; name a submodule such as 'features.0'")
    try:
        return model.get_submodule(path)
    except AttributeError:
        raise RSABridgeError(
            f"{type(model).__name__} has no module {path!r}; module paths look like "
            f"{preview([n for n, _ in model.named_modules() if n], 4)}"
        ) from None


#: the suffix that asks for every call of a module (``block@all``)
ALL_CALLS = "all"


def split_call(spec: str) -> tuple[str, int | str | None]:
    """``"V2@1"`` -> ``("V2", 1)``; ``"V2@all"`` -> ``("V2", "all")``; ``"V2"`` -> ``("V2", None)``.

    A module that runs several times in one forward pass (a recurrent block, a shared ReLU) is read
    per call: ``@t`` is its call ``t`` (0-based, in the order the calls happen), ``@all`` every call.

        >>> split_call("layer1.0.relu@2"), split_call("IT@all"), split_call("features.0")
        (('layer1.0.relu', 2), ('IT', 'all'), ('features.0', None))
    """
    base, sep, suffix = str(spec).rpartition("@")
    if not sep:
        return str(spec), None
    suffix = suffix.strip().lower()
    if suffix == ALL_CALLS:
        return base, ALL_CALLS
    if suffix.isdigit():
        return base, int(suffix)
    raise RSABridgeError(f"layer {spec!r}: the part after '@' must be a call number (0, 1, ...) or 'all', "
                         f"not {suffix!r}; e.g. {base}@0 or {base}@all")


class record:
    """Context manager that records the outputs of modules while it is open.

    Args:
        model: any module.
        layers: name -> module path (several names may share one path). A path may end in ``@t``
            (call ``t`` of a module that runs several times per pass, 0-based) or ``@all`` (every
            call: the name's output is then a list, one entry per call); see :func:`split_call`.
        stop_early: abort the forward pass (by raising :class:`StopForward` from the hook) once
            every requested call has happened (never with an ``@all`` request). Leaving the with-block
            swallows that exception, so the with-block's code after the model call is skipped;
            :func:`run_recorded` catches it too.

    Attributes (valid after a forward pass):
        outputs: name -> cloned output of the requested call (a plain path: the *first* call; ``@all``:
            a list of every call's output).
        calls: module path -> how many times the module ran.
        order: module paths in the order they first ran.
        call_order: ``"path@t"`` for every call of a hooked module, in the order the calls happened.
        stopped: whether the pass was aborted early.
    """

    def __init__(self, model: nn.Module, layers: Mapping[str, str], *, stop_early: bool = False) -> None:
        self.model = model
        self.layers = dict(layers)
        self.stop_early = stop_early
        self._names: dict[str, list[str]] = {}
        self._wanted: dict[str, dict[int | str | None, list[str]]] = {}
        for name, spec in self.layers.items():
            path, call = split_call(spec)
            self._names.setdefault(path, []).append(name)
            self._wanted.setdefault(path, {}).setdefault(call, []).append(name)
        self._modules = {path: get_module(model, path) for path in self._names}
        self._handles: list[Any] = []
        self.reset()

    def reset(self) -> None:
        """Forget recorded outputs (to reuse the recorder for another forward pass)."""
        self.outputs: dict[str, Any] = {}
        self.calls: dict[str, int] = dict.fromkeys(self._names, 0)
        self.order: list[str] = []
        self.call_order: list[str] = []
        self.stopped = False
        self._pending = {(p, c) for p, wants in self._wanted.items() for c in wants}
        self._endless = any(ALL_CALLS in wants for wants in self._wanted.values())

    def _hook(self, path: str) -> Callable[..., None]:
        wants = self._wanted[path]

        def hook(module: nn.Module, args: Any, output: Any) -> None:
            index = self.calls[path]
            self.calls[path] += 1
            self.call_order.append(f"{path}@{index}")
            if index == 0:
                self.order.append(path)
            captured = None
            for call, names in wants.items():
                if call == ALL_CALLS:
                    captured = clone_output(output) if captured is None else captured
                    for name in names:
                        self.outputs.setdefault(name, []).append(captured)
                elif call == index or (call is None and index == 0):
                    captured = clone_output(output) if captured is None else captured
                    for name in names:
                        self.outputs[name] = captured
                    self._pending.discard((path, call))
            if self.stop_early and not self._endless and not self._pending:
                self.stopped = True
                raise StopForward(self)

        return hook

    def __enter__(self) -> "record":
        self.reset()
        self._handles = [m.register_forward_hook(self._hook(p)) for p, m in self._modules.items()]
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        return isinstance(exc, StopForward) and exc.recorder is self

    def missing(self) -> list[str]:
        """Requested ``path@call`` entries that did not happen in the pass just made (``[]``: all did)."""
        gone = [f"{p}@{c}" for p, c in self._pending if c != ALL_CALLS]
        return gone + [f"{p}@{ALL_CALLS}" for p, wants in self._wanted.items() if ALL_CALLS in wants
                       and self.calls[p] == 0]

    def check_fired_once(self, model_label: str = "") -> None:
        """RSABridgeError unless every requested call happened in the pass just made, unambiguously.

        A plain module path must run exactly once: a module that runs twice (a ReLU shared by several
        convolutions, as in torchvision's ResNet blocks; a recurrent block) has no single output, and
        the message suggests ``path@t`` / ``path@all``. ``path@t`` needs at least ``t + 1`` calls,
        ``path@all`` at least one.
        """
        where = f" of {model_label}" if model_label else ""
        for path, count in self.calls.items():
            for call, names in self._wanted[path].items():
                shown = ", ".join(repr(n) for n in names)
                if count == 0:
                    raise RSABridgeError(
                        f"layer {shown} (module {path!r}) does not run in a forward pass{where}, so it has no "
                        "output; choose a module that runs (see `rsa-bridge layers`)"
                    )
                if call is None and count > 1:
                    raise RSABridgeError(
                        f"layer {shown} (module {path!r}) runs {count} times in one forward pass{where} (a shared "
                        f"or recurrent module), so its output is ambiguous; read one call with {names[0]}@0 .. "
                        f"{names[0]}@{count - 1} or every call with {names[0]}@all, or choose another module, such as "
                        f"{preview(_alternatives(self.model, path), 4)}"
                    )
                if isinstance(call, int) and call >= count:
                    base = split_call(names[0])[0]
                    raise RSABridgeError(
                        f"layer {shown} asks for call {call} of module {path!r}, which runs {count} time(s) in one "
                        f"forward pass{where}; calls are numbered from 0: use {base}@0 .. {base}@{count - 1} or "
                        f"{base}@all"
                    )


def _alternatives(model: nn.Module, path: str) -> list[str]:
    """The parent of ``path`` and its other children: modules a user may ask for instead."""
    parent = path.rpartition(".")[0]
    siblings = [f"{parent}.{n}" if parent else n for n, _ in model.get_submodule(parent).named_children()]
    return ([parent] if parent else []) + [s for s in siblings if s != path]


def _default_forward(model: nn.Module, inputs: Any) -> Any:
    return model(inputs)


def as_layer_map(model: nn.Module, layers: Mapping[str, str] | Sequence[str] | str) -> dict[str, str]:
    """``layers`` as name -> module path: a mapping is taken as is, names are resolved (aliases too)."""
    if isinstance(layers, Mapping):
        return dict(layers)
    from extractors.layers import resolve_layers

    return dict(resolve_layers(model, layers))


def run_recorded(
    model: nn.Module,
    inputs: Any,
    layers: Mapping[str, str] | Sequence[str] | str,
    *,
    stop_early: bool = True,
    forward: Forward | None = None,
    inference: bool = True,
    return_output: bool = False,
) -> dict[str, Any] | tuple[dict[str, Any], Any]:
    """Run ``model`` on ``inputs`` and return the recorded outputs ``{name: output}``.

    Args:
        model: any module (image classifier, detector, ...), in the mode the caller chose.
        inputs: passed to ``forward(model, inputs)``; by default ``model(inputs)`` - a tensor
            (B, C, H, W), a list of images for a torchvision detector, anything the model takes.
        layers: name -> module path, or names/aliases to resolve with :func:`resolve_layers`.
        stop_early: abort the pass once every requested module has fired (later modules never run).
        forward: how to call the model, e.g. ``lambda m, x: m(**x)``.
        inference: run under ``torch.inference_mode()`` (no autograd bookkeeping).
        return_output: also return the model's own output (None when the pass stopped early).

    Returns:
        name -> cloned module output (first call of each module in the pass); with
        ``return_output``, the pair ``(outputs, model_output)``.

    Raises:
        RSABridgeError: a requested module did not run.
    """
    layer_map = as_layer_map(model, layers)
    call = forward or _default_forward
    result = None
    recorder = record(model, layer_map, stop_early=stop_early)
    with torch.inference_mode(inference):
        with recorder:
            result = call(model, inputs)
    if recorder.missing():
        recorder.check_fired_once(type(model).__name__)
    outputs = {name: recorder.outputs[name] for name in layer_map}
    return (outputs, result) if return_output else outputs


@dataclass(frozen=True)
class Probe:
    """What one un-stopped forward pass revealed.

    Attributes:
        order: requested names in the order their (first requested) calls happened.
        outputs: name -> cloned output of that pass (a list per call for ``path@all``).
        call_order: ``"path@t"`` of every call of a requested module, in the order they happened.
        calls: module path -> how many times it ran in the pass.
    """

    order: list[str]
    outputs: dict[str, Any]
    call_order: list[str] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)


def probe(
    model: nn.Module,
    inputs: Any,
    layers: Mapping[str, str],
    *,
    forward: Forward | None = None,
    model_label: str = "",
) -> Probe:
    """One full forward pass (no early exit) checking that every requested call happens, unambiguously.

    Use it on a single input before a batched run with ``stop_early=True``: early exit after the
    requested calls is only right when a plain path's module does not run again later in the pass.
    The probe also counts the calls of each module (how ``path@all`` is expanded to ``path@0 ..``).

    Raises:
        RSABridgeError: a plain path's module runs twice (shared or recurrent: the message suggests
            ``path@t``/``path@all``) or never, or ``path@t`` asks for a call that does not happen.
    """
    call = forward or _default_forward
    recorder = record(model, layers, stop_early=False)
    with torch.inference_mode(), recorder:
        try:
            call(model, inputs)
        except RuntimeError as err:  # the first pass on the caller's input: a shape the model cannot take
            shape = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs).__name__
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise RSABridgeError(
                f"{model_label or type(model).__name__} cannot run on an input of shape {shape} ({first}); "
                "pass images (N, C, H, W) with the channels and size the model expects (e.g. 3 x 224 x 224)"
            ) from None
    recorder.check_fired_once(model_label or type(model).__name__)
    position = {label: i for i, label in enumerate(recorder.call_order)}

    def first_call(name: str) -> int:
        path, call = split_call(layers[name])
        return position[f"{path}@{call if isinstance(call, int) else 0}"]

    order = sorted(layers, key=first_call)
    return Probe(order=order, outputs={name: recorder.outputs[name] for name in layers},
                 call_order=list(recorder.call_order), calls=dict(recorder.calls))
