"""Iterated function systems (IFS) for FractalDB-style fractals: sampling, chaos game, rasterisation.

An IFS here is ``n_maps`` affine maps ``w_i(x, y) = (a x + b y + e, c x + d y + f)`` with selection
probabilities ``p_i = |a_i d_i - b_i c_i| / sum_j |a_j d_j - b_j c_j|`` (Kataoka et al., "Pre-training
without Natural Images", ACCV 2020). The chaos game starts at ``(0, 0)`` and applies a randomly chosen
map at every step; the start point is the first plotted point (as in FractalDB). Points are rescaled
to the image, x and y independently, with ``pad`` pixels of border; the y axis points up.

Every random step takes a :class:`numpy.random.Generator`; there is no global random state.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from stimuli.errors import StimulusError

PARAM_NAMES: tuple[str, ...] = ("a", "b", "c", "d", "e", "f")
MIN_MAPS, MAX_MAPS = 2, 7
#: pixel value of drawn points and patches (FractalDB's grey)
GREY = 127
#: coordinates beyond this magnitude count as divergent
MAX_ABS = 1e10
#: points dropped before the first divergent one (FractalDB drops 100)
DIVERGENCE_MARGIN = 100


@dataclass(frozen=True)
class IFSystem:
    """One IFS.

    Attributes:
        params: (n_maps, 6) float64, columns ``a, b, c, d, e, f``.
        probabilities: (n_maps,) float64 selection probabilities, summing to 1.
    """

    params: np.ndarray
    probabilities: np.ndarray

    @property
    def n_maps(self) -> int:
        return int(self.params.shape[0])

    def weighted(self, weights: np.ndarray) -> "IFSystem":
        """Every map's ``a..f`` multiplied by ``weights`` (6,); the probabilities are kept (as FractalDB)."""
        return IFSystem(self.params * np.asarray(weights, dtype=np.float64)[None, :], self.probabilities)


def selection_probabilities(params: np.ndarray) -> np.ndarray:
    """``p_i = |a_i d_i - b_i c_i| / sum_j |a_j d_j - b_j c_j|`` for params (n_maps, 6); returns (n_maps,)."""
    params = np.asarray(params, dtype=np.float64)
    det = np.abs(params[:, 0] * params[:, 3] - params[:, 1] * params[:, 2])
    total = det.sum()
    if not total > 0:
        raise StimulusError("every map of this IFS is singular (all determinants are 0); draw another system")
    return det / total


def random_system(rng: np.random.Generator, n_maps: int | None = None) -> IFSystem:
    """A random IFS: ``n_maps`` ~ U{2..7} (unless given) maps with ``a..f`` ~ U(-1, 1).

    Draws, in this order: ``n_maps`` (one integer, only when not given) and the (n_maps, 6) parameters.
    """
    if n_maps is None:
        n_maps = int(rng.integers(MIN_MAPS, MAX_MAPS + 1))
    params = rng.uniform(-1.0, 1.0, size=(n_maps, 6))
    return IFSystem(params, selection_probabilities(params))


def weight_vectors(delta: float = 0.1) -> np.ndarray:
    """The 25 FractalDB weight vectors, (25, 6) over ``a..f``.

    Row 0 is all ones; row ``1 + 4 j + k`` multiplies parameter ``j`` (a=0 .. f=5) by the factor
    ``(1 - 2 delta, 1 - delta, 1 + delta, 1 + 2 delta)[k]`` and leaves the others at 1.
    """
    if isinstance(delta, bool) or not isinstance(delta, (int, float, np.floating, np.integer)) \
            or not np.isfinite(delta) or not 0 < delta < 0.5:
        raise StimulusError(f"the weight-vector step delta must be a number between 0 and 0.5 (exclusive), so every "
                            f"factor 1 - 2 delta .. 1 + 2 delta stays positive; got {delta!r}")
    factors = (1.0 - 2.0 * delta, 1.0 - delta, 1.0 + delta, 1.0 + 2.0 * delta)
    rows = [np.ones(6)]
    for j in range(6):
        for factor in factors:
            row = np.ones(6)
            row[j] = factor
            rows.append(row)
    return np.stack(rows)


