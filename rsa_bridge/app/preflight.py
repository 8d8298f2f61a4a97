"""Everything ``compare`` can check before the forward pass, checked before it (issue 25 item 2).

A job that is going to fail must fail in seconds, not after the models have run (a 10-minute forward pass
then "dataset ... holds only RDMs" lost the finished results). Two entry points, both called before any
model is built or any image is decoded:

- :func:`check_job` (the command line, before it calls the pipeline): ``--area``/``--measure`` named once
  each, the areas resolve to datasets, the output folder (:func:`rsa_bridge.io.check_out`), the disk for
  ``model_rdms.nc`` (:func:`rsa_bridge.budget.check_disk`) and the memory of ``--bootstrap``/
  ``--permutations`` (:func:`rsa_bridge.limits.check_statistics_memory`).
- :func:`prepare` (:func:`rsa_bridge.app.pipeline.compare_models`, so the Python API gets the same checks):
  the datasets load and validate, each dataset's stimulus set resolves and holds the dataset's stimulus ids,
  every area x measure has the data the measure needs (asked of the registry
  :data:`rsa_bridge.measures.MEASURES`: ``needs_responses`` -> the area's repeat-level rates are read now and
  must cover the dataset's stimuli; ``check`` -> e.g. linear predictivity's held-out stimuli per fold), the
  RDMs' memory and the RDM store's spill disk (:func:`rsa_bridge.app.rdm_stores.job_store_plans`). With
  ``responses`` given, a single-RDM area's RSA noise ceiling comes from those rates too (:func:`rsa_rates`).

What it returns (:class:`Prepared`) is what the pipeline then uses, so nothing is read twice.

Example::

    >>> check_names(["V4", "IT", "V4"], "--area")
    Traceback (most recent call last):
    ...
    rsa_bridge.errors.RSABridgeError: --area 'V4' is given twice; name each once
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xarray as xr

from rsa_bridge.errors import RSABridgeError

# the two entry points and their records; check_names, select and rsa_rates are their helpers
__all__ = ["JobChecks", "Prepared", "Request", "check_job", "check_selection", "prepare"]


def check_names(values: Sequence[str] | None, option: str) -> None:
    """Refuse a name given twice (``--area V4 --area V4``, ``--measure cka --measure cka``)."""
    seen: set[str] = set()
    for value in values or []:
        if value in seen:
            raise RSABridgeError(f"{option} {value!r} is given twice; name each once")
        seen.add(value)


def select(areas: Sequence[str] | None, dataset) -> list[tuple[Any, list[str]]]:
    """:func:`rsa_bridge.layer_scores.select_datasets`, refusing an area named twice (also as ``it`` and ``IT``)."""
    from rsa_bridge.layer_scores import select_datasets

    plan = select_datasets(areas, dataset)
    check_names([a for _, names in plan for a in names], "--area")
    return plan


@dataclass(frozen=True)
class JobChecks:
    """What the command line asks for, as far as the checks before the pipeline need it.

    areas / dataset: ``--area`` (raw) / ``--dataset``; measures: ``--measure`` (raw); out / overwrite: ``--out``
    / ``--overwrite``; n_model_rdms: models x layers written to ``model_rdms.nc`` (0: not known, e.g.
    ``--model-rdms``); itemsize: bytes per stored RDM value; bootstrap / permutations: samples; precomputed:
    the model RDMs come from a file (``--model-rdms``: no Grams, no rates); responses: ``--responses``.
    """

    areas: Sequence[str] | None = None
    dataset: str | None = None
    measures: Sequence[str] | None = None
    out: Path | None = None
    overwrite: bool = False
    n_model_rdms: int = 0
    itemsize: int = 8
    bootstrap: int = 0
    permutations: int = 0
    precomputed: bool = False
    responses: Any = None


def check_job(job: JobChecks) -> None:
    """The command line's checks before any computing (see the module docstring); one line on failure."""
    from rsa_bridge.datasets import dataset_header
    from rsa_bridge.measures import check_measures
    from rsa_bridge.rdm import ROW

    check_names(job.areas, "--area")
    check_names(job.measures, "--measure")
    extra = [m for m in check_measures(job.measures) if m != "rsa"]
    if job.precomputed and extra:
        raise RSABridgeError(f"--measure {'/'.join(extra)} needs the network's activations; precomputed model RDMs "
                             "carry no Gram matrices: use --model")
    if job.precomputed and job.responses is not None:
        raise RSABridgeError("--responses is read with --model only; for precomputed RDMs name the rates in the "
                             "dataset (rsa_bridge.neural.ceiling.with_repeat_rates)")
    if job.out is not None:
        from rsa_bridge.io import check_out

        check_out(job.out, job.overwrite)
    plan = select(job.areas, job.dataset)
    sizes = [dataset_header(name).sizes[ROW] for name, _ in plan]
    if job.out is not None and job.n_model_rdms:
        from rsa_bridge.budget import check_disk

        for n in sizes:
            check_disk(job.out, n, job.n_model_rdms, job.itemsize)
    from rsa_bridge.measures import check_resampling

    check_resampling(extra, job.bootstrap)
    if job.bootstrap or job.permutations:
        from rsa_bridge.limits import check_statistics_memory

        check_statistics_memory(max(sizes), job.bootstrap, job.permutations)


