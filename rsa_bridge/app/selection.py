"""``compare --heldout-layer K`` and ``compare --select-on DATASET[:AREA]``: the layer is chosen on other data.

Orchestration of :mod:`rsa_bridge.stats.heldout` (the science is there): :func:`compare_selected` runs
:func:`rsa_bridge.app.pipeline.compare_models` once per data set (each data set has its own stimuli, so its own
forward pass; the model-RDM cache serves a repeat), then

- ``heldout`` (K folds within each data set): per (model, data set, area) the cross-validated score of the
  layer chosen on the training stimuli, its CI over held-out stimuli, how often each layer was chosen and the
  in-sample maximum beside it (``selection.csv``; results.csv gains ``heldout_times_chosen`` per layer and the
  summary columns; results.nc the ``heldout_*`` variables (heldout_dataset, heldout_model, area));
- ``select_on`` (across data sets): each area's layer is chosen on one data set (and area), committed, and
  scored on every other data set scored (``--dataset``, or else every shipped data set holding the area):
  results.csv gains ``select_on``, ``committed_layer``, ``is_committed`` and ``committed_on_similarity``;
  ``selection.csv`` and results.nc (``committed_*`` over committed_model, area, committed_dataset) hold one row
  per (model, area, other data set) with the in-sample best layer there beside it.

Both score RSA (``measure`` = rsa) with the run's ``--method``; ``--measure cka/linear`` is refused with them.

Example::

    from rsa_bridge.app.selection import LayerSelection, compare_selected
    from rsa_bridge.stats.heldout import HeldoutOptions
    result = compare_selected(["alexnet"], ["V4"], selection=LayerSelection(
        heldout=HeldoutOptions(folds=5), select_on="cowley2023_v4_210325"),
        network=NetworkOptions(weights="none"))
    print(result.selection)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rsa_bridge.errors import RSABridgeError


@dataclass(frozen=True)
class LayerSelection:
    """Which held-out layer choice ``compare`` runs.

    Attributes:
        heldout: :class:`rsa_bridge.stats.heldout.HeldoutOptions` for K folds within each data set, or None.
        select_on: ``DATASET[:AREA]`` to commit each area's layer on, scored on the other data sets, or None.
    """

    heldout: Any = None
    select_on: str | None = None

    def attrs(self) -> dict:
        """Provenance attrs for results.nc (``select_on`` and the ``heldout_*`` of the options)."""
        out = {"select_on": self.select_on or "none"}
        if self.heldout is not None:
            out.update(self.heldout.attrs())
        return out


def add_arguments(parser) -> None:
    """``--heldout-layer``/``--heldout-repeats``/``--select-on`` of ``compare`` (no numpy imported here)."""
    from rsa_bridge.app.argtypes import count

    group = parser.add_argument_group("held-out layer choice (docs/guide/held-out.md)")
    group.add_argument("--heldout-layer", type=count("--heldout-layer", 10_000, minimum=2), metavar="K", default=None,
                       help="choose each area's best layer on K-1 folds of the stimuli and score it on the held-out "
                            "fold (RSA; seed --seed; CI over held-out stimuli with --bootstrap samples); reports the "
                            "cross-validated score, how often each layer was chosen and the in-sample maximum")
    group.add_argument("--heldout-repeats", type=count("--heldout-repeats", 1_000, minimum=1), metavar="R", default=1,
                       help="draw the K folds R times (default 1)")
    group.add_argument("--select-on", metavar="DATASET[:AREA]", default=None,
                       help="commit each area's layer on this data set (and area) and score it on the others: "
                            "--dataset, or else every shipped data set with the --area (see `rsa-bridge datasets`)")


def from_args(args) -> LayerSelection | None:
    """The :class:`LayerSelection` of parsed ``compare`` arguments (None when neither option is given)."""
    folds, select_on = getattr(args, "heldout_layer", None), getattr(args, "select_on", None)
    if folds is None and select_on is None:
        return None
    heldout = None
    if folds is not None:
        from rsa_bridge.stats.heldout import HeldoutOptions

        heldout = HeldoutOptions(folds=folds, repeats=args.heldout_repeats, seed=args.seed, bootstrap=args.bootstrap,
                                 ci_level=args.ci_level, method=args.method)
    return LayerSelection(heldout, select_on)


@dataclass
class SelectedResult:
    """What :func:`compare_selected` returns.

    Attributes:
        parts: one :class:`rsa_bridge.app.pipeline.CompareResult` per data set scored (select-on one first).
        table: every part's results.csv rows, with the held-out / commitment columns.
        results: results.nc: the parts' ``similarity`` (and CI) over a ``dataset`` dim, the ``heldout_*`` and
            ``committed_*`` variables and the provenance attrs.
        selection: one row per (model, data set, area) (held-out) or (model, area, other data set) (committed).
        heldout / committed: those two tables apart (None when not run).
    """

    parts: list
    table: Any
    results: Any
    selection: Any
    heldout: Any = None
    committed: Any = None
    model_rdms: dict = field(default_factory=dict)


def _plan(selection: LayerSelection, areas, dataset) -> list[tuple[Any, list[str] | None]]:
    """The data sets to score and their areas: ``[(dataset, areas)]``, the select-on one first."""
    from rsa_bridge.app.preflight import check_selection

    return check_selection(selection, areas, dataset)


def compare_selected(model_names, areas_wanted=None, *, dataset=None, selection: LayerSelection,
                     **compare_kw) -> SelectedResult:
    """``compare_models`` per data set, then the held-out layer choice of ``selection`` (see the module).

    ``compare_kw``: ``method``, ``network``, ``rdm``, ``stats``, ``progress`` as for
    :func:`rsa_bridge.app.pipeline.compare_models`. Everything that can be checked (data sets, areas, the
    select-on data set and area, fold sizes, measures) is checked before the first forward pass.
    """
    import pandas as pd

    from rsa_bridge.app.pipeline import compare_models
    from rsa_bridge.options import StatsOptions

    if compare_kw.get("measures") and set(compare_kw["measures"]) - {"rsa"}:
        raise RSABridgeError("--heldout-layer/--select-on choose layers by RSA; cka/linear are not supported "
                             "with them: drop --measure cka/linear or run them apart")
    plan = _plan(selection, areas_wanted, dataset)
    stats = compare_kw.get("stats") or StatsOptions()
    parts = [compare_models(model_names, areas, dataset=ds, **compare_kw) for ds, areas in plan]
    table = pd.concat([p.table for p in parts], ignore_index=True)
    heldout = committed = counts = None
    if selection.heldout is not None:
        heldout, counts = _heldout(parts, plan, selection.heldout, stats, compare_kw.get("progress"))
        table = table.merge(counts, on=["model", "dataset", "area", "layer"], how="left")
        table = table.merge(heldout[["model", "dataset", "area", "heldout_similarity", "heldout_ci_low",
                                     "heldout_ci_high", "insample_max", "selection_bias"]],
                            on=["model", "dataset", "area"], how="left")
    if selection.select_on is not None:
        from rsa_bridge.stats.heldout import commit_layers

        name, area = _select_names(selection, parts[0])
        from rsa_bridge.measures.results import rsa_rows

        committed = commit_layers(rsa_rows(table), name, area)
        committed["method"] = str(rsa_rows(table)["method"].iloc[0])  # the run's --method scored every row
        table = _mark_committed(table, committed)
    selection_table = pd.concat([t for t in (committed, heldout) if t is not None], ignore_index=True)
    model_rdms = {k: v for p in parts for k, v in p.model_rdms.items()}
    return SelectedResult(parts, table, _results(parts, (heldout, counts), committed, selection), selection_table,
                          heldout, committed, model_rdms)


def _select_names(selection: LayerSelection, part) -> tuple[str, str | None]:
    from rsa_bridge.stats.heldout import parse_select_on

    _, area = parse_select_on(selection.select_on)
    return str(part.table["dataset"].iloc[0]), area


def _mark_committed(table, committed):
    """results.csv rows with the commitment of their (model, area): ``select_on``, ``committed_layer``,
    ``committed_on_similarity`` and ``is_committed`` (this row's layer is the committed one)."""
    keys = committed.drop_duplicates(["model", "area"])[["model", "area", "select_on", "committed_layer",
                                                         "committed_on_similarity"]]
    table = table.merge(keys, on=["model", "area"], how="left")
    table["is_committed"] = table["layer"] == table["committed_layer"]
    return table


def _heldout(parts, plan, options, stats, progress):
    """The held-out summary rows and the per-layer selection counts of every (model, data set, area)."""
    import pandas as pd

    from rsa_bridge.align import reorder_rdm
    from rsa_bridge.datasets import area_rdms, load_dataset
    from rsa_bridge.measures.results import rsa_rows
    from rsa_bridge.model_rdms import LAYER
    from rsa_bridge.rdm import ROW, upper_triangle
    from rsa_bridge.stats.grouping import resampling_unit
    from rsa_bridge.stats.heldout import heldout_choice
    from rsa_bridge.stats.stores import is_store
    from rsa_bridge.stats.time_course import time_averaged

    rows, counts = [], []
    for part, (entry, _) in zip(parts, plan):
        ds = time_averaged(load_dataset(entry))
        ids = [str(s) for s in ds[ROW].values]
        rsa = rsa_rows(part.table)
        for key, rdms in part.model_rdms.items():
            model = key.rsplit("|", 1)[0]
            if is_store(rdms):
                raise RSABridgeError("--heldout-layer needs the layer RDMs as dense arrays; this run kept them in "
                                     "an RDM store: use fewer stimuli or layers, or drop --rdm-store")
            vectors = upper_triangle(reorder_rdm(rdms, ids).transpose(LAYER, ...))
            layers = [str(x) for x in rdms[LAYER].values]
            for area in dict.fromkeys(rsa.loc[rsa["model"] == model, "area"]):
                brain = upper_triangle(reorder_rdm(area_rdms(ds, area), ids))
                labels = resampling_unit(ds[area], stats.group_by).labels
                choice = heldout_choice(vectors, brain, len(ids), layers, options, labels, progress)
                where = {"model": model, "dataset": ds.attrs["name"], "area": area}
                rows.append({**where, "method": options.method, **choice.row()})
                counts.extend({**where, "layer": layer, "heldout_times_chosen": int(c)}
                              for layer, c in zip(layers, choice.counts))
    return pd.DataFrame(rows), pd.DataFrame(counts)


def _results(parts, heldout_counts, committed, selection: LayerSelection):
    """results.nc: similarity (dataset, model_layer, area) with its CI, plus the selection's variables."""
    import xarray as xr

    from rsa_bridge.provenance import clean_attrs

    keep = [v for v in ("similarity", "similarity_ci_low", "similarity_ci_high", "similarity_sem")
            if all(v in p.results for p in parts)]
    names = [str(p.table["dataset"].iloc[0]) for p in parts]
    grids = xr.concat([p.results[keep] for p in parts], dim="dataset", join="outer", coords="minimal",
                      compat="override")
    out = grids.assign_coords(dataset=names)
    attrs = {k: v for k, v in parts[0].results.attrs.items()
             if not k.startswith(("resampling_unit_", "ceiling", "stats_p_"))}
    out.attrs = clean_attrs({**attrs, "datasets": ",".join(names), **selection.attrs()})
    heldout, counts = heldout_counts
    if heldout is not None:
        chosen = counts.assign(model_layer=counts["model"] + ":" + counts["layer"]).rename(
            columns={"dataset": "heldout_dataset"}).set_index(["heldout_dataset", "model_layer", "area"])
        out["heldout_times_chosen"] = chosen["heldout_times_chosen"].to_xarray()
        out["heldout_times_chosen"].attrs = {"long_name": "folds x repeats in which the layer was chosen on the "
                                                          "training stimuli", "measure": "rsa", "units": "1"}
        out.attrs["heldout_chosen_layers"] = "; ".join(f"{r.model} {r.area} [{r.dataset}]: {r.heldout_choices}"
                                                       for r in heldout.itertuples())
        table = heldout.drop(columns=["measure", "method", "heldout_choices"]).rename(
            columns={"dataset": "heldout_dataset", "model": "heldout_model"})
        grid = table.set_index(["heldout_dataset", "heldout_model", "area"]).to_xarray()
        out = out.merge(grid.rename({c: c if c.startswith("heldout_") else f"heldout_{c}" for c in grid.data_vars}),
                        join="outer")
    if committed is not None:
        table = committed.drop(columns=["measure"]).rename(
            columns={"dataset": "committed_dataset", "model": "committed_model"})
        grid = table.set_index(["committed_model", "area", "committed_dataset"]).to_xarray()
        grid = grid.rename({c: c if c.startswith("committed_") else f"committed_{c}" for c in grid.data_vars})
        for name in grid.data_vars:
            grid[name].attrs["measure"] = "rsa"
        out = out.merge(grid, join="outer")
        firsts = committed.drop_duplicates(["model", "area"])
        out.attrs["committed_layers"] = "; ".join(f"{r.model} {r.area}: {r.committed_layer} (on {r.select_on})"
                                                  for r in firsts.itertuples())
    out["similarity"].attrs = {"long_name": f"{out.attrs.get('method', 'unknown')} correlation of model and brain "
                                            "RDMs, per data set", "measure": "rsa", "units": "1"}
    return out


def selection_lines(result: SelectedResult) -> list[str]:
    """The printed block after the per-data-set tables: one line per held-out or committed choice."""
    lines = []
    if result.heldout is not None:
        for r in result.heldout.itertuples():
            ci = (f" [{r.heldout_ci_low:.4f}, {r.heldout_ci_high:.4f}]" if r.heldout_ci_low == r.heldout_ci_low
                  else "")
            lines.append(f"held-out layer ({r.measure}, {r.method}) {r.model} {r.area} [{r.dataset}]: cross-validated "
                         f"{r.heldout_similarity:.4f}{ci} over {r.heldout_n_folds} folds | in-sample best "
                         f"{r.insample_layer} {r.insample_max:.4f} | selection bias {r.selection_bias:+.4f} | "
                         f"chosen: {r.heldout_choices}")
    if result.committed is not None:
        for r in result.committed.itertuples():
            ci = f" [{r.ci_low:.4f}, {r.ci_high:.4f}]" if hasattr(r, "ci_low") and r.ci_low == r.ci_low else ""
            lines.append(f"committed layer ({r.measure}) {r.model} {r.area}: {r.committed_layer} chosen on "
                         f"{r.select_on} ({r.committed_on_similarity:.4f}) -> {r.dataset} {r.similarity:.4f}{ci} | "
                         f"in-sample best there {r.insample_layer} {r.insample_max:.4f} (gap {r.insample_gap:+.4f})")
    return lines


def format_selected(result: SelectedResult) -> str:
    """Each data set's ``compare`` table, then :func:`selection_lines`."""
    from rsa_bridge.app.report import format_table

    return "\n\n".join([format_table(p) for p in result.parts] + ["\n".join(selection_lines(result))])


SELECTION_FILES = ("results.csv", "results.nc", "selection.csv", "model_rdms.nc", "profile.pdf", "profile.png")


def write_selected(result: SelectedResult, out_dir, overwrite: bool = False) -> list:
    """results.csv, results.nc, selection.csv, model_rdms.nc and the layer profile (one line per data set)."""
    from rsa_bridge.app.report import _model_rdms_dataset
    from rsa_bridge.figures import layer_profile, save_figure
    from rsa_bridge.io import staged_outputs, staged_paths, write_netcdf
    from rsa_bridge.measures.results import rsa_rows
    from stimuli.csv_cells import frame_to_csv

    with staged_outputs(out_dir, SELECTION_FILES, overwrite=overwrite) as staging:
        frame_to_csv(result.table, staging / "results.csv", index=False)
        frame_to_csv(result.selection, staging / "selection.csv", index=False)
        write_netcdf(result.results, staging / "results.nc")
        write_netcdf(_model_rdms_dataset(result), staging / "model_rdms.nc")
        rows = rsa_rows(result.table)
        rows = rows.assign(area=rows["area"] + " " + rows["dataset"])  # one line per data set in the figure
        fig, _, _ = layer_profile(rows.drop(columns=[c for c in rows if c.startswith("ceiling_")]),
                                  title=f"{', '.join(dict.fromkeys(rows['model']))}: layer choice")
        save_figure(fig, staging / "profile")
    return staged_paths(out_dir, SELECTION_FILES)


def checked_selection(args) -> LayerSelection | None:
    """The command line's :class:`LayerSelection` (:func:`from_args`), checked now: one line and exit 2 for an
    unknown select-on data set or area, too few stimuli per fold, ``--model-rdms`` or ``--scheduler``."""
    selection = from_args(args)
    if selection is None:
        return None
    if getattr(args, "model_rdms", None) is not None:
        raise RSABridgeError("--heldout-layer/--select-on run with --model (each data set's own stimuli); "
                             "precomputed --model-rdms are not supported with them")
    if getattr(args, "scheduler", None):
        raise RSABridgeError("--heldout-layer/--select-on run locally; drop --scheduler")
    if getattr(args, "measure", None) and set(args.measure) - {"rsa"}:
        raise RSABridgeError("--heldout-layer/--select-on choose layers by RSA; cka/linear are not supported "
                             "with them: drop --measure cka/linear or run them apart")
    from rsa_bridge.app.preflight import check_selection

    check_selection(selection, args.area, args.dataset)
    return selection
