"""Named evaluation conventions: the same model and brain RDMs, scored the way each toolbox scores them.

Toolboxes agree on the RDMs but not on the score. A :class:`Convention` names every choice:

=========== ============ ======= =================== ================ ==========================================
name        comparison   squared noise ceiling       normalised by    what it reproduces
=========== ============ ======= =================== ================ ==========================================
rsatoolbox  spearman     no      ``nili``            (not)            rsatoolbox ``eval_fixed`` mean over
                                                                      subjects + ``boot_noise_ceiling`` bounds
net2brain   spearman     yes     ``algonauts``       lower bound      Net2Brain ``RSA`` (R2, %R2 = 100 R2 / LNC,
                                                                      LNC/UNC, t-test, SEM)
algonauts   spearman     yes     ``algonauts``       upper bound      Algonauts 2019 ``testSub_fmri.py`` (R^2,
                                                                      % of noise ceiling = 100 R^2 / nc)
=========== ============ ======= =================== ================ ==========================================

Per brain RDM s (a subject/session/animal) the score is sim(model, s) (``r``) or its square (``r^2``);
the area's score is their mean, with the two-sided one-sample t-test of the per-RDM scores against
0 (``scipy.stats.ttest_1samp``) and their standard error (``scipy.stats.sem``, ddof 1). The noise
ceiling comes from :func:`rsa_bridge.stats.noise_ceiling` (``algonauts``: mean pool, squared
similarities; ``nili``: rsatoolbox's pool). rsatoolbox's own ``compare`` default is cosine; this
convention uses Spearman as in Nili et al. 2014 — pass ``method=`` to change it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from rsa_bridge.datasets import area_rdms


@dataclass(frozen=True)
class Convention:
    """One toolbox's scoring settings (see the module table)."""

    name: str
    method: str
    squared: bool
    ceiling: str
    normalize_by: str | None
    description: str


#: convention name -> settings
CONVENTIONS: dict[str, Convention] = {
    c.name: c for c in (
        Convention("rsatoolbox", "spearman", False, "nili", None,
                   "mean over subjects of Spearman r; Nili et al. 2014 bounds (rsatoolbox pool_rdm)"),
        Convention("net2brain", "spearman", True, "algonauts", "lower",
                   "mean over subjects of Spearman r^2; LNC/UNC with the raw-mean pool; %R2 = 100 R2 / LNC"),
        Convention("algonauts", "spearman", True, "algonauts", "upper",
                   "mean over subjects of Spearman r^2; % of noise ceiling = 100 R2 / UNC (Algonauts 2019)"),
    )
}


def get_convention(name: str) -> Convention:
    """A convention by name; an unknown name lists the known ones."""
    from rsa_bridge.registry import resolve_name

    return CONVENTIONS[resolve_name("convention", name, CONVENTIONS)]


def evaluate(model_rdms: xr.DataArray, dataset: xr.Dataset, areas: list[str] | None = None, *,
             convention: str = "rsatoolbox", method: str | None = None) -> pd.DataFrame:
    """Score model layer RDMs against an area's RDMs (subjects/sessions) under a named convention.

    Args:
        model_rdms: (layer, n, n) model RDMs (see :mod:`rsa_bridge.model_rdms`), matched to the dataset
            by ``stimulus_id``.
        dataset: an RDM dataset (:mod:`rsa_bridge.datasets`) with several RDMs per area.
        areas: areas to score (default: all).
        convention: a name in :data:`CONVENTIONS`; method overrides its comparison method.

    Returns:
        One row per (area, layer): ``area, layer, score, score_units, per_rdm`` (list of per-RDM
        scores), ``p_value`` (t-test), ``sem``, ``ceiling_lower``, ``ceiling_upper``, ``normalized``
        (percent of the convention's bound, NaN when it has none), ``convention``, ``method``,
        ``ceiling_definition``, ``n_rdms``.
    """
    from rsa_bridge.datasets import areas as dataset_areas
    from rsa_bridge.model_rdms import LAYER
    from rsa_bridge.layer_scores import compare_layers
    from rsa_bridge.stats import noise_ceiling

    conv = get_convention(convention)
    method = method or conv.method
    names = list(areas) if areas else dataset_areas(dataset)
    _, _, per_rdm = compare_layers(model_rdms, dataset, names, method)
    ids = [str(s) for s in model_rdms["stimulus_row"].values]
    rows = []
    for area in names:
        sims = np.asarray(per_rdm[area].values)  # (layer, replicate)
        scores = sims ** 2 if conv.squared else sims
        brain = area_rdms(dataset, area).sel(stimulus_row=ids, stimulus_col=ids)
        ceiling = noise_ceiling(brain, method=method, definition=conv.ceiling)
        bound = {"lower": ceiling.lower, "upper": ceiling.upper, None: np.nan}[conv.normalize_by]
        for k, layer in enumerate(per_rdm[area][LAYER].values):
            s = scores[k]
            n = s.size
            rows.append({
                "area": area, "layer": str(layer), "score": float(s.mean()),
                "score_units": "r^2" if conv.squared else "r", "per_rdm": s.tolist(),
                "p_value": float(stats.ttest_1samp(s, 0.0).pvalue) if n > 1 else np.nan,
                "sem": float(stats.sem(s)) if n > 1 else np.nan,
                "ceiling_lower": ceiling.lower, "ceiling_upper": ceiling.upper,
                "normalized": float(100.0 * s.mean() / bound) if conv.normalize_by else np.nan,
                "convention": conv.name, "method": method, "ceiling_definition": ceiling.definition, "n_rdms": n,
            })
    return pd.DataFrame(rows)
