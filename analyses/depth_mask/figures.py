"""The depth-mask figure: one row per image - image | depth | (mask, masked depth) per λ.

Depth maps are shown bilinearly upsampled to the image size (N may predict at a lower
resolution), with one colour scale per row taken from the whole-image depth (``magma_r``: near
is bright). Masks are grey (white = kept). A collapsed mask (all ones / all zeros / constant) is
drawn crossed out and labelled, so that it is not read as a result.
"""
from __future__ import annotations

from typing import Mapping, Sequence

# No matplotlib.use(): the backend stays the user's (inline in notebooks); without a display
# matplotlib picks Agg by itself, and the command only saves the figure.
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F


def _upsample(depth: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    t = torch.as_tensor(np.asarray(depth, dtype=np.float32))[None, None]
    if tuple(t.shape[-2:]) == tuple(size):
        return t[0, 0].numpy()
    return F.interpolate(t, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()


def mask_grid(
    images: np.ndarray,
    depth: np.ndarray,
    masks: Mapping[float, np.ndarray],
    masked_depth: Mapping[float, np.ndarray],
    *,
    collapse: Mapping[float, str | None] | None = None,
    stimulus_ids: Sequence[str] | None = None,
    rows: int = 4,
    panel_inches: float = 1.3,
    caption: str | None = None,
):
    """Grid figure of masks and depth for a few images and every λ.

    Args:
        images: (N, 3, H, W) pixels in [0, 1].
        depth: (N, h, w) depth of the whole images, Y = N(I).
        masks: λ -> (N, H, W) masks in [0, 1].
        masked_depth: λ -> (N, h, w) depth of the masked images, Ŷ = N(I ⊙ M).
        collapse: λ -> collapse kind or None (collapsed columns are crossed out).
        stimulus_ids: row labels.
        rows: how many images (the first ``rows``).
        caption: a line under the grid, e.g. which depth network ran (``depth_network`` of the results).

    Returns:
        (figure, axes array of shape (rows, 2 + 2 * len(masks))).
    """
    lams = list(masks)
    collapse = dict(collapse or {})
    n = min(rows, len(images))
    cols = 2 + 2 * len(lams)
    fig, axes = plt.subplots(n, cols, figsize=(panel_inches * cols, panel_inches * 0.75 * n + 0.4),
                             squeeze=False, constrained_layout=True)
    size = tuple(images.shape[-2:])
    for i in range(n):
        full = _upsample(depth[i], size)
        vmin, vmax = float(np.nanmin(full)), float(np.nanmax(full))
        axes[i, 0].imshow(np.clip(np.transpose(images[i], (1, 2, 0)), 0, 1))
        axes[i, 1].imshow(full, cmap="magma_r", vmin=vmin, vmax=vmax)
        if stimulus_ids is not None:
            axes[i, 0].set_ylabel(str(stimulus_ids[i]), fontsize=6)
        for k, lam in enumerate(lams):
            am, ad = axes[i, 2 + 2 * k], axes[i, 3 + 2 * k]
            am.imshow(masks[lam][i], cmap="gray", vmin=0, vmax=1)
            ad.imshow(_upsample(masked_depth[lam][i], size), cmap="magma_r", vmin=vmin, vmax=vmax)
            if collapse.get(lam):
                for ax in (am, ad):
                    ax.plot([0, 1], [0, 1], color="red", lw=1, transform=ax.transAxes)
                    ax.plot([0, 1], [1, 0], color="red", lw=1, transform=ax.transAxes)
    titles = ["image", "depth N(I)"]
    for lam in lams:
        tag = f"\ncollapsed: {collapse[lam]}" if collapse.get(lam) else ""
        titles += [f"mask λ={lam:g}{tag}", f"N(I⊙M) λ={lam:g}{tag}"]
    for j, title in enumerate(titles):
        axes[0, j].set_title(title, fontsize=7, color="red" if "collapsed" in title else "black")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if caption:
        fig.supxlabel(f"depth network N: {caption}", fontsize=6)
    return fig, axes
