"""Procedurally generated scenes with analytic depth: a ground plane seen in perspective, boxes on it.

A pinhole camera sits at height ``h`` above a flat ground and looks horizontally along +Z (camera
coordinates: x right, y down, z forward; metres). The ray of pixel (u, v) is
``d = ((u - cx) / f, (v - cy) / f, 1)``, so the distance along the optical axis (the depth) of the
point it hits is the ray parameter ``t`` itself. Depth is exact, per pixel centre, with no learning:

- ground (the plane ``y = h``): ``Z = h * f / (v - cy)`` for rows below the horizon row ``cy``;
- boxes (axis-aligned, standing on the ground): the nearest slab-method hit of the ray;
- everything else (sky, ground beyond it) lies on the far plane ``Z = far``.

Appearance carries the usual monocular cues: a ground checkerboard in world coordinates (texture
gradient), a sky gradient, per-face shading of boxes (front, sides, top), mild pixel noise. Every
random draw comes from one ``numpy.random.Generator`` seeded by the caller.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rsa_bridge.io import atomic_path

#: labels of :attr:`Scenes.labels`: 0 far plane / sky, 1 ground, 2 + k box k
FAR, GROUND, FIRST_BOX = 0, 1, 2


@dataclass(frozen=True)
class Camera:
    """Pinhole camera for an image of ``height`` x ``width`` pixels.

    Attributes:
        focal: focal length in pixels.
        cx, cy: principal point in pixels (cy is the horizon row: the camera looks horizontally).
        height_m: camera height above the ground in metres.
    """

    focal: float
    cx: float
    cy: float
    height_m: float

    def rays(self, height: int, width: int) -> np.ndarray:
        """(3, height, width) ray directions with z = 1 through every pixel centre."""
        v, u = np.meshgrid(np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64), indexing="ij")
        return np.stack([(u - self.cx) / self.focal, (v - self.cy) / self.focal, np.ones_like(u)])


@dataclass
class Scenes:
    """A batch of rendered scenes.

    Attributes:
        images: (N, 3, H, W) float32 RGB in [0, 1].
        depth: (N, H, W) float32 depth along the optical axis, metres (exact for the pixel centre).
        labels: (N, H, W) int16: 0 far plane, 1 ground, 2 + k the k-th box.
        stimulus_ids: N ids ``scene_0000`` ...
        attrs: generation settings (seed, size, far, ...), for provenance.
    """

    images: np.ndarray
    depth: np.ndarray
    labels: np.ndarray
    stimulus_ids: list[str]
    attrs: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.images.shape[0])


def ground_depth(camera: Camera, height: int, width: int, far: float) -> np.ndarray:
    """(H, W) depth of the bare ground plane: ``h f / (v - cy)`` below the horizon, capped at ``far``."""
    v = np.arange(height, dtype=np.float64)[:, None] - camera.cy
    with np.errstate(divide="ignore"):
        z = np.where(v > 0, camera.height_m * camera.focal / np.where(v > 0, v, 1.0), np.inf)
    return np.broadcast_to(np.minimum(z, far), (height, width)).copy()


def box_hit(rays: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slab-method intersection of rays from the origin with the box ``lo <= p <= hi``.

    Args:
        rays: (3, H, W) directions (z = 1).
        lo, hi: (3,) box corners in camera coordinates (metres).

    Returns:
        ``t`` (H, W): entry distance (= depth since d_z = 1), ``inf`` where the ray misses; and
        ``axis`` (H, W) int: the axis (0 x-side, 1 y-top/bottom, 2 z-front) whose face was entered.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / rays
        t1 = (lo[:, None, None] - 0.0) * inv
        t2 = (hi[:, None, None] - 0.0) * inv
    # a ray parallel to a slab (d = 0) is inside it for all t when 0 lies between lo and hi, never otherwise
    parallel = rays == 0
    inside = (lo[:, None, None] <= 0) & (hi[:, None, None] >= 0)
    tmin = np.where(parallel, np.where(inside, -np.inf, np.inf), np.minimum(t1, t2))
    tmax = np.where(parallel, np.where(inside, np.inf, -np.inf), np.maximum(t1, t2))
    t_near = tmin.max(axis=0)
    axis = tmin.argmax(axis=0)
    t_far = tmax.min(axis=0)
    hit = (t_near <= t_far) & (t_near > 0)
    return np.where(hit, t_near, np.inf), axis


def _checker(x: np.ndarray, z: np.ndarray, size: float) -> np.ndarray:
    return ((np.floor(x / size) + np.floor(z / size)) % 2).astype(np.float64)


def render_scene(
    rng: np.random.Generator,
    height: int,
    width: int,
    *,
    n_boxes: tuple[int, int] = (1, 3),
    far: float = 10.0,
    noise: float = 0.01,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One random scene: (3, H, W) image in [0, 1], (H, W) depth (m), (H, W) labels.

    Random draws, in order: camera (height 1.0-1.6 m, horizon row 25-40 % of the height, focal
    0.9-1.1 x width), ground and sky colours, the number of boxes, per box its distance (2-7 m),
    lateral centre, width, height and depth extent and colour, then the pixel noise.
    """
    camera = Camera(
        focal=float(rng.uniform(0.9, 1.1) * width),
        cx=(width - 1) / 2.0,
        cy=float(rng.uniform(0.25, 0.40) * height),
        height_m=float(rng.uniform(1.0, 1.6)),
    )
    rays = camera.rays(height, width)
    ground_rgb = rng.uniform([0.35, 0.25, 0.10], [0.65, 0.55, 0.35])
    sky_top = rng.uniform([0.25, 0.45, 0.75], [0.45, 0.65, 0.95])
    depth = ground_depth(camera, height, width, far)
    labels = np.where(np.isfinite(depth) & (depth < far), GROUND, FAR).astype(np.int16)
    axis_of = np.full((height, width), -1)
    colour_of: list[np.ndarray] = []
    for k in range(int(rng.integers(n_boxes[0], n_boxes[1] + 1))):
        z0 = float(rng.uniform(2.0, 7.0))
        half_fov = camera.cx / camera.focal
        xc = float(rng.uniform(-0.8, 0.8) * half_fov * z0)
        bw, bh, bd = (float(rng.uniform(0.4, 1.6)), float(rng.uniform(0.3, 2.0)), float(rng.uniform(0.4, 1.6)))
        lo = np.array([xc - bw / 2, camera.height_m - bh, z0])
        hi = np.array([xc + bw / 2, camera.height_m, z0 + bd])
        t, axis = box_hit(rays, lo, hi)
        nearer = t < depth
        depth = np.where(nearer, t, depth)
        labels = np.where(nearer, FIRST_BOX + k, labels).astype(np.int16)
        axis_of = np.where(nearer, axis, axis_of)
        colour_of.append(rng.uniform(0.15, 0.95, size=3))
    # appearance
    image = np.empty((3, height, width))
    v = np.arange(height, dtype=np.float64)[:, None] / max(height - 1, 1)
    sky = sky_top[:, None, None] * (1.0 - 0.5 * v[None]) + 0.5 * v[None] * np.array([0.85, 0.88, 0.92])[:, None, None]
    image[:] = np.broadcast_to(sky, (3, height, width))
    point = rays * depth[None]
    ground = labels == GROUND
    check = _checker(point[0], point[2], 1.0)
    ground_img = ground_rgb[:, None, None] * (0.75 + 0.25 * check[None])
    image = np.where(ground[None], ground_img, image)
    face_shade = np.array([0.7, 1.15, 1.0])  # side, top, front
    for k, colour in enumerate(colour_of):
        where = labels == FIRST_BOX + k
        shade = face_shade[np.clip(axis_of, 0, 2)]
        image = np.where(where[None], colour[:, None, None] * shade[None], image)
    image = image + rng.normal(0.0, noise, size=image.shape)
    return np.clip(image, 0.0, 1.0).astype(np.float32), depth.astype(np.float32), labels


