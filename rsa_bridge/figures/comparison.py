"""Model comparison: one bar per model (its best layer for an area), bootstrap CIs, the noise ceiling, and
brackets over the pairs of models whose difference is significant.

The test of a pair is the two-sided paired bootstrap test of :func:`rsa_bridge.stats.layers.bootstrap_pair_p`
(rsatoolbox's definition), on the bootstrap samples stored in ``results.nc`` (``similarity_bootstrap``): both
models were scored on the same resampled stimuli, so the difference is paired. The p-values of all pairs are
corrected together (Holm by default, or Benjamini-Hochberg ``fdr``), and a bracket is drawn for each pair with a
corrected p below ``alpha``, labelled with stars (* < .05, ** < .01, *** < .001).

Peer: rsatoolbox's ``plot_model_comparison`` (bars per model, grey noise-ceiling band, pairwise "Nili bars" or
"Golan wings", FDR by default). Here the bars are each network's best layer, picked on the observed
similarities (the selection is not resampled, which favours the winners slightly - as in the compare table's
``model_differences``).
"""
from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from rsa_bridge.corrections import CORRECTIONS
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.figures.layout import short_label
from rsa_bridge.figures.style import area_colours, figsize, use_style

def _correct(p: np.ndarray, correction: str) -> np.ndarray:
    """``p`` adjusted by the correction named ``correction`` (a name or alias of :data:`CORRECTIONS`)."""
    return CORRECTIONS.get_record(correction)(p)


def pairwise_bootstrap_p(samples: np.ndarray, correction: str = "holm") -> tuple[list[tuple[int, int]], np.ndarray,
                                                                                  np.ndarray]:
    """Two-sided paired bootstrap p of every pair of columns of ``samples`` (B, M), and corrected p.

    Returns:
        (pairs ``[(i, j)]`` with i < j, p (P,), corrected p (P,)).
    """
    from rsa_bridge.stats.layers import bootstrap_pair_p

    samples = np.asarray(samples, dtype=float)
    pairs = [(i, j) for i in range(samples.shape[1]) for j in range(i + 1, samples.shape[1])]
    p = np.array([bootstrap_pair_p(samples[:, i], samples[:, j]) for i, j in pairs], dtype=float)
    return pairs, p, _correct(p, correction)


def best_rows(results: xr.Dataset, area: str) -> list[str]:
    """``model:layer`` of each model's most similar layer for ``area`` (models in results order)."""
    sim = results["similarity"].sel(area=area)
    models = [str(m) for m in results["model"].values]
    out = []
    for model in dict.fromkeys(models):
        idx = [k for k, m in enumerate(models) if m == model]
        values = sim.values[idx]
        if np.isfinite(values).any():
            out.append(str(results["model_layer"].values[idx[int(np.nanargmax(values))]]))
    return out


def _levels(spans: list[tuple[float, float]]) -> list[int]:
    """Stack brackets: each gets the lowest level on which it overlaps no other (shortest spans first)."""
    order = sorted(range(len(spans)), key=lambda k: (spans[k][1] - spans[k][0], spans[k][0]))
    taken: dict[int, list[tuple[float, float]]] = {}
    level = [0] * len(spans)
    for k in order:
        lo, hi = spans[k]
        lvl = 0
        while any(not (hi < a - 0.1 or lo > b + 0.1) for a, b in taken.get(lvl, [])):
            lvl += 1
        taken.setdefault(lvl, []).append((lo, hi))
        level[k] = lvl
    return level


def _stars(p: float) -> str:
    return "***" if p < 0.001 else "**" if p < 0.01 else "*"


