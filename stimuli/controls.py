"""Image-statistics control models: features that any network layer should beat.

Each model maps images to an (n_stimuli, n_features) float64 array, returned with the stimulus ids
(:class:`ControlFeatures`), ready to become an RDM next to network layers:

- ``pixels``: the resized RGB (or grey) pixel values in [0, 1];
- ``luminance_contrast``: mean luma, RMS contrast, Michelson contrast;
- ``spatial_frequency``: Fourier power in log-spaced radial frequency bands x orientation bins;
- ``gabor``: a V1-like complex-cell model, quadrature Gabor energy at several frequencies and
  orientations, averaged over a grid of image cells.

Images are a :class:`~stimuli.StimulusSet`, or a list of image paths, PIL images or arrays
((H, W) grey or (H, W, 3) RGB; uint8 in 0..255 or floats in [0, 1]). Luma is
``0.299 R + 0.587 G + 0.114 B`` of the (gamma-encoded) values in [0, 1]. Frequencies are in cycles per
image; orientation ``theta`` is the direction along which luminance changes, anticlockwise from the
x axis with y pointing up (0: vertical stripes, 90 degrees: horizontal stripes).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import numpy as np
from PIL import Image

from stimuli.errors import StimulusError
from stimuli.stimulus_set import StimulusSet, read_image

ImageLike = Union[str, Path, Image.Image, np.ndarray]
#: what every control model accepts: a stimulus set or a list of images
Images = Union[StimulusSet, Sequence[ImageLike]]
Ids = Optional[Sequence[str]]
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class ControlFeatures:
    """Features of one control model.

    Attributes:
        values: (n_stimuli, n_features) float64.
        stimulus_ids: the n_stimuli ids, in row order.
        feature_names: the n_features names, in column order.
        model: the registry name of the model.
        params: the model's settings (for provenance).
    """

    values: np.ndarray
    stimulus_ids: list[str]
    feature_names: list[str]
    model: str
    params: dict[str, Any] = field(default_factory=dict)


def _as_rgb_array(image: ImageLike) -> np.ndarray:
    """(H, W, 3) float64 in [0, 1] (a grey image repeated on 3 channels)."""
    if isinstance(image, (str, Path)):
        image = read_image(image)
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.dtype == np.uint8:
        array = array / 255.0
    array = array.astype(np.float64)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise StimulusError(f"an image array must be (H, W) or (H, W, 3), got shape {array.shape}")
    return array[:, :, :3]


def _resize(array: np.ndarray, size: int | None) -> np.ndarray:
    """(H, W[, C]) float array resized to (size, size[, C]) with PIL's antialiased bilinear filter."""
    if size is None or array.shape[:2] == (size, size):
        return array
    if array.ndim == 2:
        resized = Image.fromarray(array.astype(np.float32)).resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(resized, dtype=np.float64)
    return np.stack([_resize(array[:, :, c], size) for c in range(array.shape[2])], axis=2)


def load_images(images: Images, stimulus_ids: Ids = None) -> tuple[Iterator[np.ndarray], list[str]]:
    """The images as (H, W, 3) float arrays in [0, 1], read one at a time as the iterator is consumed
    (a large set is never held at full size), and their ids.

    Ids come from the set, from ``stimulus_ids``, or else are ``'0', '1', ...`` in list order.
    """
    if isinstance(images, StimulusSet):
        default_ids, images = list(images.stimulus_ids), list(images.paths)
    else:
        images = list(images)
        default_ids = [str(i) for i in range(len(images))]
    ids = default_ids if stimulus_ids is None else [str(s) for s in stimulus_ids]
    if len(ids) != len(images):
        raise StimulusError(f"{len(ids)} stimulus ids for {len(images)} images")
    if not images:
        raise StimulusError("no images given")
    return map(_as_rgb_array, images), ids


def luma(rgb: np.ndarray) -> np.ndarray:
    """(H, W) luma ``0.299 R + 0.587 G + 0.114 B`` of an (H, W, 3) array."""
    return rgb @ LUMA_WEIGHTS


def _square(array: np.ndarray, size: int | None, model: str) -> np.ndarray:
    out = _resize(array, size)
    if out.shape[0] != out.shape[1]:
        raise StimulusError(f"the {model} model needs square images; give a size to resize them, got {out.shape[:2]}")
    return out