def make_scenes(
    n: int,
    height: int = 32,
    width: int = 48,
    *,
    seed: int = 0,
    n_boxes: tuple[int, int] = (1, 3),
    far: float = 10.0,
    noise: float = 0.01,
) -> Scenes:
    """``n`` random scenes from one ``numpy.random.default_rng(seed)`` (same seed, same scenes).

    Args:
        n: number of scenes.
        height, width: image size in pixels.
        seed: seed of the generator that draws every random quantity.
        n_boxes: inclusive range of the number of boxes per scene.
        far: depth of the far plane (sky) in metres.
        noise: standard deviation of the additive Gaussian pixel noise (image units).

    Returns:
        :class:`Scenes` with images (N, 3, H, W) in [0, 1], depth (N, H, W) in metres, labels.
    """
    if n < 1 or height < 8 or width < 8:
        raise ValueError(f"need n >= 1 and images of at least 8 x 8 pixels; got n={n}, {height} x {width}")
    rng = np.random.default_rng(seed)
    rendered = [render_scene(rng, height, width, n_boxes=n_boxes, far=far, noise=noise) for _ in range(n)]
    images, depth, labels = (np.stack(parts) for parts in zip(*rendered))
    return Scenes(
        images=images,
        depth=depth,
        labels=labels,
        stimulus_ids=[f"scene_{i:04d}" for i in range(n)],
        attrs={"dataset": "synthetic_scenes", "seed": seed, "height": height, "width": width, "far": far,
               "noise": noise, "n_boxes": list(n_boxes)},
    )


def write_pngs(scenes: Scenes, folder: str | Path) -> list[Path]:
    """Write every scene image as ``<stimulus_id>.png`` (8-bit RGB) into ``folder`` (atomic writes)."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for sid, image in zip(scenes.stimulus_ids, scenes.images):
        path = folder / f"{sid}.png"
        pixels = np.round(np.clip(image.transpose(1, 2, 0), 0, 1) * 255).astype(np.uint8)
        with atomic_path(path) as tmp:
            Image.fromarray(pixels).save(tmp, format="PNG")
        paths.append(path)
    return paths
