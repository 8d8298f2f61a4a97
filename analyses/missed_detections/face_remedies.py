"""The remedies on the real detector: fine-tune BlazeFace under each training matcher, count momentary misses on held-out faces.

For each fold of an **identity split** of the 92-image set's human faces (images 13-24; a face is one
image), BlazeFace (MediaPipe's weights) is fine-tuned with :func:`~analyses.missed_detections.train.fine_tune`
and the loss of :mod:`~analyses.missed_detections.blazeface_train` on frames of seeded clips of the
*training* faces, once per training matcher (same seed, same batches, same start), and each fine-tuned
network - and the un-fine-tuned one, the baseline - runs the face study
(:func:`~analyses.missed_detections.face_study.face_clip_study`, ``clips.STUDY_CLIP``) on the *test*
faces. Every model is scored against the same ground truth: the face box of each still found by the
un-fine-tuned detector.

Training clips: ``TRAIN_CLIPS_PER_FACE`` clips per training face with the study's design
(``STUDY_CLIP``) and seeds ``1000 + 10 * position + k`` - never the test clips' seeds (0 ...).

Example (with MediaPipe's .tflite at PATH; about 1-2 min per matcher and fold on one core)::

    python -m analyses.missed_detections.face_remedies --weights PATH --out remedies/ --steps 150
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
import xarray as xr
from torch import Tensor, nn

from analyses.missed_detections.clips import (
    STUDY_CLIP,
    ClipOptions,
    detected_face_box,
    make_clip,
)
from analyses.missed_detections.face_study import HUMAN_FACES, face_clip_study
from analyses.missed_detections.matchers import make_matcher
from analyses.missed_detections.train import fine_tune
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.provenance import clean_attrs, package_version

#: training clips per training face
TRAIN_CLIPS_PER_FACE = 2
#: the default comparison: (a) the threshold rule vs the remedies (b)-(d), SSD's defaults
DEFAULT_MATCHERS = ("iou_threshold", "best_delta", "topk", "atss")


@dataclass(frozen=True)
class RemedyOptions:
    """How each matcher fine-tunes BlazeFace.

    Attributes:
        steps: Adam steps; batch_size: frames per step; lr: learning rate (cosine-decayed).
        seed: seeds batch sampling (the same batches for every matcher) and each step's randomness.
        heads_only: train only the two heads (score and box regressors), backbone frozen.
        clip: the design of the training and test clips.
    """

    steps: int = 150
    batch_size: int = 16
    lr: float = 1e-4
    seed: int = 0
    heads_only: bool = False
    clip: ClipOptions = STUDY_CLIP

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or not (np.isfinite(self.lr) and self.lr > 0):
            raise RSABridgeError(f"fine-tuning needs steps >= 1, batch size >= 1 and a learning rate > 0; got "
                                 f"{self.steps}, {self.batch_size}, {self.lr}")


def identity_folds(faces: Sequence[str], n_folds: int = 2) -> list[tuple[list[str], list[str]]]:
    """(train, test) face lists: face k goes to test fold k mod n_folds; each face is tested exactly once."""
    faces = list(faces)
    if len(set(faces)) != len(faces):
        raise RSABridgeError(f"face names repeat in {faces}; an identity split needs each face once")
    if n_folds < 2 or len(faces) < 2 * n_folds:
        raise RSABridgeError(f"an identity split into {n_folds} folds needs at least 2 folds and "
                             f"{2 * n_folds} faces; got {len(faces)} faces")
    return [([f for k, f in enumerate(faces) if k % n_folds != i], [f for k, f in enumerate(faces) if k % n_folds == i])
            for i in range(n_folds)]


def check_split(train: Sequence[str], test: Sequence[str]) -> None:
    """RSABridgeError unless ``train`` and ``test`` are non-empty and share no face."""
    overlap = sorted(set(train) & set(test))
    if overlap:
        raise RSABridgeError(f"faces {overlap} are in both the training and the test set; split by identity")
    if not train or not test:
        raise RSABridgeError("an identity split needs at least one training and one test face")


def training_pool(images: Mapping[str, Tensor], boxes: Mapping[str, Sequence[float]], clip: ClipOptions,
                  clips_per_face: int = TRAIN_CLIPS_PER_FACE) -> tuple[Tensor, Tensor]:
    """Frames (F, 3, S, S) and their face boxes (F, 4) (frame pixels) of the training clips (see the module doc)."""
    frames, gt = [], []
    for position, name in enumerate(images):
        if name not in boxes:
            raise RSABridgeError(f"training face {name} has no face box; pass one or let the detector find it")
        for k in range(clips_per_face):
            video = make_clip(images[name], boxes[name], replace(clip, seed=1000 + 10 * position + k), object_id=name)
            frames.append(video.frames)
            gt.append(torch.tensor(video.boxes[["x1", "y1", "x2", "y2"]].values, dtype=torch.float32))
    return torch.cat(frames), torch.cat(gt)


def pool_sampler(frames: Tensor, boxes: Tensor):
    """``sample(rng, n)``: n distinct random frames of the pool and their targets (see ``train.Sampler``)."""
    if frames.shape[0] < 2 or frames.shape[0] != boxes.shape[0]:
        raise RSABridgeError(f"the training pool needs at least 2 frames, each with one face box; got "
                             f"{frames.shape[0]} frames and {boxes.shape[0]} boxes")

    def sample(rng: np.random.Generator, n: int):
        idx = rng.choice(frames.shape[0], size=min(n, frames.shape[0]), replace=False)
        return ([frames[i] for i in idx],
                [{"boxes": boxes[i][None], "labels": torch.zeros(1, dtype=torch.int64)} for i in idx])
    return sample


def _counts(ds: xr.Dataset) -> dict[str, int]:
    return {"momentary_misses": int(ds["momentary_miss"].sum()), "missed_frames": int(ds["missed"].sum()),
            "present_frames": int(ds["present"].sum()),
            "clips_with_momentary": int((ds["momentary_miss"].sum("frame") > 0).sum())}


def compare_face_remedies(weights: str, images: Mapping[str, Tensor], matchers: Sequence[str] = DEFAULT_MATCHERS,
                          options: RemedyOptions = RemedyOptions(), n_folds: int = 2) -> xr.Dataset:
    """Momentary misses on held-out faces of BlazeFace un-fine-tuned and fine-tuned under each matcher.

    Args:
        weights: MediaPipe's ``face_detection_short_range.tflite`` (or ``default``).
        images: face name -> (3, H, W) in [0, 1] (:func:`~analyses.missed_detections.face_study.load_face_images`).
        matchers: names of :data:`~analyses.missed_detections.matchers.MATCHERS` (SSD's defaults).
        options: :class:`RemedyOptions`; n_folds: folds of :func:`identity_folds`.

    Returns:
        Dataset over (fold, model) - model = ``baseline`` (not fine-tuned) then the matchers - with
        ``momentary_misses``, ``missed_frames``, ``present_frames``, ``clips_with_momentary`` (counts on the
        fold's test clips) and ``final_loss`` (mean of the last 10 steps; NaN for the baseline);
        coords ``train_faces`` / ``test_faces`` per fold; attrs with the provenance.
    """
    from analyses.missed_detections.detectors import load_detector

    for name in matchers:
        make_matcher(name, "ssd")  # unknown names fail before any work
    folds = identity_folds(list(images), n_folds)
    base = load_detector("blazeface", weights)
    boxes = {name: detected_face_box(base, image) for name, image in images.items()}
    models = ["baseline", *matchers]
    out = {k: np.zeros((len(folds), len(models))) for k in ("momentary_misses", "missed_frames", "present_frames",
                                                             "clips_with_momentary", "final_loss")}
    for f, (train, test) in enumerate(folds):
        check_split(train, test)
        pool = training_pool({n: images[n] for n in train}, boxes, options.clip)
        test_images = {n: images[n] for n in test}
        for m, name in enumerate(models):
            det: nn.Module = load_detector("blazeface", weights)
            loss = np.nan
            if name != "baseline":
                if options.heads_only:
                    det.net.backbone.requires_grad_(False)
                result = fine_tune(det, pool_sampler(*pool), make_matcher(name, "ssd"), steps=options.steps,
                                   batch_size=options.batch_size, lr=options.lr, seed=options.seed)
                loss = float(np.mean(result.losses[-10:]))
            ds = face_clip_study(det, test_images, options.clip, boxes={n: boxes[n] for n in test})
            for key, value in {**_counts(ds), "final_loss": loss}.items():
                out[key][f, m] = value
    data = {k: (("fold", "model"), v if k == "final_loss" else v.astype(np.int64)) for k, v in out.items()}
    coords = {"fold": np.arange(len(folds)), "model": models,
              "train_faces": ("fold", [",".join(t) for t, _ in folds]),
              "test_faces": ("fold", [",".join(t) for _, t in folds])}
    attrs = {"detector": "blazeface", "weights": base.rsa_bridge_info.weights,
             "weights_sha256": base.rsa_bridge_info.weights_sha256, "steps": options.steps,
             "batch_size": options.batch_size, "lr": options.lr, "optimizer": "Adam, cosine-decayed lr",
             "seed": options.seed, "trained": "heads only" if options.heads_only else "whole network",
             "matchers": ",".join(matchers), "matcher_defaults": "ssd (IoU >= 0.5 + each face's best anchor)",
             "loss": "sigmoid focal (0.25, 2) + smooth-L1 on MediaPipe-encoded boxes, per positive",
             "train_clips_per_face": TRAIN_CLIPS_PER_FACE, "train_clip_seeds": "1000 + 10 * position + k",
             "test_clip_seeds": "clip.seed + position in the fold's test faces",
             "clip": repr(options.clip), "split": f"identity: face k tested in fold k mod {len(folds)}",
             "score_threshold": 0.5, "match_iou": 0.5, "window": 3,
             "ground_truth": "face box of the still found by the un-fine-tuned detector",
             "rsa_bridge_version": package_version()}
    return xr.Dataset(data, coords=coords, attrs=clean_attrs(attrs))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m analyses.missed_detections.face_remedies --weights FILE.tflite --out DIR``."""
    import argparse
    from pathlib import Path

    from rsa_bridge.app.argtypes import count, real, seed
    from rsa_bridge.io import write_netcdf

    p = argparse.ArgumentParser(prog="python -m analyses.missed_detections.face_remedies",
                                description="BlazeFace fine-tuned under each training matcher: momentary misses on "
                                            "held-out faces")
    p.add_argument("--weights", default="default", help="face_detection_short_range.tflite (default: $RSA_BRIDGE_BLAZEFACE)")
    p.add_argument("--out", required=True, help="folder for face_remedies.nc and face_remedies.csv")
    p.add_argument("--matchers", default=",".join(DEFAULT_MATCHERS), help="comma-separated training matchers")
    p.add_argument("--steps", type=count("--steps", 100_000, minimum=1), default=150, help="Adam steps per matcher (150)")
    p.add_argument("--batch-size", type=count("--batch-size", 1024, minimum=1), default=16, help="frames per step (16)")
    p.add_argument("--lr", type=real("--lr", minimum=1e-12, maximum=1.0), default=1e-4, help="learning rate (1e-4)")
    p.add_argument("--folds", type=count("--folds", 6, minimum=2), default=2, help="identity folds (2)")
    p.add_argument("--seed", type=seed(), default=0, help="seed of the batches and training (0)")
    p.add_argument("--heads-only", action="store_true", help="freeze the backbone, train only the heads")
    args = p.parse_args(argv)
    import sys

    from analyses.missed_detections.face_study import load_face_images

    try:
        options = RemedyOptions(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                                heads_only=args.heads_only)
        matchers = [m.strip() for m in args.matchers.split(",") if m.strip()]
        if not matchers:
            raise RSABridgeError("--matchers names no matcher; pass e.g. iou_threshold,best_delta")
        ds = compare_face_remedies(args.weights, load_face_images(HUMAN_FACES), matchers, options, args.folds)
    except (RSABridgeError, KeyError) as err:
        print(f"error: {str(err).strip(chr(39))}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_netcdf(ds, out / "face_remedies.nc")
    table = ds.drop_vars(["train_faces", "test_faces"]).to_dataframe()
    table.to_csv(out / "face_remedies.csv")
    print(table.to_string())
    print(ds[["momentary_misses", "missed_frames"]].sum("fold").to_dataframe().to_string())
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
