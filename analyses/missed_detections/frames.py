"""Per frame and tracked object: best anchor, its score, the matched detection, and miss flags.

:func:`analyse_frames` runs a detector over a video in batches (internals recorded through
:func:`~analyses.missed_detections.hooks.run_detector`) and returns an ``xarray.Dataset`` over
``(frame, object)``; see :data:`VARIABLES` for what each variable holds. The flags are plain
functions of arrays (:func:`momentary_misses`, :func:`anchor_switches`) so they can be checked by hand.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
import xarray as xr
from torch import Tensor, nn
from torchvision.ops import box_iou

from analyses.missed_detections.hooks import DetectorPass, DetectorSpec, detector_spec, run_detector
from rsa_bridge.errors import RSABridgeError, preview
from rsa_bridge.provenance import clean_attrs, package_version

BOX_COLUMNS = ("frame", "object_id", "x1", "y1", "x2", "y2", "label")
COORD = ["x1", "y1", "x2", "y2"]

#: variable -> description (units: pixels; scores are probabilities in [0, 1])
VARIABLES: dict[str, str] = {
    "present": "the object is annotated in this frame",
    "gt_box": "ground-truth box x1, y1, x2, y2 in the original frame (px)",
    "best_anchor": "flat index of the anchor with the highest IoU with the object (-1 when absent)",
    "best_level": "feature level of the best anchor",
    "best_cell_y": "grid row of the best anchor",
    "best_cell_x": "grid column of the best anchor",
    "best_aspect": "index of the best anchor within its cell (shape slot)",
    "best_anchor_box": "best anchor x1, y1, x2, y2 in the resized frame (px)",
    "best_iou": "IoU of the object (mapped into the resized frame) with its best anchor",
    "best_score": "the best anchor's score for the object's class (softmax or sigmoid as the model uses)",
    "max_score_iou": "highest class score over anchors with IoU > anchor_iou (NaN when there are none)",
    "n_anchors_iou": "number of anchors with IoU > anchor_iou",
    "detection_score": "highest score among final detections of the object's class with IoU >= match_iou "
                       "(any score; NaN when none)",
    "matched_detection": "index (in the frame's detections) of the detection matched to the object, -1 if none",
    "detection_iou": "IoU of the matched detection with the object (original frame)",
    "detected": "a final detection with score >= score_threshold and IoU >= match_iou is matched to the object",
    "missed": "present and not detected",
    "momentary_miss": "missed in a run of at most `window` frames with detections right before and after",
    "anchor_switch": "best anchor differs from the previous frame's (both present)",
}


@dataclass(frozen=True)
class MissOptions:
    """Thresholds of the analysis.

    Attributes:
        score_threshold: a detection counts only with at least this score.
        match_iou: a detection matches an object at IoU >= match_iou (original frame).
        anchor_iou: anchors with IoU > anchor_iou enter ``max_score_iou``.
        window: longest run of missed frames (bordered by detected frames) still called momentary.
        match_labels: detections must carry the object's label (False: any label matches).
    """

    score_threshold: float = 0.5
    match_iou: float = 0.5
    anchor_iou: float = 0.5
    window: int = 3
    match_labels: bool = True

    def __post_init__(self) -> None:
        for name in ("score_threshold", "match_iou", "anchor_iou"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise RSABridgeError(f"{name.replace('_', '-')} must lie in [0, 1], not {value}")
        if self.window < 1:
            raise RSABridgeError(f"the momentary-miss window must be at least 1 frame, not {self.window}")


def momentary_misses(detected: np.ndarray, present: np.ndarray, window: int) -> np.ndarray:
    """Flag frames in runs of at most ``window`` missed frames bordered by detected frames.

    Args:
        detected, present: (T,) bool. A frame is missed when present and not detected.
        window: maximum run length (>= 1).

    Returns:
        (T,) bool: True for every frame of a run of consecutive missed frames whose length is
        <= window and whose neighbours just before and just after are present and detected.
    """
    if window < 1:
        raise RSABridgeError(f"the momentary-miss window must be at least 1 frame, not {window}")
    detected = np.asarray(detected, bool)
    present = np.asarray(present, bool)
    missed = present & ~detected
    hit = present & detected
    out = np.zeros(missed.shape, bool)
    t, n = 0, missed.size
    while t < n:
        if not missed[t]:
            t += 1
            continue
        end = t
        while end + 1 < n and missed[end + 1]:
            end += 1
        if end - t + 1 <= window and t > 0 and end + 1 < n and hit[t - 1] and hit[end + 1]:
            out[t:end + 1] = True
        t = end + 1
    return out


def anchor_switches(best_anchor: np.ndarray, present: np.ndarray) -> np.ndarray:
    """(T,) bool: the best anchor at frame t differs from frame t - 1 (object present in both)."""
    best_anchor = np.asarray(best_anchor)
    present = np.asarray(present, bool)
    out = np.zeros(best_anchor.shape, bool)
    out[1:] = present[1:] & present[:-1] & (best_anchor[1:] != best_anchor[:-1])
    return out


def match_detections(gt: Tensor, gt_labels: Tensor, boxes: Tensor, scores: Tensor, labels: Tensor,
                     options: MissOptions) -> Tensor:
    """Greedy one-to-one matching of detections to objects, highest score first.

    Each detection with score >= ``score_threshold`` (in descending score order) takes the
    unmatched object of its label with the highest IoU >= ``match_iou``.

    Args:
        gt: (M, 4) object boxes; gt_labels: (M,); boxes: (D, 4); scores, labels: (D,).

    Returns:
        (M,) int64 index of the matched detection, -1 for none.
    """
    matched = torch.full((gt.shape[0],), -1, dtype=torch.int64)
    if gt.numel() == 0 or boxes.numel() == 0:
        return matched
    iou = box_iou(boxes.float(), gt.float())  # (D, M)
    if options.match_labels:
        iou = torch.where(labels[:, None] == gt_labels[None, :], iou, torch.zeros_like(iou))
    for d in torch.argsort(scores, descending=True, stable=True).tolist():
        if scores[d] < options.score_threshold:
            break
        cand = torch.where(matched < 0, iou[d], torch.full_like(iou[d], -1.0))
        best = int(cand.argmax())
        if cand[best] >= options.match_iou:
            matched[best] = d
    return matched


def check_boxes(boxes: pd.DataFrame, n_frames: int) -> pd.DataFrame:
    """Validate a boxes table (columns :data:`BOX_COLUMNS`, ``frame`` = 0-based position); RSABridgeError if bad."""
    missing = [c for c in BOX_COLUMNS if c not in boxes.columns]
    if missing:
        raise RSABridgeError(f"the boxes table lacks columns {preview(missing)}; it needs {', '.join(BOX_COLUMNS)}")
    out = boxes.loc[:, list(BOX_COLUMNS)].copy()
    out["object_id"] = out["object_id"].astype(str)
    bad = out[(out["x2"] <= out["x1"]) | (out["y2"] <= out["y1"])]
    if len(bad):
        raise RSABridgeError(f"{len(bad)} boxes have x2 <= x1 or y2 <= y1 (first: frame {bad['frame'].iloc[0]}, "
                             f"object {bad['object_id'].iloc[0]}); boxes are x1, y1, x2, y2 in pixels")
    outside = out[(out["frame"] < 0) | (out["frame"] >= n_frames)]
    if len(outside):
        raise RSABridgeError(f"{len(outside)} boxes name frames outside 0..{n_frames - 1} "
                             f"(first: {outside['frame'].iloc[0]}); the video has {n_frames} frames")
    dup = out.duplicated(["frame", "object_id"])
    if dup.any():
        row = out[dup].iloc[0]
        raise RSABridgeError(f"object {row['object_id']!r} has two boxes in frame {row['frame']}; "
                             "give each tracked object one box per frame")
    labels = out.groupby("object_id")["label"].nunique()
    if (labels > 1).any():
        raise RSABridgeError(f"objects {preview(labels[labels > 1].index)} change label between frames; "
                             "give each tracked object one label")
    return out


class _Arrays:
    """Pre-allocated (frame, object) result arrays."""

    def __init__(self, n_frames: int, n_objects: int) -> None:
        shape = (n_frames, n_objects)
        self.ints = {k: np.full(shape, -1, np.int64) for k in
                     ("best_anchor", "best_level", "best_cell_y", "best_cell_x", "best_aspect", "matched_detection")}
        self.ints["n_anchors_iou"] = np.zeros(shape, np.int64)
        self.floats = {k: np.full(shape, np.nan) for k in
                       ("best_iou", "best_score", "max_score_iou", "detection_score", "detection_iou")}
        self.boxes = {k: np.full(shape + (4,), np.nan) for k in ("gt_box", "best_anchor_box", "detection_box")}
        self.bools = {k: np.zeros(shape, bool) for k in ("present", "detected")}


def _fill_frame(arr: _Arrays, t: int, p: DetectorPass, b: int, rows: pd.DataFrame, obj_index: dict[str, int],
                options: MissOptions) -> None:
    cols = [obj_index[o] for o in rows["object_id"]]
    gt = torch.tensor(rows[COORD].to_numpy(np.float64), dtype=torch.float32)
    labels = torch.tensor(rows["label"].to_numpy(np.int64))
    n_classes = p.scores.shape[-1]
    out_of_range = bool(((labels >= n_classes) | (labels < 0)).any())
    if not p.spec.class_agnostic and out_of_range:
        raise RSABridgeError(f"labels {preview(sorted(set(labels.tolist())))} do not fit the detector's "
                             f"{n_classes} classes (0..{n_classes - 1})")
    iou = box_iou(p.gt_in_resized(b, gt), p.anchors[b])  # (M, N)
    best = iou.argmax(dim=1)
    class_idx = torch.zeros_like(labels) if p.spec.class_agnostic else labels
    scores = p.scores[b][:, class_idx].T  # (M, N)
    over = iou > options.anchor_iou
    max_over = torch.where(over, scores, torch.full_like(scores, -1.0)).max(dim=1).values
    det = p.detections[b]
    matched = match_detections(gt, labels, det["boxes"], det["scores"], det["labels"], options)
    det_iou = box_iou(gt, det["boxes"].float()) if det["boxes"].numel() else torch.zeros((gt.shape[0], 0))
    same = (det["labels"][None, :] == labels[:, None]) if options.match_labels else torch.ones_like(det_iou, dtype=bool)
    cand = torch.where((det_iou >= options.match_iou) & same, det["scores"][None, :].expand_as(det_iou),
                       torch.full_like(det_iou, -1.0))
    lay = p.layout
    for i, c in enumerate(cols):
        j = int(best[i])
        arr.bools["present"][t, c] = True
        arr.boxes["gt_box"][t, c] = gt[i].numpy()
        arr.ints["best_anchor"][t, c] = j
        arr.ints["best_level"][t, c] = lay.level[j]
        arr.ints["best_cell_y"][t, c] = lay.cell_y[j]
        arr.ints["best_cell_x"][t, c] = lay.cell_x[j]
        arr.ints["best_aspect"][t, c] = lay.aspect[j]
        arr.boxes["best_anchor_box"][t, c] = p.anchors[b, j].numpy()
        arr.floats["best_iou"][t, c] = float(iou[i, j])
        arr.floats["best_score"][t, c] = float(scores[i, j])
        arr.ints["n_anchors_iou"][t, c] = int(over[i].sum())
        arr.floats["max_score_iou"][t, c] = float(max_over[i]) if over[i].any() else np.nan
        if cand.shape[1] and float(cand[i].max()) >= 0:
            arr.floats["detection_score"][t, c] = float(cand[i].max())
        d = int(matched[i])
        arr.ints["matched_detection"][t, c] = d
        if d >= 0:
            arr.bools["detected"][t, c] = True
            arr.floats["detection_iou"][t, c] = float(det_iou[i, d])
            arr.boxes["detection_box"][t, c] = det["boxes"][d].numpy()


def analyse_frames(model: nn.Module, frames: Sequence[Tensor], boxes: pd.DataFrame, *,
                   options: MissOptions | None = None, batch_size: int = 8, frame_names: Sequence[str] | None = None,
                   spec: DetectorSpec | None = None, attrs: dict | None = None,
                   progress: Callable[[int, int], None] | None = None) -> xr.Dataset:
    """Analyse every frame x tracked object of a video.

    Args:
        model: an eval-mode anchor-based torchvision detector (SSD/SSDlite, RetinaNet, Faster R-CNN).
        frames: T images (3, H, W), floats in [0, 1] (a list, or any sequence that loads on indexing).
        boxes: one row per (frame, object): :data:`BOX_COLUMNS`; ``frame`` is the 0-based frame
            position, boxes in the frame's own pixels, ``label`` the detector's class index.
        options: thresholds (:class:`MissOptions`; None: the defaults).
        batch_size: frames per forward pass.
        frame_names: optional names of the frames (a ``frame_name`` coordinate).
        attrs: extra provenance attrs (detector name, weights, video path).
        progress: called with (frames done, total) after each batch.

    Returns:
        Dataset over (frame, object[, coord]) with the variables of :data:`VARIABLES`; coordinates
        ``frame`` (0..T-1), ``object`` (object ids, in order of first appearance), ``label``
        (per object), ``coord``; attrs with thresholds, the anchor layout and provenance.
    """
    spec = spec or detector_spec(model)
    options = options or MissOptions()
    n_frames = len(frames)
    table = check_boxes(boxes, n_frames)
    objects = list(dict.fromkeys(table.sort_values("frame", kind="stable")["object_id"]))
    obj_index = {o: i for i, o in enumerate(objects)}
    arr = _Arrays(n_frames, len(objects))
    by_frame = {int(k): g for k, g in table.groupby("frame")}
    layout = None
    for start in range(0, n_frames, batch_size):
        idx = list(range(start, min(n_frames, start + batch_size)))
        p = run_detector(model, [frames[k] for k in idx], features=False, spec=spec)
        layout = p.layout
        for b, t in enumerate(idx):
            if t in by_frame:
                _fill_frame(arr, t, p, b, by_frame[t], obj_index, options)
        if progress is not None:
            progress(idx[-1] + 1, n_frames)
    detected, present = arr.bools["detected"], arr.bools["present"]
    missed = present & ~detected
    momentary = np.stack([momentary_misses(detected[:, o], present[:, o], options.window)
                          for o in range(len(objects))], axis=1) if objects else np.zeros_like(missed)
    switch = np.stack([anchor_switches(arr.ints["best_anchor"][:, o], present[:, o])
                       for o in range(len(objects))], axis=1) if objects else np.zeros_like(missed)
    dims = ("frame", "object")
    data: dict[str, tuple] = {}
    for group in (arr.ints, arr.floats, arr.bools):
        for k, v in group.items():
            data[k] = (dims, v, {"description": VARIABLES[k]})
    for k, v in arr.boxes.items():
        data[k] = (dims + ("coord",), v, {"description": VARIABLES.get(k, "detection box x1, y1, x2, y2 "
                                                                          "in the original frame (px)")})
    for k, v in {"missed": missed, "momentary_miss": momentary, "anchor_switch": switch}.items():
        data[k] = (dims, v, {"description": VARIABLES[k]})
    labels = table.drop_duplicates("object_id").set_index("object_id").loc[objects, "label"].to_numpy(np.int64)
    coords: dict[str, tuple | list] = {"frame": np.arange(n_frames), "object": objects,
                                       "label": ("object", labels), "coord": COORD}
    if frame_names is not None:
        coords["frame_name"] = ("frame", [str(n) for n in frame_names])
    ds = xr.Dataset(data, coords=coords)
    info = {
        **asdict(options), "family": spec.family, "score_kind": spec.score,
        "class_agnostic_anchor_score": spec.class_agnostic,
        "anchor_order": "per level in feature-map order; inside a level (y * W + x) * A + a",
        "grid_sizes": [v for hw in (layout.grid_sizes if layout else ()) for v in hw],
        "anchors_per_location": list(layout.per_location) if layout else [],
        "rsa_bridge_version": package_version(), **(attrs or {}),
    }
    ds.attrs = clean_attrs(info)
    return ds
