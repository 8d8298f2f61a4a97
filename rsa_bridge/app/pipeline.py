"""The main job, wired end to end: stimuli -> extractors -> RDMs -> comparison with neural RDMs.

This is the one module that joins :mod:`stimuli`, :mod:`extractors` and the RSA core (application layer:
see :mod:`rsa_bridge.app`); layer-vs-area scoring itself is core (:mod:`rsa_bridge.layer_scores`). The command line
and the notebooks call :func:`compare_model` / :func:`compare_models` / :func:`compare_precomputed`.
Statistics (bootstrap CIs, permutation p-values, noise ceilings, best layers, model differences) come
from :mod:`rsa_bridge.stats` through :class:`StatsOptions`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from rsa_bridge.align import reorder_rdm
from rsa_bridge.control_rdms import CONTROL_WEIGHTS
from rsa_bridge.datasets import load_dataset
from rsa_bridge.definitions import COMPARISONS
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.layer_scores import AREA, compare_layers, select_datasets
from rsa_bridge.model_rdms import LAYER, as_model_rdms
from rsa_bridge.options import RDMOptions, StatsOptions, options_from_keywords
from rsa_bridge.app.network import NetworkOptions, network_from_keywords, split_keywords
from rsa_bridge.app.piece import Piece
from rsa_bridge.provenance import clean_attrs, package_version
from rsa_bridge.rdm import COL, ROW
from rsa_bridge import timing

__all__ = ["AREA", "CompareResult", "NetworkOptions", "Piece", "RDMOptions", "StatsOptions", "compare_layers", "compare_model",
           "compare_models",
           "compare_precomputed", "network_rdms", "select_datasets"]
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
    agreement: pd.DataFrame | None = None  # best layer per area under each measure (rsa_bridge.measures.agreement)


def network_rdms(model, stimulus_set, layers: Sequence[str] | None = None, options: RDMOptions | None = None, *,
                 progress: bool | None = None, transform=None, kernels_out: dict | None = None,
                 out_store=None, **old_keywords) -> xr.DataArray:
    """Model RDMs (layer, n, n) of a network's layers over a stimulus set, streamed batch by batch.

    No layer's (stimulus x unit) matrix is held in memory: see :mod:`extractors.streaming` (two phases,
    in-memory store up to ``options.memory_budget`` bytes (None: a quarter of the memory available, 64 MiB
    to 2 GiB), the rest spilled to a temporary
    folder in ``options.spill_dir``, Gram products in torch on ``options.device``). ``options``:
    :class:`rsa_bridge.options.RDMOptions` (metric, precision, reduce_units/reduce_seed sketch, batch size,
    device; recorded in attrs). ``kernels_out``: a dict filled with each layer's centred linear Gram from the
    same pass (for CKA/linear). ``out_store``: an :class:`rsa_bridge.rdm_store.RDMStore` over the stimulus ids
    that receives each finished layer (then returned; one n x n square at a time). Spilled layers' Grams run where
    :func:`rsa_bridge.app.gram_routes.use_spilled_gram` says (``compare --scheduler --gram-tiles``). The old keywords (``metric=``,
    ``batch_size=``, ``precision=``, ...) were removed: a TypeError names the RDMOptions field to use.
    """
    from extractors.streaming import stream_rdms

    from rsa_bridge.app.gram_routes import current_spilled_gram

    options = options_from_keywords(options, old_keywords, "network_rdms")
    return stream_rdms(model, stimulus_set, layers, options, transform=transform, progress=progress,
                       kernels_out=kernels_out, out_store=out_store, spilled_gram=current_spilled_gram())


def stimuli_for(dataset: xr.Dataset, stimuli: str | Path | None):
    """The stimulus set of a dataset: ``stimuli`` when given (``--stimuli``), else the folder the dataset names."""
    from rsa_bridge.datasets import STIMULI_REFUSED
    from stimuli import load_stimulus_set

    if stimuli is not None:
        return load_stimulus_set(stimuli)
    path = dataset.attrs.get("stimuli_path")
    refused = dataset.attrs.get(STIMULI_REFUSED)
    if not path and refused:
        raise RSABridgeError(str(refused))
    if not path:
        raise RSABridgeError(
            f"dataset {dataset.attrs.get('name')!r} does not say where its images are; pass --stimuli DIR"
        )
    return load_stimulus_set(path, name=dataset.attrs.get("name"))


def _add_statistics(pieces: list[Piece], method: str, options: StatsOptions) -> None:
    """Per dataset: stack every model's layer RDMs and attach one CompareStatistics to its pieces.

    ``options`` goes whole to :func:`rsa_bridge.stats.summary.compare_statistics`, whose planner
    (:mod:`rsa_bridge.stats.plan`) chooses scheme, path, backend and executor once per dataset."""
    from rsa_bridge.app.rdm_stores import statistics_stack, stimulus_ids
    from rsa_bridge.stats.resample import as_generator
    from rsa_bridge.stats.summary import compare_statistics

    rng = as_generator(options.seed)
    by_dataset: dict[str, list[Piece]] = {}
    for piece in pieces:
        by_dataset.setdefault(piece.dataset, []).append(piece)
    for group in by_dataset.values():
        ids = stimulus_ids(group[0].model_rdms)
        stacked = statistics_stack(group, ids) or xr.concat(  # RDM stores: a StoreStack, no copy
            [reorder_rdm(p.model_rdms, ids).drop_vars([c for c in p.model_rdms.coords if c not in (ROW, COL)])
             .rename({LAYER: "model_layer"}).assign_coords(model_layer=[f"{p.model}:{l}" for l in
                                                                       p.model_rdms[LAYER].values])
             for p in group], dim="model_layer")
        stats = compare_statistics(stacked, group[0].dataset_obj, list(group[0].similarity[AREA].values), method,
                                   options, rng=rng, controls=[p.model for p in group if p.weights == CONTROL_WEIGHTS])
        for piece in group:
            piece.stats, piece.stacked = stats, stacked


def _add_time_course(results: xr.Dataset, pieces: list[Piece], method: str, options: StatsOptions) -> xr.Dataset:
    """Time-resolved areas: similarity per time bin, bootstrap CIs and peak latencies (:mod:`rsa_bridge.stats.time_course`)."""
    from rsa_bridge.app.rdm_stores import dense_stack
    from rsa_bridge.stats.time_course import time_course

    done: dict[int, xr.Dataset] = {}
    for p in pieces:
        if p.dataset_time is None or id(p.stats) in done:
            continue
        done[id(p.stats)] = time_course(dense_stack(p.stacked, "time-resolved areas"), p.dataset_time, list(p.similarity[AREA].values), method,
                                           n_bootstrap=options.bootstrap, seed=options.seed, level=options.ci_level,
                                           group_by=options.group_by, progress=options.progress,
                                           scheme=options.scheme)
    if options.time is not None:  # cluster tests, per-bin ceilings, cross-temporal RSA (rsa_bridge.stats.time_inference)
        from rsa_bridge.stats.time_inference import with_inference
        done = {k: with_inference(done[k], dense_stack(p.stacked, "time-resolved areas"), p.dataset_time, method,
                                  options.time, options.progress) for k, p in {id(p.stats): p for p in pieces}.items()
                if k in done}
    for tc in done.values():
        attrs = dict(results.attrs)
        results = results.merge(tc.reindex(model_layer=results["model_layer"].values, area=results[AREA].values))
        results.attrs = {**attrs, **clean_attrs(tc.attrs)}
    return results


def _assemble(pieces: list[Piece], provenance: dict, options: StatsOptions | None = None) -> CompareResult:
    """Join per-dataset pieces into the table, the results Dataset and the model RDMs."""
    from rsa_bridge.stats.summary import bootstrap_variable, ceiling_variables, collect_tables, row_columns
    from rsa_bridge.app.rdm_stores import layer_info

    options = options or StatsOptions(ceiling=False)
    from rsa_bridge.stats.backends import default_device

    with default_device(provenance.get("device")):  # --device cuda: the rank bootstrap runs in torch there
        timing.begin("statistics")  # stacking, ceilings, bootstrap, permutations
        _add_statistics(pieces, provenance["method"], options)
        timing.end("statistics")
    for piece in pieces:  # the comparisons and statistics are done: a store's cached ranks are not needed
        if hasattr(piece.model_rdms, "drop_derived"):
            piece.model_rdms.drop_derived()
    rows, variables, model_rdms = [], {}, {}
    for piece in pieces:
        sim, sem, rdms = piece.similarity, piece.sem, piece.model_rdms
        paths, n_stimuli = layer_info(rdms)  # a dense DataArray or an RDM store (rsa_bridge.app.rdm_stores)
        for area in sim[AREA].values:
            for k, layer in enumerate(sim[LAYER].values):
                similarity = float(sim.sel({LAYER: layer, AREA: area}))
                rows.append({
                    "model": piece.model, "weights": piece.weights, "layer": str(layer),
                    "module_path": str(paths[k]), "area": str(area), "dataset": piece.dataset,
                    "metric": piece.metric, "method": provenance["method"],
                    "similarity": similarity,
                    "sem": float(sem.sel({LAYER: layer, AREA: area})),
                    "n_rdms": int(piece.per_rdm[str(area)].sizes["replicate"]),
                    "resampling_unit": str(piece.per_rdm[str(area)].attrs.get("resampling_unit", "rdm")),
                    "n_units": int(piece.per_rdm[str(area)].attrs.get("n_units", 1)),
                    "n_stimuli": n_stimuli,
                    **row_columns(piece.stats, f"{piece.model}:{layer}", str(area), similarity,
                                  options.normalize_by_ceiling),
                    **piece.columns,
                })
        model_rdms[f"{piece.model}|{piece.dataset}"] = rdms
        for area, values in piece.per_rdm.items():
            rep = f"replicate_{piece.dataset}_{area}"
            name = f"per_rdm_{piece.dataset}_{area}"
            block = xr.DataArray(
                values.values, dims=("model_layer", rep),
                coords={"model_layer": [f"{piece.model}:{l}" for l in values[LAYER].values],
                        rep: values["replicate"].values})
            variables[name] = block if name not in variables else xr.concat([variables[name], block], "model_layer")
    table = pd.DataFrame(rows)
    from rsa_bridge.time_steps import TIME_STEP, layer_steps

    steps = layer_steps(table["layer"]) if len(table) else None  # per-call layers (V2@1): their step as a column
    if steps is not None:
        table.insert(int(table.columns.get_loc("module_path")) + 1, TIME_STEP, steps)
    keys = list(dict.fromkeys(zip(table["model"], table["layer"])))
    area_names = list(dict.fromkeys(table["area"]))
    grid_columns = [c for c in table.columns if c not in ("n_rdms", "n_stimuli", "is_best", "n_units")
                    and pd.api.types.is_float_dtype(table[c])]
    grid = {name: np.full((len(keys), len(area_names)), np.nan) for name in grid_columns}
    for row in rows:
        i, j = keys.index((row["model"], row["layer"])), area_names.index(row["area"])
        for name in grid_columns:
            grid[name][i, j] = row.get(name, np.nan)
    coords = {"model_layer": [f"{m}:{l}" for m, l in keys], "model": ("model_layer", [m for m, _ in keys]),
              LAYER: ("model_layer", [l for _, l in keys]), AREA: area_names,
              **({TIME_STEP: ("model_layer", layer_steps([l for _, l in keys]))} if steps is not None else {})}
    names = {"similarity": "similarity", "sem": "similarity_sem", "ci_low": "similarity_ci_low",
             "ci_high": "similarity_ci_high"}
    stat_vars = {names.get(c, c): (("model_layer", AREA), grid[c]) for c in grid_columns
                 if not c.startswith("ceiling_")}
    unique_stats = list({id(p.stats): (p.dataset, p.stats) for p in pieces if p.stats}.values())
    stat_vars.update(ceiling_variables([st for _, st in unique_stats], area_names))
    stat_vars.update(bootstrap_variable([st for _, st in unique_stats], coords["model_layer"], area_names))
    results = xr.Dataset(
        {**stat_vars, **variables}, coords=coords,
        attrs=clean_attrs({**provenance, **options.attrs(), "rsa_bridge_version": package_version()}),
    )
    results["similarity"].attrs = {"long_name": f"{provenance['method']} correlation of model and brain RDMs",
                                   "units": "1", "aggregation": "mean over units (subjects, or RDMs) of the unit "
                                                                "means over their RDMs"}
    from rsa_bridge.stats.executors import executor_attrs
    from rsa_bridge.stats.plan import permutation_attrs, scheme_attrs
    results.attrs.update(executor_attrs([st for _, st in unique_stats]))  # where the samples ran (dask or here)
    results.attrs.update(clean_attrs(scheme_attrs([st for _, st in unique_stats])))  # the planner's choices
    if "p_value" in results:
        results["p_value"].attrs = clean_attrs(permutation_attrs([st for _, st in unique_stats]))
    if unique_stats and unique_stats[0][1].families:
        results.attrs["stats_p_correction_family"] = (unique_stats[0][1].family_description() if len(unique_stats) == 1
                                                      else " | ".join(f"{name}: {st.family_description()}"
                                                                      for name, st in unique_stats))
    for piece in pieces:
        for area, values in piece.per_rdm.items():
            results.attrs[f"resampling_unit_{area}"] = str(values.attrs.get("resampling_unit_description", "unknown"))
    results["similarity_sem"].attrs = {"long_name": "standard error of the mean over the area's units "
                                                    "(subjects, or RDMs; see resampling_unit_<area>)",
                                       "units": "1"}
    if "similarity_normalized" in results:
        results["similarity_normalized"].attrs = {
            "long_name": f"similarity divided by the noise ceiling's {options.normalize_by_ceiling} bound",
            "units": "1"}
    from rsa_bridge.measures.agreement import agreement_table
    from rsa_bridge.measures.results import add_measures
    table, results = add_measures(table, results, [p.measure_scores for p in pieces])
    results = _add_time_course(results, pieces, provenance["method"], options)
    best, differences = collect_tables(unique_stats)
    if differences is not None and len(differences):
        diff = xr.Dataset.from_dataframe(differences.rename_axis("model_comparison"))
        results = results.merge(diff.rename({c: f"model_difference_{c}" if c != "difference" else "model_difference"
                                             for c in diff.data_vars}))
    return CompareResult(table=table, results=results, model_rdms=model_rdms,
                         statistics={p.dataset: p.stats for p in pieces}, best=best,
                         model_differences=differences, agreement=agreement_table(table))


def compare_models(model_names: Sequence[str], areas_wanted: Sequence[str] | None = None, *,
                   dataset: str | Path | xr.Dataset | None = None, method: str = "spearman",
                   network: NetworkOptions | None = None, rdm: RDMOptions | None = None,
                   stats: StatsOptions | None = None, measures: Sequence[str] | None = None, measure_options=None,
                   progress: bool | None = None, **old_keywords) -> CompareResult:
    """Score one or more networks' layers against brain areas: the ``rsa-bridge compare`` job.

    Several models are scored on the same stimuli and the same bootstrap samples, so their best layers
    can be compared pairwise (``result.model_differences``).

    Args:
        model_names: torchvision model names (``alexnet``, ``vgg16``, ``resnet50``, ...), or labels for
            ``network.models`` when built ``nn.Module`` s are passed.
        areas_wanted: areas (``V4``, ``IT``, ``hIT`` ...); None with ``dataset`` = all its areas.
        dataset: a shipped dataset name, an RDM NetCDF path or an in-memory RDM ``xarray.Dataset``
            (default: the shipped one with the area).
        method: RDM comparison method (see :mod:`rsa_bridge.compare`).
        network: which networks and what they read, :class:`rsa_bridge.app.network.NetworkOptions`: ``weights``
            (``"default"``, ``"none"`` = untrained, or a state-dict path), ``layers`` (default: each model's
            list), ``models`` (built ``nn.Module`` s, one per name), ``transform`` (PIL image -> tensor for
            modules without preprocessing), ``tokens`` (``all``/``cls``/``mean``, recorded as
            ``token_pooling``), ``stimuli`` (the stimulus folder of a user dataset) and ``cache`` (the
            model-RDM cache, :mod:`rsa_bridge.app.cache`: None = ``$RSA_BRIDGE_CACHE`` or
            ``~/.cache/rsa-bridge``, False = off, a folder, or a cache object).
        rdm: how the model RDMs are computed, :class:`rsa_bridge.options.RDMOptions` (metric, precision,
            reduce_units/reduce_seed, memory_budget, batch_size, device, ...; default ``RDMOptions()``); its
            result-changing fields enter the cache key.
        stats: which statistics to add, :class:`rsa_bridge.options.StatsOptions` (default: the noise ceiling
            only); the planner (:mod:`rsa_bridge.stats.plan`) records its choices in ``results``.
        measures: ``rsa`` (always computed), ``cka``, ``linear`` (:data:`rsa_bridge.measures.MEASURES`); cka and
            linear use each layer's Gram from the same forward pass (the RDM cache is then not read) and the
            area's per-stimulus responses; measure_options: :class:`rsa_bridge.measures.scoring.MeasureOptions`.
        progress: progress bars (forward passes and, unless ``stats.progress`` says otherwise, statistics).
        old_keywords: ``weights=``, ``layers=``, ``models=``, ``transform=``, ``tokens=``, ``stimuli=``,
            ``cache=`` of earlier releases are folded into ``network`` for one more release, with a
            DeprecationWarning; ``metric=``, ``batch_size=``, ``device=`` and ``rdm_options={...}`` are removed: any
            is a TypeError naming the ``rdm=RDMOptions(...)`` field to use.

    Returns:
        :class:`CompareResult`: ``table`` with one row per (model, layer, area), ``results`` (model_layer x
        area), ``model_rdms`` per model and dataset (layer, n, n).

    Raises:
        RSABridgeError: in one line, before any model is built or image decoded, for whatever
            :func:`rsa_bridge.app.preflight.prepare` can check (datasets, stimuli, each area x measure's data,
            fold sizes, memory and disk); ``measure_options.responses`` also gives single-RDM areas their
            split-half RSA ceiling.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> from rsa_bridge import NetworkOptions, RDMOptions, StatsOptions, compare_models
        >>> _ = torch.manual_seed(0)
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 5, stride=4), nn.Tanh(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
        >>> from torchvision import transforms as T
        >>> to_tensor = T.Compose([T.Resize((32, 32)), T.ToTensor()])   # PIL image -> (3, 32, 32)
        >>> network = NetworkOptions(models=[net], transform=to_tensor, layers=["0", "3"], cache=False)
        >>> result = compare_models(["tiny"], ["IT"], network=network,
        ...                         rdm=RDMOptions(precision="float32", batch_size=46),
        ...                         stats=StatsOptions(ceiling=False), progress=False)
        >>> print(result.table[["layer", "area", "n_stimuli"]].to_string(index=False))
        layer area  n_stimuli
            0   IT         92
            3   IT         92
    """
    from extractors import load_model
    from extractors.provenance import USER_MODULE, module_provenance
    from rsa_bridge.control_rdms import CONTROL_WEIGHTS, control_model_rdms, is_control_model

    names = list(model_names)
    net_keywords, rdm_keywords = split_keywords(old_keywords)
    network = network_from_keywords(network, net_keywords, "compare_models")
    rdm = options_from_keywords(rdm, rdm_keywords, "compare_models")
    weights, layers, models, transform = network.weights, network.layers, network.models, network.transform
    stimuli, cache, tokens = network.stimuli, network.cache, network.tokens
    metric, device, method = rdm.metric, rdm.device, COMPARISONS.resolve(method)  # aliases -> the recorded names
    if not names:
        raise RSABridgeError("say which model to score: --model NAME (repeat it to compare models)")
    if len(set(names)) != len(names):
        raise RSABridgeError(f"a model is named twice: {', '.join(names)}")
    if models is not None and len(models) != len(names):
        raise RSABridgeError(f"{len(models)} built models for {len(names)} names")
    from rsa_bridge.app.preflight import Request, prepare
    from rsa_bridge.budget import DEFAULT_LAYERS
    from rsa_bridge.measures.scoring import MeasureOptions, score_models
    from rsa_bridge.app.rdm_stores import new_store, placed, store_provenance

    measure_options = measure_options or MeasureOptions()
    # everything that can fail before the forward pass fails here, in one line (rsa_bridge.app.preflight): the
    # datasets and stimuli, each area x measure's data (rates read now), fold sizes, memory and disk budgets
    ready = prepare(Request(areas_wanted, dataset, stimuli, measures, measure_options, rdm, method,
                            len(names) * (len(layers) if layers else DEFAULT_LAYERS),
                            (stats or StatsOptions()).seed, (stats or StatsOptions()).ceiling,
                            (stats or StatsOptions()).bootstrap), stimuli_for)
    plan, loaded, stim_sets, timed, store_plans, extra = (ready.plan, ready.loaded, ready.stim_sets, ready.timed,
                                                          ready.store_plans, ready.extra)
    if stats is not None and stats.time is not None:  # time inference's refusals, before the forward pass
        from rsa_bridge.stats.time_inference import check_time_inference
        check_time_inference([(ds, areas) for ds, (_, areas) in zip(timed, plan)], stats.time)
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
        for (_, area_names), ds, stim, ds_time, store_plan in zip(plan, loaded, stim_sets, timed, store_plans):
            from rsa_bridge.app.cache import cached_network_rdms
            kernels = {} if extra and not control else None
            if control:
                rdms = control_model_rdms(model_name, stim, metric)
            elif store_plan.store:  # each finished layer straight into the store (cached one entry per layer)
                from functools import partial

                from rsa_bridge.app.cache_layers import cached_store_rdms
                rdms = cached_store_rdms(network_rdms, net, stim, layers, rdm, progress=progress, transform=transform,
                                         cache=cache, make_store=partial(new_store, store_plan, stim.stimulus_ids,
                                                                         rdm.spill_dir))
            elif kernels is None:
                rdms = cached_network_rdms(network_rdms, net, stim, layers, rdm, progress=progress,
                                           transform=transform, cache=cache)
            else:
                rdms = network_rdms(net, stim, layers, rdm, progress=progress, transform=transform,
                                    kernels_out=kernels)
            rdms = placed(rdms, store_plan, rdm)  # dense, or an RDM store (--rdm-store)
            rdms.attrs.update(clean_attrs({"model": model_name, "weights": weights_label,
                                           "weights_sha256": getattr(info, "weights_sha256", None),
                                           "preprocessing": getattr(info, "preprocessing", None), "metric": metric,
                                           **{k: record.get(k) for k in _RECORD_ATTRS},
                                           "stimulus_set": stim.name, "rsa_bridge_version": package_version()}))
            timing.begin("comparison")
            sim, sem, per_rdm = compare_layers(rdms, ds, area_names, method, (stats or StatsOptions()).group_by)
            timing.end("comparison")
            pieces.append(Piece(model=model_name, weights=weights_label, dataset=ds.attrs["name"], dataset_obj=ds,
                                metric=metric, similarity=sim, sem=sem, per_rdm=per_rdm, model_rdms=rdms,
                                columns=columns, kernels=kernels, areas=area_names, stimuli=stim,
                                dataset_time=ds_time))
        del net
    if extra:
        scored = score_models([p.measure_input() for p in pieces], extra, measure_options, stats or StatsOptions(),
                              rates=ready.rates)
        for piece, one in zip(pieces, scored):  # the Grams are dropped once scored
            piece.measure_scores, piece.kernels = one, None
    provenance = {"model": ",".join(names), "weights": ",".join(dict.fromkeys(labels)), "metric": metric,
                  "method": method, "datasets": ",".join(dict.fromkeys(p.dataset for p in pieces)),
                  "device": device,
                  "weights_sha256": ",".join(str(getattr(i, "weights_sha256", None)) for i in infos)
                  if any(getattr(i, "weights_sha256", None) for i in infos) else None,
                  "preprocessing": getattr(infos[0], "preprocessing", None) if len(infos) == 1 else None,
                  **{k: ",".join("n/a" if getattr(i, k, None) is None else str(getattr(i, k)) for i in infos)
                     for k in _RECORD_ATTRS if any(getattr(i, k, None) is not None for i in infos)},
                  **store_provenance(store_plans, pieces)}
    if extra:
        provenance.update({"measures": ",".join(["rsa", *extra]), **measure_options.attrs()})
    stats = stats or StatsOptions()
    if stats.progress is None and progress is not None:  # one switch: progress= covers the statistics' bars too
        stats = replace(stats, progress=progress)
    return _assemble(pieces, provenance, stats)


def compare_model(model_name: str, areas_wanted: Sequence[str] | None = None, *,
                  dataset: str | Path | xr.Dataset | None = None, method: str = "spearman",
                  network: NetworkOptions | None = None, rdm: RDMOptions | None = None,
                  stats: StatsOptions | None = None, measures: Sequence[str] | None = None, measure_options=None,
                  progress: bool | None = None, **old_keywords) -> CompareResult:
    """Score one network's layers against brain areas (see :func:`compare_models` for the arguments, the
    same here: ``network`` (:class:`rsa_bridge.app.network.NetworkOptions`: weights, layers, one built module in
    ``models``, transform, tokens, stimuli, cache), ``rdm`` (:class:`rsa_bridge.options.RDMOptions`), ``stats``,
    ``measures`` and ``measure_options``; ``measures=["rsa", "cka", "linear"]`` adds CKA and cross-validated
    linear predictivity from the same forward pass). The old ``weights=``/``layers=``/``model=``/``cache=``/...
    keywords still work for one release, with a DeprecationWarning; the old ``metric=``/``batch_size=``/
    ``device=``/``rdm_options=`` keywords were removed (a TypeError names the RDMOptions field).

    Example:
        >>> from rsa_bridge import NetworkOptions, StatsOptions, compare_model
        >>> result = compare_model("pixels", ["IT"], network=NetworkOptions(cache=False),
        ...                        stats=StatsOptions(ceiling=False), progress=False)
        >>> print(result.table["model"].iloc[0], result.table["area"].iloc[0], result.table["n_stimuli"].iloc[0])
        pixels IT 92
    """
    net_keywords, rdm_keywords = split_keywords(old_keywords)
    network = network_from_keywords(network, net_keywords, "compare_model")
    rdm = options_from_keywords(rdm, rdm_keywords, "compare_model")
    return compare_models([model_name], areas_wanted, dataset=dataset, method=method, network=network, rdm=rdm,
                          stats=stats, measures=measures, measure_options=measure_options, progress=progress)


def compare_precomputed(model_rdms: xr.DataArray, areas_wanted: Sequence[str] | None = None, *,
                        dataset: str | Path | xr.Dataset | None = None, method: str = "spearman",
                        model_name: str | None = None, stats: StatsOptions | None = None,
                        measures: Sequence[str] | None = None) -> CompareResult:
    """Compare precomputed model RDMs (layer, n, n) with brain areas (see :mod:`rsa_bridge.model_rdms`).

    ``model_rdms`` may also be an :class:`rsa_bridge.rdm_store.RDMStore` (its names are the layers), e.g. from
    :func:`rsa_bridge.rdm_netcdf.read_model_rdm_store` for RDMs that do not fit in memory; its ``rdm_store``
    attrs (:func:`rsa_bridge.app.rdm_stores.read_precomputed`) go into the results' provenance."""
    from rsa_bridge.stats.stores import is_store

    method = COMPARISONS.resolve(method)
    if is_store(model_rdms):
        from rsa_bridge.stats.stores import check_store_method
        check_store_method(method)
    else:
        model_rdms = as_model_rdms(model_rdms)  # e.g. rdms_from_rsatoolbox's (replicate, n, n) as it is
    plan = select_datasets(areas_wanted, dataset)
    from rsa_bridge.measures import check_measures
    if [m for m in check_measures(measures) if m != "rsa"]:
        raise RSABridgeError("--measure cka/linear need the network's activations; precomputed model RDMs carry "
                             "no Gram matrices: use --model")
    label = model_name or Path(str(model_rdms.attrs.get("source_file", "model_rdms"))).stem
    pieces = []
    from rsa_bridge.stats.time_course import time_averaged, timed_areas

    for ds_name, area_names in plan:
        ds_time = load_dataset(ds_name)
        if stats is not None and stats.time is not None:
            from rsa_bridge.stats.time_inference import check_time_inference
            check_time_inference([(ds_time if timed_areas(ds_time) else None, area_names)], stats.time)
        ds = time_averaged(ds_time)
        sim, sem, per_rdm = compare_layers(model_rdms, ds, area_names, method, (stats or StatsOptions()).group_by)
        pieces.append(Piece(model=label, weights="precomputed", dataset=ds.attrs["name"], dataset_obj=ds,
                            metric=str(model_rdms.attrs.get("metric", "unknown")), similarity=sim, sem=sem,
                            per_rdm=per_rdm, model_rdms=model_rdms,
                            dataset_time=ds_time if timed_areas(ds_time) else None))
    provenance = {"model": label, "weights": "precomputed", "method": method,
                  "datasets": ",".join(p.dataset for p in pieces),
                  "model_rdm_file": model_rdms.attrs.get("source_file"),
                  **{k: model_rdms.attrs[k] for k in ("rdm_store", "rdm_store_requested", "rdm_storage",
                                                      "rdm_storage_error") if k in model_rdms.attrs}}
    return _assemble(pieces, provenance, stats or StatsOptions())
