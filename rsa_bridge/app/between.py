"""Model x model maps, wired end to end: ``rsa-bridge compare --model A --model B --between-models``.

One forward pass per network over the same stimuli (``--dataset``'s images or ``--stimuli DIR``; no brain
data is read), each giving its layer RDMs and, from the same pass, its layer Grams (:func:`network_rdms`
with ``kernels_out``); the core (:func:`rsa_bridge.measures.model_map.model_map`) turns the two stacks
into the layer_a x layer_b map of one measure. Two networks, two checkpoints of one (``networks=`` one
:class:`NetworkOptions` per model: ``--weights`` given once per ``--model``), or one network and itself
(one ``--model``). Everything that can be refused is refused before the first model is built.

Example (tiny modules, see tests/test_model_map.py)::

    result = between_models(["a", "b"], [NetworkOptions(models=[net_a], transform=t, layers=["0", "2"]),
                                         NetworkOptions(models=[net_b], transform=t, layers=["1"])],
                            measure="cka", stimuli="stimuli_dir", progress=False)
    result.dims            # ('layer_a', 'layer_b')
    write_model_map(result, "out/")   # model_map.nc, model_map.csv
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import xarray as xr

from rsa_bridge.app.network import NetworkOptions
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.options import RDMOptions

#: the files ``write_model_map`` writes
MAP_FILES = ("model_map.nc", "model_map.csv")
#: model provenance copied from each network's RDM attrs into the map's attrs, suffixed ``_a`` / ``_b``
_SIDE_ATTRS = ("weights", "weights_sha256", "state_sha256", "module_training", "weights_origin", "source",
               "preprocessing", "token_pooling", "rdm_precision", "reduce_units", "reduce_seed")


def _networks(names: list[str], networks) -> list[NetworkOptions]:
    if not 1 <= len(names) <= 2:
        raise RSABridgeError(f"--between-models maps two networks (or one with itself): give one or two --model; "
                             f"got {len(names)}")
    if networks is None or isinstance(networks, NetworkOptions):
        networks = [networks or NetworkOptions()] * len(names)
    networks = list(networks)
    if len(networks) != len(names) or not all(isinstance(n, NetworkOptions) for n in networks):
        raise RSABridgeError(f"give one NetworkOptions per model (--weights once, or once per --model): "
                             f"{len(networks)} for {len(names)} models")
    for net in networks:
        if net.models is not None and len(net.models) != 1:
            raise RSABridgeError("a model map's NetworkOptions holds one built module (models=[net]) per model")
    if len({str(n.stimuli) for n in networks}) > 1:
        raise RSABridgeError("the networks of a model map must see the same stimuli; give --stimuli once")
    return networks


def _stimuli(dataset, stimuli):
    """The stimulus set: ``stimuli`` (a folder) when given, else ``dataset``'s images; (set, dataset name)."""
    from rsa_bridge.app.pipeline import stimuli_for

    if stimuli is not None:
        from stimuli import load_stimulus_set

        return load_stimulus_set(stimuli), "none"
    if dataset is None:
        raise RSABridgeError("say which stimuli the networks see: --dataset NAME (its images) or --stimuli DIR")
    from rsa_bridge.datasets import load_dataset

    ds = load_dataset(dataset)
    return stimuli_for(ds, None), str(ds.attrs.get("name", dataset))


def _check(names, networks, record, options, n_stimuli: int) -> None:
    """Everything before the forward pass: controls, the measure's design, memory."""
    from rsa_bridge.budget import DEFAULT_LAYERS, check_eigen_memory, check_rdm_memory
    from rsa_bridge.control_rdms import is_control_model

    for name, net in zip(names, networks):
        if net.models is None and is_control_model(name):
            raise RSABridgeError(f"--between-models maps network layers; {name!r} is an image-statistics control "
                                 "with no layers: compare it with --area instead")
    if n_stimuli < 3:
        raise RSABridgeError(f"a model map needs at least 3 stimuli; the stimulus set has {n_stimuli}")
    if record.check is not None and record.map_input == "gram":
        record.check(n_stimuli, options, None)
    check_eigen_memory(n_stimuli, [record.name] if record.eigen else [])
    n_layers = sum(len(n.layers) if n.layers else DEFAULT_LAYERS for n in networks)
    check_rdm_memory(n_stimuli, 2 * n_layers, 0)   # each layer's RDM and Gram


def _module(name: str, net: NetworkOptions, rdm: RDMOptions):
    """The built network, its layers resolved now (an unknown layer is refused before any forward pass)."""
    from extractors import load_model
    from extractors.layers import resolve_layers

    module = net.models[0] if net.models is not None else load_model(name, net.weights, device=rdm.device)
    resolve_layers(module, list(net.layers) if net.layers else None)
    return module


def _stack(module, net: NetworkOptions, stim, rdm: RDMOptions, record, progress) -> xr.DataArray:
    """One forward pass: the layer RDMs (rsa) or the layer Grams from the same pass, with provenance attrs."""
    from extractors.provenance import module_provenance
    from rsa_bridge.app.pipeline import network_rdms
    from rsa_bridge.measures.model_map import gram_stack
    from rsa_bridge.provenance import clean_attrs

    if net.tokens is not None and hasattr(module, "rsa_bridge_info"):
        from extractors.tokens import check_mode

        module.rsa_bridge_info.extra["token_pooling"] = check_mode(net.tokens)
    info = module_provenance(module, net.transform)
    kernels: dict = {}
    rdms = network_rdms(module, stim, net.layers, rdm, progress=progress, transform=net.transform,
                        kernels_out=kernels)
    attrs = clean_attrs({**{k: rdms.attrs.get(k) for k in _SIDE_ATTRS}, **{k: info.get(k) for k in _SIDE_ATTRS
                                                                         if info.get(k) is not None}})
    attrs = {k: "unknown" if v == "" else v for k, v in attrs.items()}   # recorded as unknown, never blank
    if record.map_input == "rdm":
        stack = rdms.copy(deep=False)
        stack.attrs = {}
    else:
        layers = [str(l) for l in rdms["layer"].values]
        stack = gram_stack([kernels[l] for l in layers], layers, [str(s) for s in rdms["stimulus_row"].values])
        stack = stack.assign_coords(module_path=("layer", [str(p) for p in rdms["module_path"].values]))
    return stack.assign_attrs(attrs)


