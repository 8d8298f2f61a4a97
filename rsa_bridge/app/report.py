"""Text table for stdout and the files that ``compare --out DIR`` writes (all or nothing)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from rsa_bridge.figures import layer_profile, save_figure
from rsa_bridge.tables import wide_table
from rsa_bridge import timing
from rsa_bridge.io import staged_outputs, staged_paths, write_netcdf
from rsa_bridge.app.pipeline import CompareResult
from rsa_bridge.app.rdm_stores import write_model_rdms as write_store_rdms
from stimuli.csv_cells import frame_to_csv

OUTPUT_FILES = ("results.csv", "results.nc", "model_rdms.nc", "profile.pdf", "profile.png")
#: written too when several measures ran (--measure)
AGREEMENT_FILES = ("agreement.csv", "agreement.pdf", "agreement.png")
TIME_FILES = ("time_course.pdf", "time_course.png")  # written when an area is time-resolved
CROSS_TEMPORAL_FILES = ("cross_temporal.pdf", "cross_temporal.png")  # written with --cross-temporal


def header(result: CompareResult) -> str:
    """One line of provenance above the table; says plainly when the network is untrained.

    One model: ``model alexnet | weights none (untrained network: ...) | dataset ...``; several: one entry per
    model, ``models alexnet: untrained (weights none); pixels: image statistics (control) | dataset ...``.
    """
    from rsa_bridge.measures.results import rsa_rows

    t = rsa_rows(result.table)
    tail = (f"dataset {', '.join(dict.fromkeys(t['dataset']))} | metric {', '.join(dict.fromkeys(t['metric']))} | "
            f"comparison {t['method'].iloc[0]} | stimuli {', '.join(str(n) for n in dict.fromkeys(t['n_stimuli']))}")
    if t["model"].nunique() > 1:
        entries = "; ".join(f"{r.model}: {_model_entry(r)}" for r in t.drop_duplicates("model").itertuples())
        return f"models {entries}{_transform_note(t)} | {tail}"
    weights = ", ".join(dict.fromkeys(t["weights"]))
    note = " (untrained network: a control, not a trained model)" if "none" in t["weights"].values else ""
    note += _user_module_note(t) + _transform_note(t)
    return f"model {', '.join(dict.fromkeys(t['model']))} | weights {weights}{note} | {tail}"


def _model_entry(row) -> str:
    """What one model of several is: ``untrained (weights none)``, ``image statistics (control)``, ``weights
    IMAGENET1K_V1`` or ``a user nn.Module, weights not vouched for (state sha256 ..., in eval mode)``."""
    from rsa_bridge.control_rdms import CONTROL_WEIGHTS

    weights = str(row.weights)
    if weights == CONTROL_WEIGHTS:
        return "image statistics (control)"
    if weights == "none":
        return "untrained (weights none)"
    if weights == "user-module":
        sha = getattr(row, "state_sha256", None)
        return ("a user nn.Module, weights not vouched for"
                + (f" (state sha256 {str(sha)[:12]}, {_mode(row)})" if sha is not None and pd.notna(sha) else ""))
    return f"weights {weights}"


def _mode(row) -> str:
    return "was in training mode" if getattr(row, "module_training", None) in (True, 1, "True") else "in eval mode"


def _user_module_note(t: pd.DataFrame) -> str:
    """`` (a user nn.Module, weights not vouched for: state sha256 1a2b3c4d5e6f, in eval mode)``."""
    note = ""
    if "user-module" in t["weights"].values and "state_sha256" in t:
        user = t[t["weights"] == "user-module"].drop_duplicates("model")
        parts = [f"{r.model} state sha256 {str(r.state_sha256)[:12]}, {_mode(r)}" for r in user.itertuples()]
        note += f" (a user nn.Module, weights not vouched for: {'; '.join(parts)})"
    return note


def _transform_note(t: pd.DataFrame) -> str:
    """`` | transform Compose(...)`` when a user transform fed the network."""
    note = ""
    if "transform" in t and t["transform"].notna().any():
        note += f" | transform {', '.join(dict.fromkeys(t['transform'].dropna().astype(str)))}"
    return note


def short_title(result: CompareResult) -> str:
    """``alexnet (weights none, untrained) vs dataset`` for figure titles; with several models one entry each,
    ``alexnet (untrained), pixels (control) vs dataset``."""
    t = result.table
    if t["model"].nunique() > 1:
        short = {"image statistics (control)": "control", "untrained (weights none)": "untrained"}
        entries = []
        for r in t.drop_duplicates("model").itertuples():
            entry = _model_entry(r)
            entries.append(f"{r.model} ({short.get(entry, entry.split(' (')[0])})")
        return f"{', '.join(entries)} vs {', '.join(dict.fromkeys(t['dataset']))}"
    weights = ", ".join(dict.fromkeys(t["weights"]))
    untrained = ", untrained" if "none" in t["weights"].values else ""
    return (f"{', '.join(dict.fromkeys(t['model']))} (weights {weights}{untrained}) vs "
            f"{', '.join(dict.fromkeys(t['dataset']))}")


def _cell(row: pd.Series, prefix: str = "") -> str:
    """``0.4123 [0.3801, 0.4467]*`` (CI when bootstrapped, else ± SEM; * = Holm-corrected p < 0.05)."""
    value = row[f"similarity{prefix}"] if prefix else row["similarity"]
    low, high = row.get(f"ci_low{prefix}"), row.get(f"ci_high{prefix}")
    if low is not None and pd.notna(low):
        text = f"{value:.4f} [{low:.4f}, {high:.4f}]"
    elif not prefix and pd.notna(row["sem"]):
        text = f"{value:.4f} ± {row['sem']:.4f}"
    else:
        text = f"{value:.4f}"
    if pd.notna(row.get("p_holm", float("nan"))) and row["p_holm"] < 0.05:
        text += "*"
    return text


def _cells(rows: pd.DataFrame, cell) -> list[str]:
    """``cell(row)`` for each row, left-justified to one width: a column's values start at the same place, with
    or without the permutation star (pandas right-justifies cells of unequal length)."""
    cells = [cell(row) for _, row in rows.iterrows()]
    width = max((len(c) for c in cells), default=0)
    return [c.ljust(width) for c in cells]


def _legend(result: CompareResult) -> list[str]:
    t, attrs = result.table, result.results.attrs
    lines = []
    if "ci_low" in t:
        lines.append(f"[..] {100 * attrs.get('stats_ci_level', 0.95):g}% percentile bootstrap CI, "
                     f"{attrs.get('stats_bootstrap')} samples over {attrs.get('stats_bootstrap_over')} "
                     f"(seed {attrs.get('stats_seed')}); ± SEM over the area's units of resampling otherwise")
        scheme = result.results["similarity_bootstrap"].attrs.get("bootstrap_scheme", "exact") \
            if "similarity_bootstrap" in result.results else "exact"
        if scheme != "exact":  # large stimulus sets: say that the interval is not the exact bootstrap's
            lines.append(f"[..] bootstrap scheme: {scheme} (exact up to "
                         f"{result.results['similarity_bootstrap'].attrs.get('bootstrap_exact_max_stimuli')} stimuli)")
    if "p_holm" in t:
        family = str(attrs.get("stats_p_correction_family", "the layers tested per area"))
        lines.append(f"* permutation p < 0.05 after Holm correction within its family: {family} "
                     f"({attrs.get('stats_permutations')} permutations; p_value, p_holm, p_fdr, p_family in "
                     "results.csv)")
        scheme = str(attrs.get("permutation_scheme", "exact"))
        if scheme != "exact":  # large stimulus sets: the p-values come from one random subset of stimuli
            lines.append(f"* permutation scheme: {scheme} (exact up to "
                         f"{attrs.get('permutation_exact_max_stimuli')} stimuli; the p-values have the power of "
                         f"{attrs.get('permutation_subset_stimuli')} stimuli)")
    return lines


def _ceiling_line(t: pd.DataFrame, label: str = "noise ceiling") -> str | None:
    """Per area its ceiling band and definition, or ``n/a`` and why (``label``: ``rsa noise ceiling`` when other
    measures, each with its own ceiling, follow)."""
    per_area = t.drop_duplicates("area").set_index("area")
    if "ceiling_lower" not in per_area:
        return None
    if "ceiling_definition" not in per_area:  # a table from before definitions were recorded
        if per_area["ceiling_lower"].isna().all():
            return None
        per_area = per_area.assign(ceiling_definition="nili", ceiling_note="Nili et al. 2014")
    parts = []
    for a, r in per_area.iterrows():
        if pd.notna(r["ceiling_lower"]):
            parts.append(f"{a} [{r['ceiling_lower']:.4f}, {r['ceiling_upper']:.4f}] {r['ceiling_definition']}: "
                         f"{r['ceiling_note']}")
        else:
            parts.append(f"{a} n/a ({r['ceiling_note'] or '1 RDM'})")
    return f"{label} (lower, upper): " + "; ".join(parts)


def _unit_line(t: pd.DataFrame) -> str | None:
    """``unit of resampling: hIT subject (4); IT single RDM`` (ceilings, SEM, bootstrap over RDMs)."""
    if "resampling_unit" not in t:
        return None
    per_area = t.drop_duplicates("area").set_index("area")
    parts = []
    for area, r in per_area.iterrows():
        if r["n_rdms"] == 1:
            parts.append(f"{area} single RDM")
        elif r["resampling_unit"] == "rdm":
            parts.append(f"{area} RDM (n = {r['n_rdms']})")
        else:
            parts.append(f"{area} {r['resampling_unit']} (n = {r['n_units']} {r['resampling_unit']}s, "
                         f"{r['n_rdms']} RDMs)")
    return "unit of resampling (ceiling, SEM, bootstrap over RDMs): " + "; ".join(parts)


def _time_lines(result: CompareResult) -> list[str]:
    """Per time-resolved area: each layer's peak latency (ms) with its bootstrap CI."""
    res = result.results
    if "peak_latency" not in res:
        return []
    lines = []
    for area in res["area"].values:
        lat = res["peak_latency"].sel(area=area)
        if not np.isfinite(lat.values).any():
            continue
        parts = []
        for label in res["model_layer"].values:
            value = float(lat.sel(model_layer=label))
            text = f"{str(label).split(':', 1)[-1] if res['model'].to_series().nunique() == 1 else label} {value:g}"
            if "peak_latency_ci_low" in res:
                text += (f" [{float(res['peak_latency_ci_low'].sel(area=area, model_layer=label)):g}, "
                         f"{float(res['peak_latency_ci_high'].sel(area=area, model_layer=label)):g}]")
            parts.append(text)
        lines.append(f"{area} is time-resolved ({res.sizes['time_bin']} bins; table: its time-averaged RDM); "
                     f"peak latency ms [CI]: " + "; ".join(parts))
        if "cluster_p" in res:
            lines.append(_cluster_line(res, str(area)))
    return lines


