"""Do the measures agree? Layer ranks per measure and the best layer per area, with bootstrap probabilities.

From a ``compare`` table with a ``measure`` column: for every (dataset, model, area) the layers are ranked
by each measure (1 = highest score), the best layer of each measure is reported with its bootstrap
probability of being best (``p_best``: over stimuli for rsa and cka, over neuroids for linear; NaN without a
bootstrap), and ``agree`` says whether all measures pick the same layer. The Spearman correlation of the
layer profiles (``rank_correlation`` with RSA) is given per measure.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

#: ``best_layer`` of a measure that gives every layer the same score (it names no best layer)
ALL_TIED = "(all layers tie)"


def layer_ranks(table: pd.DataFrame) -> pd.DataFrame:
    """Long table: dataset, model, area, layer, measure, score, rank (1 = best)."""
    t = table.copy()
    if "measure" not in t:
        t["measure"] = "rsa"
    t = t[["dataset", "model", "area", "layer", "measure", "similarity"]].rename(columns={"similarity": "score"})
    t["rank"] = t.groupby(["dataset", "model", "area", "measure"])["score"].rank(ascending=False, method="min")
    return t.reset_index(drop=True)


def agreement_table(table: pd.DataFrame) -> pd.DataFrame | None:
    """One row per (dataset, model, area, measure): best layer, its score and p_best, Spearman r of the layer
    profile with RSA's, and ``agree`` (True when every measure picks the same best layer). None with one measure."""
    if "measure" not in table or table["measure"].nunique() < 2:
        return None
    rows = []
    for (dataset, model, area), group in table.groupby(["dataset", "model", "area"], sort=False):
        rsa = group[group["measure"] == "rsa"].set_index("layer")["similarity"]
        best_layers = {}
        for measure, g in group.groupby("measure", sort=False):
            if len(g) < 1 or not np.isfinite(g["similarity"]).any():
                continue
            top = g.loc[g["similarity"].idxmax()]
            scores = g.set_index("layer")["similarity"]
            common = [l for l in scores.index if l in rsa.index]
            finite = scores[np.isfinite(scores)]
            tied = len(g) > 1 and len(finite) == len(g) and bool((finite == finite.iloc[0]).all())
            if tied:                                   # e.g. CCA saturated at 1: no best layer, no rank profile
                warnings.warn(f"{measure} gives every layer of {model} the same score ({finite.iloc[0]:.4g}) for "
                              f"{area}: it names no best layer and is left out of the agreement", RuntimeWarning,
                              stacklevel=2)
                rho = np.nan
            else:
                rho = float(spearmanr(scores[common], rsa[common])[0]) if len(common) >= 3 else np.nan
                best_layers[measure] = top["layer"]
            rows.append({"dataset": dataset, "model": model, "area": area, "measure": measure,
                         "best_layer": ALL_TIED if tied else top["layer"], "score": float(top["similarity"]),
                         "p_best": float(top["p_best"]) if "p_best" in g and pd.notna(top.get("p_best")) and not tied
                         else np.nan,
                         "profile_spearman_with_rsa": rho, "n_layers": len(g)})
        agree = len(set(best_layers.values())) == 1
        for row in rows:
            if (row["dataset"], row["model"], row["area"]) == (dataset, model, area):
                row["agree"] = agree
    return pd.DataFrame(rows)


def agreement_lines(agreement: pd.DataFrame | None) -> list[str]:
    """Printed summary: per area, the best layer under each measure and whether they agree."""
    if agreement is None or not len(agreement):
        return []
    lines = ["AGREEMENT between measures (best layer per area; bootstrap probability of being best):"]
    for (model, area), g in agreement.groupby(["model", "area"], sort=False):
        parts = [f"{r.measure} {r.best_layer}" + (f" ({100 * r.p_best:.0f}%)" if pd.notna(r.p_best) else "")
                 for r in g.itertuples()]
        verdict = "agree" if g["agree"].iloc[0] else "DISAGREE"
        lines.append(f"  {model} {area}: {'; '.join(parts)} -> {verdict}")
    return lines


def agreement_figure(table: pd.DataFrame, title: str | None = None):
    """Layer ranks per measure, one panel per area (:func:`rsa_bridge.measures.plots.agreement_figure`)."""
    from rsa_bridge.measures.plots import agreement_figure as draw

    return draw(table, title)
