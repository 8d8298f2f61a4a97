"""Momentarily missed detections of anchor-based detectors (Hosoya, Suganuma & Okatani, WACV 2020).

A detector finds an object in every frame but one: is the miss caused by the object crossing the
boundary between two anchors (the best-matching anchor hands over to its neighbour and the class
score dips), or by something else (blur, occlusion)?

Modules: :mod:`.hooks` (what to record from SSD/SSDlite, RetinaNet, Faster R-CNN through the shared
hook layer; anchor order), :mod:`.frames` (the (frame, object) Dataset), :mod:`.attribution`
(misses vs anchor switches, shuffled baseline, per-miss views), :mod:`.matchers` (training
matchers: the remedies), :mod:`.train` (fine-tuning loop), :mod:`.synthetic` (synthetic video and
tiny SSD), :mod:`.remedies` (train and compare), :mod:`.detectors`, :mod:`.figures`, :mod:`.cli`;
BlazeFace: :mod:`.blazeface`, :mod:`.clips`, :mod:`.face_study`, :mod:`.blazeface_train` (its training
loss) and :mod:`.face_remedies` (the remedies fine-tuned on BlazeFace, tested on held-out faces).
"""
import importlib

#: public name -> module that defines it (imported on first use, so the command line starts fast)
_EXPORTS = {
    "miss_table": "attribution", "miss_view": "attribution", "score_dip": "attribution",
    "switch_attribution": "attribution", "load_detector": "detectors", "MissOptions": "frames",
    "analyse_frames": "frames", "anchor_switches": "frames", "momentary_misses": "frames",
    "anchor_layout": "hooks", "detector_spec": "hooks", "run_detector": "hooks", "MATCHERS": "matchers",
    "make_matcher": "matchers",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"analyses.missed_detections.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