def _cluster_line(res, area: str) -> str:
    """``IT clusters (rsa, spearman; ...): features 95-185 ms p = 0.001; ...`` (bin edges in ms)."""
    from rsa_bridge.stats.clusters import cluster_labels

    t = np.asarray(res["time_bin_center"].values, dtype=float)
    half = float(np.median(np.diff(t))) / 2 if t.size > 1 else 0.5
    parts = []
    for label in res["model_layer"].values:
        p = res["cluster_p"].sel(area=area, model_layer=label).values
        runs = cluster_labels(np.isfinite(p))
        found = []
        for c in range(1, int(runs.max()) + 1):
            idx = np.flatnonzero(runs == c)
            found.append(f"{t[idx[0]] - half:g}-{t[idx[-1]] + half:g} ms p = {p[idx[0]]:.3g}")
        parts.append(f"{str(label).split(':', 1)[-1]} " + (", ".join(found) if found else "none"))
    return (f"{area} clusters over time (rsa, {res.attrs.get('time_course_method', '?')}; cluster-forming p "
            f"{res.attrs.get('cluster_threshold_p')}, {res.attrs.get(f'cluster_test_{area}', '?')}): "
            + "; ".join(parts))


def _label(model: str, layer: str) -> str:
    """``alexnet conv5``; a model whose one layer carries its own name (a control such as ``pixels``) is
    named once."""
    return str(model) if str(layer) == str(model) else f"{model} {layer}"