def pixel_features(images: Images, stimulus_ids: Ids = None, size: int | None = 64, grey: bool = False) -> ControlFeatures:
    """Pixel values in [0, 1], each image resized to ``size`` x ``size`` (None: as it is; then all
    images must have one shape); (n, size*size*3) in row-major (row, column, channel) order, or
    (n, size*size) luma when ``grey``."""
    arrays, ids = load_images(images, stimulus_ids)
    rows = []
    for array in arrays:
        array = _resize(array, size)
        rows.append((luma(array) if grey else array).ravel())
        if rows[-1].size != rows[0].size:
            raise StimulusError("the pixel model needs images of one shape; give a size to resize them")
        if len(rows) == 1:
            h, w = array.shape[:2]
    names = [f"px_r{r}_c{c}" for r in range(h) for c in range(w)] if grey else [
        f"px_r{r}_c{c}_{ch}" for r in range(h) for c in range(w) for ch in "rgb"]
    return ControlFeatures(np.stack(rows), ids, names, "pixels", {"size": size, "grey": grey})


def luminance_contrast_features(images: Images, stimulus_ids: Ids = None, size: int | None = None) -> ControlFeatures:
    """(n, 3): mean luma, RMS contrast (population standard deviation of luma) and Michelson contrast
    ``(max - min) / (max + min)`` (0 for a black image), on the image as it is (or resized to ``size``)."""
    arrays, ids = load_images(images, stimulus_ids)
    rows = []
    for array in arrays:
        lum = luma(_resize(array, size))
        lo, hi = lum.min(), lum.max()
        rows.append([lum.mean(), lum.std(), (hi - lo) / (hi + lo) if hi + lo > 0 else 0.0])
    names = ["mean_luminance", "rms_contrast", "michelson_contrast"]
    return ControlFeatures(np.asarray(rows, dtype=np.float64), ids, names, "luminance_contrast", {"size": size})


def frequency_grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, n) frequency coordinates (cycles per image) of ``numpy.fft.fft2`` bins: (fx, fy), y up."""
    f = np.fft.fftfreq(n) * n
    return f[None, :] * np.ones((n, 1)), -f[:, None] * np.ones((1, n))


def band_edges(n: int, n_bands: int) -> np.ndarray:
    """(n_bands + 1,) log-spaced radial band edges in cycles per image, from 1 to the corner ``n / sqrt(2)``."""
    return np.geomspace(1.0, n / np.sqrt(2.0), n_bands + 1)


def _frequency_bins(n: int, n_bands: int, n_orientations: int) -> tuple[np.ndarray, np.ndarray]:
    """For an n x n spectrum: the mask of bins at >= 1 cycle/image, and each kept bin's
    ``band * n_orientations + orientation`` index (see :func:`spatial_frequency_features`)."""
    fx, fy = frequency_grid(n)
    radius = np.hypot(fx, fy)
    band = np.minimum(np.searchsorted(band_edges(n, n_bands), radius, side="right") - 1, n_bands - 1)
    theta = np.mod(np.arctan2(fy, fx), np.pi)
    width = np.pi / n_orientations
    orient = np.floor((theta + width / 2) / width).astype(int) % n_orientations
    keep = radius >= 1.0
    return keep, band[keep] * n_orientations + orient[keep]


def spatial_frequency_features(
    images: Images,
    stimulus_ids: Ids = None,
    size: int | None = 128,
    n_bands: int = 8,
    n_orientations: int = 4,
    log: bool = True,
    eps: float = 1e-10,
) -> ControlFeatures:
    """Fourier power of the mean-subtracted luma in radial bands x orientation bins.

    Power of bin ``k`` is ``|FFT(L - mean L)[k]|**2 / N**4`` for an N x N image, so the powers of all
    bins sum to the luma variance (Parseval). Bands are :func:`band_edges` (a bin on an edge goes to the
    higher band, the corner to the last); orientation bins are centred on ``k * 180 / n_orientations``
    degrees. Returns (n, n_bands * n_orientations), band-major; ``log``: ``log10(power + eps)``.
    """
    arrays, ids = load_images(images, stimulus_ids)
    bins: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # image size -> (bins kept, their band x orientation)
    rows = []
    for array in arrays:
        lum = luma(_square(array, size, "spatial_frequency"))
        n = lum.shape[0]
        if n not in bins:
            bins[n] = _frequency_bins(n, n_bands, n_orientations)
        keep, index = bins[n]
        power = np.abs(np.fft.fft2(lum - lum.mean())) ** 2 / float(n) ** 4
        rows.append(np.bincount(index, weights=power[keep], minlength=n_bands * n_orientations))
    values = np.stack(rows)
    if log:
        values = np.log10(values + eps)
    names = [f"sf_band{b}_ori{round(o * 180 / n_orientations)}" for b in range(n_bands) for o in range(n_orientations)]
    params = {"size": size, "n_bands": n_bands, "n_orientations": n_orientations, "log": log, "eps": eps}
    return ControlFeatures(values, ids, names, "spatial_frequency", params)


def gabor_bank(
    n: int, frequencies: Sequence[float], n_orientations: int, bandwidth_octaves: float = 1.0
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Frequency responses (n_filters, n, n) of complex Gabor filters, and their (frequency, degrees).

    Filter ``(f0, theta)`` is the Gaussian ``H(k) = exp(-|k - k0|**2 / (2 sigma**2))`` centred on
    ``k0 = f0 (cos theta, sin theta)`` (cycles per image, y up), i.e. a complex Gabor in space whose
    real and imaginary parts are the even and odd members of a quadrature pair. ``sigma`` puts the
    half-amplitude points ``bandwidth_octaves`` apart: ``f0 (2**(b/2) - 2**(-b/2)) / (2 sqrt(2 ln 2))``.
    """
    fx, fy = frequency_grid(n)
    filters, labels = [], []
    for f0 in frequencies:
        if not 0 < f0 < n / 2:
            raise StimulusError(
                f"Gabor frequency {f0} cycles/image must be between 0 and {n / 2} (Nyquist) for size {n}"
            )
        sigma = f0 * (2 ** (bandwidth_octaves / 2) - 2 ** (-bandwidth_octaves / 2)) / (2 * np.sqrt(2 * np.log(2)))
        for o in range(n_orientations):
            theta = np.pi * o / n_orientations
            kx, ky = f0 * np.cos(theta), f0 * np.sin(theta)
            filters.append(np.exp(-((fx - kx) ** 2 + (fy - ky) ** 2) / (2 * sigma**2)))
            labels.append((float(f0), 180.0 * o / n_orientations))
    return np.stack(filters), labels


