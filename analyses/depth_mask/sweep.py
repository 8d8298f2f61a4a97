"""A λ sweep of the mask method on one image set, and its files (PNG masks, NetCDF, figure).

:func:`lam_sweep` trains one mask network per λ (each from the same seed) and gathers masks, depth
and metrics in one ``xarray.Dataset``; :func:`write_results` writes it. The ``depth-mask`` command
is these two calls plus :func:`load_images`.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import xarray as xr
from PIL import Image

from analyses.depth_mask.figures import mask_grid
from analyses.depth_mask.metrics import DepthMaskCollapseWarning, warn_collapse
from analyses.depth_mask.visualizer import DepthMaskVisualizer, as_image_tensor
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.io import atomic_path, write_netcdf
from rsa_bridge.provenance import clean_attrs
from stimuli import StimulusError, from_folder, load_stimulus_set, read_image
from stimuli.stimulus_set import MANIFEST


def load_images(folder: str | Path, size: tuple[int, int] | None = None) -> tuple[np.ndarray, list[str]]:
    """Images of a folder (its manifest.csv, else every image file, ids = file stems).

    Args:
        folder: the image folder.
        size: (height, width) to resize every image to (bilinear); default the first image's size.

    Returns:
        ((N, 3, H, W) float32 pixels in [0, 1], stimulus ids).

    Raises:
        RSABridgeError: a missing or empty folder, an unreadable image, images smaller than 8 x 8.
    """
    folder = Path(folder)
    try:
        stim = load_stimulus_set(folder) if (folder / MANIFEST).is_file() else from_folder(folder)
        arrays = []
        for path in stim.paths:
            image = read_image(path)
            if size is None:
                size = (image.height, image.width)
            if (image.height, image.width) != tuple(size):
                image = image.resize((size[1], size[0]), Image.BILINEAR)
            arrays.append(np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0)
    except StimulusError as err:
        raise RSABridgeError(f"--images: {err}; give a folder of readable PNG/JPEG images") from None
    if min(size) < 8:
        raise RSABridgeError(f"images of {size[0]}x{size[1]} pixels are too small; use at least 8x8 (or --size)")
    return np.stack(arrays), list(stim.stimulus_ids)


def lam_sweep(
    depth_net: torch.nn.Module,
    images: Any,
    lams: Sequence[float],
    *,
    stimulus_ids: Sequence[str] | None = None,
    ground_truth: Any = None,
    **settings: Any,
) -> xr.Dataset:
    """Fit one mask network per λ on ``images`` and evaluate it there.

    Args:
        depth_net: N (frozen by the visualizer).
        images: (N, 3, H, W) pixels in [0, 1].
        lams: the λ values (e.g. 1, 3, 5).
        stimulus_ids: ids (default "0".."N-1").
        ground_truth: optional (N, H', W') depth for accuracy metrics.
        settings: further :class:`DepthMaskVisualizer` arguments (fill, steps, lr, weight_decay,
            batch_size, seed, mean, std, blur_sigma). Every λ starts from the same seed.

    Returns:
        Dataset with ``mask`` (lam, presentation, y, x), ``depth`` (presentation, y_depth, x_depth),
        ``depth_masked`` (lam, presentation, y_depth, x_depth), the metrics of
        :meth:`DepthMaskVisualizer.evaluate` (lam, presentation), ``collapse`` (lam; "none" or the
        kind) and ``final_loss`` (lam); attrs: the settings and provenance.
    """
    if not lams:
        raise RSABridgeError("no lam values were given; pass e.g. --lam 1,3,5")
    pixels = as_image_tensor(images)
    ids = [str(i) for i in (stimulus_ids if stimulus_ids is not None else range(len(pixels)))]
    per_lam: list[xr.Dataset] = []
    attrs: dict[str, Any] = {}
    for lam in lams:
        vis = DepthMaskVisualizer(depth_net, lam=float(lam), **settings)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DepthMaskCollapseWarning)  # reported once, below
            vis.fit(pixels)
            metrics = vis.evaluate(pixels, ground_truth, stimulus_ids=ids)
        masks = vis.masks(pixels)
        full, masked = vis.predict(pixels, masks)
        metrics["mask"] = (("presentation", "y", "x"), masks.numpy())
        metrics["depth"] = (("presentation", "y_depth", "x_depth"), full.numpy())
        metrics["depth_masked"] = (("presentation", "y_depth", "x_depth"), masked.numpy())
        metrics["collapse"] = vis.collapse or "none"
        metrics["final_loss"] = vis.history[-1]["loss"] if vis.history else float("nan")
        warn_collapse(vis.collapse, float(lam), "after training (kept in the output, flagged as collapsed)")
        attrs = {k: v for k, v in metrics.attrs.items() if k not in ("lam", "collapse")}
        metrics.attrs = {}
        per_lam.append(metrics)
    ds = xr.concat(per_lam, dim=xr.DataArray([float(v) for v in lams], dims="lam", name="lam"),
                   data_vars="all", coords="minimal", compat="override")
    ds["depth"] = per_lam[0]["depth"]  # Y = N(I) does not depend on lam
    ds.attrs = clean_attrs(attrs)
    return ds


def write_results(ds: xr.Dataset, images: np.ndarray, out: str | Path, *, rows: int = 4) -> dict[str, Path]:
    """Write masks as 8-bit PNGs (``masks/lam_<λ>/<id>.png``), ``depth_masks.nc`` and ``depth_masks.png``.

    Every file is written atomically. Returns name -> path (``netcdf``, ``figure``, ``masks``).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ids = [str(s) for s in ds["stimulus_id"].values]
    for lam in ds["lam"].values:
        folder = out / "masks" / f"lam_{float(lam):g}"
        folder.mkdir(parents=True, exist_ok=True)
        for sid, mask in zip(ids, ds["mask"].sel(lam=lam).values):
            with atomic_path(folder / f"{sid}.png") as tmp:
                Image.fromarray(np.round(np.clip(mask, 0, 1) * 255).astype(np.uint8)).save(tmp, format="PNG")
    nc = write_netcdf(ds, out / "depth_masks.nc")
    lams = [float(v) for v in ds["lam"].values]
    fig, _ = mask_grid(
        np.asarray(images),
        ds["depth"].values,
        {lam: ds["mask"].sel(lam=lam).values for lam in lams},
        {lam: ds["depth_masked"].sel(lam=lam).values for lam in lams},
        collapse={lam: (None if str(ds["collapse"].sel(lam=lam).values) == "none" else str(ds["collapse"].sel(lam=lam).values)) for lam in lams},
        stimulus_ids=ids,
        rows=rows,
        caption=str(ds.attrs.get("depth_network", "unknown")),
    )
    figure = out / "depth_masks.png"
    with atomic_path(figure) as tmp:
        fig.savefig(tmp, format="png", dpi=150)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return {"netcdf": nc, "figure": figure, "masks": out / "masks"}
