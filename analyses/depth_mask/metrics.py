"""Depth error metrics, mask density, collapse detection and control masks.

Metrics compare a prediction ``a`` with a reference ``b`` (both (B, [1,] h, w) depth), per image, over
the pixels where the reference is positive and finite:

========= ============================================ ==========================================
name      definition (mean over valid pixels)          used as
========= ============================================ ==========================================
rmse      sqrt(mean((a - b)^2))                        metres (the depth network's unit)
abs_rel   mean(|a - b| / b)                            dimensionless
delta1    fraction of max(a / b, b / a) < 1.25          dimensionless, higher is better
========= ============================================ ==========================================

Fidelity is Ŷ = N(I ⊙ M) against Y = N(I); accuracy is against ground truth.
"""
from __future__ import annotations

import warnings
from typing import Callable

import torch

#: the δ threshold of :func:`delta1`
DELTA_THRESHOLD = 1.25


def _flat(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if a.shape != b.shape:
        raise ValueError(f"prediction and reference differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    a = a.reshape(a.shape[0], -1).double()
    b = b.reshape(b.shape[0], -1).double()
    valid = torch.isfinite(b) & (b > 0) & torch.isfinite(a)
    return a, b, valid


def _masked_mean(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    count = valid.sum(dim=1)
    total = torch.where(valid, x, torch.zeros_like(x)).sum(dim=1)
    return torch.where(count > 0, total / count.clamp(min=1), torch.full_like(total, float("nan")))


def rmse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B,) root mean squared error per image."""
    a, b, valid = _flat(a, b)
    return _masked_mean((a - b) ** 2, valid).sqrt()


def abs_rel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B,) mean absolute relative error |a - b| / b per image."""
    a, b, valid = _flat(a, b)
    return _masked_mean((a - b).abs() / torch.where(valid, b, torch.ones_like(b)), valid)


def delta1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B,) fraction of pixels with max(a/b, b/a) < 1.25 per image (a <= 0 counts as a miss)."""
    a, b, valid = _flat(a, b)
    safe_b = torch.where(valid, b, torch.ones_like(b))
    ratio = torch.where(a > 0, torch.maximum(a / safe_b, safe_b / a.clamp(min=1e-12)), torch.full_like(a, float("inf")))
    return _masked_mean((ratio < DELTA_THRESHOLD).double(), valid)


#: metric name -> function (prediction, reference) -> (B,) float64 per-image values
METRICS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "rmse": rmse,
    "abs_rel": abs_rel,
    "delta1": delta1,
}


def mask_density(masks: torch.Tensor) -> dict[str, torch.Tensor]:
    """``{"mask_mean": (B,), "mask_frac_above_half": (B,)}`` of (B, [1,] H, W) masks."""
    flat = masks.reshape(masks.shape[0], -1).double()
    return {"mask_mean": flat.mean(dim=1), "mask_frac_above_half": (flat > 0.5).double().mean(dim=1)}


class DepthMaskCollapseWarning(UserWarning):
    """The trained mask is all ones, all zeros or constant: it says nothing about the network."""


#: collapse kind -> advice printed with the warning
COLLAPSE_ADVICE: dict[str, str] = {
    "all_zeros": "the sparsity term won: lower lam (sweep e.g. --lam 0.5,1,3), or train longer / with a larger lr "
    "so that the reconstruction term can act",
    "all_ones": "the sparsity term has not acted: raise lam (sweep e.g. --lam 1,3,5,10) or train longer",
    "constant": "the mask does not vary across pixels: train longer, sweep lam, or use a mask network that can "
    "see position and content (the default TinyMaskNet has coordinate channels)",
}


def detect_collapse(
    masks: torch.Tensor, *, low: float = 0.05, high: float = 0.95, fraction: float = 0.99, flat_std: float = 0.01
) -> str | None:
    """Whether a set of masks has collapsed, and how.

    Args:
        masks: (B, [1,] H, W) mask values in [0, 1].
        low, high: a value below ``low`` counts as off, above ``high`` as on.
        fraction: the share of all mask values that must be off (on) for ``"all_zeros"`` (``"all_ones"``).
        flat_std: below this mean per-image spatial standard deviation the masks are ``"constant"``.

    Returns:
        ``"all_zeros"``, ``"all_ones"``, ``"constant"`` or None (no collapse).
    """
    flat = masks.reshape(masks.shape[0], -1).double()
    if (flat < low).double().mean() >= fraction:
        return "all_zeros"
    if (flat > high).double().mean() >= fraction:
        return "all_ones"
    if flat.std(dim=1, unbiased=False).mean() < flat_std:
        return "constant"
    return None


def warn_collapse(kind: str | None, lam: float, where: str = "after training") -> None:
    """Emit a :class:`DepthMaskCollapseWarning` with advice when ``kind`` is not None."""
    if kind is None:
        return
    warnings.warn(
        DepthMaskCollapseWarning(
            f"mask collapsed ({kind}) {where} at lam={lam:g}: it is not a result, do not interpret it; "
            f"{COLLAPSE_ADVICE[kind]}"
        ),
        stacklevel=3,
    )


def shuffled_masks(masks: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Control: each mask's pixel values randomly permuted (same values, so the same mean and
    fraction > 0.5, but no spatial structure). (B, [1,] H, W) -> same shape."""
    flat = masks.reshape(masks.shape[0], -1)
    out = torch.stack([m[torch.randperm(m.numel(), generator=generator)] for m in flat])
    return out.reshape(masks.shape)


def bernoulli_masks(masks: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Control: binary masks whose pixels are on with probability = each mask's mean (equal expected density)."""
    p = masks.reshape(masks.shape[0], -1).mean(dim=1)
    draws = torch.rand(masks.shape, generator=generator, dtype=masks.dtype)
    return (draws < p.view(-1, *([1] * (masks.ndim - 1)))).to(masks.dtype)


def uniform_masks(masks: torch.Tensor) -> torch.Tensor:
    """Control: every pixel set to its mask's mean (equal density, no selectivity)."""
    p = masks.reshape(masks.shape[0], -1).mean(dim=1)
    return p.view(-1, *([1] * (masks.ndim - 1))).expand_as(masks).clone()


#: control name -> function (masks, generator) -> masks of equal density
CONTROLS: dict[str, Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = {
    "shuffled": shuffled_masks,
    "bernoulli": bernoulli_masks,
    "uniform": lambda masks, generator: uniform_masks(masks),
}
