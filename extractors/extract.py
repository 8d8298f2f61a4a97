"""Layer activations for a set of stimuli, batch by batch, as xarray (presentation x neuroid).

Steps: resolve the layer names; normalise the inputs; one probe forward pass on the first
stimulus (no early exit) checks that every requested module runs exactly once (or, for ``name@t``,
at least ``t + 1`` times), counts the calls of ``name@all`` modules and expands each to ``name@0``,
``name@1``, ... (one ordinary layer per call), and gives the output shapes; then batches run under
``torch.inference_mode`` and stop right after the last requested call.

Per-call layers carry the call number as ``time_step`` (attrs, and a dim for ``name@all`` in
:func:`extract`). It is named after the neural ``time_bin`` convention but is a different axis: a
network's step counts iterations of its recurrence (no milliseconds), so the two are never merged
silently; :mod:`rsa_bridge.time_steps` pairs them explicitly.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import xarray as xr
from torch import nn

from extractors.feed import FeedOptions, prefetch_batches
from extractors.hooks import ALL_CALLS, probe, run_recorded, split_call
from extractors.inputs import Inputs, Transform, as_inputs
from extractors.layers import resolve_layers
from extractors.models import ModelInfo, check_device, describe_transform, model_info
from rsa_bridge.budget import auto_batch_size
from rsa_bridge.errors import RSABridgeError, preview
from rsa_bridge.progress import progress_bar
from rsa_bridge.provenance import clean_attrs, package_version
from rsa_bridge.time_steps import TIME_STEP


@dataclass(frozen=True)
class _Plan:
    model: nn.Module
    info: ModelInfo
    inputs: Inputs
    layers: list[tuple[str, str]]
    unit_shapes: dict[str, tuple[int, ...]]
    device: torch.device
    batch_size: int
    progress: bool | None  # None: each bar follows rsa_bridge.progress (bars, stage lines in logs)
    groups: dict[str, list[str]] | None = None  # "name@all" -> its expanded names "name@0", ...
    direct: frozenset[str] = frozenset()  # names requested as they are (not only through "name@all")
    call_order: tuple[str, ...] = ()  # "path@t" of every call of a requested module, in order
    workers: int = 0  # decode threads feeding the batches (extractors.feed)
    channels_last: bool = False
    batch_size_given: bool = True

    def feed_attrs(self) -> dict[str, Any]:
        """Provenance of how the pass was fed: batch size (and whether it was chosen from the memory budget),
        decode threads, memory layout."""
        return {"batch_size": self.batch_size,
                "batch_size_from": "given" if self.batch_size_given else "memory budget (rsa_bridge.budget)",
                "decode_workers": self.workers,
                "memory_format": "channels_last" if self.channels_last else "contiguous"}

    def per_call(self) -> bool:
        """Whether any layer reads one call of a module that runs several times (``name@t``)."""
        return any(split_call(path)[1] is not None for _, path in self.layers)

    def layer_attrs(self, name: str, path: str) -> dict[str, Any]:
        """time_step (the call number) and call_order for a per-call layer; {} for an ordinary one."""
        call = split_call(path)[1]
        if call is None:
            return {}
        return {TIME_STEP: int(call), "call_order": ",".join(self.call_order)}


def _expand_calls(resolved: list[tuple[str, str]], found: Any) -> tuple[list[tuple[str, str]], dict, dict, set]:
    """``name@all`` -> ``name@0 .. name@{k-1}`` (k calls counted by the probe); outputs keyed the same way."""
    layers: list[tuple[str, str]] = []
    outputs: dict[str, Any] = {}
    groups: dict[str, list[str]] = {}
    direct: set[str] = set()
    for name, path in resolved:
        if split_call(path)[1] != ALL_CALLS:
            items = [(name, path, found.outputs[name])]
            direct.add(name)
        else:
            base, module = split_call(name)[0], split_call(path)[0]
            items = [(f"{base}@{t}", f"{module}@{t}", out) for t, out in enumerate(found.outputs[name])]
            groups[name] = [item[0] for item in items]
        for label, where, out in items:
            if label not in outputs:
                layers.append((label, where))
                outputs[label] = out
    return layers, outputs, groups, direct


def _model_device(model: nn.Module) -> torch.device | None:
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return None


def _check_output(name: str, path: str, output: Any, batch: int) -> torch.Tensor:
    if not isinstance(output, torch.Tensor):
        raise RSABridgeError(
            f"layer {name!r} (module {path!r}) outputs a {type(output).__name__}, not a tensor; "
            "choose a submodule whose output is one tensor"
        )
    if output.ndim == 0 or output.shape[0] != batch:
        raise RSABridgeError(
            f"layer {name!r} (module {path!r}) outputs shape {tuple(output.shape)} for a batch of {batch}: "
            "its first dimension is not the batch; choose another module"
        )
    return output


def _pooled(model: nn.Module, info: ModelInfo, name: str, path: str, output: torch.Tensor) -> torch.Tensor:
    """The layer's units under the model's ``token_pooling`` (see :mod:`extractors.tokens`)."""
    mode = info.extra.get("token_pooling", "all")
    if mode == "all":
        return output
    from extractors.tokens import layout_for, pool

    path = split_call(path)[0]
    return pool(output, mode, layout_for(model, info, path, output), int(info.extra.get("num_prefix_tokens", 1)),
                f"layer {name!r} (module {path!r}) of {info.name}")


def batch_bytes_per_stimulus(first: torch.Tensor, captured: Sequence[torch.Tensor]) -> float:
    """Working bytes of one image in a batch: its float32 input and, per captured layer output, the hook's
    copy, the float32 rows handed on and the store's copy (3 x 4 bytes per unit). An estimate for
    :func:`rsa_bridge.budget.auto_batch_size`; the network's own intermediate outputs are not counted."""
    units = sum(t[0].numel() for t in captured if isinstance(t, torch.Tensor))
    return 4.0 * first[0].numel() + 12.0 * units


