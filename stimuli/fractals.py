"""FractalDB-style fractal stimulus sets (Kataoka et al., ACCV 2020 / IJCV 2022), fully seeded.

Two stages, as in FractalDB:

1. **Category search** (:func:`search_categories`): draw random IFS (2..7 maps, ``a..f`` ~ U(-1, 1),
   ``p_i`` proportional to ``|det|``), render each with 100,000 chaos-game points on a 512 x 512 point
   image (padding 6) and accept it when its filling rate (non-zero pixels / all pixels) is >= 0.2.
2. **Instances** (:func:`render_instance`): for every category, each of the 25 weight vectors
   (:func:`stimuli.ifs.weight_vectors`) and each instance draw, run the chaos game (200,000 points) and
   draw a random non-empty 3 x 3 patch per point (or single points) on a 362 x 362 image; save it in
   the 4 flips.

Randomness: every candidate system and every rendered image has its own stream,
``numpy.random.default_rng(SeedSequence(seed, spawn_key=key))`` (:func:`stream_rng`), so the same seed
gives byte-identical PNGs whatever the order or batching. Unlike FractalDB, the chaos-game draws
differ between instances (FractalDB reused one fixed sequence and left its patches unseeded).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from PIL import Image

from stimuli import ifs
from stimuli.atomic import building_folder, check_target_folder
from stimuli.csv_cells import frame_to_csv
from stimuli.errors import StimulusError
from stimuli.keywords import refuse_keywords
from stimuli.limits import check_image_pixels, check_memory
from stimuli.stimulus_set import MANIFEST, StimulusSet, load_stimulus_set

#: spawn_key prefixes of the random streams
SEARCH_STREAM, INSTANCE_STREAM = 0, 1


def stream_rng(seed: int, *key: int) -> np.random.Generator:
    """The Generator of one random stream: ``default_rng(SeedSequence(seed, spawn_key=key))``."""
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=tuple(int(k) for k in key)))


@dataclass(frozen=True)
class SearchSettings:
    """How categories are searched (FractalDB defaults)."""

    n_points: int = 100_000
    size: int = 512
    pad: int = 6
    threshold: float = 0.2


@dataclass(frozen=True)
class RenderSettings:
    """How each image of :func:`make_fractal_set` is drawn (FractalDB defaults).

    Attributes:
        size: image side in pixels.
        points: chaos-game points per image.
        delta: weight-vector step (factors 1 - 2 delta .. 1 + 2 delta).
        draw: ``'patch'`` (random 3 x 3 patches) or ``'point'``.
        pad: border in pixels.

    Example::

        >>> RenderSettings(size=64).points
        200000
    """

    size: int = 362
    points: int = 200_000
    delta: float = 0.1
    draw: str = "patch"
    pad: int = 6


@dataclass(frozen=True)
class FractalCategory:
    """An accepted IFS.

    Attributes:
        index: category number (0-based, in acceptance order).
        system: the IFS (params (n_maps, 6) and probabilities (n_maps,)).
        candidate: the candidate number whose stream produced it (``stream_rng(seed, 0, candidate)``).
        filling_rate: the search statistic (fraction of lit pixels of its search image).
    """

    index: int
    system: ifs.IFSystem
    candidate: int
    filling_rate: float


@dataclass
class SearchResult:
    """Accepted categories plus the search's cost: ``n_candidates`` tried in ``seconds``."""

    categories: list[FractalCategory]
    n_candidates: int
    seconds: float
    settings: SearchSettings = field(default_factory=SearchSettings)

    @property
    def acceptance_rate(self) -> float:
        return len(self.categories) / max(self.n_candidates, 1)


def evaluate_candidate(
    seed: int, candidate: int, settings: SearchSettings = SearchSettings()
) -> tuple[ifs.IFSystem, float]:
    """Draw candidate ``candidate`` of ``seed`` and its filling rate.

    The stream ``stream_rng(seed, 0, candidate)`` gives, in order: the system (:func:`stimuli.ifs.random_system`)
    and the chaos-game draws of its point image (:func:`stimuli.ifs.render`, ``draw='point'``).
    """
    rng = stream_rng(seed, SEARCH_STREAM, candidate)
    system = ifs.random_system(rng)
    image = ifs.render(system, settings.n_points, settings.size, rng, pad=settings.pad, draw="point")
    return system, ifs.filling_rate(image)


