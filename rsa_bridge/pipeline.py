"""The main job, wired end to end: stimuli -> extractors -> RDMs -> comparison with neural RDMs.

This is the one module that joins :mod:`stimuli`, :mod:`extractors` and the RSA core; the command line
and the notebooks call :func:`compare_model` / :func:`compare_precomputed`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from rsa_bridge.align import check_same_ids, reorder_rdm
from rsa_bridge.compare import compare_vectors
from rsa_bridge.datasets import area_rdms, areas, find_area, load_dataset
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.model_rdms import LAYER, stack_rdms
from rsa_bridge.provenance import clean_attrs, package_version
from rsa_bridge.rdm import ROW, compute_rdm, upper_triangle

AREA = "area"


@dataclass
class CompareResult:
    """What ``compare`` produces.

    Attributes:
        table: one row per (model, layer, area): the columns of ``results.csv``.
        results: ``similarity`` (model_layer x area) with provenance attrs, plus ``similarity_sem`` and
            ``n_rdms``; per-RDM values (subjects/sessions) in ``per_rdm_<area>`` variables.
        model_rdms: per dataset name, the model RDMs ``(layer, stimulus_row, stimulus_col)``.
    """

    table: pd.DataFrame
    results: xr.Dataset
    model_rdms: dict[str, xr.DataArray]


def select_datasets(areas_wanted: Sequence[str] | None, dataset: str | None) -> list[tuple[str, list[str]]]:
    """Which datasets and areas to compare with: ``[(dataset name or path, [areas])]``.

    With ``dataset`` given, its areas (all, or those in ``areas_wanted``); otherwise each area is looked
    up among the shipped datasets (first that has it).
    """
    if dataset is not None:
        ds = load_dataset(dataset)
        have = areas(ds)
        wanted = list(areas_wanted) if areas_wanted else have
        missing = [a for a in wanted if a not in have]
        if missing:
            raise RSABridgeError(f"dataset {dataset!r} has no area {missing[0]!r}; it has {', '.join(have)}")
        return [(str(dataset), wanted)]
    if not areas_wanted:
        raise RSABridgeError("say which brain area to compare with: --area NAME (see `rsa-bridge datasets`)")
    grouped: dict[str, list[str]] = {}
    for area in areas_wanted:
        grouped.setdefault(find_area(area), []).append(area)
    return list(grouped.items())


def compare_layers(model_rdms: xr.DataArray, dataset: xr.Dataset, area_names: Sequence[str],
                   method: str = "spearman") -> tuple[xr.DataArray, xr.DataArray, dict[str, xr.DataArray]]:
    """Compare every layer RDM with every RDM of each area, matched by ``stimulus_id``.

    Args:
        model_rdms: (layer, n, n) model RDMs.
        dataset: a validated RDM dataset (see :mod:`rsa_bridge.datasets`).
        area_names: areas of ``dataset`` to compare with.
        method: comparison method (see :mod:`rsa_bridge.compare`).

    Returns:
        similarity (layer, area): mean over the area's RDMs (subjects/sessions) of the per-RDM similarity;
        sem (layer, area): standard error of that mean (NaN for a single RDM);
        per-RDM similarities per area, each (layer, replicate).
    """
    ids = [str(s) for s in model_rdms[ROW].values]
    name = dataset.attrs.get("name", "the dataset")
    check_same_ids(ids, dataset[ROW].values, "the model RDMs' stimuli", f"dataset {name!r}")
    model_vectors = upper_triangle(model_rdms.transpose(LAYER, ...))
    mean, sem, per_rdm = [], [], {}
    for area in area_names:
        neural = reorder_rdm(area_rdms(dataset, area), ids)
        sims = compare_vectors(model_vectors, upper_triangle(neural), method)
        per_rdm[area] = xr.DataArray(sims, dims=(LAYER, "replicate"),
                                     coords={LAYER: model_rdms[LAYER].values, "replicate": neural["replicate"].values})
        mean.append(sims.mean(axis=1))
        n = sims.shape[1]
        sem.append(sims.std(axis=1, ddof=1) / np.sqrt(n) if n > 1 else np.full(sims.shape[0], np.nan))
    coords = {LAYER: model_rdms[LAYER].values, AREA: list(area_names)}
    return (xr.DataArray(np.stack(mean, axis=1), dims=(LAYER, AREA), coords=coords),
            xr.DataArray(np.stack(sem, axis=1), dims=(LAYER, AREA), coords=coords), per_rdm)


def network_rdms(model, stimulus_set, layers: Sequence[str] | None, metric: str = "correlation",
                 batch_size: int = 32, device: str = "cpu", progress: bool | None = None,
                 transform=None) -> xr.DataArray:
    """Model RDMs (layer, n, n) of a network's layers over a stimulus set."""
    from extractors import extract

    activations = extract(model, stimulus_set, layers, batch_size=batch_size, device=device, progress=progress,
                          transform=transform)
    rdms = {}
    for layer in list(activations):
        rdms[layer] = compute_rdm(activations.pop(layer), metric)
    return stack_rdms(rdms)