@dataclass
class Prepared:
    """What :func:`prepare` read and checked, for the pipeline to use as it is.

    plan: ``[(dataset, [areas])]``; loaded_time / loaded: the datasets as read / time-averaged (one per plan
    entry); timed: the time-resolved ones (else None); stim_sets: their stimulus sets; extra: the measures
    other than rsa; rates: ``{(dataset name, area): repeat-level rates}`` for measures that need responses;
    store_plans: :func:`rsa_bridge.app.rdm_stores.job_store_plans`.
    """

    plan: list
    loaded_time: list[xr.Dataset]
    loaded: list[xr.Dataset]
    timed: list
    stim_sets: list
    extra: list[str]
    rates: dict = field(default_factory=dict)
    store_plans: list = field(default_factory=list)


@dataclass(frozen=True)
class Request:
    """The parts of a ``compare_models`` call the preflight checks (see :func:`rsa_bridge.app.pipeline.compare_models`).

    n_model_rdms: models x layers (the budget's estimate when the layers are not named); seed: the statistics'
    seed (split-half ceilings); ceiling: whether noise ceilings are computed (StatsOptions.ceiling).
    """

    areas: Sequence[str] | None
    dataset: Any
    stimuli: Any
    measures: Sequence[str] | None
    measure_options: Any
    rdm: Any
    method: str
    n_model_rdms: int
    seed: Any = 0
    ceiling: bool = True
    bootstrap: int = 0


def prepare(request: Request, stimuli_for) -> Prepared:
    """Load, align and check everything of a ``compare_models`` job before its forward pass.

    ``stimuli_for(dataset, stimuli)``: the pipeline's resolver of a dataset's stimulus set (it reads the
    manifest; no image is decoded). Raises RSABridgeError (one line) for the first thing that cannot work.
    """
    from rsa_bridge.align import check_same_ids
    from rsa_bridge.app.rdm_stores import job_store_plans
    from rsa_bridge.datasets import load_dataset
    from rsa_bridge.measures import MEASURES, check_measures
    from rsa_bridge.rdm import ROW
    from rsa_bridge.stats.time_course import time_averaged, timed_areas

    from rsa_bridge.budget import check_eigen_memory
    from rsa_bridge.measures import check_resampling

    check_names(request.measures, "--measure")
    extra = [m for m in check_measures(request.measures) if m != "rsa"]
    check_resampling(extra, request.bootstrap)
    options = request.measure_options
    plan = select(request.areas, request.dataset)
    loaded_time = [load_dataset(name) for name, _ in plan]
    timed = [ds if timed_areas(ds) else None for ds in loaded_time]
    loaded = [time_averaged(ds) for ds in loaded_time]
    stim_sets = [stimuli_for(ds, request.stimuli) for ds in loaded]
    for ds, stim in zip(loaded, stim_sets):
        check_same_ids(stim.stimulus_ids, ds[ROW].values, f"stimulus set {stim.name!r}", f"dataset {ds.attrs['name']!r}")
    needs = [m for m in extra if MEASURES[m].needs_responses]
    rates: dict = {}
    for k, ((_, areas), ds, stim) in enumerate(zip(plan, loaded, stim_sets)):
        ids = [str(s) for s in ds[ROW].values]
        labels = _labels(options, stim, ids) if extra else None
        for name in extra:
            if MEASURES[name].check is not None:
                MEASURES[name].check(len(ids), options, labels)
        check_eigen_memory(len(ids), [n for n in extra if MEASURES[n].eigen])
        for area in areas if (needs or _responses(options) is not None) else []:
            rates[(ds.attrs["name"], area)] = _checked_rates(ds, area, ids, options, needs)
        if _responses(options) is not None:
            loaded[k] = rsa_rates(ds, areas, {a: rates[(ds.attrs["name"], a)] for a in areas}, request.method,
                                  request.seed if request.ceiling else None, _source_name(options.responses))
    store_plans = job_store_plans(request.rdm, request.method, extra, loaded, plan, request.n_model_rdms)
    return Prepared(plan, loaded_time, loaded, timed, stim_sets, extra, rates, store_plans)