def search_categories(
    n_categories: int,
    seed: int = 0,
    settings: SearchSettings = SearchSettings(),
    max_candidates: int | None = None,
    on_accept: Callable[[FractalCategory], None] | None = None,
) -> SearchResult:
    """Try candidates 0, 1, 2, ... until ``n_categories`` reach the filling-rate threshold.

    Args:
        n_categories: how many categories to accept.
        seed: master seed; candidate ``i`` is :func:`evaluate_candidate` ``(seed, i)``.
        settings: points, image size, padding and threshold of the search image.
        max_candidates: give up after this many (default ``1000 * n_categories``).
        on_accept: called with every accepted category (progress reporting).

    Raises:
        StimulusError: ``max_candidates`` were tried before enough categories passed.
    """
    if n_categories < 1:
        raise StimulusError(f"need at least 1 category, got {n_categories}")
    limit = max_candidates if max_candidates is not None else 1000 * n_categories
    start = time.perf_counter()
    accepted: list[FractalCategory] = []
    candidate = 0
    while len(accepted) < n_categories:
        if candidate >= limit:
            raise StimulusError(
                f"only {len(accepted)} of {n_categories} IFS categories reached a filling rate of "
                f"{settings.threshold} in {limit} candidates; lower the threshold or raise max_candidates"
            )
        system, rate = evaluate_candidate(seed, candidate, settings)
        if rate >= settings.threshold:
            category = FractalCategory(len(accepted), system, candidate, rate)
            accepted.append(category)
            if on_accept is not None:
                on_accept(category)
        candidate += 1
    return SearchResult(accepted, candidate, time.perf_counter() - start, settings)


def render_instance(
    category: FractalCategory,
    weight_index: int,
    instance: int,
    seed: int = 0,
    size: int = 362,
    n_points: int = 200_000,
    delta: float = 0.1,
    draw: str = "patch",
    pad: int = 6,
) -> np.ndarray:
    """One unflipped (size, size) uint8 instance image of ``category``.

    The category's maps are multiplied by weight vector ``weight_index`` (0..24) of
    :func:`stimuli.ifs.weight_vectors` ``(delta)``; the selection probabilities stay the category's.
    Random stream: ``stream_rng(seed, 1, category.index, weight_index, instance)`` (chaos game, then patches).
    """
    weights = ifs.weight_vectors(delta)
    if not 0 <= weight_index < len(weights):
        raise StimulusError(f"weight_index must be in 0..{len(weights) - 1}, got {weight_index}")
    rng = stream_rng(seed, INSTANCE_STREAM, category.index, weight_index, instance)
    system = category.system.weighted(weights[weight_index])
    return ifs.render(system, n_points, size, rng, pad=pad, draw=draw)


#: manifest columns of a fractal set, in order
MANIFEST_COLUMNS = ("stimulus_id", "filename", "category", "weight_index", "flip", "instance")


def _category_table(categories: list[FractalCategory]) -> pd.DataFrame:
    rows = []
    for category in categories:
        for i, (params, p) in enumerate(zip(category.system.params, category.system.probabilities)):
            rows.append(
                {"category": category.index, "candidate": category.candidate, "filling_rate": category.filling_rate,
                 "map": i, **dict(zip(ifs.PARAM_NAMES, params.tolist())), "probability": float(p)}
            )
    return pd.DataFrame(rows)


def _save_png(image: np.ndarray, path: Path) -> None:
    Image.fromarray(np.ascontiguousarray(image)).save(path, format="PNG")


#: the most images one fractal set may have (FractalDB-10k has 10,000 x 1,000 = 10 million; a set twice that)
MAX_IMAGES = 20_000_000