def map_choices(system: IFSystem, n_steps: int, rng: np.random.Generator) -> np.ndarray:
    """(n_steps,) indices of the map applied at each chaos-game step, drawn with ``system.probabilities``.

    Draws ``n_steps`` uniforms ``u`` and picks the first map whose cumulative probability exceeds ``u``.
    """
    cdf = np.cumsum(system.probabilities)
    cdf[-1] = 1.0
    choices = np.searchsorted(cdf, rng.random(n_steps), side="right")
    return np.minimum(choices, system.n_maps - 1, out=choices)


def _compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """``outer o inner`` for stacks of affine maps stored as (2, 3, k): rows (a b e), (c d f)."""
    out = outer[:, 0, None, :] * inner[None, 0] + outer[:, 1, None, :] * inner[None, 1]
    out[:, 2] += outer[:, 2]
    return out


def iterate_maps(params: np.ndarray, choices: np.ndarray, block: int = 64) -> np.ndarray:
    """Chaos-game orbit from ``(0, 0)``: points (len(choices) + 1, 2), the start point first.

    ``z_k = w_{choices[k-1]}(z_{k-1})``, vectorised over blocks of ``block`` consecutive steps:

    1. the maps of every block are composed into one affine map per block (vectorised over blocks);
    2. the block start points follow sequentially, one composed map per block;
    3. every block is then iterated from its start point, all blocks side by side.

    Mathematically the sequential chaos game; the floating-point rounding differs from a step-by-step
    loop only in the last bits (checked in the tests). Divergent orbits give inf/NaN, see
    :func:`drop_divergent`. The result is a transposed view of a (2, n) array (columns contiguous).
    """
    params = np.asarray(params, dtype=np.float64)
    choices = np.asarray(choices, dtype=np.intp)
    n_steps = choices.size
    if n_steps == 0:
        return np.zeros((1, 2))
    n_blocks = -(-n_steps // block)
    # table (6, n_maps + 1), rows a b e c d f; the extra identity map pads the last block
    table = np.concatenate([params[:, [0, 1, 4, 2, 3, 5]].T, [[1.0], [0.0], [0.0], [0.0], [1.0], [0.0]]], axis=1)
    padded = np.full(n_blocks * block, params.shape[0], dtype=np.intp)
    padded[:n_steps] = choices
    order = np.ascontiguousarray(padded.reshape(n_blocks, block).T)  # order[r, j]: map of step r of block j
    maps = np.empty((6, n_blocks))

    def step_maps(r: int) -> np.ndarray:
        """(2, 3, n_blocks): the maps of step r of every block."""
        for row in range(6):
            np.take(table[row], order[r], out=maps[row], mode="clip")
        return maps.reshape(2, 3, n_blocks)

    with np.errstate(over="ignore", invalid="ignore"):
        composed = step_maps(0).copy()
        for r in range(1, block):
            composed = _compose(step_maps(r), composed)
        starts = np.empty((2, n_blocks))
        x = y = 0.0
        for j, (a, b, e, c, d, f) in enumerate(composed.reshape(6, n_blocks).T.tolist()):
            starts[0, j] = x
            starts[1, j] = y
            x, y = a * x + b * y + e, c * x + d * y + f
        orbit = np.empty((2, 1 + n_blocks * block))
        orbit[:, 0] = 0.0
        points = orbit[:, 1:].reshape(2, n_blocks, block)
        z = starts
        for r in range(block):
            m = step_maps(r)
            z = m[:, 0] * z[0] + m[:, 1] * z[1] + m[:, 2]
            points[:, :, r] = z
    return orbit[:, : n_steps + 1].T


def drop_divergent(points: np.ndarray, max_abs: float = MAX_ABS, margin: int = DIVERGENCE_MARGIN) -> np.ndarray:
    """Points (n, 2) up to the first divergent one (non-finite or |coordinate| > ``max_abs``),
    with the ``margin`` points before it also dropped; all points when none diverges."""
    with np.errstate(invalid="ignore"):
        if len(points) == 0 or (points.max() <= max_abs and points.min() >= -max_abs):  # NaN compares False
            return points
        good = np.abs(points).max(axis=1) <= max_abs
    first = int(np.argmin(good))
    return points[: max(first - margin, 0)]


def chaos_game(system: IFSystem, n_points: int, rng: np.random.Generator) -> np.ndarray:
    """``n_points`` chaos-game points (n_kept, 2) from ``(0, 0)``, divergent points dropped.

    Draws ``n_points - 1`` uniforms from ``rng`` (see :func:`map_choices`).
    """
    if n_points < 1:
        raise StimulusError(f"the chaos game needs at least 1 point, got {n_points}")
    choices = map_choices(system, n_points - 1, rng)
    return drop_divergent(iterate_maps(system.params, choices))


def points_to_pixels(points: np.ndarray, size: int, pad: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Pixel (rows, cols) of points (n, 2) on a ``size`` x ``size`` image, each (n,) int.

    x and y are rescaled independently so the points span ``[pad, size - pad]`` (then floored,
    and kept inside the image); rows count down from the top, so y points up. A coordinate with
    zero span sits in the middle.
    """
    if size <= 2 * pad:
        raise StimulusError(f"image size {size} leaves no room inside a padding of {pad} pixels")
    inner = float(size - 2 * pad)
    out = []
    for axis in (1, 0):
        values = points[:, axis]
        if values.size == 0:
            out.append(np.zeros(0, dtype=np.intp))
            continue
        lo, hi = values.min(), values.max()
        if hi > lo:
            scaled = (hi - values) if axis == 1 else (values - lo)
            scaled *= inner / (hi - lo)
            scaled += pad
        else:
            scaled = np.full(values.shape, pad + inner / 2)
        pixels = scaled.astype(np.intp)  # values are >= 0, so truncation is the floor
        np.minimum(pixels, size - 1, out=pixels)
        out.append(pixels)
    return out[0], out[1]


def draw_points(rows: np.ndarray, cols: np.ndarray, size: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """(size, size) uint8 image: ``GREY`` at every point's pixel, 0 elsewhere (``rng`` unused)."""
    image = np.zeros(size * size, dtype=np.uint8)
    image[rows * size + cols] = GREY
    return image.reshape(size, size)


def draw_patches(rows: np.ndarray, cols: np.ndarray, size: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """(size, size) uint8 image with a random non-empty 3x3 patch centred on every point.

    Each point draws a mask in 1..511 (one ``rng.integers`` call for all points); bit ``j`` lights
    the pixel at offset ``(j // 3 - 1, j % 3 - 1)`` from the point. Lit pixels are ``GREY``;
    overlapping patches combine as a union.
    """
    if rng is None:
        raise StimulusError("patch drawing needs a numpy Generator (rng)")
    masks = rng.integers(1, 512, size=rows.size, dtype=np.uint16)
    merged = np.zeros(size * size, dtype=np.uint16)
    np.bitwise_or.at(merged, rows * size + cols, masks)
    merged = merged.reshape(size, size)
    lit = np.zeros((size + 2, size + 2), dtype=bool)
    for bit in range(9):
        dr, dc = bit // 3, bit % 3
        lit[dr : dr + size, dc : dc + size] |= (merged & (1 << bit)) != 0
    return lit[1:-1, 1:-1].astype(np.uint8) * np.uint8(GREY)


#: drawing styles: name -> function(rows, cols, size, rng) -> uint8 image
DRAWERS: dict[str, Callable[..., np.ndarray]] = {"patch": draw_patches, "point": draw_points}


def render(
    system: IFSystem,
    n_points: int,
    size: int,
    rng: np.random.Generator,
    pad: int = 6,
    draw: str = "point",
) -> np.ndarray:
    """Chaos game + rescale + drawing: a (size, size) uint8 image of ``system``.

    Draws from ``rng`` the chaos-game choices first, then (``draw='patch'``) one mask per kept point.
    """
    if draw not in DRAWERS:
        raise StimulusError(f"unknown drawing style {draw!r}; choose one of {sorted(DRAWERS)}")
    rows, cols = points_to_pixels(chaos_game(system, n_points, rng), size, pad)
    return DRAWERS[draw](rows, cols, size, rng)


def filling_rate(image: np.ndarray) -> float:
    """Fraction of non-zero pixels of a 2-D image (FractalDB's filling rate)."""
    return float(np.count_nonzero(image)) / float(image.size)


#: flips: index -> function on a 2-D image (0 none, 1 top-bottom, 2 left-right, 3 both)
FLIPS: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    0: lambda image: image,
    1: np.flipud,
    2: np.fliplr,
    3: lambda image: np.flipud(np.fliplr(image)),
}
