"""The main job, wired end to end: stimuli -> extractors -> RDMs -> comparison with neural RDMs.

This is the one module that joins :mod:`stimuli`, :mod:`extractors` and the RSA core; the command line
and the notebooks call :func:`compare_model` / :func:`compare_models` / :func:`compare_precomputed`.
Statistics (bootstrap CIs, permutation p-values, noise ceilings, best layers, model differences) come
from :mod:`rsa_bridge.stats` through :class:`StatsOptions`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from rsa_bridge.align import check_same_ids, reorder_rdm
from rsa_bridge.compare import compare_vectors
from rsa_bridge.datasets import area_rdms, areas, find_area, load_dataset
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.model_rdms import LAYER
from rsa_bridge.provenance import clean_attrs, package_version
from rsa_bridge.rdm import COL, ROW, upper_triangle

AREA = "area"
#: fields of :func:`extractors.provenance.module_provenance` stored in attrs (None ones are dropped)
_RECORD_ATTRS = ("state_sha256", "module_training", "weights_origin", "transform", "source", "token_pooling")


@dataclass
class CompareResult:
    """What ``compare`` produces.

    Attributes:
        table: one row per (model, layer, area): the columns of ``results.csv``.
        results: ``similarity`` (model_layer x area) with provenance attrs, plus ``similarity_sem`` and
            ``n_rdms``; per-RDM values (subjects/sessions) in ``per_rdm_<area>`` variables.
        model_rdms: per dataset name, the model RDMs ``(layer, stimulus_row, stimulus_col)``.
        statistics: per dataset name, its :class:`rsa_bridge.stats.summary.CompareStatistics`.
        best: best layer per (model, area) with its bootstrap probability of being best (None without
            a bootstrap).
        model_differences: best layer of each model minus that of each other model, per area (None
            with one model or without a bootstrap).
    """

    table: pd.DataFrame
    results: xr.Dataset
    model_rdms: dict[str, xr.DataArray]
    statistics: dict = field(default_factory=dict)
    best: pd.DataFrame | None = None
    model_differences: pd.DataFrame | None = None


@dataclass
class StatsOptions:
    """What statistics ``compare`` adds (all off but the noise ceiling by default in the Python API).

    Attributes:
        bootstrap: bootstrap samples for CIs and best layers (0 = none); bootstrap_over: ``stimuli``,
            ``rdms`` (subjects/sessions) or ``both``; ci_level: CI level.
        permutations: permutations for p-values (0 = none).
        seed: seed of the one Generator behind every random step (stored in the result's attrs).
        ceiling: Nili noise ceiling of areas with >= 2 RDMs.
        normalize_by_ceiling: ``upper``/``lower`` adds ``similarity_normalized`` = similarity / that bound.
        progress: a bar over bootstrap samples on stderr (None: only on a terminal; not stored in attrs).
    """

    bootstrap: int = 0
    permutations: int = 0
    seed: int | None = 0
    bootstrap_over: str = "stimuli"
    ci_level: float = 0.95
    ceiling: bool = True
    normalize_by_ceiling: str | None = None
    progress: bool | None = None

    def attrs(self) -> dict:
        out = {f"stats_{k}": v for k, v in asdict(self).items() if k != "progress"}
        out["stats_seed"] = "none (fresh entropy)" if self.seed is None else self.seed
        out["stats_p_correction_family"] = "the model layers tested against one area"
        out["stats_ceiling_definition"] = "nili (lower: leave one RDM out; upper: all RDMs)"
        return clean_attrs(out)


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
                 transform=None, *, precision: str = "float64", reduce_units: int | None = None,
                 reduce_seed: int = 0, memory_budget: float | None = None,
                 spill_dir: str | Path | None = None) -> xr.DataArray:
    """Model RDMs (layer, n, n) of a network's layers over a stimulus set, streamed batch by batch.

    No layer's (stimulus x unit) matrix is held in memory: see :mod:`extractors.streaming` (two phases,
    in-memory store up to ``memory_budget`` bytes, the rest spilled to a temporary folder in ``spill_dir``,
    Gram products in torch on ``device``). ``precision`` ``"float64"`` equals :func:`rsa_bridge.rdm.compute_rdm`;
    ``"float32"`` is faster (~1e-6). ``reduce_units=K`` sketches layers wider than K units to K (seeded
    by ``reduce_seed``; recorded in attrs). ``memory_budget`` None: the streaming default (64 MiB).
    """
    from extractors.streaming import DEFAULT_MEMORY_BUDGET, stream_rdms

    return stream_rdms(model, stimulus_set, layers, metric=metric, batch_size=batch_size, device=device,
                       transform=transform, progress=progress, precision=precision, reduce_units=reduce_units,
                       reduce_seed=reduce_seed, spill_dir=spill_dir,
                       memory_budget=DEFAULT_MEMORY_BUDGET if memory_budget is None else memory_budget)


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


def _add_statistics(pieces: list[dict], method: str, options: StatsOptions) -> None:
    """Per dataset: stack every model's layer RDMs and attach one CompareStatistics to its pieces."""
    from rsa_bridge.stats.resample import as_generator
    from rsa_bridge.stats.summary import compare_statistics

    rng = as_generator(options.seed)
    by_dataset: dict[str, list[dict]] = {}
    for piece in pieces:
        by_dataset.setdefault(piece["dataset"], []).append(piece)
    for group in by_dataset.values():
        ids = [str(s) for s in group[0]["model_rdms"][ROW].values]
        stacked = xr.concat(
            [reorder_rdm(p["model_rdms"], ids).drop_vars([c for c in p["model_rdms"].coords if c not in (ROW, COL)])
             .rename({LAYER: "model_layer"}).assign_coords(model_layer=[f"{p['model']}:{l}" for l in
                                                                       p["model_rdms"][LAYER].values])
             for p in group], dim="model_layer")
        stats = compare_statistics(stacked, group[0]["dataset_obj"], list(group[0]["similarity"][AREA].values), method,
                                   n_bootstrap=options.bootstrap, n_permutations=options.permutations,
                                   over=options.bootstrap_over, rng=rng, level=options.ci_level,
                                   ceiling=options.ceiling, normalize=options.normalize_by_ceiling,
                                   progress=options.progress)
        for piece in group:
            piece["stats"] = stats


