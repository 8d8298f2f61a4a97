"""Text table for stdout and the files that ``compare --out DIR`` writes (all or nothing)."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import xarray as xr

from rsa_bridge.figures import layer_profile, save_figure
from rsa_bridge.io import staged_outputs, staged_paths
from rsa_bridge.pipeline import CompareResult

OUTPUT_FILES = ("results.csv", "results.nc", "model_rdms.nc", "profile.pdf", "profile.png")


def header(result: CompareResult) -> str:
    """One line of provenance above the table; says plainly when the network is untrained."""
    t = result.table
    weights = ", ".join(dict.fromkeys(t["weights"]))
    note = " (untrained network: a control, not a trained model)" if "none" in t["weights"].values else ""
    return (f"model {', '.join(dict.fromkeys(t['model']))} | weights {weights}{note} | "
            f"dataset {', '.join(dict.fromkeys(t['dataset']))} | metric {', '.join(dict.fromkeys(t['metric']))} | "
            f"comparison {t['method'].iloc[0]} | stimuli {', '.join(str(n) for n in dict.fromkeys(t['n_stimuli']))}")


def short_title(result: CompareResult) -> str:
    """``alexnet (weights none, untrained) - dataset`` for figure titles."""
    t = result.table
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


def _legend(result: CompareResult) -> list[str]:
    t, attrs = result.table, result.results.attrs
    lines = []
    if "ci_low" in t:
        lines.append(f"[..] {100 * attrs.get('stats_ci_level', 0.95):g}% percentile bootstrap CI, "
                     f"{attrs.get('stats_bootstrap')} samples over {attrs.get('stats_bootstrap_over')} "
                     f"(seed {attrs.get('stats_seed')}); ± SEM over the area's RDMs otherwise")
        scheme = result.results["similarity_bootstrap"].attrs.get("bootstrap_scheme", "exact") \
            if "similarity_bootstrap" in result.results else "exact"
        if scheme != "exact":  # large stimulus sets: say that the interval is not the exact bootstrap's
            lines.append(f"[..] bootstrap scheme: {scheme} (exact up to "
                         f"{result.results['similarity_bootstrap'].attrs.get('bootstrap_exact_max_stimuli')} stimuli)")
    if "p_holm" in t:
        lines.append(f"* permutation p < 0.05 after Holm correction across the layers tested per area "
                     f"({attrs.get('stats_permutations')} permutations; p_value, p_holm, p_fdr in results.csv)")
    return lines


def _ceiling_line(t: pd.DataFrame) -> str | None:
    per_area = t.drop_duplicates("area").set_index("area")
    if "ceiling_lower" not in per_area or per_area["ceiling_lower"].isna().all():
        return None
    parts = [f"{a} [{r['ceiling_lower']:.4f}, {r['ceiling_upper']:.4f}]" if pd.notna(r["ceiling_lower"])
             else f"{a} n/a (1 RDM)" for a, r in per_area.iterrows()]
    return "noise ceiling (Nili et al. 2014, lower-upper): " + "; ".join(parts)


def _best_lines(result: CompareResult) -> list[str]:
    lines = []
    if result.best is not None:
        n_layers = result.best.groupby(["dataset", "model", "area"])["layer"].transform("size")
        for row in result.best[result.best["is_best"] & (n_layers > 1)].itertuples():  # one layer: nothing to pick
            lines.append(f"best layer for {row.area}: {row.model} {row.layer} "
                         f"(similarity {row.similarity:.4f}, best in {100 * row.p_best:.1f}% of bootstrap samples)")
    if result.model_differences is not None:
        for row in result.model_differences.itertuples():
            lines.append(f"{row.area}: {row.model_a} {row.layer_a} - {row.model_b} {row.layer_b} = "
                         f"{row.difference:+.4f} [{row.ci_low:+.4f}, {row.ci_high:+.4f}], bootstrap p = {row.p_value:.4f}")
    return lines


def _wide(t: pd.DataFrame, cells: list[str]) -> str:
    wide = t.assign(cell=cells).pivot_table(index=["model", "layer"], columns="area", values="cell",
                                           aggfunc="first", sort=False)
    wide = wide.reindex(list(dict.fromkeys(zip(t["model"], t["layer"]))))
    if t["model"].nunique() == 1:
        wide.index = wide.index.get_level_values("layer")
    wide.columns.name = None
    return wide.to_string()


def format_table(result: CompareResult) -> str:
    """Layers down, areas across: the similarity with its CI (or ± SEM), significance, ceiling, best layers."""
    t = result.table
    blocks = [header(result), _wide(t, [_cell(row) for _, row in t.iterrows()])]
    if "similarity_normalized" in t:
        bound = t["normalized_by"].iloc[0]
        blocks.append(f"NORMALIZED: similarity / {bound} (noise ceiling); n/a where an area has a single RDM")
        blocks.append(_wide(t, [_cell(row, "_normalized") if pd.notna(row["similarity_normalized"]) else "n/a"
                                for _, row in t.iterrows()]))
    extra = [line for line in [_ceiling_line(t), *_best_lines(result), *_legend(result)] if line]
    return "\n".join(blocks + extra)


def _model_rdms_dataset(result: CompareResult) -> xr.Dataset:
    variables = {}
    for k, (key, rdms) in enumerate(result.model_rdms.items()):
        suffix = "" if len(result.model_rdms) == 1 else f"_{k}"
        rename = {} if not suffix else {name: f"{name}{suffix}" for name in dict.fromkeys([*rdms.dims, *rdms.coords])}
        renamed = rdms.rename(rename)
        renamed.attrs = {**rdms.attrs, "key": key}
        variables[f"rdm{suffix}"] = renamed
    return xr.Dataset(variables)


def write_outputs(result: CompareResult, out_dir: str | os.PathLike) -> list[Path]:
    """Write results.csv, results.nc, model_rdms.nc, profile.pdf and profile.png into ``out_dir``.

    Everything is rendered into a temporary folder first; only when all files exist are they moved
    into place (each with an atomic rename), so a failure leaves no partial output.
    """
    with staged_outputs(out_dir, OUTPUT_FILES) as staging:
        result.table.to_csv(staging / "results.csv", index=False)
        result.results.to_netcdf(staging / "results.nc", engine="h5netcdf")
        _model_rdms_dataset(result).to_netcdf(staging / "model_rdms.nc", engine="h5netcdf")
        fig, _, _ = layer_profile(result.table, title=short_title(result))
        save_figure(fig, staging / "profile")   # closes the figure, fonts embedded as TrueType
    return staged_paths(out_dir, OUTPUT_FILES)
