"""Which pixels does a monocular depth network need? The mask method of Hu, Zhang & Okatani (ICCV 2019).

A mask network G is trained so that the frozen depth network N, given only the masked image,
predicts nearly the depth it predicts from the whole image, with the mask as sparse as possible:

    Y = N(I) (detached),  M = G(I) ∈ (0, 1)^{H x W},  Ŷ = N(fill(I, M)),  loss = l_dif(Ŷ, Y) + λ mean(M)

Fills (:data:`FILLS`), on the *normalised* image x = (I - mean) / std:

- ``mean`` (the paper's, default): ``x ⊙ M`` - a masked pixel becomes the dataset mean colour;
- ``black``: ``x ⊙ M + (1 - M) ⊙ x_black`` - a masked pixel becomes black (I = 0);
- ``blur``: ``x ⊙ M + (1 - M) ⊙ blur(x)`` - a masked pixel becomes a Gaussian-blurred version.

Resolution: the mask lives at the input resolution; Y and Ŷ come from the same N and so share N's
output resolution, where the loss and the fidelity metrics are computed (no resizing). Ground truth
is resized to N's output resolution (area averaging when shrinking, bilinear when enlarging) for the
accuracy metrics. Figures show depth maps bilinearly upsampled to the image size.

N is frozen: put in eval mode and every parameter's ``requires_grad`` set to False when the
visualizer is made (its weights and buffers are never changed; tests check bit-identity).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr
from torch import nn

from analyses.depth_mask.depthnet import IMAGENET_MEAN, IMAGENET_STD, describe_depth_net, downsample_depth
from analyses.depth_mask.losses import mask_loss
from analyses.depth_mask.masknet import build_mask_net
from analyses.depth_mask.metrics import METRICS, detect_collapse, mask_density, warn_collapse
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.provenance import clean_attrs, package_version

#: the paper's settings (Adam), which are the defaults here
PAPER_SETTINGS = {"lam": 5.0, "lr": 1e-4, "weight_decay": 1e-4, "fill": "mean"}


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W), kernel radius ceil(3 sigma), reflect padding."""
    radius = max(1, int(math.ceil(3 * sigma)))
    radius = min(radius, x.shape[-1] - 1, x.shape[-2] - 1)
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, 0, 0), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    x = F.pad(x, (0, 0, radius, radius), mode="reflect")
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


@dataclass(frozen=True)
class FillContext:
    """What a fill needs besides the image and mask: the normalised black and the blur width."""

    black: torch.Tensor  # (3,) normalised value of I = 0
    blur_sigma: float


#: fill name -> function (x normalised (B,3,H,W), mask (B,1,H,W), context) -> network input
FILLS: dict[str, Callable[[torch.Tensor, torch.Tensor, FillContext], torch.Tensor]] = {
    "mean": lambda x, m, ctx: x * m,
    "black": lambda x, m, ctx: x * m + (1 - m) * ctx.black.to(x)[None, :, None, None],
    "blur": lambda x, m, ctx: x * m + (1 - m) * gaussian_blur(x, ctx.blur_sigma),
}


def as_image_tensor(images: Any, what: str = "images") -> torch.Tensor:
    t = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    if t.ndim != 4 or t.shape[1] != 3 or not t.is_floating_point():
        raise RSABridgeError(f"{what} must be a float array (N, 3, H, W) with pixels in [0, 1]; got {tuple(t.shape)} {t.dtype}")
    return t.float()


def _as_b1hw(out: Any, what: str) -> torch.Tensor:
    if isinstance(out, torch.Tensor) and out.ndim == 3:
        return out[:, None]
    if isinstance(out, torch.Tensor) and out.ndim == 4 and out.shape[1] == 1:
        return out
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    raise RSABridgeError(f"the {what} must return (B, 1, h, w) or (B, h, w); it returned {shape}")