def _assemble(pieces: list[dict], provenance: dict, options: StatsOptions | None = None) -> CompareResult:
    """Join per-dataset pieces into the table, the results Dataset and the model RDMs."""
    from rsa_bridge.stats.summary import bootstrap_variable, ceiling_variables, collect_tables, row_columns

    options = options or StatsOptions(ceiling=False)
    _add_statistics(pieces, provenance["method"], options)
    rows, variables, model_rdms = [], {}, {}
    for piece in pieces:
        sim, sem, rdms = piece["similarity"], piece["sem"], piece["model_rdms"]
        paths = rdms["module_path"].values if "module_path" in rdms.coords else [""] * rdms.sizes[LAYER]
        for area in sim[AREA].values:
            for k, layer in enumerate(sim[LAYER].values):
                similarity = float(sim.sel({LAYER: layer, AREA: area}))
                rows.append({
                    "model": piece["model"], "weights": piece["weights"], "layer": str(layer),
                    "module_path": str(paths[k]), "area": str(area), "dataset": piece["dataset"],
                    "metric": piece["metric"], "method": provenance["method"],
                    "similarity": similarity,
                    "sem": float(sem.sel({LAYER: layer, AREA: area})),
                    "n_rdms": int(piece["per_rdm"][str(area)].sizes["replicate"]),
                    "n_stimuli": int(rdms.sizes[ROW]),
                    **row_columns(piece.get("stats"), f"{piece['model']}:{layer}", str(area), similarity,
                                  options.normalize_by_ceiling),
                    **piece.get("columns", {}),
                })
        model_rdms[f"{piece['model']}|{piece['dataset']}"] = rdms
        for area, values in piece["per_rdm"].items():
            rep = f"replicate_{piece['dataset']}_{area}"
            name = f"per_rdm_{piece['dataset']}_{area}"
            block = xr.DataArray(
                values.values, dims=("model_layer", rep),
                coords={"model_layer": [f"{piece['model']}:{l}" for l in values[LAYER].values],
                        rep: values["replicate"].values})
            variables[name] = block if name not in variables else xr.concat([variables[name], block], "model_layer")
    table = pd.DataFrame(rows)
    keys = list(dict.fromkeys(zip(table["model"], table["layer"])))
    area_names = list(dict.fromkeys(table["area"]))
    grid_columns = [c for c in table.columns if c not in ("n_rdms", "n_stimuli", "is_best")
                    and pd.api.types.is_float_dtype(table[c])]
    grid = {name: np.full((len(keys), len(area_names)), np.nan) for name in grid_columns}
    for row in rows:
        i, j = keys.index((row["model"], row["layer"])), area_names.index(row["area"])
        for name in grid_columns:
            grid[name][i, j] = row.get(name, np.nan)
    coords = {"model_layer": [f"{m}:{l}" for m, l in keys], "model": ("model_layer", [m for m, _ in keys]),
              LAYER: ("model_layer", [l for _, l in keys]), AREA: area_names}
    names = {"similarity": "similarity", "sem": "similarity_sem", "ci_low": "similarity_ci_low",
             "ci_high": "similarity_ci_high"}
    stat_vars = {names.get(c, c): (("model_layer", AREA), grid[c]) for c in grid_columns
                 if not c.startswith("ceiling_")}
    unique_stats = list({id(p["stats"]): (p["dataset"], p["stats"]) for p in pieces if p.get("stats")}.values())
    stat_vars.update(ceiling_variables([st for _, st in unique_stats], area_names))
    stat_vars.update(bootstrap_variable([st for _, st in unique_stats], coords["model_layer"], area_names))
    results = xr.Dataset(
        {**stat_vars, **variables}, coords=coords,
        attrs=clean_attrs({**provenance, **options.attrs(), "rsa_bridge_version": package_version()}),
    )
    results["similarity"].attrs = {"long_name": f"{provenance['method']} correlation of model and brain RDMs",
                                   "units": "1", "aggregation": "mean over the area's RDMs (subjects/sessions)"}
    results["similarity_sem"].attrs = {"long_name": "standard error of the mean over the area's RDMs",
                                       "units": "1"}
    if "similarity_normalized" in results:
        results["similarity_normalized"].attrs = {
            "long_name": f"similarity divided by the noise ceiling's {options.normalize_by_ceiling} bound",
            "units": "1"}
    best, differences = collect_tables(unique_stats)
    if differences is not None and len(differences):
        diff = xr.Dataset.from_dataframe(differences.rename_axis("model_comparison"))
        results = results.merge(diff.rename({c: f"model_difference_{c}" if c != "difference" else "model_difference"
                                             for c in diff.data_vars}))
    return CompareResult(table=table, results=results, model_rdms=model_rdms,
                         statistics={p["dataset"]: p.get("stats") for p in pieces}, best=best,
                         model_differences=differences)


