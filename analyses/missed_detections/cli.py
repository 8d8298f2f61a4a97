"""``rsa-bridge missed-detections``: analyse a video's momentary misses (parsing and printing only).

    rsa-bridge missed-detections --detector ssdlite320 --video FRAMES_DIR --boxes boxes.csv --out DIR

Writes into DIR (each file atomically): ``missed_detections.nc`` (the (frame, object) Dataset),
``missed_detections.csv`` (one row per present frame x object), ``misses.csv`` (one row per miss
with its cause), ``attribution.json`` (switch attribution vs the shuffled baseline),
``timeline_<object>.png`` per object and ``miss_<frame>_<object>.png`` for the first misses.
"""
from __future__ import annotations

from rsa_bridge.app.argtypes import count, real, seed

import argparse
import json
from pathlib import Path

#: names that moved to :mod:`analyses.missed_detections.inputs` (kept importable from here)
_INPUTS = ("FrameFolder", "read_boxes", "frame_table", "safe_name", "_frame_positions", "_label_indices")


def __getattr__(name: str):
    if name in _INPUTS:
        from analyses.missed_detections import inputs

        return getattr(inputs, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def run(args: argparse.Namespace) -> int:
    """Run the analysis and write the outputs; returns 0."""
    from analyses.missed_detections.attribution import miss_table, miss_view, switch_attribution
    from analyses.missed_detections.detectors import category_names, load_detector
    from analyses.missed_detections.figures import plot_miss_view, plot_timeline, save_figure
    from analyses.missed_detections.frames import MissOptions, analyse_frames
    from analyses.missed_detections.inputs import FrameFolder, safe_name, frame_table, read_boxes
    from rsa_bridge.errors import RSABridgeError
    from rsa_bridge.io import check_out, publish_folder, write_netcdf, write_text
    from rsa_bridge.limits import check_seed
    from stimuli.csv_cells import frame_to_csv

    check_seed(args.seed)
    for option, value, low in (("--shuffles", args.shuffles, 0), ("--window", args.window, 1),
                               ("--tolerance", args.tolerance, 0), ("--miss-views", args.miss_views, 0),
                               ("--batch-size", args.batch_size, 1)):
        if value < low:  # checked before anything runs or is written (issue 17)
            raise RSABridgeError(f"{option} must be a whole number >= {low}; got {value}")
    MissOptions(score_threshold=args.score_threshold, match_iou=args.match_iou, anchor_iou=args.anchor_iou,
                window=args.window)  # its own checks, before the --out check
    check_out(args.out, args.overwrite)  # before any computing
    frames = FrameFolder(args.video)
    model = load_detector(args.detector, args.weights, device=args.device, seed=args.seed)
    boxes = read_boxes(args.boxes, frames, category_names(args.detector, args.weights))
    options = MissOptions(score_threshold=args.score_threshold, match_iou=args.match_iou,
                          anchor_iou=args.anchor_iou, window=args.window)
    info = model.rsa_bridge_info
    attrs = {"detector": args.detector, "model": info.name, "weights": info.weights,
             "weights_sha256": info.weights_sha256, "video": str(Path(args.video).resolve()),
             "boxes": str(Path(args.boxes).resolve()), "seed": args.seed}
    ds = analyse_frames(model, frames, boxes, options=options, batch_size=args.batch_size,
                        frame_names=frames.names, attrs=attrs)
    out = Path(args.out)
    with publish_folder(out, args.overwrite) as stage:  # one unit
        write_netcdf(ds, stage / "missed_detections.nc")
        write_text(frame_to_csv(frame_table(ds), index=False), stage / "missed_detections.csv")
        write_text(frame_to_csv(miss_table(ds, flag="missed", tolerance=args.tolerance), index=False),
                   stage / "misses.csv")
        summary = {flag: switch_attribution(ds, flag=flag, tolerance=args.tolerance, n_shuffles=args.shuffles,
                                            seed=args.seed).summary() for flag in ("momentary_miss", "missed")}
        write_text(json.dumps({"attribution": summary, "attrs": ds.attrs}, indent=2, default=str) + "\n",
                   stage / "attribution.json")
        if not args.no_figures:
            for obj in ds["object"].values:
                save_figure(plot_timeline(ds, obj), stage / f"timeline_{safe_name(obj)}.png")
            table = miss_table(ds, flag="momentary_miss", tolerance=args.tolerance)
            for row in table.head(args.miss_views).itertuples():
                view = miss_view(model, frames, ds, int(row.frame), row.object)
                save_figure(plot_miss_view(view), stage / f"miss_{int(row.frame):05d}_{safe_name(row.object)}.png")
    mm = summary["momentary_miss"]
    print(f"{ds.sizes['frame']} frames x {ds.sizes['object']} objects: {int(ds['missed'].sum())} misses, "
          f"{mm['n_misses']} momentary; {mm['n_near_switch']} of them at a best-anchor switch "
          f"(fraction {mm['fraction_near_switch']:.2f} vs {mm['shuffled_mean']:.2f} shuffled, p = {mm['p_value']:.3g})")
    print(f"wrote {out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``missed-detections`` sub-command."""
    p = subparsers.add_parser(
        "missed-detections",
        help="why a detector momentarily misses a tracked object: anchor switches vs other causes",
        description="Per frame and tracked object: best anchor, its score, matched detection, momentary misses "
                    "and best-anchor switches (Hosoya et al., WACV 2020), with a shuffled-frame baseline.")
    p.add_argument("--detector", default="ssdlite320",
                   help="ssdlite320, ssd300, retinanet, retinanet_v2, fasterrcnn, fasterrcnn_v2, "
                        "fasterrcnn_mobilenet, blazeface or tiny (default: ssdlite320)")
    p.add_argument("--weights", default="default",
                   help="'default' (torchvision COCO weights, cached or downloaded; for blazeface the .tflite named by "
                        "$RSA_BRIDGE_BLAZEFACE), 'none', a state-dict path, or for blazeface "
                        "face_detection_short_range.tflite")
    p.add_argument("--video", required=True, help="folder of frame images, in file-name order")
    p.add_argument("--boxes", required=True, help="CSV with columns frame, object_id, x1, y1, x2, y2, label")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder of an earlier run")
    p.add_argument("--score-threshold", type=real("--score-threshold", 0, 1), default=0.5, help="detection score threshold (default 0.5)")
    p.add_argument("--match-iou", type=real("--match-iou", 0, 1, open_ends=True), default=0.5, help="IoU for a detection to match an object (0.5)")
    p.add_argument("--anchor-iou", type=real("--anchor-iou", 0, 1, open_ends=True), default=0.5, help="IoU above which anchors count as covering (0.5)")
    p.add_argument("--window", type=count("--window", 10_000, minimum=1), default=3, help="longest run of missed frames called momentary (3)")
    p.add_argument("--tolerance", type=count("--tolerance", 10_000), default=0, help="frames of slack between a miss and a switch (0)")
    p.add_argument("--shuffles", type=count("--shuffles", 1_000_000), default=1000, help="shuffled-frame baseline permutations (1000)")
    p.add_argument("--miss-views", type=count("--miss-views", 100), default=3, help="score-map figures for the first N momentary misses")
    p.add_argument("--batch-size", type=count("--batch-size", 4096, minimum=1), default=8, help="frames per forward pass (8)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--seed", type=seed(), default=0, help="seed of untrained weights and of the shuffles (0)")
    p.add_argument("--no-figures", action="store_true", help="write no figures")
    p.set_defaults(func=run)
    return p
