"""The non-RSA measures in ``compare``'s outputs: results.csv rows, results.nc variables, printed blocks.

results.csv: every row gains ``measure`` (``rsa`` for today's rows); CKA and linear-predictivity rows put
their score in ``similarity`` (``method`` says ``linear_cka`` / ``ridge`` / ``pls``) with ``ci_low``/``ci_high``,
``p_best``/``is_best`` (and p-values for CKA), ``measure_ceiling`` and ``score_over_ceiling``; linear rows add
``mean_over_neuroids``. results.nc gains ``score`` (measure, model_layer, area) with ``score_ci_low``,
``score_ci_high``, ``score_p_best``, ``score_over_ceiling``, ``measure_ceiling`` (measure, area) and the
per-neuroid predictivity ``linear_per_neuroid_<dataset>_<area>`` (model_layer, neuroid).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from rsa_bridge.tables import wide_table
from rsa_bridge.measures import MEASURES
from rsa_bridge.measures.inputs import ModelScores

NAN = float("nan")


def measure_rows(scored: ModelScores) -> list[dict]:
    """results.csv rows of one model's non-RSA scores (one row per area x measure x layer)."""
    rows = []
    for area, by_measure in scored.scores.items():
        for name, sc in by_measure.items():
            st = sc.stats
            best = int(np.nanargmax(sc.score)) if np.isfinite(sc.score).any() else -1
            paths = dict(zip(scored.layers, scored.module_paths))
            for k, layer in enumerate(sc.layers):
                row = {"model": scored.model, "weights": scored.weights, "layer": layer,
                       "module_path": str(paths.get(layer, "")), "area": area, "dataset": scored.dataset,
                       "metric": "linear kernel", "method": sc.method, "similarity": float(sc.score[k]),
                       "sem": NAN, "n_rdms": 0, "n_stimuli": int(scored.n_stimuli),
                       "measure_ceiling": sc.ceiling, "score_over_ceiling": float(sc.normalized[k])}
                if st.ci_low is not None:
                    row.update(ci_low=float(st.ci_low[k]), ci_high=float(st.ci_high[k]),
                               p_best=float(st.p_best[k]), is_best=k == best)
                if st.p_value is not None:
                    row.update(p_value=float(st.p_value[k]), p_holm=float(st.p_holm[k]), p_fdr=float(st.p_fdr[k]))
                if sc.mean is not None:
                    row["mean_over_neuroids"] = float(sc.mean[k])
                row["measure"] = name
                rows.append(row)
    return rows


def add_measures(table: pd.DataFrame, results: xr.Dataset, scored: Sequence[ModelScores | None],
                 attrs: dict | None = None) -> tuple[pd.DataFrame, xr.Dataset]:
    """Table and Dataset with the ``measure`` column and, when other measures ran, their rows and variables.

    ``scored``: what :func:`rsa_bridge.measures.scoring.score_models` returned (None entries: RSA only, e.g.
    model RDMs in an RDM store or a control without Grams)."""
    table = table.assign(measure="rsa")
    scored = [s for s in scored if s is not None and s.scores]
    extra = []
    for one in scored:
        extra.extend(measure_rows(one))
    if not extra:
        return table, results
    table = pd.concat([table, pd.DataFrame(extra)], ignore_index=True)
    measures = list(dict.fromkeys(table["measure"]))
    labels = [str(v) for v in results["model_layer"].values]
    areas = [str(a) for a in results["area"].values]
    grids = {c: np.full((len(measures), len(labels), len(areas)), np.nan)
             for c in ("similarity", "ci_low", "ci_high", "p_best", "score_over_ceiling")}
    ceilings = np.full((len(measures), len(areas)), np.nan)
    for row in table.itertuples(index=False):
        i, j, k = measures.index(row.measure), labels.index(f"{row.model}:{row.layer}"), areas.index(row.area)
        for c in grids:
            value = getattr(row, c, NAN)
            grids[c][i, j, k] = value if value is not None and pd.notna(value) else NAN
        ceiling = getattr(row, "measure_ceiling", NAN)
        if pd.notna(ceiling):
            ceilings[i, k] = ceiling
    dims = ("measure", "model_layer", "area")
    names = {"similarity": "score", "ci_low": "score_ci_low", "ci_high": "score_ci_high", "p_best": "score_p_best",
             "score_over_ceiling": "score_over_ceiling"}
    new = {names[c]: (dims, v, {"units": "1", "long_name": f"{c} of each measure"}) for c, v in grids.items()}
    new["measure_ceiling"] = (("measure", "area"), ceilings,
                              {"units": "1", "long_name": "ceiling of each measure (rsa: see ceiling_upper)"})
    results = results.assign_coords(measure=measures).assign(new)
    results["measure_definition"] = ("measure", [MEASURES[m].definition for m in measures])
    for one in scored:
        for area, by_measure in one.scores.items():
            sc = by_measure.get("linear")
            if sc is None:
                continue
            name = f"linear_per_neuroid_{one.dataset}_{area}"
            dim = f"neuroid_{one.dataset}_{area}"
            block = xr.DataArray(sc.per_neuroid, dims=("model_layer", dim),
                                 coords={"model_layer": [f"{one.model}:{l}" for l in sc.layers],
                                         dim: sc.neuroid_ids},
                                 attrs={"long_name": "mean over folds of the held-out Pearson r", "units": "1",
                                        "excluded_neuroids": ",".join(sc.excluded) or "none"})
            results[name] = block if name not in results else xr.concat([results[name], block], "model_layer")
    results.attrs.update({k: v for k, v in (attrs or {}).items()})
    return table, results