def _disagreement_note(t: pd.DataFrame) -> str | None:
    """A note where a value is starred (permutation p) but its bootstrap CI includes 0, or the reverse."""
    if not {"p_holm", "ci_low", "ci_high"} <= set(t.columns):
        return None
    starred = t["p_holm"] < 0.05
    covers = (t["ci_low"] <= 0) & (t["ci_high"] >= 0)
    odd = t[(starred & covers) | (~starred & t["p_holm"].notna() & ~covers & t["ci_low"].notna())]
    if odd.empty:
        return None
    where = ", ".join(f"{_label(r.model, r.layer)} / {r.area}" for r in odd.head(3).itertuples())
    more = f" and {len(odd) - 3} more" if len(odd) > 3 else ""
    return (f"note: the permutation test and the bootstrap CI disagree for {where}{more}. They answer different "
            "questions: the permutation p tests H0 'the layer RDM carries no information about these stimuli' "
            "(stimulus labels shuffled, the same stimuli kept); the CI says how much the similarity would vary "
            "over new samples of stimuli (and Holm corrects the p for the layers tested, the CI is uncorrected). A "
            "value can be above chance for these stimuli (*) while a new stimulus sample could give 0 (the CI "
            "covers 0), or the reverse, typically with few stimuli or a small effect; report both")


def _best_lines(result: CompareResult) -> list[str]:
    lines = []
    if result.best is not None:
        n_layers = result.best.groupby(["dataset", "model", "area"])["layer"].transform("size")
        for row in result.best[result.best["is_best"] & (n_layers > 1)].itertuples():  # one layer: nothing to pick
            lines.append(f"best layer for {row.area}: {row.model} {row.layer} (in-sample similarity "
                         f"{row.similarity:.4f}, best in {100 * row.p_best:.1f}% of bootstrap samples)")
    if result.model_differences is not None:
        for row in result.model_differences.itertuples():
            lines.append(f"{row.area}: {_label(row.model_a, row.layer_a)} - {_label(row.model_b, row.layer_b)} = "
                         f"{row.difference:+.4f} [{row.ci_low:+.4f}, {row.ci_high:+.4f}], bootstrap p = {row.p_value:.4f}")
    return lines


