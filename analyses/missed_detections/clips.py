"""Seeded clips made from real face images: controlled motion, scale, blur, occlusion and contrast, frame by frame.

A face image (the 92-image set's, or any user image) is pasted onto a background canvas by an affine
map (sub-pixel position, scale) and then blurred, partly occluded and contrast-reduced; each of these
moves linearly from a start to an end value over the clip, plus seeded jitter of the position. The
face box given in the source image goes through the same map, so every frame has its ground-truth box
(``boxes`` table in the format of :func:`analyses.missed_detections.analyse_frames`, label 0 = face).

The face box of a still image can come from the detector itself (:func:`detected_face_box`): the clip
then tests whether the detector keeps finding, frame by frame, a face it finds in the still.

Example::

    >>> image = torch.rand(3, 64, 64)
    >>> clip = make_clip(image, (16.0, 16.0, 48.0, 48.0), ClipOptions(n_frames=4, frame_size=96))
    >>> tuple(clip.frames.shape), list(clip.boxes.columns)
    ((4, 3, 96, 96), ['frame', 'object_id', 'x1', 'y1', 'x2', 'y2', 'label'])

Write a clip for ``rsa-bridge missed-detections`` (frames ``frame_00000.png`` ... and ``boxes.csv``)::

    python -m analyses.missed_detections.clips --image face.png --out clip/ [--box X1,Y1,X2,Y2] [--seed 0] \
        [--preset study|still] [--weights face_detection_short_range.tflite]
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from analyses.missed_detections.synthetic import (
    SyntheticVideo,
    gaussian_blur,
    textured_background,
)
from rsa_bridge.errors import RSABridgeError

Ramp = tuple[float, float]


@dataclass(frozen=True)
class ClipOptions:
    """How a clip changes over its frames; each ``(start, end)`` pair is interpolated linearly.

    Attributes:
        n_frames: frames in the clip (>= 3).
        frame_size: side of the square frames in pixels.
        face_size: side of the pasted source image as a fraction of ``frame_size`` (start, end).
        center_x, center_y: centre of the pasted image as fractions of ``frame_size`` (start, end).
        blur: Gaussian blur sigma in frame pixels (start, end); 0 = none.
        occlusion: fraction of the face box's width covered by a grey bar from its left edge (start, end).
        contrast: contrast factor about the frame's mean (start, end); 1 = unchanged.
        jitter: standard deviation (frame pixels) of seeded random offsets of the position, per frame.
        seed: seed of the background texture and the jitter.
    """

    n_frames: int = 60
    frame_size: int = 192
    face_size: Ramp = (0.55, 0.55)
    center_x: Ramp = (0.3, 0.7)
    center_y: Ramp = (0.5, 0.5)
    blur: Ramp = (0.0, 0.0)
    occlusion: Ramp = (0.0, 0.0)
    contrast: Ramp = (1.0, 1.0)
    jitter: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_frames < 3 or self.frame_size < 16:
            raise RSABridgeError(f"a clip needs at least 3 frames of at least 16 px; got {self.n_frames} frames "
                                 f"of {self.frame_size} px")
        checks = {"face_size": (1e-3, 4.0), "blur": (0.0, 50.0), "occlusion": (0.0, 1.0), "contrast": (0.0, 4.0)}
        for name, (low, high) in checks.items():
            ramp = getattr(self, name)
            if len(ramp) != 2 or not all(np.isfinite(v) and low <= v <= high for v in ramp):
                raise RSABridgeError(f"clip option {name} must be a (start, end) pair in [{low}, {high}]; got {ramp}")
        if not np.isfinite(self.jitter) or self.jitter < 0:
            raise RSABridgeError(f"clip jitter must be a finite number of pixels >= 0; got {self.jitter}")


#: the clips of the face study (:mod:`analyses.missed_detections.face_study`): the face shrinks from 20 % to
#: 13 % of a 192 px frame while crossing it from x = 20 % to 80 % in 80 frames, with a blur growing to sigma
#: 1 px - near BlazeFace's size limit, so its score hovers about the threshold while the face's best anchor
#: hands over from cell to cell
STUDY_CLIP = ClipOptions(n_frames=80, frame_size=192, face_size=(0.2, 0.13), center_x=(0.2, 0.8), blur=(0.0, 1.0))

#: name -> clip options for ``--preset`` (``still``: the face keeps its size and only moves)
PRESETS: dict[str, ClipOptions] = {"study": STUDY_CLIP, "still": ClipOptions()}


def _ramp(pair: Ramp, n: int) -> np.ndarray:
    return np.linspace(float(pair[0]), float(pair[1]), n)


def _paste(image: Tensor, background: Tensor, scale: float, origin: tuple[float, float]) -> tuple[Tensor, Tensor]:
    """Frame = background with ``image`` mapped by x' = origin + scale * x (bilinear, sub-pixel); also the mask."""
    _, h0, w0 = image.shape
    _, size, _ = background.shape
    pix = torch.arange(size, dtype=torch.float32) + 0.5
    # source pixel coordinate of each frame pixel centre, normalised to [-1, 1] for grid_sample
    sx = ((pix - origin[0]) / scale) / w0 * 2 - 1
    sy = ((pix - origin[1]) / scale) / h0 * 2 - 1
    grid = torch.stack(torch.meshgrid(sy, sx, indexing="ij")[::-1], dim=-1)[None]
    if scale < 1:  # shrink with an antialiased resize first, so bilinear sampling does not alias
        size_hw = (max(1, round(h0 * scale)), max(1, round(w0 * scale)))
        image = F.interpolate(image[None], size=size_hw, mode="bilinear", antialias=True, align_corners=False)[0]
    sampled = F.grid_sample(image[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
    mask = F.grid_sample(torch.ones(1, 1, *image.shape[1:]), grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False)[0]
    return sampled + (1 - mask) * background, mask


def make_clip(image: Tensor, face_box: Sequence[float], options: ClipOptions = ClipOptions(), *,
              object_id: str = "face") -> SyntheticVideo:
    """A clip of ``image`` (3, H, W) in [0, 1] whose face is ``face_box`` (x1, y1, x2, y2, source pixels).

    Returns:
        :class:`~analyses.missed_detections.synthetic.SyntheticVideo`: frames (T, 3, S, S) in [0, 1];
        boxes (frame, object_id, x1, y1, x2, y2, label 0) in frame pixels; attrs with the options and
        the per-frame values (``face_px``, ``blur``, ``occlusion``, ``contrast``, ``jitter_x``, ``jitter_y``).

    Raises:
        RSABridgeError: an image that is not (3, H, W) finite values in [0, 1], or a box outside it / empty.
    """
    image = torch.as_tensor(image, dtype=torch.float32)
    if image.ndim != 3 or image.shape[0] != 3 or not torch.isfinite(image).all() or image.min() < 0 or image.max() > 1:
        raise RSABridgeError("the clip's source image must be (3, H, W) finite values in [0, 1]")
    _, h0, w0 = image.shape
    x1, y1, x2, y2 = (float(v) for v in face_box)
    if not (0 <= x1 < x2 <= w0 and 0 <= y1 < y2 <= h0):
        raise RSABridgeError(f"face box {face_box} is not inside the {w0} x {h0} image (x1 < x2, y1 < y2 in pixels)")
    o, n, size = options, options.n_frames, options.frame_size
    rng = np.random.default_rng(o.seed)
    background = torch.from_numpy(textured_background(rng, size)).float()
    side = _ramp(o.face_size, n) * size
    jitter = rng.normal(0.0, o.jitter, size=(n, 2)) if o.jitter > 0 else np.zeros((n, 2))
    cx = _ramp(o.center_x, n) * size + jitter[:, 0]
    cy = _ramp(o.center_y, n) * size + jitter[:, 1]
    blur, occ, contrast = _ramp(o.blur, n), _ramp(o.occlusion, n), _ramp(o.contrast, n)
    frames, rows = [], []
    for t in range(n):
        scale = side[t] / max(h0, w0)
        origin = (cx[t] - scale * w0 / 2, cy[t] - scale * h0 / 2)
        frame, _ = _paste(image, background, scale, origin)
        box = (origin[0] + scale * x1, origin[1] + scale * y1, origin[0] + scale * x2, origin[1] + scale * y2)
        if blur[t] > 0:
            frame = gaussian_blur(frame, float(blur[t]))
        if occ[t] > 0:
            left, right = int(np.floor(box[0])), int(np.ceil(box[0] + occ[t] * (box[2] - box[0])))
            top, bottom = int(np.floor(box[1])), int(np.ceil(box[3]))
            frame[:, max(0, top):max(0, bottom), max(0, left):max(0, right)] = 0.5
        if contrast[t] != 1:
            frame = frame.mean() + contrast[t] * (frame - frame.mean())
        frames.append(frame.clamp(0, 1))
        rows.append({"frame": t, "object_id": object_id, "x1": box[0], "y1": box[1], "x2": box[2], "y2": box[3],
                     "label": 0})
    attrs = {"clip_" + k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(o).items()}
    attrs.update({"face_px": side.tolist(), "jitter_x": jitter[:, 0].tolist(), "jitter_y": jitter[:, 1].tolist()})
    return SyntheticVideo(torch.stack(frames), pd.DataFrame(rows), attrs)


def detected_face_box(detector: nn.Module, image: Tensor, min_score: float = 0.5) -> tuple[float, ...]:
    """The highest-scoring detection (x1, y1, x2, y2, source pixels) of ``detector`` on ``image``, clipped to it.

    Raises:
        RSABridgeError: no detection reaches ``min_score``.
    """
    with torch.no_grad():
        out = detector([image])[0]
    if out["scores"].numel() == 0 or float(out["scores"].max()) < min_score:
        best = float(out["scores"].max()) if out["scores"].numel() else 0.0
        raise RSABridgeError(f"the detector finds no face with score >= {min_score} in the image (best {best:.2f}); "
                             "pass the face box yourself (--box X1,Y1,X2,Y2)")
    box = out["boxes"][int(out["scores"].argmax())]
    h, w = image.shape[-2:]
    return (max(0.0, float(box[0])), max(0.0, float(box[1])), min(float(w), float(box[2])), min(float(h), float(box[3])))


def write_clip(clip: SyntheticVideo, folder: str | Path) -> Path:
    """Write ``frame_00000.png`` ... and ``boxes.csv`` into ``folder`` (created; must be empty or absent)."""
    from PIL import Image

    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise RSABridgeError(f"{folder} is not empty; pass a new folder for the clip")
    folder.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(clip.frames):
        pixels = (frame.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"frame_{t:05d}.png")
    boxes = clip.boxes.copy()
    boxes["label"] = "face"
    boxes.to_csv(folder / "boxes.csv", index=False)
    return folder


def main(argv: list[str] | None = None) -> int:
    """``python -m analyses.missed_detections.clips``: write one clip of a face image (see the module doc)."""
    from rsa_bridge.app.argtypes import count, seed

    p = argparse.ArgumentParser(prog="python -m analyses.missed_detections.clips", description=__doc__.splitlines()[0])
    p.add_argument("--image", required=True, help="face image file")
    p.add_argument("--out", required=True, help="new folder for the frames and boxes.csv")
    p.add_argument("--box", help="face box X1,Y1,X2,Y2 in image pixels (default: BlazeFace's detection; needs --weights)")
    p.add_argument("--weights", default="default", help="BlazeFace .tflite for finding the face box (default: $RSA_BRIDGE_BLAZEFACE)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="study",
                   help="clip options: " + "; ".join(f"{k}: {v}" for k, v in PRESETS.items()))
    p.add_argument("--frames", type=count("--frames", 10_000, minimum=3), help="number of frames (the preset's)")
    p.add_argument("--seed", type=seed(), default=0, help="seed of the background and jitter (0)")
    args = p.parse_args(argv)
    try:
        from stimuli.stimulus_set import read_image

        image = torch.from_numpy(np.asarray(read_image(Path(args.image)), dtype=np.float32) / 255).permute(2, 0, 1)
        if args.box:
            box = tuple(float(v) for v in args.box.split(","))
            if len(box) != 4:
                raise RSABridgeError(f"--box needs four numbers X1,Y1,X2,Y2; got {args.box!r}")
        else:
            from analyses.missed_detections.blazeface import load_blazeface_detector

            box = detected_face_box(load_blazeface_detector(args.weights), image)
        options = replace(PRESETS[args.preset], seed=args.seed,
                          **({"n_frames": args.frames} if args.frames is not None else {}))
        clip = make_clip(image, box, options)
        print(f"wrote {write_clip(clip, args.out)}")
    except (RSABridgeError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