def model_comparison(results, area: str, *, rows: list[str] | None = None, correction: str = "holm",
                     alpha: float = 0.05, sort: bool = True, width: str | float = "single",
                     height_mm: float = 65.0, label_width: int = 22):
    """Bars of model-brain similarity per model with CIs, ceiling band and significance brackets.

    Args:
        results: ``results.nc`` of a compare run with a bootstrap (an ``xarray.Dataset``), or a
            :class:`rsa_bridge.app.pipeline.CompareResult`.
        area: the brain area.
        rows: ``model:layer`` rows to draw (default: each model's best layer, :func:`best_rows`).
        correction: a name of :data:`rsa_bridge.corrections.CORRECTIONS`: ``holm`` (default), ``fdr_bh`` (alias
            ``fdr``) or ``none``, across all pairs drawn.
        alpha: brackets for pairs with corrected p < alpha.
        sort: bars from the most to the least similar.
        width, height_mm: figure size (``single``/``double``/millimetres).
        label_width: longer bar labels are shortened in the middle.

    Returns:
        (figure, axes, handles): ``bars`` (BarContainer, heights = similarity in ``rows`` order), ``ci``
        (LineCollection), ``rows``, ``pairs`` (list of dicts a, b, p, p_corrected, significant),
        ``brackets`` ((a, b) -> Line2D), ``ceiling`` (band or None).

    Example::

        fig, ax, h = model_comparison(xr.open_dataset("out/results.nc"), "IT")
    """
    results = getattr(results, "results", results)
    if "similarity_bootstrap" not in results:
        raise RSABridgeError("the results have no bootstrap samples: run compare with --bootstrap 1000 "
                             "(the brackets test pairs of models on them)")
    if area not in [str(a) for a in results["area"].values]:
        raise RSABridgeError(f"the results have no area {area!r}; they have "
                             f"{', '.join(str(a) for a in results['area'].values)}")
    rows = list(rows) if rows else best_rows(results, area)
    have = [str(r) for r in results["model_layer"].values]
    missing = [r for r in rows if r not in have]
    if missing:
        raise RSABridgeError(f"the results have no row {missing[0]!r}; they have {', '.join(have[:8])} ...")
    sel = results.sel(area=area, model_layer=rows)
    y = sel["similarity"].values.astype(float)
    if sort:
        order = np.argsort(-y, kind="stable")
        rows, y = [rows[k] for k in order], y[order]
        sel = results.sel(area=area, model_layer=rows)
    samples = sel["similarity_bootstrap"].transpose("bootstrap_sample", "model_layer").values
    pairs, p, p_corr = pairwise_bootstrap_p(samples, correction)
    colour = area_colours(results["area"].values)[area]
    handles: dict = {"rows": rows}
    x = np.arange(len(rows), dtype=float)
    with use_style():
        fig, ax = plt.subplots(figsize=figsize(width, height_mm))
        handles["bars"] = ax.bar(x, y, width=0.7, color=colour, alpha=0.85, edgecolor="none", zorder=2)
        if "similarity_ci_low" in sel:
            handles["ci"] = ax.vlines(x, sel["similarity_ci_low"].values, sel["similarity_ci_high"].values,
                                      color="0.15", lw=0.8, zorder=3)
        handles["ceiling"] = None
        if "ceiling_lower" in sel and np.isfinite(float(sel["ceiling_lower"])):
            low, up = float(sel["ceiling_lower"]), float(sel["ceiling_upper"])
            handles["ceiling"] = ax.axhspan(low, up, facecolor="0.6", alpha=0.3, lw=0, zorder=0,
                                            label=f"{area} noise ceiling")
        controls = [k for k, r in enumerate(rows) if ":" in r and r.split(":", 1)[0] == r.split(":", 1)[1]]
        for k in controls:  # image-statistics controls (model = its only "layer"): grey, hatched
            handles["bars"][k].set_facecolor("0.75")
            handles["bars"][k].set_hatch("////")
            handles["bars"][k].set_edgecolor("0.45")
        labels = [r.split(":", 1)[0] if k in controls else r.replace(":", "\n", 1) for k, r in enumerate(rows)]
        ax.set_xticks(x, ["\n".join(short_label(part, label_width) for part in lab.split("\n")) for lab in labels],
                      rotation=0, fontsize=plt.rcParams["xtick.labelsize"] - 0.5)
        ax.axhline(0.0, color="0.5", lw=0.5, zorder=1)
        top = np.nanmax([np.nanmax(sel["similarity_ci_high"].values) if "similarity_ci_high" in sel else np.nanmax(y),
                         np.nanmax(y), float(sel["ceiling_upper"]) if handles["ceiling"] is not None else -np.inf])
        span = top - min(0.0, np.nanmin(y))
        step = 0.07 * span
        handles["pairs"], handles["brackets"] = [], {}
        significant = [(k, i, j) for k, (i, j) in enumerate(pairs) if p_corr[k] < alpha]
        levels = _levels([(x[i], x[j]) for _, i, j in significant])
        for (k, i, j), lvl in zip(significant, levels):
            h = top + step * (0.6 + 1.3 * lvl)
            (line,) = ax.plot([x[i], x[i], x[j], x[j]], [h - 0.25 * step, h, h, h - 0.25 * step], color="0.2",
                              lw=0.6, zorder=4)
            ax.text((x[i] + x[j]) / 2, h - 0.1 * step, _stars(p_corr[k]), ha="center", va="bottom", fontsize=6,
                    zorder=4)
            handles["brackets"][(rows[i], rows[j])] = line
        for k, (i, j) in enumerate(pairs):
            handles["pairs"].append({"a": rows[i], "b": rows[j], "p": float(p[k]), "p_corrected": float(p_corr[k]),
                                     "significant": bool(p_corr[k] < alpha)})
        ax.set_ylim(min(0.0, np.nanmin(y) - 0.05 * span), top + step * (1.6 + 1.3 * (max(levels, default=-1) + 1)))
        method = str(results.attrs.get("method", ""))
        ax.set_ylabel(f"RDM similarity with {area}\n({method} r)" if method else f"RDM similarity with {area}")
        n = samples.shape[0]
        band = f"; grey band: {area} noise ceiling" if handles["ceiling"] is not None else ""
        label = CORRECTIONS.get_record(correction).label
        note = (f"bars: 95% bootstrap CI{band}; brackets: {label}-corrected p < {alpha:g}, "
                f"two-sided paired bootstrap ({n} samples)")
        handles["note"] = ax.set_title(textwrap.fill(note, int(1.0 * figsize(width)[0] * 72 / 3.0)), fontsize=5,
                                       loc="left")
    return fig, ax, handles