def prepare_plan(
    model: nn.Module,
    images: Any,
    layers: Sequence[str] | str | None,
    batch_size: int | None,
    device: str | torch.device,
    transform: Transform | None,
    progress: bool | None,
    stimulus_ids: Sequence[str] | None,
    feed: FeedOptions | None = None,
) -> _Plan:
    """Checks and the probe pass; ``batch_size=None`` picks one from the memory available
    (:func:`rsa_bridge.budget.auto_batch_size`); ``feed``: decode threads and memory layout (:mod:`extractors.feed`)."""
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise RSABridgeError(f"batch size must be a whole number >= 1, not {batch_size!r}")
    feed = feed if feed is not None else FeedOptions()
    workers = feed.workers()
    dev = check_device(device)
    info = model_info(model)
    resolved = resolve_layers(model, layers)
    pre = describe_transform(transform) if transform is not None else (info.preprocessing or "none")
    inputs = as_inputs(
        images,
        transform=transform,
        default_transform=info.transform,
        stimulus_ids=stimulus_ids,
        model_label=info.name,
        preprocessing=pre,
    )
    model.eval()
    if _model_device(model) not in (None, dev):
        model.to(dev)
    first = inputs.load(0, 1).to(dev)
    channels_last = feed.use_channels_last(first)
    if channels_last:
        model.to(memory_format=torch.channels_last)
        first = first.contiguous(memory_format=torch.channels_last)
    found = probe(model, first, dict(resolved), model_label=info.name)
    resolved, outputs, groups, direct = _expand_calls(resolved, found)
    shapes = {
        name: tuple(_pooled(model, info, name, path, _check_output(name, path, outputs[name], 1)).shape[1:])
        for name, path in resolved
    }
    given = batch_size is not None
    if batch_size is None:
        batch_size = auto_batch_size(batch_bytes_per_stimulus(first, list(outputs.values())), len(inputs))
    return _Plan(model, info, inputs, resolved, shapes, dev, batch_size, progress,  # progress: decided by each bar
                 groups, frozenset(direct), tuple(found.call_order), workers, channels_last, given)


def _feeder(plan: _Plan):
    """``load(start, stop)`` of the plan's inputs, laid out for the network (run in the decode threads)."""
    if not plan.channels_last:
        return plan.inputs.load
    return lambda start, stop: plan.inputs.load(start, stop).contiguous(memory_format=torch.channels_last)


def run_plan(plan: _Plan, on_device: bool = False) -> Iterator[tuple[int, int, dict[str, torch.Tensor]]]:
    """(start, stop, {name: (B, n_units) float32 tensor}) per batch; tensors are inference tensors,
    on the CPU, or with ``on_device`` on the extraction device (for :mod:`extractors.streaming`)."""
    n = len(plan.inputs)
    layer_map = dict(plan.layers)
    bar = progress_bar(total=n, unit="img", desc=f"{plan.info.name} activations", progress=plan.progress)
    try:
        for start, stop, x in prefetch_batches(_feeder(plan), n, plan.batch_size, plan.workers):
            batch = _forward(plan, layer_map, start, stop, x, on_device)
            yield start, stop, batch
            bar.update(stop - start)
    finally:
        bar.close()


