"""Scores of model layers against brain areas, and which datasets hold the areas asked for.

The step of ``compare`` that needs no network: every layer RDM (layer, n, n) is compared with every RDM
(subject/session) of each area, matched by ``stimulus_id`` (:func:`compare_layers`); the per-RDM values are
averaged with their standard error. :func:`select_datasets` resolves ``--area``/``--dataset`` to datasets.
Statistics on top (bootstrap, permutations, ceilings) live in :mod:`rsa_bridge.stats`; the orchestration
that runs networks lives in :mod:`rsa_bridge.app.pipeline`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import xarray as xr

from rsa_bridge.align import check_same_ids, reorder_rdm
from rsa_bridge.compare import compare_vectors
from rsa_bridge.datasets import area_rdms, areas, dataset_header, load_dataset, locate_area, resolve_area  # noqa: F401
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.model_rdms import LAYER
from rsa_bridge.rdm import ROW, upper_triangle

AREA = "area"


def select_datasets(areas_wanted: Sequence[str] | None,
                    dataset: str | Path | xr.Dataset | None) -> list[tuple[str | xr.Dataset, list[str]]]:
    """Which datasets and areas to compare with: ``[(dataset name, path or in-memory Dataset, [areas])]``.

    With ``dataset`` given, its areas (all, or those in ``areas_wanted``); otherwise each area is looked
    up among the shipped datasets (first that has it). Area names that differ only in case are accepted
    (``it`` -> ``IT``); an unknown one is an error with a "did you mean".
    """
    if dataset is not None:
        ds = dataset_header(dataset)  # names and sizes only: the caller loads (and validates) what it compares
        wanted = [resolve_area(ds, a) for a in areas_wanted] if areas_wanted else areas(ds)
        return [(dataset if isinstance(dataset, xr.Dataset) else str(dataset), wanted)]
    if not areas_wanted:
        raise RSABridgeError("say which brain area to compare with: --area NAME (see `rsa-bridge datasets`)")
    grouped: dict[str, list[str]] = {}
    for area in areas_wanted:
        name, canonical = locate_area(area)
        grouped.setdefault(name, []).append(canonical)
    return list(grouped.items())


def compare_layers(model_rdms: xr.DataArray, dataset: xr.Dataset, area_names: Sequence[str],
                   method: str = "spearman", group_by: str | None = "auto",
                   ) -> tuple[xr.DataArray, xr.DataArray, dict[str, xr.DataArray]]:
    """Compare every layer RDM with every RDM of each area, matched by ``stimulus_id``.

    Args:
        model_rdms: (layer, n, n) model RDMs, or an RDM store whose names are the layers (each layer's
            upper-triangle vector is read once; see :mod:`rsa_bridge.stats.stores`).
        dataset: a validated RDM dataset (see :mod:`rsa_bridge.datasets`).
        area_names: areas of ``dataset`` to compare with.
        method: comparison method (see :mod:`rsa_bridge.compare`).
        group_by: unit of resampling (``auto``, ``none``, or a replicate coordinate such as ``subject``;
            see :mod:`rsa_bridge.stats.grouping`).

    Returns:
        similarity (layer, area): mean over units (subjects, or RDMs) of each unit's mean per-RDM similarity;
        sem (layer, area): standard error of that mean over units (NaN for a single unit);
        per-RDM similarities per area, each (layer, replicate) with a ``unit`` coordinate and the
        unit's description in ``attrs['resampling_unit']``.
    """
    from rsa_bridge.stats.grouping import group_mean_sem, resampling_unit
    from rsa_bridge.stats.stores import check_store_method, is_store, store_similarities

    stored = is_store(model_rdms)  # an RDM store: one layer's vector at a time (rsa_bridge.stats.stores)
    ids = [str(s) for s in (model_rdms.ids if stored else model_rdms[ROW].values)]
    layer_names = list(model_rdms.names) if stored else model_rdms[LAYER].values
    name = dataset.attrs.get("name", "the dataset")
    check_same_ids(ids, dataset[ROW].values, "the model RDMs' stimuli", f"dataset {name!r}")
    model_vectors = None if stored else upper_triangle(model_rdms.transpose(LAYER, ...))
    mean, sem, per_rdm = [], [], {}
    for area in area_names:
        neural = reorder_rdm(area_rdms(dataset, area), ids)
        sims = (store_similarities(model_rdms, {area: upper_triangle(neural)}, check_store_method(method))[area]
                if stored else compare_vectors(model_vectors, upper_triangle(neural), method))
        unit = resampling_unit(dataset[area], group_by)
        per_rdm[area] = xr.DataArray(sims, dims=(LAYER, "replicate"),
                                     coords={LAYER: layer_names, "replicate": neural["replicate"].values,
                                             "unit": ("replicate", unit.labels)},
                                     attrs={"resampling_unit": unit.name, "n_units": unit.n_units,
                                            "resampling_unit_description": unit.describe()})
        m, e = group_mean_sem(sims, unit.labels)
        mean.append(m)
        sem.append(e)
    coords = {LAYER: layer_names, AREA: list(area_names)}
    return (xr.DataArray(np.stack(mean, axis=1), dims=(LAYER, AREA), coords=coords),
            xr.DataArray(np.stack(sem, axis=1), dims=(LAYER, AREA), coords=coords), per_rdm)