def format_table(result: CompareResult) -> str:
    """Layers down, areas across: the similarity with its CI (or ± SEM), significance, ceiling, best layers.
    Other measures (``--measure cka/linear``) follow in one block each, then their agreement."""
    from rsa_bridge.measures.agreement import agreement_lines
    from rsa_bridge.measures.results import measure_blocks, rsa_rows

    t = rsa_rows(result.table)
    blocks = [header(result), wide_table(t, _cells(t, _cell))]
    if "similarity_normalized" in t:
        bound = t["normalized_by"].iloc[0]
        blocks.append(f"NORMALIZED: similarity / {bound} (noise ceiling); n/a where an area has no ceiling")
        blocks.append(wide_table(t, _cells(t, lambda row: _cell(row, "_normalized")
                                           if pd.notna(row["similarity_normalized"]) else "n/a")))
    several = "measure" in result.table and set(result.table["measure"]) - {"rsa"}  # each measure its own ceiling
    ceiling = _ceiling_line(t, "rsa noise ceiling" if several else "noise ceiling")
    extra = [line for line in [ceiling, _unit_line(t), *_time_lines(result), *_best_lines(result),
                               *_legend(result), _disagreement_note(t)] if line]
    others = measure_blocks(result.table) + ["\n".join(agreement_lines(getattr(result, "agreement", None)))]
    return "\n".join(blocks + extra + [b for b in others if b])


def _model_rdms_dataset(result: CompareResult) -> xr.Dataset:
    variables = {}
    for k, (key, rdms) in enumerate(result.model_rdms.items()):
        suffix = "" if len(result.model_rdms) == 1 else f"_{k}"
        rename = {} if not suffix else {name: f"{name}{suffix}" for name in dict.fromkeys([*rdms.dims, *rdms.coords])}
        renamed = rdms.rename(rename)
        renamed.attrs = {**rdms.attrs, "key": key}
        variables[f"rdm{suffix}"] = renamed
    return xr.Dataset(variables)


def write_outputs(result: CompareResult, out_dir: str | os.PathLike, overwrite: bool = False) -> list[Path]:
    """Write results.csv, results.nc, model_rdms.nc, profile.pdf and profile.png into ``out_dir``.

    Everything is rendered into a temporary folder first; only when all files exist are they moved
    into place (each with an atomic rename), so a failure leaves no partial output. The whole folder is
    published with one rename (:func:`rsa_bridge.io.staged_outputs`); an existing non-empty ``out_dir``
    needs ``overwrite``.
    """
    from rsa_bridge.measures.results import rsa_rows
    agreement = getattr(result, "agreement", None)
    files = (OUTPUT_FILES + (AGREEMENT_FILES if agreement is not None else ())
             + (TIME_FILES if "similarity_time" in result.results else ())
             + (CROSS_TEMPORAL_FILES if "cross_temporal" in result.results else ()))
    timing.begin("write")
    with staged_outputs(out_dir, files, overwrite=overwrite) as staging:
        frame_to_csv(result.table, staging / "results.csv", index=False)  # formula cells quoted
        write_netcdf(result.results, staging / "results.nc")
        if not write_store_rdms(result.model_rdms, staging / "model_rdms.nc"):  # RDM stores: one layer at a time
            write_netcdf(_model_rdms_dataset(result), staging / "model_rdms.nc")
        if agreement is None:
            fig, _, _ = layer_profile(rsa_rows(result.table), title=short_title(result))
        else:  # one panel per measure, and the agreement table and figure
            from rsa_bridge.measures.agreement import agreement_figure
            from rsa_bridge.measures.plots import measure_profile
            fig, _ = measure_profile(result.table, title=short_title(result))
            frame_to_csv(agreement, staging / "agreement.csv", index=False)
            save_figure(agreement_figure(result.table, title=short_title(result)), staging / "agreement")
        save_figure(fig, staging / "profile")   # closes the figure, fonts embedded as TrueType
        if "similarity_time" in result.results:
            from rsa_bridge.figures.time_course import time_course_figure

            fig, _, _ = time_course_figure(result.results, title=short_title(result))
            save_figure(fig, staging / "time_course")
        if "cross_temporal" in result.results:
            from rsa_bridge.figures.time_course import cross_temporal_figure

            fig, _, _ = cross_temporal_figure(result.results, title=short_title(result))
            save_figure(fig, staging / "cross_temporal")
    timing.end("write")
    return staged_paths(out_dir, files)
