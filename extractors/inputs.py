"""Turn what the user passes as ``images`` into ids plus a batch loader of model-ready tensors.

Accepted: a :class:`stimuli.StimulusSet` (ids from its manifest), a folder (its manifest.csv, else
every image with ids = file stems), a list of image paths (ids = file stems) or of PIL images
(ids "0".."N-1"), or an already preprocessed tensor (N, C, H, W) (ids "0".."N-1").
``stimulus_ids`` relabels lists and tensors, and selects (in that order) from a stimulus set.
"""
from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from PIL import Image

from extractors.ahead import AHEAD
from rsa_bridge.errors import RSABridgeError, preview
from stimuli import StimulusError, StimulusSet, from_folder, load_stimulus_set, read_image
from stimuli.pixels import IMAGE_READING_ATTRS, to_rgb
from stimuli.stimulus_set import MANIFEST

Transform = Callable[[Image.Image], torch.Tensor]


@dataclass(frozen=True)
class Inputs:
    """Stimuli ready for batching.

    Attributes:
        ids: stimulus ids in order, unique.
        load: ``load(start, stop)`` -> float tensor (stop - start, C, H, W) of those stimuli.
        preprocessing: how pixels became the tensor (for provenance).
        source: name of the stimulus set, or None.
        attrs: provenance of how images were read (:data:`stimuli.pixels.IMAGE_READING_ATTRS`, e.g.
            ``exif_orientation: applied``); empty for a tensor given by the caller.
    """

    ids: list[str]
    load: Callable[[int, int], torch.Tensor]
    preprocessing: str
    source: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)


def _check_ids(ids: Sequence[Any], n: int, what: str) -> list[str]:
    ids = [str(i) for i in ids]
    if len(ids) != n:
        raise RSABridgeError(f"{len(ids)} stimulus ids were given for {n} {what}; give one id per stimulus")
    dup = [i for i, c in Counter(ids).items() if c > 1]
    if dup:
        raise RSABridgeError(f"duplicate stimulus ids {preview(dup)} among the {what}; ids must be unique")
    return ids


def _stack(tensors: list[torch.Tensor], ids: list[str]) -> torch.Tensor:
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) > 1:
        first = tuple(tensors[0].shape)
        other = next(i for i, t in zip(ids, tensors) if tuple(t.shape) != first)
        raise RSABridgeError(
            f"preprocessed stimuli differ in size ({ids[0]!r}: {first}, {other!r}: ...); "
            "use a transform that crops or resizes every image to one size"
        )
    return torch.stack(tensors).float()


def _image_loader(
    items: Sequence[Path | Image.Image], ids: list[str], transform: Transform | None, label: str
) -> Callable[[int, int], torch.Tensor]:
    if transform is None:
        raise RSABridgeError(
            f"no preprocessing is known for {label} (it was not made by extractors.load_model); pass "
            "transform= (a callable PIL.Image -> tensor (3, H, W)) or an already preprocessed tensor (N, 3, H, W)"
        )

    def load(start: int, stop: int) -> torch.Tensor:
        tensors = []
        for item in items[start:stop]:
            out = None if isinstance(item, Image.Image) else AHEAD.take(item, transform)  # extractors.ahead
            if out is None:
                image = to_rgb(item, f"image {ids[start]!r}") if isinstance(item, Image.Image) else read_image(item)
                out = transform(image)
            if not isinstance(out, torch.Tensor):
                raise RSABridgeError(f"the transform returned a {type(out).__name__}, not a tensor (C, H, W)")
            tensors.append(out)
        return _stack(tensors, ids[start:stop])

    return load


def _from_set(stim: StimulusSet, transform: Transform | None, ids: Sequence[str] | None, label: str, pre: str):
    if ids is not None:
        stim = stim.subset([str(i) for i in ids])
    return Inputs(stim.stimulus_ids, _image_loader(stim.paths, stim.stimulus_ids, transform, label), pre, stim.name,
                  dict(IMAGE_READING_ATTRS))


def _from_tensor(tensor: torch.Tensor, ids: Sequence[str] | None) -> Inputs:
    if tensor.ndim < 2 or tensor.shape[0] == 0:
        raise RSABridgeError(f"an input tensor must be (N, C, H, W) with N >= 1, not shape {tuple(tensor.shape)}")
    if not tensor.is_floating_point():
        raise RSABridgeError(
            f"the input tensor has dtype {tensor.dtype}; pass preprocessed float images (N, 3, H, W), "
            "e.g. normalised with the weights' transforms"
        )
    n = tensor.shape[0]
    labels = _check_ids(ids if ids is not None else range(n), n, "tensor rows")
    return Inputs(labels, lambda start, stop: tensor[start:stop].float(), "tensor given (preprocessed by the caller)")


def as_inputs(
    images: Any,
    *,
    transform: Transform | None,
    stimulus_ids: Sequence[str] | None = None,
    default_transform: Transform | None = None,
    model_label: str = "the model",
    preprocessing: str = "",
) -> Inputs:
    """Normalise ``images`` (see module docstring) into :class:`Inputs`.

    ``transform`` is the caller's explicit choice (an error with a tensor); ``default_transform``
    (the model's own) is used for images when ``transform`` is None and ignored for a tensor.

    Raises:
        RSABridgeError: duplicate ids or file stems, wrong id count, a transform given for a tensor,
            images without a known transform, no images.
        StimulusError: a missing or unreadable image (the message names the file).
    """
    if isinstance(images, torch.Tensor):
        if transform is not None:
            raise RSABridgeError(
                "transform= applies to images, not to an already preprocessed tensor; preprocess it yourself"
            )
        return _from_tensor(images, stimulus_ids)
    transform = transform if transform is not None else default_transform
    if isinstance(images, StimulusSet):
        return _from_set(images, transform, stimulus_ids, model_label, preprocessing)
    if isinstance(images, (str, os.PathLike)):
        folder = Path(images)
        stim = load_stimulus_set(folder) if (folder / MANIFEST).is_file() else from_folder(folder)
        return _from_set(stim, transform, stimulus_ids, model_label, preprocessing)
    if isinstance(images, Sequence) and not isinstance(images, (bytes, bytearray)):
        items = list(images)
        if not items:
            raise RSABridgeError("no images were given")
        if all(isinstance(i, Image.Image) for i in items):
            ids = _check_ids(stimulus_ids if stimulus_ids is not None else range(len(items)), len(items), "images")
            return Inputs(ids, _image_loader(items, ids, transform, model_label), preprocessing,
                          attrs=dict(IMAGE_READING_ATTRS))
        if all(isinstance(i, (str, os.PathLike)) for i in items):
            paths = [Path(i) for i in items]
            missing = [str(p) for p in paths if not p.is_file()]
            if missing:
                raise StimulusError(f"{len(missing)} image file(s) do not exist, e.g. {missing[:3]}")
            if stimulus_ids is None:
                stems = [p.stem for p in paths]
                dup = [s for s, c in Counter(stems).items() if c > 1]
                if dup:
                    raise RSABridgeError(
                        f"several image files share the name {preview(dup)} (ids are file names without suffix); "
                        "rename them or pass stimulus_ids= / a stimulus set with a manifest"
                    )
            ids = _check_ids(stimulus_ids if stimulus_ids is not None else [p.stem for p in paths], len(paths), "images")
            return Inputs(ids, _image_loader(paths, ids, transform, model_label), preprocessing,
                          attrs=dict(IMAGE_READING_ATTRS))
    raise RSABridgeError(
        f"images must be a StimulusSet, a folder, a list of image paths or PIL images, or a tensor (N, 3, H, W), "
        f"not {type(images).__name__}"
    )
