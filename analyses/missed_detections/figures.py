"""Figures: a timeline per tracked object, and the anchor score maps around one miss."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import xarray as xr

from analyses.missed_detections.attribution import MissView
from rsa_bridge.io import atomic_path


def _pyplot():
    import matplotlib

    if matplotlib.get_backend().lower() not in {"agg", "module://matplotlib_inline.backend_inline"}:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_timeline(ds: xr.Dataset, object_id: str):
    """Two panels over frames for one object: scores (top) and best-anchor IoU (bottom).

    Top: best-anchor score, max score over anchors with IoU > anchor_iou, final detection score, and
    the score threshold. Both panels: dotted vertical lines at best-anchor switches (drawn between
    frames t - 1 and t), grey bands at misses, red bands at momentary misses.

    Returns:
        matplotlib Figure.
    """
    plt = _pyplot()
    obj = ds.sel(object=str(object_id))
    frames = ds["frame"].values
    fig, (ax_s, ax_i) = plt.subplots(2, 1, figsize=(9, 4.8), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    ax_s.plot(frames, obj["best_score"], label="best-IoU anchor score", color="tab:blue")
    ax_s.plot(frames, obj["max_score_iou"], label=f"max score, anchors IoU > {ds.attrs.get('anchor_iou', 0.5)}",
              color="tab:green", alpha=0.8)
    ax_s.plot(frames, obj["detection_score"], label="detection score", color="black", lw=1.2, ls="--")
    ax_s.axhline(ds.attrs.get("score_threshold", 0.5), color="tab:red", lw=0.8, label="score threshold")
    ax_i.plot(frames, obj["best_iou"], color="tab:purple")
    for ax in (ax_s, ax_i):
        for t in frames[obj["anchor_switch"].values.astype(bool)]:
            ax.axvline(t - 0.5, color="0.3", ls=":", lw=0.9)
        for t in frames[obj["missed"].values.astype(bool)]:
            ax.axvspan(t - 0.5, t + 0.5, color="0.85", lw=0)
        for t in frames[obj["momentary_miss"].values.astype(bool)]:
            ax.axvspan(t - 0.5, t + 0.5, color="tab:red", alpha=0.25, lw=0)
    ax_s.set_ylim(-0.02, 1.02)
    ax_s.set_ylabel("score")
    ax_s.set_title(f"object {object_id} (label {int(obj['label'])}): dotted = best-anchor switch, "
                   "red = momentary miss, grey = miss", fontsize=9)
    ax_s.legend(fontsize=7, loc="lower left", ncol=2)
    ax_i.set_ylim(0, 1.02)
    ax_i.set_ylabel("best-anchor IoU")
    ax_i.set_xlabel("frame")
    fig.tight_layout()
    return fig


def plot_miss_view(view: MissView, level: int | None = None):
    """Score maps (max over anchor slots), IoU maps and feature-norm maps of one level around a miss.

    Rows: the frames around the miss (offsets); columns: class score, best IoU with the object,
    feature norm. The cell that lost the object (``view.lost``) is marked with a white square, the
    top-scoring cell at the miss with a cyan circle.
    """
    plt = _pyplot()
    lvl = view.lost["level"] if level is None else level
    data = view.levels[lvl]
    offs = list(data["offset"].values)
    fig, axes = plt.subplots(len(offs), 3, figsize=(7.5, 2.3 * len(offs)), squeeze=False)
    for r, off in enumerate(offs):
        sub = data.sel(offset=off)
        panels = [(sub["score"].max("aspect"), "score (max over slots)", (0, 1)),
                  (sub["iou"].max("aspect"), "IoU with object", (0, 1)),
                  (sub["feature_norm"], "feature norm", None)]
        for c, (arr, title, lim) in enumerate(panels):
            ax = axes[r, c]
            im = ax.imshow(np.asarray(arr), cmap="viridis", vmin=None if lim is None else lim[0],
                           vmax=None if lim is None else lim[1], interpolation="nearest")
            ax.plot(view.lost["cell_x"], view.lost["cell_y"], "s", mfc="none", mec="white", ms=10)
            if view.lost["at_level"] == lvl:
                ax.plot(view.lost["at_cell_x"], view.lost["at_cell_y"], "o", mfc="none", mec="cyan", ms=7)
            ax.set_title(f"frame {view.frame + off}: {title}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    fig.suptitle(f"miss at frame {view.frame}, object {view.object_id}, level {lvl}: anchor score "
                 f"{view.lost['score_before']:.2f} -> {view.lost['score_at']:.2f}", fontsize=9)
    fig.tight_layout()
    return fig


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Save ``fig`` atomically (format from the suffix) and close it."""
    plt = _pyplot()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=dpi)
    plt.close(fig)
    return path
