"""Activations of deep-network layers for a set of stimuli, via forward hooks.

    model = load_model("alexnet", weights="default")          # or "none", or a state-dict path
    acts = extract(model, load_stimulus_set("stimuli/"), ["conv1", "fc6"])
    acts["conv1"]   # xarray (presentation, neuroid), coordinate stimulus_id, provenance attrs

Modules: :mod:`extractors.models` (weights, ModelInfo), :mod:`extractors.aliases` (readable layer
names), :mod:`extractors.layers` (listing, resolving), :mod:`extractors.hooks` (the one hooking
mechanism: :class:`record`, :func:`run_recorded`; ``name@t`` / ``name@all`` read a module that runs several
times per pass), :mod:`extractors.inputs`, :mod:`extractors.extract`, :mod:`extractors.to_disk` (activations
to one NetCDF file per layer), :mod:`extractors.cornet` (CORnet-RT/S-style recurrent networks).
"""
from extractors.aliases import AliasTable, alias_table
from extractors.extract import extract, extract_batches
from extractors.hooks import Probe, StopForward, clone_output, probe, record, run_recorded, split_call
from extractors.layers import list_layers, module_paths, resolve_layers
from extractors.models import (
    OFFLINE_ENV,
    ModelInfo,
    build_skeleton,
    cache_path,
    check_device,
    load_model,
    model_info,
    read_state_dict,
)

__all__ = [
    "OFFLINE_ENV",
    "AliasTable",
    "ModelInfo",
    "Probe",
    "StopForward",
    "alias_table",
    "build_skeleton",
    "cache_path",
    "check_device",
    "clone_output",
    "extract",
    "extract_batches",
    "list_layers",
    "load_model",
    "model_info",
    "module_paths",
    "probe",
    "read_state_dict",
    "record",
    "resolve_layers",
    "run_recorded",
    "split_call",
]
