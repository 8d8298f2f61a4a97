"""The loss of Hu, Zhang & Okatani (ICCV 2019) for training the mask network G.

With Y = N(I) (the frozen depth network on the whole image, detached), Ŷ = N(I ⊙ M) and M = G(I):

    l_dif = mean log(|Ŷ - Y| + 0.5)
          + mean log(|∇x Ŷ - ∇x Y| + 0.5) + mean log(|∇y Ŷ - ∇y Y| + 0.5)
          + mean |1 - cos(n(Ŷ), n(Y))|
    loss  = l_dif + λ · mean(M)

Gradients are 3x3 Sobel filters applied as PyTorch ``conv2d`` does (cross-correlation, zero
padding of 1): ``kx = [[1, 0, -1], [2, 0, -2], [1, 0, -1]]`` and ``ky = kx.T``. Surface normals are
``n(d) = (-∇x d, -∇y d, 1)`` per pixel; the cosine is taken over those three components. Means run
over every element (batch and pixels). ``log(x + 0.5)`` is negative for x < 0.5, so l_dif is *not*
non-negative: a perfect reconstruction gives ``3 log 0.5 ≈ -2.079``, not 0.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

#: Sobel kernel for the x gradient, exactly as the authors' code; ky is its transpose
SOBEL_X = ((1.0, 0.0, -1.0), (2.0, 0.0, -2.0), (1.0, 0.0, -1.0))
#: the offset inside the log terms
LOG_OFFSET = 0.5


def _as_b1hw(depth: torch.Tensor) -> torch.Tensor:
    if depth.ndim == 3:
        return depth[:, None]
    if depth.ndim == 4 and depth.shape[1] == 1:
        return depth
    raise ValueError(f"depth must be (B, H, W) or (B, 1, H, W); got shape {tuple(depth.shape)}")


def sobel_gradients(depth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel x and y gradients of depth maps.

    Args:
        depth: (B, H, W) or (B, 1, H, W) depth (any unit).

    Returns:
        (gx, gy), each (B, 1, H, W): ``conv2d(depth, k, padding=1)`` with ``k = kx`` / ``kx.T``
        (cross-correlation, zeros outside the map), in depth units per pixel (x 8 Sobel gain).
    """
    d = _as_b1hw(depth)
    kx = torch.tensor(SOBEL_X, dtype=d.dtype, device=d.device)
    kernels = torch.stack([kx, kx.T])[:, None]  # (2, 1, 3, 3)
    g = F.conv2d(d, kernels, padding=1)
    return g[:, :1], g[:, 1:]


def surface_normals(depth: torch.Tensor) -> torch.Tensor:
    """Unnormalised normals ``(-∇x d, -∇y d, 1)``: (B, 3, H, W) from (B, [1,] H, W) depth."""
    gx, gy = sobel_gradients(depth)
    return torch.cat([-gx, -gy, torch.ones_like(gx)], dim=1)


def difference_terms(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """The four terms of l_dif between ``pred`` (Ŷ) and ``target`` (Y), each a scalar tensor.

    Args:
        pred, target: (B, H, W) or (B, 1, H, W) depth maps of one shape.

    Returns:
        ``{"depth", "grad_x", "grad_y", "normal"}`` as defined in the module docstring.
    """
    p, t = _as_b1hw(pred), _as_b1hw(target)
    if p.shape != t.shape:
        raise ValueError(f"pred and target differ in shape: {tuple(p.shape)} vs {tuple(t.shape)}")
    pgx, pgy = sobel_gradients(p)
    tgx, tgy = sobel_gradients(t)
    ones = torch.ones_like(pgx)
    pn = torch.cat([-pgx, -pgy, ones], dim=1)
    tn = torch.cat([-tgx, -tgy, ones], dim=1)
    # both normals have z = 1, so their norms are >= 1 and the cosine needs no epsilon
    cos = (pn * tn).sum(dim=1) / (pn.norm(dim=1) * tn.norm(dim=1))
    return {
        "depth": torch.log((p - t).abs() + LOG_OFFSET).mean(),
        "grad_x": torch.log((pgx - tgx).abs() + LOG_OFFSET).mean(),
        "grad_y": torch.log((pgy - tgy).abs() + LOG_OFFSET).mean(),
        "normal": (1.0 - cos).abs().mean(),
    }


def l_dif(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The sum of the four :func:`difference_terms` (a scalar tensor; may be negative)."""
    return torch.stack(list(difference_terms(pred, target).values())).sum()


def mask_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, lam: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``l_dif(Ŷ, Y) + λ · mean(M)`` and its parts.

    Args:
        pred: Ŷ = N(I ⊙ M), (B, [1,] h, w).
        target: Y = N(I), detached, same shape.
        mask: M, (B, [1,] H, W) in (0, 1) (input resolution; need not match h, w).
        lam: sparsity weight λ (the paper: 1, 3, 5; default 5).

    Returns:
        (loss, parts) with parts = the four difference terms plus ``"l_dif"`` and ``"sparsity"`` (= mean M).
    """
    parts = difference_terms(pred, target)
    parts["l_dif"] = torch.stack([parts[k] for k in ("depth", "grad_x", "grad_y", "normal")]).sum()
    parts["sparsity"] = mask.mean()
    return parts["l_dif"] + lam * parts["sparsity"], parts