def _forward(plan: _Plan, layer_map: dict[str, str], start: int, stop: int, x: torch.Tensor,
             on_device: bool) -> dict[str, torch.Tensor]:
    """One batch ``x`` (stimuli ``start:stop``) through the network: {name: (B, n_units) float32}."""
    x = x.to(plan.device)
    outputs = run_recorded(plan.model, x, layer_map, stop_early=True)
    batch: dict[str, torch.Tensor] = {}
    with torch.inference_mode():
        for name, path in plan.layers:
            out = _check_output(name, path, outputs[name], stop - start)
            out = _pooled(plan.model, plan.info, name, path, out)
            if tuple(out.shape[1:]) != plan.unit_shapes[name]:
                raise RSABridgeError(
                    f"layer {name!r} outputs shape {tuple(out.shape[1:])} for stimuli "
                    f"{start}..{stop - 1} but {plan.unit_shapes[name]} for the first; "
                    "preprocess every stimulus to one size"
                )
            target = plan.device if on_device else torch.device("cpu")
            batch[name] = out.reshape(stop - start, -1).to(target, torch.float32)
    del outputs
    return batch


def forward_rows(plan: _Plan, start: int, stop: int) -> dict[str, torch.Tensor]:
    """The float32 CPU rows {name: (stop - start, n_units)} of stimuli ``start:stop`` as :func:`run_plan` makes
    them (same decoding, layout and early stop), for one batch: the ``recompute`` Gram route's workers
    (:mod:`rsa_bridge.app.gram_recompute`) run the driver's batches again with it."""
    return _forward(plan, dict(plan.layers), start, stop, _feeder(plan)(start, stop), False)


def extract_batches(
    model: nn.Module,
    images: Any,
    layers: Sequence[str] | str | None = None,
    *,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    transform: Transform | None = None,
    progress: bool | None = None,
    stimulus_ids: Sequence[str] | None = None,
) -> Iterator[tuple[list[str], dict[str, torch.Tensor]]]:
    """Stream activations batch by batch: ``(ids, {layer: float32 CPU tensor (B, n_units)})``.

    Checks (layers, inputs, device, the probe pass) run when this is called, before the first batch.
    Arguments as in :func:`extract`. Units are flattened in C order from the module's output shape
    (e.g. (64, 55, 55) -> 193600 units).
    """
    plan = prepare_plan(model, images, layers, batch_size, device, transform, progress, stimulus_ids)

    def generate() -> Iterator[tuple[list[str], dict[str, torch.Tensor]]]:
        for start, stop, batch in run_plan(plan):
            yield plan.inputs.ids[start:stop], {name: t.clone() for name, t in batch.items()}

    return generate()


