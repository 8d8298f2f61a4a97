"""Missed-detection timeline of one tracked object: the scores of its best-matching anchor and of the final
detection over frames (top) and that anchor's IoU with the object (bottom), with best-anchor switches
(dotted lines), misses (grey) and momentary misses (vermilion).

Reads ``missed_detections.nc`` from a ``rsa-bridge missed-detections --out DIR`` folder given with
``--results DIR``; a folder of another kind (a compare folder) is refused. Given a missing or empty folder, the
``python -m`` script (not ``rsa-bridge figure``, which never computes) runs the analysis on the synthetic clip
with the tiny SSD trained here (torchvision's SSD matching, 150 steps, seed 0; about a minute on a CPU) and
caches the Dataset there (default ``OUT/results/missed_detections.nc``).

    python -m analyses.figures.missed_detections --out figures/ [--results md_out/] [--object square]
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import xarray as xr

from analyses.figures import common
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.figures import PALETTE, figsize, use_style
from rsa_bridge.io import write_netcdf

NAME = "missed_detections"
FILE = "missed_detections.nc"
MISS_GREY, MOMENTARY = "0.85", "#D55E00"


def timeline(ds: xr.Dataset, object_id: str | None = None, width: str | float = "double", height_mm: float = 70.0):
    """Two panels over frames for one object (see the module docstring).

    Args:
        ds: the (frame, object) Dataset of :func:`analyses.missed_detections.analyse_frames`.
        object_id: which object (default: the first).

    Returns:
        (figure, [score axes, IoU axes], handles): lines ``best_score``, ``max_score_iou``,
        ``detection_score``, ``threshold``, ``best_iou`` (x = frame, y = the variable), and
        ``switches`` (frames t where the best anchor changed from t - 1), ``misses``, ``momentary``
        (lists of frames marked).
    """
    objects = [str(o) for o in ds["object"].values]
    object_id = objects[0] if object_id is None else str(object_id)
    if object_id not in objects:
        raise RSABridgeError(f"no object {object_id!r}; the results have {', '.join(objects)}")
    obj = ds.sel(object=object_id)
    frames = ds["frame"].values
    threshold = float(ds.attrs.get("score_threshold", 0.5))
    handles: dict = {}
    with use_style():
        fig, (ax_s, ax_i) = plt.subplots(2, 1, figsize=figsize(width, height_mm), sharex=True,
                                         gridspec_kw={"height_ratios": [2, 1]})
        handles["best_score"], = ax_s.plot(frames, obj["best_score"].values, color=PALETTE[0],
                                           label="best-IoU anchor score")
        handles["max_score_iou"], = ax_s.plot(frames, obj["max_score_iou"].values, color=PALETTE[2],
                                              label=f"max score, anchors IoU > {ds.attrs.get('anchor_iou', 0.5)}")
        handles["detection_score"], = ax_s.plot(frames, obj["detection_score"].values, color="black", ls="--",
                                                label="detection score")
        handles["threshold"] = ax_s.axhline(threshold, color="0.3", lw=0.7, ls=(0, (1, 1)),
                                            label=f"score threshold {threshold:g}")
        handles["best_iou"], = ax_i.plot(frames, obj["best_iou"].values, color=PALETTE[3])
        marks = {name: [int(t) for t in frames[obj[name].values.astype(bool)]]
                 for name in ("anchor_switch", "missed", "momentary_miss")}
        handles["switches"], handles["misses"], handles["momentary"] = (marks["anchor_switch"], marks["missed"],
                                                                        marks["momentary_miss"])
        for ax in (ax_s, ax_i):
            for t in marks["anchor_switch"]:
                ax.axvline(t - 0.5, color="0.35", ls=":", lw=0.7)
            for t in sorted(set(marks["missed"]) - set(marks["momentary_miss"])):
                ax.axvspan(t - 0.5, t + 0.5, color=MISS_GREY, lw=0, zorder=0)
            for t in marks["momentary_miss"]:
                ax.axvspan(t - 0.5, t + 0.5, color=MOMENTARY, alpha=0.3, lw=0, zorder=0)
        ax_s.set_ylim(-0.02, 1.02)
        ax_s.set_ylabel("class score")
        label = f" (label {int(obj['label'])})" if "label" in obj.coords or "label" in obj else ""
        ax_s.set_title(f"object {object_id}{label}: dotted = best-anchor switch, grey = miss, "
                       "vermilion = momentary miss", loc="left")
        ax_s.legend(loc="lower left", ncol=4)
        ax_i.set_ylim(0, 1.02)
        ax_i.set_ylabel("best-anchor IoU")
        ax_i.set_xlabel("frame")
    return fig, [ax_s, ax_i], handles


def synthetic_results() -> xr.Dataset:
    """The analysis of the synthetic clip with a tiny SSD trained with torchvision's SSD matching (seed 0)."""
    from analyses.missed_detections import frames, remedies, synthetic

    video = synthetic.translation_video(seed=1)
    model = remedies.train_tiny_detector("iou_threshold", steps=150, seed=0)
    ds = frames.analyse_frames(model, list(video.frames), video.boxes, options=remedies.SYNTHETIC_OPTIONS)
    ds.attrs["source"] = "synthetic clip (translation_video seed 1), tiny SSD iou_threshold matcher, 150 steps, seed 0"
    return ds


def load(folder: Path) -> xr.Dataset:
    """``missed_detections.nc`` of ``folder``, computed from the synthetic clip and cached there if absent."""
    path = folder / FILE
    if not common.check_folder(folder, "missed_detections"):  # refuses a folder of another kind; computes only in scripts
        print(f"no {FILE} in {folder}: analysing the synthetic clip (trains a tiny SSD, ~1 min)", file=sys.stderr)
        write_netcdf(synthetic_results(), path)
    with xr.open_dataset(path, engine="h5netcdf") as handle:
        return handle.load()


def main(argv: Sequence[str] | None = None) -> int:
    p = common.parser(NAME, "Timeline of a tracked object's anchor scores, misses and anchor switches.", compare=False)
    p.add_argument("--object", default=None, help="object id (default: the first)")
    p.add_argument("--width", default="double", help="single, double or millimetres (default double)")
    args = p.parse_args(argv)
    folder = Path(args.results) if args.results is not None else Path(args.out) / "results"
    fig, _, _ = timeline(load(folder), args.object, width=args.width)
    for path in common.save(fig, args.out, NAME, args.dpi):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(common.run(main))
