"""Attribute momentary misses to anchor switches, against a shuffled-frame baseline; per-miss views.

A best-anchor switch at frame t (``anchor_switch[t]``: best anchor at t differs from t - 1) is an
event *between* frames t - 1 and t. Frame m is near a switch when a switch event lies within
``tolerance`` frames of it: ``anchor_switch[t]`` for some t in [m - tolerance, m + 1 + tolerance]
(tolerance 0: the switch is into m or out of m). A miss is a run of consecutive flagged frames
[s, e] (a momentary miss lasts 1..window frames); it coincides with a switch when any of its
frames is near one, i.e. a switch event lies in [s - tolerance, e + 1 + tolerance], and all its
frames count as coinciding. For single-frame misses this is the per-frame rule.

The statistic is the fraction of flagged frames whose miss coincides with a switch. The baseline
keeps each object's flags and switches but permutes the flags over the frames where the object
is present (seeded) and recomputes runs, which destroys any alignment of misses with switches
while keeping how many flagged frames there are and how switches are spaced; the one-sided
p-value is exact for that permutation null.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import xarray as xr
from torch import Tensor, nn
from torchvision.ops import box_iou

from analyses.missed_detections.hooks import DetectorSpec, run_detector
from rsa_bridge.errors import RSABridgeError


def near_switch(switch: np.ndarray, tolerance: int = 0) -> np.ndarray:
    """(T,) bool: frame m has a switch event within ``tolerance`` (see the module docstring)."""
    switch = np.asarray(switch, bool)
    if tolerance < 0:
        raise RSABridgeError(f"the switch tolerance must be >= 0 frames, not {tolerance}")
    out = np.zeros(switch.shape, bool)
    for t in np.flatnonzero(switch):
        out[max(0, t - 1 - tolerance): t + tolerance + 1] = True
    return out


def run_near(flags: np.ndarray, near: np.ndarray) -> np.ndarray:
    """Spread ``near`` over runs: True at every flagged frame whose run of flagged frames has a near frame.

    Args:
        flags: (..., T) bool, runs of consecutive True along the last axis.
        near: (T,) bool (e.g. :func:`near_switch`).

    Returns:
        (..., T) bool, False wherever ``flags`` is False.
    """
    flags = np.asarray(flags, bool)
    near = np.asarray(near, bool)
    forward = np.zeros(flags.shape, bool)
    carry = np.zeros(flags.shape[:-1], bool)
    for m in range(flags.shape[-1]):
        carry = flags[..., m] & (carry | near[m])
        forward[..., m] = carry
    out = np.zeros(flags.shape, bool)
    carry = np.zeros(flags.shape[:-1], bool)
    for m in range(flags.shape[-1] - 1, -1, -1):
        carry = flags[..., m] & (carry | forward[..., m])
        out[..., m] = carry
    return out


@dataclass
class SwitchAttribution:
    """How many misses coincide with a best-anchor switch, and how many would by chance.

    Attributes:
        observed: fraction of flagged frames whose miss (run) coincides with a switch (NaN without misses).
        n_misses: number of flagged (frame, object) pairs.
        n_near: how many of them coincide with a switch.
        baseline: (n_shuffles,) the same fraction after permuting the flags over present frames.
        p_value: (1 + #baseline >= observed) / (1 + n_shuffles), one-sided.
        flag, tolerance, seed: the settings.
    """

    observed: float
    n_misses: int
    n_near: int
    baseline: np.ndarray
    p_value: float
    flag: str
    tolerance: int
    seed: int

    @property
    def baseline_mean(self) -> float:
        return float(np.mean(self.baseline)) if self.baseline.size else float("nan")

    def summary(self) -> dict[str, float | int | str]:
        """JSON-ready numbers (baseline mean and 95th percentile instead of every shuffle)."""
        q95 = float(np.quantile(self.baseline, 0.95)) if self.baseline.size else float("nan")
        return {"flag": self.flag, "tolerance": self.tolerance, "seed": self.seed, "n_misses": self.n_misses,
                "n_near_switch": self.n_near, "fraction_near_switch": self.observed,
                "shuffled_mean": self.baseline_mean, "shuffled_q95": q95, "n_shuffles": int(self.baseline.size),
                "p_value": self.p_value}


def switch_attribution(ds: xr.Dataset, *, flag: str = "momentary_miss", tolerance: int = 0,
                       n_shuffles: int = 1000, seed: int = 0) -> SwitchAttribution:
    """Fraction of ``flag`` frames that coincide with an anchor switch, vs a seeded shuffled-frame baseline.

    Args:
        ds: output of :func:`~analyses.missed_detections.frames.analyse_frames`.
        flag: ``"momentary_miss"`` or ``"missed"``.
        tolerance: frames of slack (see :func:`near_switch`).
        n_shuffles: number of permutations.
        seed: seeds the permutations (``numpy.random.default_rng``).
    """
    rng = np.random.default_rng(seed)
    flags = ds[flag].values.astype(bool)
    present = ds["present"].values.astype(bool)
    switch = ds["anchor_switch"].values.astype(bool)
    n_miss = n_near = 0
    shuffled_near = np.zeros(n_shuffles)
    for o in range(flags.shape[1]):
        near = near_switch(switch[:, o], tolerance)
        frames = np.flatnonzero(present[:, o])
        f, nr = flags[frames, o], near[frames]
        n_miss += int(f.sum())
        n_near += int(run_near(f, nr).sum())
        if f.any() and n_shuffles:
            perm = rng.permuted(np.tile(f, (n_shuffles, 1)), axis=1)
            shuffled_near += run_near(perm, nr).sum(axis=1)
    if n_miss == 0:
        return SwitchAttribution(float("nan"), 0, 0, np.full(n_shuffles, np.nan), float("nan"), flag, tolerance, seed)
    observed = n_near / n_miss
    baseline = shuffled_near / n_miss
    p_value = (1 + int((baseline >= observed - 1e-12).sum())) / (1 + n_shuffles)
    return SwitchAttribution(observed, n_miss, n_near, baseline, p_value, flag, tolerance, seed)


def miss_table(ds: xr.Dataset, *, flag: str = "momentary_miss", tolerance: int = 0) -> pd.DataFrame:
    """One row per flagged (frame, object): cause (``anchor_switch`` when its miss coincides with a
    switch, else ``other``) and the anchors around it.

    Columns: frame, object, label, momentary, near_switch, cause, best_anchor, prev_best_anchor,
    best_level, best_cell_y, best_cell_x, best_aspect, best_iou, best_score, prev_best_score,
    detection_score (``prev_*``: the frame before).
    """
    rows = []
    for o, obj in enumerate(ds["object"].values):
        sub = ds.isel(object=o)
        flags = sub[flag].values.astype(bool)
        present = sub["present"].values.astype(bool)
        near = np.zeros(flags.shape, bool)
        near[present] = run_near(flags[present], near_switch(sub["anchor_switch"].values, tolerance)[present])
        best = sub["best_anchor"].values
        for t in np.flatnonzero(flags):
            prev = t - 1 if t > 0 else t
            rows.append({
                "frame": int(ds["frame"].values[t]), "object": str(obj), "label": int(sub["label"]),
                "momentary": bool(sub["momentary_miss"].values[t]), "near_switch": bool(near[t]),
                "cause": "anchor_switch" if near[t] else "other",
                "best_anchor": int(best[t]), "prev_best_anchor": int(best[prev]),
                **{k: int(sub[k].values[t]) for k in ("best_level", "best_cell_y", "best_cell_x", "best_aspect")},
                "best_iou": float(sub["best_iou"].values[t]), "best_score": float(sub["best_score"].values[t]),
                "prev_best_score": float(sub["best_score"].values[prev]),
                "detection_score": float(sub["detection_score"].values[t]),
            })
    columns = ["frame", "object", "label", "momentary", "near_switch", "cause", "best_anchor", "prev_best_anchor",
               "best_level", "best_cell_y", "best_cell_x", "best_aspect", "best_iou", "best_score", "prev_best_score",
               "detection_score"]
    return pd.DataFrame(rows, columns=columns)


def score_dip(ds: xr.Dataset, *, variable: str = "detection_score", tolerance: int = 0) -> dict[str, float]:
    """Mean score near anchor switches vs away from them (present frames; NaN scores count as 0).

    Returns:
        {"near": mean near a switch, "away": mean elsewhere, "dip": away - near}.
    """
    score = np.nan_to_num(ds[variable].values.astype(float), nan=0.0)
    present = ds["present"].values.astype(bool)
    near = np.stack([near_switch(ds["anchor_switch"].values[:, o], tolerance)
                     for o in range(present.shape[1])], axis=1)
    near_vals, away_vals = score[present & near], score[present & ~near]
    near_mean = float(near_vals.mean()) if near_vals.size else float("nan")
    away_mean = float(away_vals.mean()) if away_vals.size else float("nan")
    return {"near": near_mean, "away": away_mean, "dip": away_mean - near_mean}


@dataclass
class MissView:
    """Anchor score maps, IoU maps and feature-map norms around one miss.

    Attributes:
        frame, object_id, label: the miss.
        offsets: frames relative to ``frame`` that were run (e.g. -1, 0, 1).
        levels: one Dataset per feature level with ``score`` and ``iou`` (offset, aspect, y, x) and
            ``feature_norm`` (offset, y, x; L2 norm over channels of the level's feature map).
        lost: where the object was lost - the anchor that scored highest among anchors overlapping
            the object (IoU > 0) in the reference frame before the miss (level, cell_y, cell_x,
            aspect, index, score_before, score_at) and the same for the top anchor at the miss
            (``at_*`` keys).
    """

    frame: int
    object_id: str
    label: int
    offsets: list[int]
    levels: list[xr.Dataset]
    lost: dict[str, float | int] = field(default_factory=dict)


def _level_maps(values: Tensor, layout, level: int) -> Tensor:
    """(N,) per-anchor values -> (A, H, W) for one level."""
    start, stop = int(layout.offsets[level]), int(layout.offsets[level + 1])
    height, width = layout.grid_sizes[level]
    return values[start:stop].reshape(height, width, layout.per_location[level]).permute(2, 0, 1)


def miss_view(model: nn.Module, frames: Sequence[Tensor], ds: xr.Dataset, frame: int, object_id: str, *,
              offsets: Sequence[int] = (-1, 0, 1), spec: DetectorSpec | None = None) -> MissView:
    """Re-run the detector around one miss and collect per-level score, IoU and feature-norm maps.

    Args:
        model, frames: the detector and the video that :func:`analyse_frames` analysed.
        ds: its Dataset (for the object's boxes and label).
        frame, object_id: the miss (a frame position and an object id).
        offsets: frames relative to ``frame`` to include (those outside the video are dropped).
    """
    obj = ds.sel(object=str(object_id))
    label = int(obj["label"])
    offs = [o for o in offsets if 0 <= frame + o < len(frames)]
    if 0 not in offs:
        raise RSABridgeError(f"frame {frame} is outside the video (0..{len(frames) - 1})")
    p = run_detector(model, [frames[frame + o] for o in offs], features=True, spec=spec)
    k = 0 if p.spec.class_agnostic else label
    lay = p.layout
    ious, scores = [], []
    for b, o in enumerate(offs):
        box = obj["gt_box"].values[frame + o]
        if np.isnan(box).any():
            ious.append(torch.zeros(lay.size))
        else:
            gt = p.gt_in_resized(b, torch.tensor(box[None], dtype=torch.float32))
            ious.append(box_iou(gt, p.anchors[b])[0])
        scores.append(p.scores[b, :, k])
    levels = []
    for lvl in range(len(lay.grid_sizes)):
        score = torch.stack([_level_maps(s, lay, lvl) for s in scores]).numpy()
        iou = torch.stack([_level_maps(i, lay, lvl) for i in ious]).numpy()
        norm = torch.stack([p.features[lvl][b].norm(dim=0) for b in range(len(offs))]).numpy()
        dims = ("offset", "aspect", "y", "x")
        levels.append(xr.Dataset({"score": (dims, score), "iou": (dims, iou),
                                  "feature_norm": (("offset", "y", "x"), norm)},
                                 coords={"offset": offs}, attrs={"level": lvl}))
    ref = offs.index(-1) if -1 in offs else offs.index(0)
    at = offs.index(0)
    overlap = ious[ref] > 0
    masked = torch.where(overlap, scores[ref], torch.full_like(scores[ref], -1.0))
    j = int(masked.argmax())
    masked_at = torch.where(ious[at] > 0, scores[at], torch.full_like(scores[at], -1.0))
    j_at = int(masked_at.argmax())
    lost = {"index": j, "level": int(lay.level[j]), "cell_y": int(lay.cell_y[j]), "cell_x": int(lay.cell_x[j]),
            "aspect": int(lay.aspect[j]), "score_before": float(scores[ref][j]), "score_at": float(scores[at][j]),
            "at_index": j_at, "at_level": int(lay.level[j_at]), "at_cell_y": int(lay.cell_y[j_at]),
            "at_cell_x": int(lay.cell_x[j_at]), "at_aspect": int(lay.aspect[j_at]),
            "at_score": float(scores[at][j_at])}
    return MissView(frame, str(object_id), label, offs, levels, lost)
