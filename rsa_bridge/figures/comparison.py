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

Brackets are drawn only where the correction can reach ``alpha``: with B bootstrap samples the smallest
possible p is 1/B, and Holm over P pairs multiplies it by P (:func:`smallest_corrected_p`); when even that
is not below ``alpha`` (e.g. 210 pairs of 21 layers, 1000 samples: 0.21), the caption says so instead of
promising brackets that cannot appear. Labels: the layer alone when every bar is of one model (the model
in the axis label), else ``model`` over ``layer``; shortened to stay unique, turned upright and set in a
smaller font when the bars are too narrow for them. The y range covers every CI end, negative ones included.

Only RSA stores the bootstrap samples this test needs (``similarity_bootstrap``): the figure is RSA's.
"""
from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from rsa_bridge.corrections import CORRECTIONS
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.figures.layout import short_labels
from rsa_bridge.figures.style import SINGLE_MM, DOUBLE_MM, area_colours, figsize, use_style, width_mm
from rsa_bridge.measures.results import measure_label

#: bars up to which a single-column figure is wide enough (more get the double width by default)
SINGLE_COLUMN_BARS = 10

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


def smallest_corrected_p(n_pairs: int, n_samples: int, correction: str = "holm") -> float:
    """The smallest corrected p that ``n_pairs`` bootstrap pair tests on ``n_samples`` samples can reach: every
    raw p at its floor 1/B (:func:`rsa_bridge.stats.layers.bootstrap_pair_p`), corrected together.

    Example::

        >>> round(smallest_corrected_p(210, 1000, "holm"), 3)   # 21 layers: Holm cannot reach 0.05
        0.21
    """
    if n_pairs < 1 or n_samples < 1:
        return float("nan")
    return float(np.min(_correct(np.full(n_pairs, 1.0 / n_samples), correction)))


def bar_labels(rows: list[str], width: int = 22) -> tuple[list[str], str | None]:
    """(tick labels, the one model of every bar or None): ``layer`` when all rows share a model (controls
    ``model:model`` read ``model``), else ``model`` over ``layer``; each line shortened, kept unique."""
    models = [r.split(":", 1)[0] for r in rows]
    layers = [r.split(":", 1)[1] if ":" in r else r for r in rows]
    if len(set(models)) == 1:
        return short_labels(layers, width), models[0]
    tops, bottoms = short_labels(models, width), short_labels(layers, width)
    labels = [top if m == l else f"{top}\n{bottom}" for m, l, top, bottom in zip(models, layers, tops, bottoms)]
    if len(set(labels)) < len(labels):
        labels = short_labels(rows, width)
    return labels, None


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
                     alpha: float = 0.05, sort: bool = True, width: str | float | None = None,
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
        width, height_mm: figure size (``single``/``double``/millimetres; default single up to
            :data:`SINGLE_COLUMN_BARS` bars, else double).
        label_width: longer bar labels are shortened in the middle.

    Returns:
        (figure, axes, handles): ``bars`` (BarContainer, heights = similarity in ``rows`` order), ``ci``
        (LineCollection), ``rows``, ``pairs`` (list of dicts a, b, p, p_corrected, significant),
        ``brackets`` ((a, b) -> Line2D), ``ceiling`` (band or None), ``note`` (the caption),
        ``reachable`` (whether the correction can reach ``alpha`` at all).

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
    width = width or (SINGLE_MM if len(rows) <= SINGLE_COLUMN_BARS else DOUBLE_MM)
    n = samples.shape[0]
    floor = smallest_corrected_p(len(pairs), n, correction)
    handles["reachable"] = bool(floor < alpha)
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
        labels, one_model = bar_labels(rows, label_width)
        _set_bar_labels(fig, ax, x, labels, width)
        ax.axhline(0.0, color="0.5", lw=0.5, zorder=1)
        has_ci = "similarity_ci_high" in sel
        top = np.nanmax([np.nanmax(sel["similarity_ci_high"].values) if has_ci else np.nanmax(y),
                         np.nanmax(y), float(sel["ceiling_upper"]) if handles["ceiling"] is not None else -np.inf])
        bottom = float(np.nanmin([np.nanmin(sel["similarity_ci_low"].values) if has_ci else np.nanmin(y),
                                  np.nanmin(y), 0.0]))
        span = top - bottom
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
        ax.set_ylim(min(0.0, bottom - 0.05 * span), top + step * (1.6 + 1.3 * (max(levels, default=-1) + 1)))
        label = measure_label("rsa", results.attrs.get("method"))
        ax.set_ylabel(f"{label}\nwith {area}")
        if one_model is not None:
            ax.set_xlabel(f"{one_model} layer")
        band = f"; grey band: {area} noise ceiling" if handles["ceiling"] is not None else ""
        correction_label = CORRECTIONS.get_record(correction).label
        if handles["reachable"]:
            tests = (f"brackets: {correction_label}-corrected p < {alpha:g}, two-sided paired bootstrap "
                     f"({n} samples, {len(pairs)} pairs)")
        else:
            tests = (f"no brackets: with {n} bootstrap samples the smallest p is {1 / n:.2g}, and "
                     f"{correction_label} over {len(pairs)} pairs cannot go below {floor:.2g} (alpha "
                     f"{alpha:g}); more samples or fewer bars are needed")
        note = f"bars: 95% bootstrap CI{band}; {tests}"
        handles["note"] = ax.set_title(textwrap.fill(note, int(1.0 * figsize(width)[0] * 72 / 3.0)), fontsize=5,
                                       loc="left")
    return fig, ax, handles


def _set_bar_labels(fig, ax, x: np.ndarray, labels: list[str], width) -> None:
    """Tick labels that fit their bars: horizontal when the widest line fits a bar's width, else upright;
    the font shrinks (to 4 pt at least) when even upright labels are taller than a bar is wide."""
    size = float(plt.rcParams["xtick.labelsize"]) - 0.5
    # the axes spans about 75% of the figure width; a character is about 0.6 of the font size wide
    per_bar_pt = 0.75 * width_mm(width) / 25.4 * 72 / max(len(labels), 1)
    widest = max((len(line) for lab in labels for line in lab.split("\n")), default=1) * 0.6 * size
    if widest <= 0.9 * per_bar_pt:
        ax.set_xticks(x, labels, rotation=0, fontsize=size)
        return
    lines = max(lab.count("\n") + 1 for lab in labels)
    size = max(4.0, min(size, 0.8 * per_bar_pt / (1.2 * lines)))
    ax.set_xticks(x, labels, rotation=90, ha="center", va="top", fontsize=size, linespacing=1.0)