def extract(
    model: nn.Module,
    images: Any,
    layers: Sequence[str] | str | None = None,
    *,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    transform: Transform | None = None,
    progress: bool | None = None,
    stimulus_ids: Sequence[str] | None = None,
) -> dict[str, xr.DataArray]:
    """Activations of ``layers`` of ``model`` for ``images``.

    Args:
        model: usually from :func:`extractors.load_model`; any module works (aliases are known for
            torchvision AlexNet/VGG/ResNet). It is put in eval mode and moved to ``device``.
        images: a StimulusSet, a folder, a list of image paths or PIL images, or a preprocessed
            float tensor (N, 3, H, W).
        layers: aliases or module paths, in the order wanted (a string is split at commas);
            None: the model's default layers.
        batch_size: stimuli per forward pass.
        device: ``"cpu"`` or ``"cuda"`` (``"cuda:N"``).
        transform: PIL.Image -> tensor (3, H, W); default: the model's weights' own transforms.
        progress: show a tqdm bar; None: the session switch, else on in Jupyter and on a terminal
            (see :mod:`rsa_bridge.progress`).
        stimulus_ids: ids for a list/tensor (default: file stems / "0".."N-1"); for a stimulus set,
            the ids to extract, in this order.

    Returns:
        layer name (as given) -> float32 DataArray (presentation: N stimuli, neuroid: units of the
        flattened output) with coordinate ``stimulus_id`` on ``presentation`` and attrs model,
        weights, weights_sha256, layer, module_path, unit_shape, preprocessing, rsa_bridge_version
        (and seed, stimulus_set when known). A per-call layer ``name@t`` also records ``time_step`` (t)
        and ``call_order``; ``name@all`` gives one (time_step, presentation, neuroid) DataArray
        (coordinate ``step_module_path``, attrs ``time_steps``, ``call_order``).

    Raises:
        RSABridgeError: unknown layer, a plain name whose module runs several times per pass (use
            ``name@t`` or ``name@all``), bad inputs or device.
        StimulusError: a missing or unreadable image (named in the message).

    Examples:
        Any module, layers by module path; a preprocessed tensor gets the ids ``"0".."N-1"``:

        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
        >>> images = torch.rand(10, 3, 8, 8, generator=torch.Generator().manual_seed(0))
        >>> acts = extract(net, images, ["0", "3"], batch_size=4, progress=False)
        >>> acts["0"].dims, acts["0"].shape, acts["0"].attrs["unit_shape"]
        (('presentation', 'neuroid'), (10, 144), [4, 6, 6])
        >>> [str(s) for s in acts["3"]["stimulus_id"].values[:3]]
        ['0', '1', '2']
        >>> bool(torch.allclose(torch.from_numpy(acts["3"].values), net(images), atol=1e-6))
        True
    """
    plan = prepare_plan(model, images, layers, batch_size, device, transform, progress, stimulus_ids)
    n = len(plan.inputs)
    arrays = {name: np.empty((n, math.prod(plan.unit_shapes[name])), dtype=np.float32) for name, _ in plan.layers}
    for start, stop, batch in run_plan(plan):
        for name, tensor in batch.items():
            arrays[name][start:stop] = tensor.numpy()
    per_layer = {name: layer_array(plan, name, path, arrays.pop(name)) for name, path in plan.layers}
    group_of = {name: request for request, names in (plan.groups or {}).items() for name in names}
    result: dict[str, xr.DataArray] = {}
    for name, _ in plan.layers:  # in the order requested; "name@all" where its first step is
        if name in plan.direct:
            result[name] = per_layer[name]
        if name in group_of and group_of[name] not in result:
            request = group_of[name]
            result[request] = stack_steps(request, [per_layer[n] for n in plan.groups[request]])
    return result


def layer_attrs(plan: _Plan, name: str, path: str) -> dict[str, Any]:
    """Provenance attrs of one layer's activations (model, weights, layer, module_path, unit_shape, ...)."""
    return {
        **plan.info.provenance(),
        "preprocessing": plan.inputs.preprocessing,
        **plan.inputs.attrs,
        "layer": name,
        "module_path": path,
        "unit_shape": [int(s) for s in plan.unit_shapes[name]],
        **plan.layer_attrs(name, path),
        "stimulus_set": plan.inputs.source,
        "rsa_bridge_version": package_version(),
    }


def layer_array(plan: _Plan, name: str, path: str, values: np.ndarray) -> xr.DataArray:
    """(presentation, neuroid) DataArray of one layer with ``stimulus_id`` and :func:`layer_attrs`."""
    return xr.DataArray(
        values,
        dims=("presentation", "neuroid"),
        coords={"stimulus_id": ("presentation", list(plan.inputs.ids))},
        name=name,
        attrs=clean_attrs(layer_attrs(plan, name, path)),
    )


def stack_steps(request: str, steps: list[xr.DataArray]) -> xr.DataArray:
    """The per-call arrays of ``name@all`` as one (time_step, presentation, neuroid) DataArray.

    ``time_step`` (0, 1, ...) is the call number; ``module_path`` per step is a coordinate on it.
    """
    shapes = {tuple(a.attrs["unit_shape"]) for a in steps}
    if len(shapes) > 1:
        raise RSABridgeError(
            f"layer {request!r}: the calls of module {split_call(steps[0].attrs['module_path'])[0]!r} output "
            f"different shapes ({preview(sorted(shapes), 4)}), so they cannot share one time_step dim; request "
            f"them one by one: {', '.join(a.name for a in steps)}"
        )
    attrs = {k: v for k, v in steps[0].attrs.items() if k not in (TIME_STEP, "module_path")}
    attrs.update(layer=request, module_path=split_call(steps[0].attrs["module_path"])[0],
                 time_steps=len(steps))
    stacked = xr.concat([a.drop_attrs() if hasattr(a, "drop_attrs") else a for a in steps], dim=TIME_STEP,
                        coords="minimal", compat="override", combine_attrs="drop")
    return stacked.assign_coords({TIME_STEP: np.arange(len(steps)),
                                  "step_module_path": (TIME_STEP, [a.attrs["module_path"] for a in steps])}
                                 ).rename(request).assign_attrs(attrs)