def _stimuli_for(dataset: xr.Dataset, stimuli: str | Path | None):
    from stimuli import load_stimulus_set

    if stimuli is not None:
        return load_stimulus_set(stimuli)
    path = dataset.attrs.get("stimuli_path")
    if not path:
        raise RSABridgeError(
            f"dataset {dataset.attrs.get('name')!r} does not say where its images are; pass --stimuli DIR"
        )
    return load_stimulus_set(path, name=dataset.attrs.get("name"))


def _assemble(pieces: list[dict], provenance: dict) -> CompareResult:
    """Join per-dataset pieces into the table, the results Dataset and the model RDMs."""
    rows, variables, model_rdms = [], {}, {}
    for piece in pieces:
        sim, sem, rdms = piece["similarity"], piece["sem"], piece["model_rdms"]
        paths = rdms["module_path"].values if "module_path" in rdms.coords else [""] * rdms.sizes[LAYER]
        for area in sim[AREA].values:
            for k, layer in enumerate(sim[LAYER].values):
                rows.append({
                    "model": piece["model"], "weights": piece["weights"], "layer": str(layer),
                    "module_path": str(paths[k]), "area": str(area), "dataset": piece["dataset"],
                    "metric": piece["metric"], "method": provenance["method"],
                    "similarity": float(sim.sel({LAYER: layer, AREA: area})),
                    "sem": float(sem.sel({LAYER: layer, AREA: area})),
                    "n_rdms": int(piece["per_rdm"][str(area)].sizes["replicate"]),
                    "n_stimuli": int(rdms.sizes[ROW]),
                })
        model_rdms[f"{piece['model']}|{piece['dataset']}"] = rdms
        for area, values in piece["per_rdm"].items():
            rep = f"replicate_{piece['dataset']}_{area}"
            variables[f"per_rdm_{piece['dataset']}_{area}"] = xr.DataArray(
                values.values, dims=("model_layer", rep),
                coords={"model_layer": [f"{piece['model']}:{l}" for l in values[LAYER].values],
                        rep: values["replicate"].values})
    table = pd.DataFrame(rows)
    keys = list(dict.fromkeys(zip(table["model"], table["layer"])))
    area_names = list(dict.fromkeys(table["area"]))
    grid = {name: np.full((len(keys), len(area_names)), np.nan) for name in ("similarity", "sem")}
    for row in rows:
        i, j = keys.index((row["model"], row["layer"])), area_names.index(row["area"])
        grid["similarity"][i, j], grid["sem"][i, j] = row["similarity"], row["sem"]
    coords = {"model_layer": [f"{m}:{l}" for m, l in keys], "model": ("model_layer", [m for m, _ in keys]),
              LAYER: ("model_layer", [l for _, l in keys]), AREA: area_names}
    results = xr.Dataset(
        {"similarity": (("model_layer", AREA), grid["similarity"]),
         "similarity_sem": (("model_layer", AREA), grid["sem"]), **variables},
        coords=coords, attrs=clean_attrs({**provenance, "rsa_bridge_version": package_version()}),
    )
    results["similarity"].attrs = {"long_name": f"{provenance['method']} correlation of model and brain RDMs",
                                   "units": "1", "aggregation": "mean over the area's RDMs (subjects/sessions)"}
    results["similarity_sem"].attrs = {"long_name": "standard error of the mean over the area's RDMs",
                                       "units": "1"}
    return CompareResult(table=table, results=results, model_rdms=model_rdms)