def gabor_energy_features(
    images: Images,
    stimulus_ids: Ids = None,
    size: int | None = 128,
    frequencies: Sequence[float] = (4, 8, 16, 32),
    n_orientations: int = 8,
    bandwidth_octaves: float = 1.0,
    grid: int = 4,
) -> ControlFeatures:
    """V1-like complex-cell energy: ``|L' * g|`` for every filter ``g`` of :func:`gabor_bank`, where
    ``L'`` is the luma minus its mean (circular convolution via FFT), averaged over a ``grid`` x ``grid``
    tiling of the image. A grating ``A cos(2 pi k.x / N)`` gives energy ``A/2 H(k)`` everywhere.
    Returns (n, n_filters * grid * grid), filter-major then cell row, cell column.
    """
    arrays, ids = load_images(images, stimulus_ids)
    lums = [luma(_square(a, size, "gabor")) for a in arrays]
    n = lums[0].shape[0]
    if any(lum.shape != (n, n) for lum in lums):
        raise StimulusError("the gabor model needs images of one size; give a size to resize them")
    if not 1 <= grid <= n:
        raise StimulusError(f"grid must be between 1 and the image size {n}, got {grid}")
    bank, labels = gabor_bank(n, frequencies, n_orientations, bandwidth_octaves)
    cell = (np.arange(n) * grid) // n
    cell_index = (cell[:, None] * grid + cell[None, :]).ravel()
    counts = np.bincount(cell_index, minlength=grid * grid)
    rows = []
    for lum in lums:
        spectrum = np.fft.fft2(lum - lum.mean())
        energy = np.abs(np.fft.ifft2(spectrum[None] * bank, axes=(1, 2))).reshape(len(bank), -1)
        pooled = np.stack([np.bincount(cell_index, weights=e, minlength=grid * grid) for e in energy]) / counts
        rows.append(pooled.ravel())
    names = [f"gabor_f{f:g}_o{d:g}_r{r}_c{c}" for f, d in labels for r in range(grid) for c in range(grid)]
    params = {"size": size, "frequencies": [float(f) for f in frequencies], "n_orientations": n_orientations,
              "bandwidth_octaves": bandwidth_octaves, "grid": grid}
    return ControlFeatures(np.stack(rows), ids, names, "gabor", params)


#: control models: name -> function(images, stimulus_ids=None, **params) -> ControlFeatures
CONTROL_MODELS: dict[str, Callable[..., ControlFeatures]] = {
    "pixels": pixel_features,
    "luminance_contrast": luminance_contrast_features,
    "spatial_frequency": spatial_frequency_features,
    "gabor": gabor_energy_features,
}


def control_features(model: str, images: Images, stimulus_ids: Ids = None, **params: Any) -> ControlFeatures:
    """Features of the control model ``model`` (a key of :data:`CONTROL_MODELS`)."""
    if model not in CONTROL_MODELS:
        raise StimulusError(f"unknown control model {model!r}; choose one of {sorted(CONTROL_MODELS)}")
    return CONTROL_MODELS[model](images, stimulus_ids, **params)