def between_models(model_names: Sequence[str], networks: NetworkOptions | Sequence[NetworkOptions] | None = None, *,
                   measure: str = "cka", method: str = "spearman", dataset=None, rdm: RDMOptions | None = None,
                   measure_options=None, progress: bool | None = None) -> xr.DataArray:
    """The layer x layer map of ``measure`` between two networks (or one network and itself).

    Args:
        model_names: one or two model names (torchvision, ``SOURCE:NAME``, or labels of built modules);
            the same name twice with different ``networks`` weights compares two checkpoints.
        networks: one :class:`NetworkOptions` for both, or one per model (weights, layers, built module,
            transform, tokens, ``stimuli`` = the stimulus folder).
        measure: a measure with a layer x layer form (:mod:`rsa_bridge.measures.model_map`); ``rsa`` uses
            the layer RDMs (``rdm.metric``) compared by ``method``.
        dataset: where the images come from when no ``stimuli`` folder is given (a shipped name or .nc).
        rdm: :class:`RDMOptions` of the forward passes (metric, precision, batch size, device ...).
        measure_options: :class:`rsa_bridge.measures.scoring.MeasureOptions` (shape alpha, k, SVCCA keep).
        progress: progress bars of the forward passes.

    Returns:
        (layer_a, layer_b) DataArray ``similarity`` (see :func:`rsa_bridge.measures.model_map.model_map`) with
        provenance attrs: ``model_a``/``model_b``, ``weights_a``/``weights_b`` (and their hashes),
        ``measure``, ``method``, ``metric`` (rsa), ``stimulus_set``, ``dataset``, ``n_stimuli``, version.

    Raises:
        RSABridgeError: before any model is built: a measure with no map (linear), more than two models,
            no stimuli, too few stimuli for the measure, a control model, memory; before any forward pass:
            a layer either network does not have.
    """
    from rsa_bridge.measures.model_map import map_record, model_map
    from rsa_bridge.measures.scoring import MeasureOptions
    from rsa_bridge.provenance import package_version

    names = [str(n) for n in model_names]
    networks = _networks(names, networks)
    record = map_record(measure)
    options = measure_options or MeasureOptions()
    rdm = rdm or RDMOptions()
    stim, dataset_name = _stimuli(dataset, networks[0].stimuli)
    _check(names, networks, record, options, len(stim.stimulus_ids))
    modules = [_module(name, net, rdm) for name, net in zip(names, networks)]
    a = _stack(modules[0], networks[0], stim, rdm, record, progress)
    b = a if len(names) == 1 else _stack(modules[1], networks[1], stim, rdm, record, progress)
    result = model_map(a, b, record.name, method=method, options=options)
    sides = {f"{k}_{s}": v for s, stack in (("a", a), ("b", b)) for k, v in stack.attrs.items()}
    result.attrs.update({"model_a": names[0], "model_b": names[-1], **sides,
                         "metric": rdm.metric if record.map_input == "rdm" else "n/a (layer Grams)",
                         "stimulus_set": str(stim.name), "dataset": dataset_name,
                         "rsa_bridge_version": package_version()})
    return result


def map_table(result: xr.DataArray):
    """One row per (layer_a, layer_b): model_a, layer_a, model_b, layer_b, measure, method, similarity."""
    import pandas as pd

    frame = result.to_dataframe(name="similarity").reset_index()[["layer_a", "layer_b", "similarity"]]
    frame.insert(0, "model_a", result.attrs["model_a"])
    frame.insert(2, "model_b", result.attrs["model_b"])
    frame.insert(4, "measure", result.attrs["measure"])
    frame.insert(5, "method", result.attrs["method"])
    return pd.DataFrame(frame)


def write_model_map(result: xr.DataArray, out: str | Path, overwrite: bool = False) -> list[Path]:
    """``model_map.nc`` (the DataArray with its attrs) and ``model_map.csv`` (:func:`map_table`) in ``out``."""
    from rsa_bridge.io import staged_outputs, staged_paths, write_netcdf
    from stimuli.csv_cells import frame_to_csv

    with staged_outputs(out, MAP_FILES, overwrite=overwrite) as staging:
        write_netcdf(result.to_dataset(name="similarity"), staging / "model_map.nc")
        frame_to_csv(map_table(result), staging / "model_map.csv", index=False)
    return staged_paths(out, MAP_FILES)


def format_map(result: xr.DataArray) -> str:
    """The map as printed: a header naming the measure, then the layer_a x layer_b grid (3 decimals)."""
    frame = result.to_pandas()
    head = (f"MODEL MAP {result.attrs['measure']}: {result.attrs['measure_label']} between the layers of "
            f"{result.attrs['model_a']} ({result.attrs.get('weights_a', 'unknown')}, rows) and "
            f"{result.attrs['model_b']} ({result.attrs.get('weights_b', 'unknown')}, columns), "
            f"{result.attrs['n_stimuli']} stimuli")
    return head + "\n" + frame.to_string(float_format=lambda v: f"{v:.3f}")


__all__ = ["between_models", "format_map", "map_table", "write_model_map"]