def compare_models(model_names: Sequence[str], areas_wanted: Sequence[str] | None = None, *,
                   weights: str = "default", dataset: str | None = None, stimuli: str | Path | None = None,
                   layers: Sequence[str] | None = None, metric: str = "correlation", method: str = "spearman",
                   batch_size: int = 32, device: str = "cpu", progress: bool | None = None,
                   models: Sequence | None = None, transform=None,
                   stats: StatsOptions | None = None, cache=None,
                   rdm_options: dict | None = None, tokens: str | None = None) -> CompareResult:
    """Score one or more networks' layers against brain areas: the ``rsa-bridge compare`` job.

    Several models are scored on the same stimuli and the same bootstrap samples, so their best layers
    can be compared pairwise (``result.model_differences``).

    Args:
        model_names: torchvision model names (``alexnet``, ``vgg16``, ``resnet50``, ...), or labels for
            ``models`` when built ``nn.Module`` s are passed.
        areas_wanted: areas (``V4``, ``IT``, ``hIT`` ...); None with ``dataset`` = all its areas.
        weights: ``"default"`` (torchvision enum, from the local cache), ``"none"`` (untrained) or a
            state-dict path (for every model).
        dataset: a shipped dataset name or an RDM NetCDF path (default: the shipped one with the area).
        stimuli: the stimulus folder for a user dataset (default: the dataset's own).
        layers: layer aliases or module paths (default: each model's default list).
        metric: RDM metric for the model layers (see :mod:`rsa_bridge.rdm`).
        method: RDM comparison method (see :mod:`rsa_bridge.compare`).
        models: already built ``nn.Module`` s (e.g. from ``extractors.load_model``), one per name.
        transform: PIL image -> tensor (3, H, W) for ``models`` that carry no preprocessing of their own.
        stats: which statistics to add (default: the noise ceiling only).
        cache: model-RDM cache (:mod:`rsa_bridge.cache`): None = ``$RSA_BRIDGE_CACHE`` or
            ``~/.cache/rsa-bridge``, False = off, a folder, or a cache object.
        rdm_options: keyword options of :func:`network_rdms` (``precision``, ``reduce_units``,
            ``reduce_seed``); they enter the cache key.
        tokens: units of transformer token layers, ``all`` (default), ``cls`` or ``mean`` (see
            :mod:`extractors.tokens`); recorded as ``token_pooling``.
    """
    from extractors import load_model
    from extractors.provenance import USER_MODULE, module_provenance
    from rsa_bridge.control_rdms import CONTROL_WEIGHTS, control_model_rdms, is_control_model

    names = list(model_names)
    if not names:
        raise RSABridgeError("say which model to score: --model NAME (repeat it to compare models)")
    if len(set(names)) != len(names):
        raise RSABridgeError(f"a model is named twice: {', '.join(names)}")
    if models is not None and len(models) != len(names):
        raise RSABridgeError(f"{len(models)} built models for {len(names)} names")
    plan = select_datasets(areas_wanted, dataset)
    loaded = {ds_name: load_dataset(ds_name) for ds_name, _ in plan}
    stim_sets = {}
    for ds_name, _ in plan:
        ds = loaded[ds_name]
        stim_sets[ds_name] = _stimuli_for(ds, stimuli)
        check_same_ids(stim_sets[ds_name].stimulus_ids, ds[ROW].values, f"stimulus set {stim_sets[ds_name].name!r}",
                       f"dataset {ds.attrs['name']!r}")
    pieces, labels, infos = [], [], []
    for k, model_name in enumerate(names):
        control = models is None and is_control_model(model_name)
        net = None if control else (models[k] if models is not None else load_model(model_name, weights, device=device))
        if tokens is not None and net is not None and hasattr(net, "rsa_bridge_info"):
            from extractors.tokens import check_mode
            net.rsa_bridge_info.extra["token_pooling"] = check_mode(tokens)
        # what the network is, read off the module itself (before extraction puts it in eval mode):
        # a user nn.Module is "user-module" + its state-dict SHA-256, never the `weights` argument
        record = {} if control else module_provenance(net, transform)
        info = SimpleNamespace(**record) if record else None
        weights_label = CONTROL_WEIGHTS if control else record["weights"]
        labels.append(weights_label)
        infos.append(info)
        columns = {k: record[k] for k in ("state_sha256", "module_training", "transform")
                   if record and (weights_label == USER_MODULE or k == "transform") and record.get(k) is not None}
        for ds_name, area_names in plan:
            ds, stim = loaded[ds_name], stim_sets[ds_name]
            from rsa_bridge.cache import cached_network_rdms
            rdms = control_model_rdms(model_name, stim, metric) if control else cached_network_rdms(
                network_rdms, net, stim, layers, metric, batch_size, device, progress, transform, cache=cache,
                **(rdm_options or {}))
            rdms.attrs.update(clean_attrs({"model": model_name, "weights": weights_label,
                                           "weights_sha256": getattr(info, "weights_sha256", None),
                                           "preprocessing": getattr(info, "preprocessing", None), "metric": metric,
                                           **{k: record.get(k) for k in _RECORD_ATTRS},
                                           "stimulus_set": stim.name, "rsa_bridge_version": package_version()}))
            sim, sem, per_rdm = compare_layers(rdms, ds, area_names, method)
            pieces.append({"model": model_name, "weights": weights_label, "dataset": ds.attrs["name"],
                           "dataset_obj": ds, "metric": metric, "similarity": sim, "sem": sem, "per_rdm": per_rdm,
                           "model_rdms": rdms, "columns": columns})
        del net
    provenance = {"model": ",".join(names), "weights": ",".join(dict.fromkeys(labels)), "metric": metric,
                  "method": method, "datasets": ",".join(dict.fromkeys(p["dataset"] for p in pieces)),
                  "device": device,
                  "weights_sha256": ",".join(str(getattr(i, "weights_sha256", None)) for i in infos)
                  if any(getattr(i, "weights_sha256", None) for i in infos) else None,
                  "preprocessing": getattr(infos[0], "preprocessing", None) if len(infos) == 1 else None,
                  **{k: ",".join("n/a" if getattr(i, k, None) is None else str(getattr(i, k)) for i in infos)
                     for k in _RECORD_ATTRS if any(getattr(i, k, None) is not None for i in infos)}}
    return _assemble(pieces, provenance, stats or StatsOptions())