def compare_model(model_name: str, areas_wanted: Sequence[str] | None = None, *, weights: str = "default",
                  dataset: str | None = None, stimuli: str | Path | None = None,
                  layers: Sequence[str] | None = None, metric: str = "correlation", method: str = "spearman",
                  batch_size: int = 32, device: str = "cpu", progress: bool | None = None,
                  model=None, transform=None) -> CompareResult:
    """Score a network's layers against brain areas: the ``rsa-bridge compare`` job.

    Args:
        model_name: a torchvision model name (``alexnet``, ``vgg16``, ``resnet50``, ...), or a label for
            ``model`` when a built ``nn.Module`` is passed.
        areas_wanted: areas (``V4``, ``IT``, ``hIT`` ...); None with ``dataset`` = all its areas.
        weights: ``"default"`` (torchvision enum, from the local cache), ``"none"`` (untrained) or a
            state-dict path.
        dataset: a shipped dataset name or an RDM NetCDF path (default: the shipped one with the area).
        stimuli: the stimulus folder for a user dataset (default: the dataset's own).
        layers: layer aliases or module paths (default: the model's default list).
        metric: RDM metric for the model layers (see :mod:`rsa_bridge.rdm`).
        method: RDM comparison method (see :mod:`rsa_bridge.compare`).
        model: an already built ``nn.Module`` (e.g. from ``extractors.load_model``) to use instead of
            building ``model_name``.
        transform: PIL image -> tensor (3, H, W) for a ``model`` that carries no preprocessing of its own.
    """
    from extractors import load_model

    plan = select_datasets(areas_wanted, dataset)
    net = model if model is not None else load_model(model_name, weights, device=device)
    info = getattr(net, "rsa_bridge_info", None)
    weights_label = getattr(info, "weights", str(weights)) if info is not None else str(weights)
    pieces = []
    for ds_name, area_names in plan:
        ds = load_dataset(ds_name)
        stim = _stimuli_for(ds, stimuli)
        check_same_ids(stim.stimulus_ids, ds[ROW].values, f"stimulus set {stim.name!r}", f"dataset {ds.attrs['name']!r}")
        rdms = network_rdms(net, stim, layers, metric, batch_size, device, progress, transform)
        rdms.attrs.update(clean_attrs({"model": model_name, "weights": weights_label,
                                       "weights_sha256": getattr(info, "weights_sha256", None),
                                       "preprocessing": getattr(info, "preprocessing", None), "metric": metric,
                                       "stimulus_set": stim.name, "rsa_bridge_version": package_version()}))
        sim, sem, per_rdm = compare_layers(rdms, ds, area_names, method)
        pieces.append({"model": model_name, "weights": weights_label, "dataset": ds.attrs["name"],
                       "metric": metric, "similarity": sim, "sem": sem, "per_rdm": per_rdm, "model_rdms": rdms})
    provenance = {"model": model_name, "weights": weights_label, "metric": metric, "method": method,
                  "datasets": ",".join(p["dataset"] for p in pieces), "device": device,
                  "weights_sha256": getattr(info, "weights_sha256", None),
                  "preprocessing": getattr(info, "preprocessing", None)}
    return _assemble(pieces, provenance)


def compare_precomputed(model_rdms: xr.DataArray, areas_wanted: Sequence[str] | None = None, *,
                        dataset: str | None = None, method: str = "spearman",
                        model_name: str | None = None) -> CompareResult:
    """Compare precomputed model RDMs (layer, n, n) with brain areas (see :mod:`rsa_bridge.model_rdms`)."""
    plan = select_datasets(areas_wanted, dataset)
    label = model_name or Path(str(model_rdms.attrs.get("source_file", "model_rdms"))).stem
    pieces = []
    for ds_name, area_names in plan:
        ds = load_dataset(ds_name)
        sim, sem, per_rdm = compare_layers(model_rdms, ds, area_names, method)
        pieces.append({"model": label, "weights": "precomputed", "dataset": ds.attrs["name"],
                       "metric": str(model_rdms.attrs.get("metric", "unknown")), "similarity": sim, "sem": sem,
                       "per_rdm": per_rdm, "model_rdms": model_rdms})
    provenance = {"model": label, "weights": "precomputed", "method": method,
                  "datasets": ",".join(p["dataset"] for p in pieces),
                  "model_rdm_file": model_rdms.attrs.get("source_file")}
    return _assemble(pieces, provenance)