def check_selection(selection, areas: Sequence[str] | None, dataset) -> list[tuple[Any, list[str]]]:
    """The data sets a held-out layer choice scores, ``[(dataset, [areas])]``, checked before any forward pass.

    ``selection``: :class:`rsa_bridge.app.selection.LayerSelection`. ``select_on`` (``DATASET[:AREA]``) must name a
    data set (and one of its areas); it comes first, then ``dataset`` (``--dataset``) or, without it, every
    shipped data set that holds the ``areas`` asked. With ``heldout`` every data set must leave
    :data:`rsa_bridge.measures.folds.MIN_TEST_STIMULI` held-out stimuli per fold.
    """
    from rsa_bridge.datasets import dataset_header, resolve_area
    from rsa_bridge.rdm import ROW

    plan = select(areas, dataset) if selection.select_on is None or dataset is not None else []
    if selection.select_on is not None:
        from rsa_bridge.datasets import locate_area
        from rsa_bridge.stats.heldout import parse_select_on

        name, area = parse_select_on(selection.select_on)
        header = dataset_header(name)
        label = header.attrs.get("name", name)
        if dataset is None:
            if not areas:
                raise RSABridgeError("--select-on needs the areas to commit (--area NAME) or --dataset to score on")
            from rsa_bridge.catalogue import read_index

            wanted = [locate_area(a)[1] for a in areas]
            check_names(wanted, "--area")
            grouped: dict[str, list[str]] = {}
            for row in read_index():
                if row["area"] in wanted:
                    grouped.setdefault(row["dataset"], []).append(row["area"])
            plan = list(grouped.items())
        plan = [(d, a) for d, a in plan if dataset_header(d).attrs.get("name", d) != label]
        if not plan:
            raise RSABridgeError(f"--select-on {selection.select_on}: no other data set to score the committed layer "
                                 "on; name one with --dataset or an --area that other data sets hold")
        scored = list(dict.fromkeys(a for _, names in plan for a in names))
        chosen = [resolve_area(header, area)] if area else [resolve_area(header, a) for a in scored]
        plan = [(name, chosen), *plan]
    if selection.heldout is not None:
        from rsa_bridge.stats.heldout import check_heldout_sizes

        for entry, _ in plan:
            header = dataset_header(entry)
            check_heldout_sizes(header.sizes[ROW], selection.heldout.folds,
                                f"dataset {header.attrs.get('name', entry)!r}")
    return plan


def _source_name(responses) -> str:
    return "rates in memory" if isinstance(responses, xr.DataArray) else Path(str(responses)).name


def _responses(options):
    return getattr(options, "responses", None)


def _labels(options, stim, ids: list[str]):
    """One stratification label per stimulus when ``options.labels`` names a manifest column (checked now)."""
    if not isinstance(getattr(options, "labels", None), str):
        return None
    from rsa_bridge.measures.scoring import _with_manifest_labels

    return _with_manifest_labels(options, stim, ids).labels


def _checked_rates(ds: xr.Dataset, area: str, ids: list[str], options, needs: list[str]) -> xr.DataArray:
    """The area's repeat-level rates, read now; they must hold every stimulus of the dataset."""
    from rsa_bridge.align import check_same_ids
    from rsa_bridge.measures.scoring import area_rates
    from rsa_bridge.neural import schema as S

    name = ds.attrs["name"]
    rates = area_rates(name, area, _responses(options), "/".join(needs) or "cka/linear")
    have = {str(s) for s in S.flat_coords(rates)[S.STIMULUS_ID].values}
    check_same_ids(ids, sorted(have), f"dataset {name!r} (area {area})", "the repeat-level rates")
    return rates


def rsa_rates(ds: xr.Dataset, areas: Sequence[str], rates: dict, method: str, seed,
              source: str = "rates in memory") -> xr.Dataset:
    """``ds`` whose single-RDM areas take their split-half RSA ceiling from the user's rates (``responses``).

    One ceiling story: CKA and linear predictivity take split-half ceilings from ``--responses``; the RSA
    ceiling of an area with one RDM is then the split-half reliability of the RDM made from the same rates,
    the same neuroids (:func:`rsa_bridge.measures.scoring.area_rates`) and the area's metric: the ceiling the
    shipped V4 data gets from its ``repeat_rates`` (:func:`rsa_bridge.neural.ceiling.split_half_ceiling`,
    :data:`~rsa_bridge.neural.ceiling.N_SPLITS` splits, the compare seed). It is stored as the area's
    split-half result, which :func:`rsa_bridge.neural.ceiling.single_rdm_ceiling` then reads (any ``repeat_rates``
    or stored result of other rates is dropped). Areas with several RDMs keep their Nili et al. ceiling;
    ``seed=None`` (fresh entropy) leaves the areas as they are. ``source`` names the rates in the ceiling's note.
    """
    from rsa_bridge.neural import ceiling as C

    out = ds
    for area in areas:
        if seed is None or ds[area].size != ds.sizes["stimulus_row"] ** 2:  # several RDMs: Nili et al.
            continue
        out = out.copy()
        out[area] = out[area].copy()
        attrs = {k: v for k, v in out[area].attrs.items()
                 if not k.startswith("split_half_") and k != C.REPEAT_RATES_ATTR}
        metric = str(attrs.get("metric", ds.attrs.get("metric", "correlation")))
        ceiling = C.split_half_ceiling(rates[area], metric, method, seed=seed)
        attrs.update(C.cache_attrs(ceiling, metric, C.N_SPLITS, seed))
        attrs["split_half_source"] = f"--responses {source}"
        out[area].attrs = attrs
    return out