def compare_model(model_name: str, areas_wanted: Sequence[str] | None = None, *, weights: str = "default",
                  dataset: str | None = None, stimuli: str | Path | None = None,
                  layers: Sequence[str] | None = None, metric: str = "correlation", method: str = "spearman",
                  batch_size: int = 32, device: str = "cpu", progress: bool | None = None,
                  model=None, transform=None, stats: StatsOptions | None = None) -> CompareResult:
    """Score one network's layers against brain areas (see :func:`compare_models` for the arguments;
    ``model`` is one already built ``nn.Module``)."""
    return compare_models([model_name], areas_wanted, weights=weights, dataset=dataset, stimuli=stimuli,
                          layers=layers, metric=metric, method=method, batch_size=batch_size, device=device,
                          progress=progress, models=None if model is None else [model], transform=transform,
                          stats=stats)


def compare_precomputed(model_rdms: xr.DataArray, areas_wanted: Sequence[str] | None = None, *,
                        dataset: str | None = None, method: str = "spearman",
                        model_name: str | None = None, stats: StatsOptions | None = None) -> CompareResult:
    """Compare precomputed model RDMs (layer, n, n) with brain areas (see :mod:`rsa_bridge.model_rdms`)."""
    plan = select_datasets(areas_wanted, dataset)
    label = model_name or Path(str(model_rdms.attrs.get("source_file", "model_rdms"))).stem
    pieces = []
    for ds_name, area_names in plan:
        ds = load_dataset(ds_name)
        sim, sem, per_rdm = compare_layers(model_rdms, ds, area_names, method)
        pieces.append({"model": label, "weights": "precomputed", "dataset": ds.attrs["name"], "dataset_obj": ds,
                       "metric": str(model_rdms.attrs.get("metric", "unknown")), "similarity": sim, "sem": sem,
                       "per_rdm": per_rdm, "model_rdms": model_rdms})
    provenance = {"model": label, "weights": "precomputed", "method": method,
                  "datasets": ",".join(p["dataset"] for p in pieces),
                  "model_rdm_file": model_rdms.attrs.get("source_file")}
    return _assemble(pieces, provenance, stats or StatsOptions())