def make_fractal_set(
    out: str | Path,
    categories: int = 100,
    instances: int = 10,
    seed: int = 0,
    render: RenderSettings = RenderSettings(),
    search: SearchSettings = SearchSettings(),
    overwrite: bool = False,
    progress: bool = False,
    **stray,
) -> StimulusSet:
    """Search ``categories`` IFS categories and write a FractalDB-style stimulus set to ``out``.

    Every category gets 25 weight vectors x ``instances`` draws x 4 flips
    = ``100 * instances`` greyscale ``size`` x ``size`` PNGs, in ``out/c{category}/``. The folder is
    built next to ``out`` and renamed into place when complete. It holds:

    - ``manifest.csv``: ``stimulus_id, filename, category, weight_index, flip, instance``;
    - ``categories.csv``: every category's maps (``a..f``, ``probability``), search candidate and filling rate;
    - ``fractals.json``: the settings (seed, sizes, points, delta, drawing, search settings and counts).

    Args:
        out: folder to create (must not exist or be empty, unless ``overwrite``).
        categories: number of IFS categories.
        instances: random draws per category and weight vector.
        seed: master seed; the same seed gives byte-identical PNGs.
        render: image size, chaos-game points, weight step, drawing style and border (:class:`RenderSettings`);
            those keywords on their own (``size=`` ...) are a TypeError naming the field.
        search: category-search settings (FractalDB: 100,000 points, 512 x 512, pad 6, rate >= 0.2).
        overwrite: replace an existing ``out``.
        progress: show tqdm progress bars (search, then rendering).

    Returns:
        The written set, loaded from ``out``.

    Example::

        small = make_fractal_set("fractals", categories=2, instances=1, render=RenderSettings(size=64, points=5000))
        len(small)   # 2 categories x 25 weight vectors x 1 instance x 4 flips = 200 images
    """
    refuse_keywords("make_fractal_set", stray, RenderSettings, "render")
    size, points, delta, draw, pad = render.size, render.points, render.delta, render.draw, render.pad
    if instances < 1:
        raise StimulusError(f"need at least 1 instance per weight vector, got {instances}")
    if draw not in ifs.DRAWERS:
        raise StimulusError(f"unknown drawing style {draw!r}; choose one of {sorted(ifs.DRAWERS)}")
    if size <= 2 * pad + 2:
        raise StimulusError(f"image size {size} is too small for a padding of {pad} pixels")
    if categories < 1 or points < 1:
        raise StimulusError(f"need at least 1 category and 1 point; got --categories {categories}, --points {points}")
    check_image_pixels(size, size, where=f"fractal --size {size}")
    n_images = categories * len(ifs.weight_vectors(delta)) * instances * len(ifs.FLIPS)
    if n_images > MAX_IMAGES:
        raise StimulusError(f"--categories {categories} x {len(ifs.weight_vectors(delta))} weight vectors x --instances "
                            f"{instances} x {len(ifs.FLIPS)} flips = {n_images:,} images is more than the limit of "
                            f"{MAX_IMAGES:,}; use fewer categories or instances")
    # one image: the chaos-game points (x, y float64 + pixel indices) and a few size x size canvases
    check_memory(32.0 * max(points, search.n_points) + 16.0 * max(size, search.size) ** 2,
                 f"fractal images of {size} x {size} pixels from {points:,} points",
                 "use a smaller --size (default 362) or fewer --points (default 200000)")
    out = Path(out)
    check_target_folder(out, overwrite)  # fail before the (long) search
    from tqdm.auto import tqdm

    n_weights = len(ifs.weight_vectors(delta))
    flips = sorted(ifs.FLIPS)
    with tqdm(total=categories, desc="search", unit="category", disable=not progress) as bar:
        result = search_categories(categories, seed, search, on_accept=lambda _: bar.update(1))
    widths = (max(5, len(str(categories - 1))), 2, max(3, len(str(instances - 1))))
    rows = []
    total = categories * n_weights * instances * len(flips)
    render_bar = tqdm(total=total, desc="render", unit="img", disable=not progress)
    with building_folder(out, overwrite) as tmp, render_bar as bar:
        for category in result.categories:
            folder = f"c{category.index:0{widths[0]}d}"
            (tmp / folder).mkdir()
            for weight_index in range(n_weights):
                for instance in range(instances):
                    image = render_instance(category, weight_index, instance, seed, size, points, delta, draw, pad)
                    for flip in flips:
                        stimulus_id = (
                            f"{folder}_w{weight_index:0{widths[1]}d}_i{instance:0{widths[2]}d}_f{flip}"
                        )
                        filename = f"{folder}/{stimulus_id}.png"
                        _save_png(ifs.FLIPS[flip](image), tmp / filename)
                        rows.append((stimulus_id, filename, category.index, weight_index, flip, instance))
                    bar.update(len(flips))
        frame_to_csv(pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS)), tmp / MANIFEST, index=False)
        frame_to_csv(_category_table(result.categories), tmp / "categories.csv", index=False)
        settings = {
            "generator": "stimuli.fractals.make_fractal_set",
            "seed": seed, "categories": categories, "instances": instances, "size": size, "points": points,
            "delta": delta, "draw": draw, "pad": pad, "weight_vectors": n_weights, "flips": len(flips),
            "search": asdict(search), "search_candidates": result.n_candidates,
            "search_acceptance_rate": result.acceptance_rate,
        }
        (tmp / "fractals.json").write_text(json.dumps(settings, indent=2) + "\n")
    return load_stimulus_set(out, name=out.name)
