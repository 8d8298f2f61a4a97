"""Momentarily missed detections of anchor-based detectors (Hosoya, Suganuma & Okatani, WACV 2020).

A detector finds an object in every frame but one: is the miss caused by the object crossing the
boundary between two anchors (the best-matching anchor hands over to its neighbour and the class
score dips), or by something else (blur, occlusion)?

Modules: :mod:`.hooks` (what to record from SSD/SSDlite, RetinaNet, Faster R-CNN through the shared
hook layer; anchor order), :mod:`.frames` (the (frame, object) Dataset), :mod:`.attribution`
(misses vs anchor switches, shuffled baseline, per-miss views), :mod:`.matchers` (training
matchers: the remedies), :mod:`.train` (fine-tuning loop), :mod:`.synthetic` (synthetic video and
tiny SSD), :mod:`.remedies` (train and compare), :mod:`.detectors`, :mod:`.figures`, :mod:`.cli`.
"""
from analyses.missed_detections.attribution import miss_table, miss_view, score_dip, switch_attribution
from analyses.missed_detections.detectors import load_detector
from analyses.missed_detections.frames import MissOptions, analyse_frames, anchor_switches, momentary_misses
from analyses.missed_detections.hooks import anchor_layout, detector_spec, run_detector
from analyses.missed_detections.matchers import MATCHERS, make_matcher

__all__ = [
    "MATCHERS",
    "MissOptions",
    "analyse_frames",
    "anchor_layout",
    "anchor_switches",
    "detector_spec",
    "load_detector",
    "make_matcher",
    "miss_table",
    "miss_view",
    "momentary_misses",
    "run_detector",
    "score_dip",
    "switch_attribution",
]
