"""Momentary misses of a real detector (BlazeFace) on clips of the 92-image set's human faces.

:func:`face_clip_study` makes one seeded clip per face image (:mod:`analyses.missed_detections.clips`),
runs :func:`~analyses.missed_detections.frames.analyse_frames` on each and joins the results along
``object`` (one object per clip, named after its image; all clips have the same frame count). The
face box of each still comes from the detector itself, so a frame where the face is missed is a
frame where the detector loses a face it finds in the still.

:func:`layer_changes` asks which backbone layers change at a momentary miss: for every block, the
relative change of its activation at the miss frame t from the mean of frames t - 1 and t + 1,
``||a_t - (a_(t-1) + a_(t+1)) / 2|| / ||a_t||`` (no unit; 0 = the miss frame lies on the straight path
between its neighbours), next to the same number for frames that are detected with detected neighbours.

Example (with MediaPipe's .tflite at PATH)::

    det = load_detector("blazeface", PATH)
    ds = face_clip_study(det, load_face_images(), STUDY_CLIP)
    ds["momentary_miss"].sum()
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace

import numpy as np
import pandas as pd
import torch
import xarray as xr
from torch import Tensor, nn

from analyses.missed_detections.clips import (
    STUDY_CLIP,
    ClipOptions,
    detected_face_box,
    make_clip,
)
from analyses.missed_detections.frames import MissOptions, analyse_frames
from extractors import run_recorded
from rsa_bridge.datasets import DATA_DIR
from rsa_bridge.errors import RSABridgeError

#: the human faces of the 92-image set (Kriegeskorte et al. 2008), 1-based image numbers
HUMAN_FACES = tuple(range(13, 25))

def load_face_images(numbers: Sequence[int] = HUMAN_FACES) -> dict[str, Tensor]:
    """``image_NN`` -> (3, H, W) tensor in [0, 1] of the packaged 92-image set (1-based ``numbers``)."""
    from PIL import Image

    folder = DATA_DIR / "kriegeskorte2008_92images" / "stimuli"
    out = {}
    for k in numbers:
        if not 1 <= int(k) <= 92:
            raise RSABridgeError(f"the 92-image set has images 1..92, not {k}")
        pixels = np.asarray(Image.open(folder / f"image_{int(k):02d}.png").convert("RGB"), dtype=np.float32) / 255
        out[f"image_{int(k):02d}"] = torch.from_numpy(pixels).permute(2, 0, 1).contiguous()
    return out


def face_clip_study(detector: nn.Module, images: Mapping[str, Tensor], clip: ClipOptions = STUDY_CLIP,
                    options: MissOptions | None = None, boxes: Mapping[str, Sequence[float]] | None = None,
                    ) -> xr.Dataset:
    """One clip per image (seed = clip.seed + its position), analysed and joined along ``object``.

    Args:
        detector: an eval-mode detector of the analysis (BlazeFace: ``load_detector("blazeface", PATH)``).
        images: name -> (3, H, W) in [0, 1] (e.g. :func:`load_face_images`); at least one.
        clip: the clip options (frames, motion, scale, blur, occlusion, contrast, jitter).
        options: thresholds (:class:`MissOptions`; None = defaults, score >= 0.5).
        boxes: name -> face box (x1, y1, x2, y2, source pixels); default: the detector's best detection.

    Returns:
        Dataset over (frame, object, coord) as :func:`analyse_frames`, one object per image; attrs
        with the clip options and, per object, the face box used (``face_box_<name>``).
    """
    if not images:
        raise RSABridgeError("face_clip_study needs at least one image")
    options = options or MissOptions(match_labels=True)
    parts, attrs = [], {}
    for k, (name, image) in enumerate(images.items()):
        box = tuple(boxes[name]) if boxes and name in boxes else detected_face_box(detector, image)
        video = make_clip(image, box, replace(clip, seed=clip.seed + k), object_id=name)
        with torch.no_grad():
            parts.append(analyse_frames(detector, list(video.frames), video.boxes, options=options,
                                        batch_size=40))
        attrs[f"face_box_{name}"] = [float(v) for v in box]
    ds = xr.concat(parts, dim="object", combine_attrs="drop_conflicts")
    ds.attrs.update({**{f"clip_{k}": (list(v) if isinstance(v, tuple) else v) for k, v in asdict(clip).items()},
                     "clip_seeds": "clip.seed + position of the image", "face_box_source":
                     "given" if boxes else "the detector's best detection on the still image", **attrs})
    return ds


def clip_frames(ds: xr.Dataset, images: Mapping[str, Tensor], clip: ClipOptions, name: str) -> Tensor:
    """Re-make the frames (T, 3, S, S) of object ``name``'s clip from the study's recorded face box."""
    position = list(images).index(name)
    box = ds.attrs[f"face_box_{name}"]
    return make_clip(images[name], box, replace(clip, seed=clip.seed + position), object_id=name).frames


def layer_changes(net: nn.Module, frames: Tensor, miss_frames: Sequence[int], control_frames: Sequence[int],
                  layers: Sequence[str]) -> pd.DataFrame:
    """Relative activation change at frames t vs the mean of t - 1 and t + 1, per layer (see the module doc).

    Args:
        net: the network whose ``layers`` (aliases or module paths) are read (BlazeFace: ``detector.net``).
        frames: (T, 3, 128, 128) network inputs (BlazeFace: in [-1, 1]).
        miss_frames, control_frames: frame indices t with 0 < t < T - 1.

    Returns:
        One row per (layer, kind in {"miss", "control"}, frame): ``change``.
    """
    wanted = sorted({t + o for t in [*miss_frames, *control_frames] for o in (-1, 0, 1)})
    if any(t < 0 or t >= frames.shape[0] for t in wanted):
        raise RSABridgeError("layer_changes needs frames with a neighbour on both sides (0 < t < T - 1)")
    where = {t: i for i, t in enumerate(wanted)}
    acts = run_recorded(net, frames[wanted], list(layers))
    rows = []
    for layer, a in acts.items():
        flat = a.reshape(a.shape[0], -1).double()
        for kind, ts in (("miss", miss_frames), ("control", control_frames)):
            for t in ts:
                mid = (flat[where[t - 1]] + flat[where[t + 1]]) / 2
                change = float((flat[where[t]] - mid).norm() / flat[where[t]].norm().clamp_min(1e-12))
                rows.append({"layer": layer, "kind": kind, "frame": int(t), "change": change})
    return pd.DataFrame(rows)


def matcher_positives(detector: nn.Module, ds: xr.Dataset, matchers: Sequence[str] = ("iou_threshold", "best_delta",
                      "topk", "atss"), frame_size: int | None = None) -> xr.DataArray:
    """How many anchors each training matcher would make positive for the face, per frame.

    BlazeFace's training matcher is not published; the matchers of :mod:`analyses.missed_detections.matchers`
    are applied with SSD's defaults (IoU >= 0.5 plus the best anchor, and the remedies b-d) to the 896 nominal
    anchor squares and the face box mapped into the 128 x 128 input.

    Args:
        detector: the BlazeFace detector (its ``anchor_generator`` gives the anchors).
        ds: a :func:`face_clip_study` Dataset; ``frame_size`` defaults to its ``clip_frame_size`` attr.

    Returns:
        int DataArray (matcher, frame, object): positive anchors; -1 where the object is absent.
    """
    from torchvision.ops import box_iou

    from analyses.missed_detections.hooks import anchor_layout, to_resized_frame
    from analyses.missed_detections.matchers import make_matcher

    size = int(frame_size or ds.attrs["clip_frame_size"])
    generator = detector.anchor_generator
    anchors = generator.boxes.float().cpu()
    layout = anchor_layout(generator.anchors.grid_sizes, generator.anchors.per_cell)
    level = torch.from_numpy(layout.level)
    made = {name: make_matcher(name, "ssd") for name in matchers}
    present = ds["present"].values.astype(bool)
    gt_all = ds["gt_box"].transpose("frame", "object", "coord").values
    out = np.full((len(made), *present.shape), -1, dtype=np.int64)
    for t, o in zip(*np.nonzero(present), strict=True):
        gt = to_resized_frame(torch.tensor(gt_all[t, o][None], dtype=torch.float32), (size, size), (128, 128))
        iou = box_iou(gt, anchors)
        for k, matcher in enumerate(made.values()):
            out[k, t, o] = int((matcher(iou, anchors, gt, level) >= 0).sum())
    return xr.DataArray(out, dims=("matcher", "frame", "object"),
                        coords={"matcher": list(made), "frame": ds["frame"].values, "object": ds["object"].values},
                        name="positive_anchors",
                        attrs={"description": "anchors a training matcher makes positive for the object (-1: absent)"})


def summarize(detector: nn.Module, ds: xr.Dataset, images: Mapping[str, Tensor], clip: ClipOptions = STUDY_CLIP,
              *, n_shuffles: int = 1000, seed: int = 0) -> dict:
    """The study's numbers: misses, momentary misses, switch attribution (tolerance 0 and 1 frame), the
    best anchors at the misses, the mean :func:`matcher_positives` at momentary misses vs detected frames, and
    per block the mean :func:`layer_changes` at misses vs control frames."""
    from analyses.missed_detections.attribution import miss_table, switch_attribution

    present = int(ds["present"].sum())
    moment = ds["momentary_miss"].astype(bool)
    threshold = float(ds.attrs.get("score_threshold", 0.5))
    table = miss_table(ds, tolerance=1)
    out: dict = {"clips": int(ds.sizes["object"]), "frames_per_clip": int(ds.sizes["frame"]),
                 "present": present, "missed": int(ds["missed"].sum()),
                 "momentary": int(ds["momentary_miss"].sum()),
                 "clips_with_momentary": int((ds["momentary_miss"].sum("frame") > 0).sum()),
                 # a momentary miss with the best anchor still scoring >= threshold is a misplaced box (IoU <
                 # match_iou), not a score dip; "no detection near" = no detection of any score at IoU >= match_iou
                 "momentary_best_score_above_threshold": int((ds["best_score"] >= threshold).where(moment).sum()),
                 "momentary_no_detection_near": int(ds["detection_score"].isnull().where(moment).sum()),
                 "attribution": {tol: switch_attribution(ds, tolerance=tol, n_shuffles=n_shuffles, seed=seed).summary()
                                 for tol in (0, 1)},
                 "best_level_at_misses": table["best_level"].value_counts().sort_index().to_dict(),
                 "best_slot_at_misses": table["best_aspect"].value_counts().sort_index().to_dict()}
    positives = matcher_positives(detector, ds)
    detected = ds["detected"].values.astype(bool)
    momentary = ds["momentary_miss"].values.astype(bool)
    out["positive_anchors"] = {str(m): {"momentary_miss": float(positives.sel(matcher=m).values[momentary].mean()),
                                        "detected": float(positives.sel(matcher=m).values[detected].mean())}
                               for m in positives["matcher"].values} if momentary.any() else {}
    blocks = [f"block{i}" for i in range(1, 17)]
    changes = []
    for name in table["object"].unique():
        frames = clip_frames(ds, images, clip, name)
        inputs = detector.transform(list(frames))[0].tensors
        detected = ds["detected"].sel(object=name).values.astype(bool)
        last = len(detected) - 1
        misses = [int(t) for t in table.loc[table["object"] == name, "frame"] if 0 < t < last]
        control = [t for t in range(1, last) if detected[t - 1] and detected[t] and detected[t + 1]]
        changes.append(layer_changes(detector.net, inputs, misses, control, blocks).assign(object=name))
    if changes:
        mean = pd.concat(changes).groupby(["layer", "kind"])["change"].mean().unstack().reindex(blocks)
        out["layer_change"] = {layer: {"miss": float(r["miss"]), "control": float(r["control"])}
                               for layer, r in mean.iterrows()}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m analyses.missed_detections.face_study --weights FILE.tflite [--out DIR]``: the study's numbers."""
    import argparse
    import json
    from pathlib import Path

    from analyses.missed_detections.detectors import load_detector
    from rsa_bridge.app.argtypes import count, seed
    from rsa_bridge.io import write_netcdf

    p = argparse.ArgumentParser(prog="python -m analyses.missed_detections.face_study",
                                description="Momentary misses of BlazeFace on clips of the 92-image set's human faces")
    p.add_argument("--weights", default="default", help="face_detection_short_range.tflite (default: $RSA_BRIDGE_BLAZEFACE)")
    p.add_argument("--out", help="folder for missed_detections.nc and summary.json (for the figure script)")
    p.add_argument("--shuffles", type=count("--shuffles", 1_000_000), default=1000, help="shuffled baselines (1000)")
    p.add_argument("--seed", type=seed(), default=0, help="seed of the shuffles (0)")
    args = p.parse_args(argv)
    detector = load_detector("blazeface", args.weights)
    images = load_face_images()
    ds = face_clip_study(detector, images)
    ds.attrs.update({"detector": "blazeface", "weights": detector.rsa_bridge_info.weights,
                     "weights_sha256": detector.rsa_bridge_info.weights_sha256})
    summary = summarize(detector, ds, images, n_shuffles=args.shuffles, seed=args.seed)
    text = json.dumps(summary, indent=2, default=str)
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_netcdf(ds, out / "missed_detections.nc")
        (out / "summary.json").write_text(text + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    import sys

    try:
        raise SystemExit(main())
    except RSABridgeError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