@dataclass(eq=False)
class DepthMaskVisualizer:
    """Train and apply a mask network G for a frozen depth network N.

    Args:
        depth_net: N, any module mapping normalised (B, 3, H, W) images to (B, 1, h, w) or (B, h, w)
            depth. It is frozen here (eval mode, requires_grad False) and never changed.
        mask_net: G, any module mapping normalised images to (B, 1, H, W) or (B, H, W) in (0, 1);
            default a :class:`~analyses.depth_mask.masknet.TinyMaskNet` initialised from ``seed``.
        lam: λ, weight of mean(M) (the paper: 1, 3, 5; default 5).
        fill: ``"mean"`` (the paper's), ``"black"`` or ``"blur"`` (:data:`FILLS`).
        mean, std: per-channel normalisation of [0, 1] pixels; default N's ``image_mean`` /
            ``image_std`` buffers when it has them, else ImageNet statistics.
        lr, weight_decay: Adam settings (default the paper's: 1e-4, 1e-4).
        steps: optimiser steps of :meth:`fit`; batch_size: images per step.
        seed: seeds G's initialisation (forked RNG) and the batch order (a torch.Generator).
        blur_sigma: Gaussian sigma (pixels) of the blur fill; default max(H, W) / 16.
    """

    depth_net: nn.Module
    mask_net: nn.Module | None = None
    lam: float = 5.0
    fill: str = "mean"
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None
    lr: float = 1e-4
    weight_decay: float = 1e-4
    steps: int = 300
    batch_size: int = 8
    seed: int = 0
    blur_sigma: float | None = None
    history: list[dict[str, float]] = field(default_factory=list, init=False)
    collapse: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.fill not in FILLS:
            raise RSABridgeError(f"unknown fill {self.fill!r}; choose one of {sorted(FILLS)}")
        if not (self.lam >= 0 and math.isfinite(self.lam)):
            raise RSABridgeError(f"lam must be a finite number >= 0, not {self.lam!r}")
        self.depth_net.eval()
        for p in self.depth_net.parameters():
            p.requires_grad_(False)
        if self.mask_net is None:
            self.mask_net = build_mask_net(seed=self.seed)
        mean = self.mean if self.mean is not None else getattr(self.depth_net, "image_mean", IMAGENET_MEAN)
        std = self.std if self.std is not None else getattr(self.depth_net, "image_std", IMAGENET_STD)
        self._mean = torch.as_tensor(mean, dtype=torch.float32).detach().clone().view(3)
        self._std = torch.as_tensor(std, dtype=torch.float32).detach().clone().view(3)
        self.fitted_steps = 0

    # --- pieces -----------------------------------------------------------------------------
    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) pixels in [0, 1] -> (x - mean) / std."""
        return (images - self._mean[:, None, None]) / self._std[:, None, None]

    def _context(self, x: torch.Tensor) -> FillContext:
        sigma = self.blur_sigma if self.blur_sigma is not None else max(x.shape[-2:]) / 16.0
        return FillContext(black=-self._mean / self._std, blur_sigma=float(sigma))

    def apply_mask(self, x: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """The network input for normalised images ``x`` (B,3,H,W) and masks (B,[1,]H,W): the fill."""
        m = masks[:, None] if masks.ndim == 3 else masks
        if m.shape[-2:] != x.shape[-2:]:
            raise RSABridgeError(f"masks are {tuple(m.shape[-2:])} but images {tuple(x.shape[-2:])}; they must match")
        return FILLS[self.fill](x, m.to(x), self._context(x))

    def _depth(self, x: torch.Tensor) -> torch.Tensor:
        return _as_b1hw(self.depth_net(x), "depth network")

    def _mask(self, x: torch.Tensor) -> torch.Tensor:
        m = _as_b1hw(self.mask_net(x), "mask network")
        if m.shape[-2:] != x.shape[-2:]:
            raise RSABridgeError(
                f"the mask network returned {tuple(m.shape[-2:])} masks for {tuple(x.shape[-2:])} images; "
                "masks must have the input resolution"
            )
        return m

    def _batches(self, n: int) -> list[slice]:
        return [slice(s, min(s + 64, n)) for s in range(0, n, 64)]

    # --- training ---------------------------------------------------------------------------
    def fit(self, images: Any, steps: int | None = None) -> "DepthMaskVisualizer":
        """Train G on ``images`` ((N, 3, H, W) pixels in [0, 1]) for ``steps`` Adam steps.

        Batches are drawn epoch by epoch in an order from ``torch.Generator().manual_seed(seed)``.
        Each step's loss parts go to :attr:`history`. Afterwards the masks of ``images`` are checked
        for collapse (:attr:`collapse`; a :class:`DepthMaskCollapseWarning` with advice when it did).
        """
        x_all = self.normalize(as_image_tensor(images))
        steps = self.steps if steps is None else int(steps)
        with torch.no_grad():
            y_all = torch.cat([self._depth(x_all[s]) for s in self._batches(len(x_all))])
        gen = torch.Generator().manual_seed(self.seed)
        opt = torch.optim.Adam(self.mask_net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        self.mask_net.train()
        order = torch.empty(0, dtype=torch.long)
        bs = min(self.batch_size, len(x_all))
        for _ in range(steps):
            if len(order) < bs:
                order = torch.cat([order, torch.randperm(len(x_all), generator=gen)])
            idx, order = order[:bs], order[bs:]
            x = x_all[idx]
            m = self._mask(x)
            pred = self._depth(self.apply_mask(x, m))
            loss, parts = mask_loss(pred, y_all[idx], m, self.lam)
            opt.zero_grad()
            loss.backward()
            opt.step()
            self.history.append({"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in parts.items()}})
        self.mask_net.eval()
        self.fitted_steps += steps
        self.collapse = detect_collapse(self.masks(images))
        warn_collapse(self.collapse, self.lam, "after training")
        return self

    # --- application ------------------------------------------------------------------------
    @torch.no_grad()
    def masks(self, images: Any) -> torch.Tensor:
        """(N, H, W) float32 masks M = G(I) in (0, 1) for (N, 3, H, W) pixels in [0, 1]."""
        self.mask_net.eval()
        x = self.normalize(as_image_tensor(images))
        return torch.cat([self._mask(x[s])[:, 0] for s in self._batches(len(x))])

    @torch.no_grad()
    def predict(self, images: Any, masks: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(Y, Ŷ): depth from the whole and from the masked images, each (N, h, w) at N's resolution.

        ``masks`` (N, H, W) replaces G's masks (e.g. a control mask); default G(I).
        """
        x = self.normalize(as_image_tensor(images))
        masks = self.masks(images) if masks is None else torch.as_tensor(masks, dtype=torch.float32)
        if masks.shape[0] != x.shape[0]:
            raise RSABridgeError(f"{masks.shape[0]} masks for {x.shape[0]} images")
        full, masked = [], []
        for s in self._batches(len(x)):
            full.append(self._depth(x[s])[:, 0])
            masked.append(self._depth(self.apply_mask(x[s], masks[s]))[:, 0])
        return torch.cat(full), torch.cat(masked)

    def evaluate(
        self,
        images: Any,
        ground_truth: Any = None,
        *,
        masks: torch.Tensor | None = None,
        stimulus_ids: Sequence[str] | None = None,
    ) -> xr.Dataset:
        """Fidelity, accuracy and mask density per image.

        Args:
            images: (N, 3, H, W) pixels in [0, 1].
            ground_truth: optional (N, H', W') or (N, 1, H', W') depth in N's unit; resized to N's
                output resolution (area averaging when shrinking, bilinear when enlarging).
            masks: (N, H, W) masks to evaluate instead of G's (controls); collapse is then not checked.
            stimulus_ids: ids of the images (default "0".."N-1").

        Returns:
            Dataset over ``presentation`` (coordinate ``stimulus_id``): ``fidelity_<m>`` (Ŷ vs Y) for
            m in rmse, abs_rel, delta1; with ground truth ``accuracy_<m>`` (Ŷ vs GT) and
            ``full_accuracy_<m>`` (Y vs GT); ``mask_mean``, ``mask_frac_above_half``. Attrs: lam,
            fill, collapse ("none", "all_zeros", "all_ones", "constant"), settings, provenance.
            A collapsed mask also raises a :class:`DepthMaskCollapseWarning`.
        """
        own = masks is None
        m = self.masks(images) if own else torch.as_tensor(masks, dtype=torch.float32)
        full, masked = self.predict(images, m)
        n = full.shape[0]
        ids = [str(i) for i in (stimulus_ids if stimulus_ids is not None else range(n))]
        if len(ids) != n:
            raise RSABridgeError(f"{len(ids)} stimulus ids for {n} images")
        data: dict[str, torch.Tensor] = {f"fidelity_{k}": f(masked, full) for k, f in METRICS.items()}
        if ground_truth is not None:
            gt = torch.as_tensor(np.asarray(ground_truth) if not isinstance(ground_truth, torch.Tensor) else ground_truth)
            gt = gt.float()
            if gt.ndim not in (3, 4) or gt.shape[0] != n:
                raise RSABridgeError(f"ground truth must be (N, H, W) depth for N={n} images; got {tuple(gt.shape)}")
            gt = downsample_depth(gt, tuple(full.shape[-2:]))[:, 0]
            data.update({f"accuracy_{k}": f(masked, gt) for k, f in METRICS.items()})
            data.update({f"full_accuracy_{k}": f(full, gt) for k, f in METRICS.items()})
        data.update(mask_density(m))
        kind = detect_collapse(m) if own else None
        if own:
            warn_collapse(kind, self.lam, "on these images")
        attrs = {
            **self.provenance(),
            "collapse": kind or "none",
            "depth_resolution": f"{full.shape[-2]}x{full.shape[-1]} (N's output; fidelity computed there)",
            "image_resolution": f"{m.shape[-2]}x{m.shape[-1]}",
            "masks": "mask_net" if own else "given",
        }
        return xr.Dataset(
            {k: ("presentation", v.numpy().astype(np.float64)) for k, v in data.items()},
            coords={"stimulus_id": ("presentation", ids)},
            attrs=clean_attrs(attrs),
        )

    def provenance(self) -> dict[str, Any]:
        """Settings and model identity for result attrs."""
        info = getattr(self.depth_net, "rsa_bridge_info", None)
        base = info.provenance() if info is not None and hasattr(info, "provenance") else {"model": type(self.depth_net).__name__}
        return {
            **base,
            "depth_network": describe_depth_net(self.depth_net),
            "method": "Hu, Zhang & Okatani 2019 mask (l_dif + lam * mean(M))",
            "lam": float(self.lam),
            "fill": self.fill,
            "lr": float(self.lr),
            "weight_decay": float(self.weight_decay),
            "steps": int(self.fitted_steps),
            "batch_size": int(self.batch_size),
            "mask_seed": int(self.seed),
            "mask_net": type(self.mask_net).__name__,
            "normalization_mean": [float(v) for v in self._mean],
            "normalization_std": [float(v) for v in self._std],
            "rsa_bridge_version": package_version(),
        }
