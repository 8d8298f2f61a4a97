"""Training images of a stimulus set for classification pre-training: labels, seeded crops, normalisation.

Every (seed, epoch, stimulus) gets its own crop offset from ``numpy.random.default_rng([seed, epoch,
index])``, so an epoch is the same whatever the loading order or the number of workers, and a resumed
run sees exactly the crops an uninterrupted one would have seen. Images smaller than the crop are
padded with black (0) on the right and bottom first. Pixels in [0, 1] are normalised as
``(x - mean) / std`` on every channel (FractalDB: mean 0.2, std 0.5).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rsa_bridge.errors import RSABridgeError, preview


@dataclass(frozen=True)
class Labels:
    """Class indices of a stimulus set's label column.

    Attributes:
        classes: the distinct label values (as text), sorted; class ``i`` is ``classes[i]``.
        targets: (n_stimuli,) int64 class index per stimulus, manifest order.
    """

    classes: list[str]
    targets: np.ndarray


def class_labels(stimulus_set, column: str) -> Labels:
    """Sorted classes of ``column`` and each stimulus's index; RSABridgeError for a missing or bad column."""
    manifest = stimulus_set.manifest
    if column not in manifest.columns or column in ("stimulus_id", "filename"):
        columns = [c for c in manifest.columns if c not in ("stimulus_id", "filename")]
        raise RSABridgeError(f"stimulus set {stimulus_set.name!r} has no label column {column!r}; "
                             f"its label columns are {preview(columns, 8) if columns else 'none'}")
    values = manifest[column]
    if values.isna().any():
        missing = manifest.loc[values.isna(), "stimulus_id"].tolist()
        raise RSABridgeError(f"stimuli {preview(missing)} have no {column!r} label; every training image needs one")
    text = values.astype(str).str.strip()
    classes = sorted(text.unique(), key=lambda v: (len(v), v) if v.isdigit() else (np.inf, v))
    if len(classes) < 2:
        raise RSABridgeError(f"label column {column!r} has a single class {classes[0]!r}; training needs at least 2")
    index = {c: i for i, c in enumerate(classes)}
    return Labels(classes, text.map(index).to_numpy(dtype=np.int64))


def crop_offset(height: int, width: int, crop: int, seed: int, epoch: int, index: int) -> tuple[int, int]:
    """Top-left (row, col) of the crop of stimulus ``index`` in ``epoch`` (uniform over valid offsets)."""
    rng = np.random.default_rng([seed, epoch, index])
    return int(rng.integers(0, height - crop + 1)), int(rng.integers(0, width - crop + 1))


class CroppedImages(torch.utils.data.Dataset):
    """``(image (3, crop, crop) float32, class index)`` per stimulus, for the epoch set by :meth:`set_epoch`.

    Args:
        stimulus_set: a :class:`stimuli.StimulusSet`.
        targets: (n_stimuli,) class indices.
        crop: side of the random square crop in pixels.
        mean, std: normalisation ``(x - mean) / std`` of pixels in [0, 1].
        seed: the crop seed.
    """

    def __init__(self, stimulus_set, targets: np.ndarray, crop: int, mean: float, std: float, seed: int) -> None:
        if crop < 1:
            raise RSABridgeError(f"crop must be >= 1 pixel, not {crop}")
        if std <= 0:
            raise RSABridgeError(f"std must be > 0, not {std}")
        self.paths = list(stimulus_set.paths)
        self.targets = np.asarray(targets, dtype=np.int64)
        self.crop, self.mean, self.std, self.seed = int(crop), float(mean), float(std), int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.paths)

    def pixels(self, index: int) -> np.ndarray:
        """(3, crop, crop) float32 pixels in [0, 1] of stimulus ``index`` for the current epoch."""
        from stimuli import read_image

        array = np.asarray(read_image(self.paths[index]), dtype=np.float32) / 255.0
        h, w = array.shape[:2]
        if h < self.crop or w < self.crop:
            padded = np.zeros((max(h, self.crop), max(w, self.crop), 3), dtype=np.float32)
            padded[:h, :w] = array
            array, (h, w) = padded, padded.shape[:2]
        top, left = crop_offset(h, w, self.crop, self.seed, self.epoch, index)
        return np.ascontiguousarray(array[top: top + self.crop, left: left + self.crop].transpose(2, 0, 1))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x = (torch.from_numpy(self.pixels(index)) - self.mean) / self.std
        return x, int(self.targets[index])
