"""EXIF orientation is applied when images are read for the network (stimuli.pixels.apply_exif_orientation).

Expected images come from numpy index arithmetic written from the EXIF specification (independent of
Pillow's ``exif_transpose``): orientation -> how the stored pixel rows become the displayed image.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from extractors.extract import extract
from stimuli import read_image
from stimuli.pixels import EXIF_ORIENTATION_TAG, apply_exif_orientation, to_rgb

#: orientation -> displayed image from the stored array A (rows, cols, 3), by the EXIF 2.3 definitions
DISPLAYED = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],  # mirrored left-right
    3: lambda a: a[::-1, ::-1],  # rotated 180
    4: lambda a: a[::-1, :],  # mirrored top-bottom
    5: lambda a: a.transpose(1, 0, 2),  # transposed (main diagonal)
    6: lambda a: np.rot90(a, k=-1),  # rotate 90 clockwise to display
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),  # transverse (anti-diagonal)
    8: lambda a: np.rot90(a, k=1),  # rotate 90 counter-clockwise to display
}


def _stored(h: int = 3, w: int = 5) -> np.ndarray:
    values = np.arange(h * w * 3, dtype=np.uint8).reshape(h, w, 3) * 5
    return values


def _save(array: np.ndarray, path, orientation: int, **options) -> None:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION_TAG] = orientation
    Image.fromarray(array).save(path, exif=exif.tobytes(), **options)


@pytest.mark.parametrize("orientation", sorted(DISPLAYED))
def test_every_orientation_is_applied_exactly(tmp_path, orientation):
    stored = _stored()
    path = tmp_path / f"o{orientation}.png"  # PNG eXIf: lossless, so pixels compare exactly
    _save(stored, path, orientation)
    with Image.open(path) as raw:
        assert raw.getexif()[EXIF_ORIENTATION_TAG] == orientation  # the tag really is in the file
    got = np.asarray(read_image(path))
    np.testing.assert_array_equal(got, DISPLAYED[orientation](stored))


def test_a_jpeg_with_orientation_6_is_seen_upright(tmp_path):
    # two flat halves, 32 px blocks: JPEG keeps them within a few grey levels
    stored = np.zeros((32, 64, 3), np.uint8)
    stored[:, :32] = (250, 20, 20)
    stored[:, 32:] = (20, 20, 250)
    path = tmp_path / "photo.jpg"
    _save(stored, path, 6, quality=100, subsampling=0)
    got = np.asarray(read_image(path)).astype(int)
    want = DISPLAYED[6](stored).astype(int)
    assert got.shape == (64, 32, 3)  # portrait, as displayed; the sensor's array is landscape
    away = np.r_[0:24, 40:64]  # rows away from the colour edge (JPEG rings there)
    assert np.abs(got[away] - want[away]).max() <= 8
    assert got[:32].mean(axis=(0, 1))[0] > 200 and got[32:].mean(axis=(0, 1))[2] > 200  # red on top


def test_in_memory_images_and_images_without_the_tag(tmp_path):
    stored = _stored()
    path = tmp_path / "o8.png"
    _save(stored, path, 8)
    with Image.open(path) as img:
        img.load()
        np.testing.assert_array_equal(np.asarray(to_rgb(img)), DISPLAYED[8](stored))
    plain = Image.fromarray(stored)
    assert apply_exif_orientation(plain) is plain  # no tag: untouched, not copied
    np.testing.assert_array_equal(np.asarray(to_rgb(plain)), stored)


def test_provenance_records_that_orientation_was_applied(tmp_path):
    stored = _stored(4, 6)
    paths = []
    for i, orientation in enumerate((1, 6)):
        paths.append(tmp_path / f"s{i}.png")
        _save(stored, paths[-1], orientation)

    def transform(image: Image.Image) -> torch.Tensor:
        return torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1).sum(dim=(1, 2))[:, None, None]

    net = nn.Sequential(nn.Flatten())
    acts = extract(net, paths, ["0"], transform=transform, progress=False)
    assert acts["0"].attrs["exif_orientation"] == "applied"
    tensor_acts = extract(net, torch.rand(2, 3, 1, 1), ["0"], progress=False)
    assert "exif_orientation" not in tensor_acts["0"].attrs  # a caller's tensor was not read by us
