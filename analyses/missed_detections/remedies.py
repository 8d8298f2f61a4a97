"""Train the tiny synthetic detector under each training matcher and measure its momentary misses.

    model = train_tiny_detector("best_delta", delta=0.15, steps=150, seed=0)
    table = compare_remedies({"default": ("iou_threshold", {}), "delta": ("best_delta", {"delta": 0.15})})
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr
from torch import nn

from analyses.missed_detections.attribution import score_dip, switch_attribution
from analyses.missed_detections.frames import MissOptions, analyse_frames
from analyses.missed_detections.matchers import make_matcher
from analyses.missed_detections.synthetic import (
    DEFAULT_CONFIG,
    SyntheticVideo,
    TinyConfig,
    build_tiny_detector,
    training_batch,
    translation_video,
)
from analyses.missed_detections.train import fine_tune
from rsa_bridge.provenance import clean_attrs, package_version

#: thresholds used on the synthetic clip: its boundary dips reach about 0.3-0.55 and last 2-4 frames at
#: 0.5 px per frame, so a 0.6 threshold turns them into misses and a 5-frame window calls them momentary
SYNTHETIC_OPTIONS = MissOptions(score_threshold=0.6, window=5)


def train_tiny_detector(matcher: str = "iou_threshold", *, config: TinyConfig = DEFAULT_CONFIG, steps: int = 150,
                        batch_size: int = 16, lr: float = 2e-3, seed: int = 0, **matcher_options: float) -> nn.Module:
    """Build the tiny SSD from ``seed`` and train it on random synthetic frames with ``matcher``.

    About 20-40 s on a 2-core CPU with the defaults. The model comes back in eval mode with
    ``model.training_attrs`` (matcher, options, steps, seed, final loss).
    """
    model = build_tiny_detector(config, seed=seed)
    result = fine_tune(model, lambda rng, n: training_batch(rng, n, config), make_matcher(matcher, **matcher_options),
                       steps=steps, batch_size=batch_size, lr=lr, seed=seed)
    model.training_attrs = {**result.attrs, "final_loss": float(np.mean(result.losses[-10:]))}
    return model


def evaluate_on_video(model: nn.Module, video: SyntheticVideo, options: MissOptions = SYNTHETIC_OPTIONS,
                      *, n_shuffles: int = 1000, seed: int = 0) -> dict[str, float]:
    """Momentary-miss rate, miss rate, score dip and switch attribution of ``model`` on ``video``."""
    ds = analyse_frames(model, list(video.frames), video.boxes, options=options, batch_size=32)
    present = ds["present"].values.astype(bool)
    att = switch_attribution(ds, n_shuffles=n_shuffles, seed=seed)
    dip = score_dip(ds)
    return {"momentary_miss_rate": float(ds["momentary_miss"].values[present].mean()),
            "miss_rate": float(ds["missed"].values[present].mean()),
            "score_near_switch": dip["near"], "score_away": dip["away"], "score_dip": dip["dip"],
            "fraction_near_switch": att.observed, "shuffled_fraction": att.baseline_mean, "p_value": att.p_value}


def compare_remedies(remedies: Mapping[str, tuple[str, dict]], *, config: TinyConfig = DEFAULT_CONFIG, steps: int = 150,
                     seed: int = 0, video: SyntheticVideo | None = None,
                     options: MissOptions = SYNTHETIC_OPTIONS) -> xr.Dataset:
    """Train one tiny detector per remedy (same seed, same batches) and evaluate each on one clip.

    Args:
        remedies: label -> (matcher name, matcher options), e.g. ``{"a": ("iou_threshold", {})}``.

    Returns:
        Dataset over ``remedy`` with the numbers of :func:`evaluate_on_video` and each matcher's
        name and interpretation as coordinates.
    """
    video = video or translation_video(config, seed=seed + 1)
    rows, names, notes = [], [], []
    for name, opts in remedies.values():
        model = train_tiny_detector(name, config=config, steps=steps, seed=seed, **opts)
        rows.append(evaluate_on_video(model, video, options, seed=seed))
        names.append(f"{name}({', '.join(f'{k}={v}' for k, v in opts.items())})")
        notes.append(model.training_attrs["matcher_interpretation"])
    labels = list(remedies)
    data = {k: ("remedy", [r[k] for r in rows]) for k in rows[0]} if rows else {}
    coords = {"remedy": labels, "matcher": ("remedy", names), "interpretation": ("remedy", notes)}
    return xr.Dataset(data, coords=coords,
                      attrs=clean_attrs({"steps": steps, "seed": seed, "score_threshold": options.score_threshold,
                                         "window": options.window, "video": "synthetic translation",
                                         "rsa_bridge_version": package_version()}))