def rsa_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The RSA rows (all rows of a table without a ``measure`` column)."""
    if "measure" not in table:
        return table
    return table[table["measure"] == "rsa"].reset_index(drop=True)


def measure_blocks(table: pd.DataFrame) -> list[str]:
    """One printed block per non-RSA measure: layers down, areas across, ceiling and best layer."""
    if "measure" not in table:
        return []
    blocks = []
    for name in dict.fromkeys(table["measure"]):
        if name == "rsa":
            continue
        t = table[table["measure"] == name]
        cells = []
        for row in t.itertuples(index=False):
            text = f"{row.similarity:.4f}"
            low = getattr(row, "ci_low", NAN)
            if pd.notna(low):
                text += f" [{low:.4f}, {row.ci_high:.4f}]"
            if pd.notna(getattr(row, "p_holm", NAN)) and row.p_holm < 0.05:
                text += "*"
            cells.append(text)
        m = MEASURES[name]
        lines = [f"MEASURE {name}: {m.long_name} ({', '.join(dict.fromkeys(t['method']))})", wide_table(t, cells)]
        for area, rows in t.groupby("area", sort=False):
            ceiling = rows["measure_ceiling"].iloc[0]
            lines.append(f"ceiling for {area}: {ceiling:.4f} ({m.ceiling_short})")
            for model, mrows in rows.groupby("model", sort=False):
                if len(mrows) < 2:
                    continue
                top = mrows.loc[mrows["similarity"].idxmax()]
                if np.isfinite(mrows["similarity"]).all() and (mrows["similarity"] == top["similarity"]).all():
                    lines.append(f"best layer for {area}: none, every layer of {model} scores {top['similarity']:.4f} "
                                 f"(in-sample {name})")
                    continue
                prob = f", best in {100 * top['p_best']:.1f}% of bootstrap samples over {m.bootstrap_over}" \
                    if pd.notna(top.get("p_best", NAN)) else ""
                lines.append(f"best layer for {area}: {model} {top['layer']} (in-sample {name} {top['similarity']:.4f}, "
                             f"/ceiling {top['score_over_ceiling']:.4f}{prob})")
        blocks.append("\n".join(lines))
    return blocks


# --- reading results back: one measure at a time -----------------------------------------------------------

#: how a row's ``method`` reads on an axis (other names are shown with spaces for underscores)
METHOD_LABELS = {"spearman": "Spearman r", "pearson": "Pearson r", "kendall_tau_a": "Kendall tau-a",
                 "rho_a": "Spearman rho-a", "cosine": "cosine similarity", "ridge": "ridge", "pls": "PLS",
                 "linear_cka": "linear"}


def measures_in(table: pd.DataFrame) -> list[str]:
    """The measures of a results table in order of appearance (``["rsa"]`` for a table without the column)."""
    if "measure" not in table:
        return ["rsa"]
    return [str(m) for m in dict.fromkeys(table["measure"].fillna("rsa"))]


def select_measure(table: pd.DataFrame, measure: str | None = None) -> pd.DataFrame:
    """The rows of one measure (index reset), for a reader that wants one series.

    ``measure=None`` is allowed only when the table holds one measure; a table that holds several raises
    RSABridgeError rather than return a mix (one ``similarity`` column holds every measure's scores).
    A table without a ``measure`` column is RSA (results written before measures existed).

    Example::

        >>> t = pd.DataFrame({"measure": ["rsa", "cka"], "similarity": [0.2, 0.5]})
        >>> float(select_measure(t, "cka")["similarity"].iloc[0])
        0.5
    """
    from rsa_bridge.errors import RSABridgeError

    present = measures_in(table)
    if measure is None:
        if len(present) > 1:
            raise RSABridgeError(f"the results hold {len(present)} measures ({', '.join(present)}); pick one "
                                 f"with --measure NAME (measure=...): their scores are never mixed in one series")
        measure = present[0]
    if measure not in MEASURES:
        raise RSABridgeError(f"unknown measure {measure!r}; choose from {', '.join(MEASURES)}")
    if measure not in present:
        raise RSABridgeError(f"the results hold no {measure} scores (they hold {', '.join(present)}); pick one of "
                             f"those or rerun compare with --measure {measure}")
    if "measure" not in table:
        return table.reset_index(drop=True)
    return table[table["measure"].fillna("rsa") == measure].reset_index(drop=True)


def method_label(method) -> str:
    """``spearman`` -> ``Spearman r``, ``ridge`` -> ``ridge`` (see :data:`METHOD_LABELS`)."""
    method = "" if method is None or (isinstance(method, float) and np.isnan(method)) else str(method)
    return METHOD_LABELS.get(method, method.replace("_", " "))


def measure_label(measure: str, method=None) -> str:
    """The axis label of a measure's score from the registry, e.g. ``RSA (Spearman r)``, ``linear CKA``,
    ``linear predictivity (median Pearson r, ridge)``."""
    label = MEASURES[measure].axis_label.format(method=method_label(method))
    return label.replace(" ()", "").replace(", )", ")")


def ceiling_on_scale(measure: str, ceiling: float) -> float:
    """A stored ``measure_ceiling`` on the score's own scale: itself, or its square root for a reliability of
    averages when the score is a correlation (``ceiling_scale="sqrt"``); NaN for a negative reliability."""
    scale = MEASURES[measure].ceiling_scale
    ceiling = float(ceiling)
    if scale == "sqrt":
        return float(np.sqrt(ceiling)) if ceiling >= 0 else NAN
    return ceiling
