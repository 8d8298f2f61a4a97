"""Depth-mask grid: for a few images, the image, its predicted depth N(I), and for every sparsity weight λ the
mask M (white = kept pixel) and the depth predicted from the masked image N(I ⊙ M) (Hu, Zhang & Okatani 2019).

Depth panels of one row share one colour scale (that of N(I), ``magma_r``: near is bright), so a masked-image
prediction that keeps the depth looks the same as N(I). A collapsed mask (all ones, all zeros or constant) is
crossed out and labelled, so that it is not read as a result.

Reads ``depth_masks.nc`` (written by ``rsa-bridge depth-mask --out DIR``) from ``--results DIR`` and the images
from ``--images DIR`` (default ``DIR/images``). A folder of another kind (a compare folder) is refused. Given a
missing or empty folder, the ``python -m`` script (not ``rsa-bridge figure``, which never computes) runs a small
sweep first and caches it there: 6 synthetic 32 x 48 scenes, the ``tiny-synthetic`` depth network,
λ = 3, 6, 10, 150 steps each.

    python -m analyses.figures.depth_masks --out figures/ [--results depth_out/ --images scenes/]
"""
from __future__ import annotations

from rsa_bridge.app.argtypes import count

import sys
from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from analyses.figures import common
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.figures import figsize, use_style, width_mm
from rsa_bridge.io import write_netcdf

NAME = "depth_masks"
FILE = "depth_masks.nc"
#: the element-wise product, as mathtext: the "⊙" character is missing from Arial/Helvetica
ODOT = r"$\odot$"
#: λ values of the default sweep
LAMS = (3.0, 6.0, 10.0)


def _collapsed(ds: xr.Dataset, lam: float) -> str | None:
    if "collapse" not in ds:
        return None
    kind = str(ds["collapse"].sel(lam=lam).values)
    return None if kind in ("none", "") else kind


def depth_mask_grid(ds: xr.Dataset, images: np.ndarray, rows: int = 3, width: str | float = "double"):
    """Grid with one row per image: image | N(I) | (mask, N(I ⊙ M)) per λ.

    Args:
        ds: the sweep Dataset: ``mask`` (lam, presentation, y, x) in [0, 1], ``depth`` (presentation, y_depth,
            x_depth) and ``depth_masked`` (lam, presentation, y_depth, x_depth) in the network's depth units,
            ``collapse`` (lam), ``stimulus_id`` on presentation.
        images: (N, 3, H, W) pixels in [0, 1], in the order of ``ds.presentation``.
        rows: how many images (the first ``rows``).

    Depth maps are drawn at their own resolution stretched over the image (no resampling), so the plotted
    arrays are the stored ones.

    Returns:
        (figure, axes array (rows, 2 + 2 * n_lam), handles): ``("image", id)``, ``("depth", id)``,
        ``("mask", λ, id)``, ``("masked_depth", λ, id)`` -> AxesImage; ``colorbar`` (depth of the last row).
    """
    lams = [float(v) for v in ds["lam"].values]
    ids = [str(s) for s in ds["stimulus_id"].values] if "stimulus_id" in ds else [str(i) for i in range(len(images))]
    n = min(rows, len(images))
    if images.shape[0] != ds.sizes["presentation"]:
        raise RSABridgeError(f"{images.shape[0]} images for {ds.sizes['presentation']} presentations in the masks")
    h, w = images.shape[-2:]
    cols = 2 + 2 * len(lams)
    total_mm = width_mm(width)
    panel_mm = (total_mm - 14) / cols
    handles: dict = {}
    with use_style():
        fig, axes = plt.subplots(n, cols, figsize=figsize(total_mm, panel_mm * h / w * n + 16), squeeze=False)
        extent = (-0.5, w - 0.5, h - 0.5, -0.5)
        for i in range(n):
            sid = ids[i]
            depth = ds["depth"].isel(presentation=i).values
            vmin, vmax = float(np.nanmin(depth)), float(np.nanmax(depth))
            handles[("image", sid)] = axes[i, 0].imshow(np.clip(images[i].transpose(1, 2, 0), 0, 1))
            handles[("depth", sid)] = axes[i, 1].imshow(depth, cmap="magma_r", vmin=vmin, vmax=vmax, extent=extent,
                                                        interpolation="nearest")
            axes[i, 0].set_ylabel(sid, fontsize=5)
            for k, lam in enumerate(lams):
                am, ad = axes[i, 2 + 2 * k], axes[i, 3 + 2 * k]
                handles[("mask", lam, sid)] = am.imshow(ds["mask"].sel(lam=lam).isel(presentation=i).values,
                                                        cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                handles[("masked_depth", lam, sid)] = ad.imshow(
                    ds["depth_masked"].sel(lam=lam).isel(presentation=i).values, cmap="magma_r", vmin=vmin,
                    vmax=vmax, extent=extent, interpolation="nearest")
                if _collapsed(ds, lam):
                    for ax in (am, ad):
                        ax.plot([0, 1], [0, 1], color="#D55E00", lw=0.8, transform=ax.transAxes)
                        ax.plot([0, 1], [1, 0], color="#D55E00", lw=0.8, transform=ax.transAxes)
        titles = ["image I", "depth N(I)"]
        for lam in lams:
            tag = f"\ncollapsed: {_collapsed(ds, lam).replace('_', ' ')}" if _collapsed(ds, lam) else ""
            titles += [f"mask, λ={lam:g}{tag}", f"N(I{ODOT}M), λ={lam:g}{tag}"]
        for j, title in enumerate(titles):
            axes[0, j].set_title(title, fontsize=6, color="#D55E00" if "collapsed" in title else "black")
        for ax in axes.flat:
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
        units = ds["depth"].attrs.get("units", "network units")
        colorbar = fig.colorbar(handles[("depth", ids[n - 1])], ax=list(axes[:, -1]), shrink=0.8, pad=0.02)
        colorbar.set_label(f"depth ({units}; per-row scale)")
        handles["colorbar"] = colorbar
    return fig, axes, handles


def small_sweep(folder: Path) -> None:
    """Run the default small sweep and write ``folder/depth_masks.nc`` and ``folder/images/*.png``."""
    from analyses.depth_mask.depthnet import load_depth_net
    from analyses.depth_mask.scenes import make_scenes, write_pngs
    from analyses.depth_mask.sweep import lam_sweep, load_images

    print(f"no {FILE} in {folder}: running a small λ sweep on synthetic scenes (~1 min)", file=sys.stderr)
    write_pngs(make_scenes(6, seed=1), folder / "images")
    images, ids = load_images(folder / "images")
    ds = lam_sweep(load_depth_net("tiny-synthetic"), images, list(LAMS), stimulus_ids=ids, steps=150, seed=0)
    write_netcdf(ds, folder / FILE)


def load(folder: Path, images_dir: Path | None = None) -> tuple[xr.Dataset, np.ndarray]:
    """The sweep Dataset of ``folder`` and its images (in the Dataset's order)."""
    from analyses.depth_mask.sweep import load_images

    if not common.check_folder(folder, "depth_masks"):  # refuses a folder of another kind; computes only in scripts
        small_sweep(folder)
    with xr.open_dataset(folder / FILE, engine="h5netcdf") as handle:
        ds = handle.load()
    images_dir = images_dir or folder / "images"
    if not images_dir.is_dir():
        raise RSABridgeError(f"no image folder {str(images_dir)!r}; pass --images DIR (the images the masks were made for)")
    pixels, ids = load_images(images_dir, (ds.sizes["y"], ds.sizes["x"]))
    wanted = [str(s) for s in ds["stimulus_id"].values]
    missing = [s for s in wanted if s not in ids]
    if missing:
        raise RSABridgeError(f"{str(images_dir)!r} lacks the images {', '.join(missing[:5])} of {FILE}")
    return ds, pixels[[ids.index(s) for s in wanted]]


def main(argv: Sequence[str] | None = None) -> int:
    p = common.parser(NAME, "Depth-mask grid: images, depth, masks and masked-image depth per λ.", compare=False)
    p.add_argument("--images", type=Path, default=None, help="the image folder (default RESULTS/images)")
    p.add_argument("--rows", type=count("--rows", 64, minimum=1), default=3, help="images shown (default 3)")
    p.add_argument("--width", default="double", help="single, double or millimetres (default double)")
    args = p.parse_args(argv)
    folder = Path(args.results) if args.results is not None else Path(args.out) / "results"
    ds, pixels = load(folder, args.images)
    fig, _, _ = depth_mask_grid(ds, pixels, rows=args.rows, width=args.width)
    for path in common.save(fig, args.out, NAME, args.dpi):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(common.run(main))
