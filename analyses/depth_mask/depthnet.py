"""A small monocular depth network, its seeded training on synthetic scenes, saving and loading.

:class:`TinyDepthNet` is a U-Net (four stride-2 encoder stages ``enc1``..``enc4``, a bilinear
decoder ``dec3``..``dec1`` with skip connections) that predicts depth in metres at **half the input
resolution**, like the networks of Hu et al. 2019 (which output at half resolution). It takes images
normalised with its own per-channel statistics, kept as buffers ``image_mean`` / ``image_std``
(saved in the state dict), so the "dataset mean colour" of the mask method is well defined.

Loading (:func:`load_depth_net`): a name from :data:`DEPTH_MODELS`, a checkpoint written by
:func:`save_depth_net`, or a TorchScript archive (``torch.jit.save``) of any depth network - the
way to bring a real network (FastDepth, the authors' NYU models) without its Python class. A TorchScript
archive or a pickled module runs code, so it loads only with ``allow_model_code=True``
(``--allow-model-code``; :mod:`extractors.model_code`).

**Bringing a real depth network** whose Python class you have (FastDepth, a NYU-trained ResNet U-Net,
...): build the module and load its weights with :func:`load_depth_net_weights` (a
``torch.save(net.state_dict(), PATH)`` file, loaded strictly; no code in the file runs). It must map
images normalised with its own ``image_mean``/``image_std`` buffers when it has them (else ImageNet's
statistics, or the visualizer's ``mean=``/``std=``), float (B, 3, H, W), to depth (B, 1, h, w) or
(B, h, w) at any h x w (the mask stays at H x W). :func:`describe_depth_net` is the one-line label the
results' attrs (``depth_network``) and the figure caption carry, so a figure always says which
network ran: the synthetic one trained here is labelled as such.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from analyses.depth_mask.masknet import conv_block, seeded, unet_features
from analyses.depth_mask.scenes import make_scenes
from extractors.model_code import MODEL_CODE_ALLOWED, MODEL_CODE_ATTR, holds_code, is_torchscript, load_model_code
from extractors.models import ModelInfo
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.io import atomic_path
from rsa_bridge.provenance import file_sha256

ARCH = "tiny_depth_net"
#: ImageNet statistics: the normalisation assumed for networks that carry none
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class TinyDepthNet(nn.Module):
    """(B, 3, H, W) normalised images -> (B, 1, H/2, W/2) depth in metres (positive).

    Args:
        width: channels of the first stage.
        image_mean, image_std: per-channel statistics of the training images (pixel units [0, 1]).
        init_depth: depth (m) that the untrained network predicts everywhere (head bias log(init_depth)).
    """

    def __init__(
        self,
        width: int = 8,
        image_mean: tuple[float, float, float] = IMAGENET_MEAN,
        image_std: tuple[float, float, float] = IMAGENET_STD,
        init_depth: float = 6.0,
    ) -> None:
        super().__init__()
        w = width
        self.width = width
        self.register_buffer("image_mean", torch.tensor(image_mean, dtype=torch.float32))
        self.register_buffer("image_std", torch.tensor(image_std, dtype=torch.float32))
        self.enc1 = conv_block(3, w, stride=2)  # H/2
        self.enc2 = conv_block(w, 2 * w, stride=2)  # H/4
        self.enc3 = conv_block(2 * w, 4 * w, stride=2)  # H/8
        self.enc4 = conv_block(4 * w, 4 * w, stride=2)  # H/16
        self.dec3 = conv_block(8 * w, 4 * w)
        self.dec2 = conv_block(6 * w, 2 * w)
        self.dec1 = conv_block(3 * w, w)
        self.head = nn.Conv2d(w, 1, 3, padding=1)
        nn.init.constant_(self.head.bias, float(np.log(init_depth)))
        self.rsa_bridge_info = ModelInfo(
            name=ARCH,
            weights="none",
            preprocessing="per-channel (x - image_mean) / image_std of [0, 1] RGB",
            aliases={name: name for name in ("enc1", "enc2", "enc3", "enc4", "dec3", "dec2", "dec1")},
            default_layers=["enc1", "enc2", "enc3", "enc4"],
        )

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) pixels in [0, 1] -> normalised network input."""
        return (images - self.image_mean[:, None, None]) / self.image_std[:, None, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(self.head(unet_features(self, x)).clamp(-6.0, 6.0))


def downsample_depth(depth: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize (B, [1,] H, W) depth to ``size`` = (h, w): area averaging when shrinking, bilinear
    (align_corners=False) when enlarging. Returns (B, 1, h, w)."""
    d = depth[:, None] if depth.ndim == 3 else depth
    if tuple(d.shape[-2:]) == tuple(size):
        return d
    if d.shape[-2] >= size[0] and d.shape[-1] >= size[1]:
        return F.interpolate(d, size=size, mode="area")
    return F.interpolate(d, size=size, mode="bilinear", align_corners=False)


def train_depth_net(
    n_scenes: int = 256,
    height: int = 32,
    width: int = 48,
    *,
    steps: int = 400,
    batch_size: int = 16,
    lr: float = 3e-3,
    seed: int = 0,
    net_width: int = 8,
    scenes=None,
) -> TinyDepthNet:
    """Train a :class:`TinyDepthNet` on synthetic scenes; deterministic for a given seed.

    Loss: mean |log Ŷ - log G| against the ground truth area-averaged to the output resolution.
    Adam (lr ``lr``, cosine decay to 0). The scenes come from ``make_scenes(n_scenes, height, width,
    seed=seed)`` unless given; batches are drawn by a ``torch.Generator`` seeded with ``seed``;
    the weights are initialised from ``seed`` in a forked RNG.

    Returns:
        The network in eval mode, normalisation buffers set to the scenes' per-channel mean / std,
        ``rsa_bridge_info.weights`` describing the training.
    """
    scenes = scenes if scenes is not None else make_scenes(n_scenes, height, width, seed=seed)
    images = torch.from_numpy(scenes.images)
    depth = torch.from_numpy(scenes.depth)
    mean = tuple(float(v) for v in images.mean(dim=(0, 2, 3)))
    std = tuple(float(v) for v in images.std(dim=(0, 2, 3)))
    net = seeded(lambda: TinyDepthNet(width=net_width, image_mean=mean, image_std=std), seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    net.train()
    for _ in range(steps):
        idx = torch.randint(len(images), (batch_size,), generator=gen)
        x = net.normalize(images[idx])
        pred = net(x)
        target = downsample_depth(depth[idx], tuple(pred.shape[-2:]))
        loss = (pred.log() - target.log()).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    net.rsa_bridge_info.weights = f"trained: synthetic_scenes n={len(images)} {images.shape[-2]}x{images.shape[-1]} seed={seed} steps={steps}"
    net.rsa_bridge_info.seed = seed
    return net


def save_depth_net(net: TinyDepthNet, path: str | Path) -> Path:
    """Write ``{"arch", "config", "state_dict"}`` for :func:`load_depth_net` (atomic)."""
    payload = {"arch": ARCH, "config": {"width": int(net.width)}, "state_dict": net.state_dict()}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def _load_checkpoint(path: Path) -> nn.Module:
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if not (isinstance(obj, dict) and obj.get("arch") == ARCH and isinstance(obj.get("state_dict"), dict)):
        raise RSABridgeError(
            f"{str(path)!r} is neither a TorchScript archive nor a {ARCH} checkpoint; save a network with "
            "torch.jit.save(torch.jit.script(net), PATH) or analyses.depth_mask.depthnet.save_depth_net"
        )
    net = TinyDepthNet(width=int(obj.get("config", {}).get("width", 8)))
    try:
        net.load_state_dict(obj["state_dict"], strict=True)
    except RuntimeError as err:
        raise RSABridgeError(f"checkpoint {str(path)!r} does not fit {ARCH}: {str(err).splitlines()[0]}") from None
    return net


def load_depth_net_weights(net: nn.Module, path: str | Path, *, size: tuple[int, int] = (32, 48),
                           name: str | None = None) -> nn.Module:
    """Load a state-dict file strictly into ``net`` (your depth network's class) and check its output shape.

    Args:
        net: the depth network built from its class (weights are replaced).
        path: ``torch.save(net.state_dict(), PATH)`` (also nested under ``state_dict``/``model``, or with
            ``module.`` prefixes); tensors only, read with ``weights_only=True``.
        size: (H, W) of the probe image used to check that the network returns (B, 1, h, w) or (B, h, w).
        name: label in the provenance (default: the class name).

    Returns:
        ``net`` in eval mode with ``rsa_bridge_info`` (name, weights = the path, its SHA-256, source ``user``).

    Raises:
        RSABridgeError: a missing/unreadable file, keys or shapes that do not fit ``net``, or an output
            that is not depth-shaped.

    Example::

        net = load_depth_net_weights(MyDepthNet(), "mydepth.pt", size=(228, 304))
        vis = DepthMaskVisualizer(net, lam=5.0)
    """
    from extractors.models import _load_state_strict, read_state_dict

    path = Path(path)
    _load_state_strict(net, read_state_dict(path), type(net).__name__, path)
    net.eval()
    with torch.no_grad():
        out = net(torch.zeros(1, 3, *size))
    if not (isinstance(out, torch.Tensor) and (out.ndim == 3 or (out.ndim == 4 and out.shape[1] == 1))):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise RSABridgeError(f"depth network {name or type(net).__name__} returned {shape} for a (1, 3, {size[0]}, "
                             f"{size[1]}) image; a depth network must return (B, 1, h, w) or (B, h, w)")
    net.rsa_bridge_info = ModelInfo(name=name or type(net).__name__, weights=str(path), weights_sha256=file_sha256(path),
                                    source="user")
    return net


def describe_depth_net(net: nn.Module) -> str:
    """One line saying which depth network this is (for attrs and figure captions)."""
    info = getattr(net, "rsa_bridge_info", None)
    weights = getattr(info, "weights", "unknown") if info is not None else "unknown"
    if isinstance(net, TinyDepthNet) and str(weights).startswith("trained: synthetic_scenes"):
        return (f"TinyDepthNet trained here on synthetic scenes ({str(weights)[len('trained: '):]}), not a real "
                "depth network")
    sha = getattr(info, "weights_sha256", "") if info is not None else ""
    name = getattr(info, "name", type(net).__name__) if info is not None else type(net).__name__
    return f"{name}, weights {weights}" + (f" (sha256 {sha[:12]})" if sha else "")


#: name -> builder of a depth network (no arguments); see :func:`load_depth_net`
DEPTH_MODELS: dict[str, Callable[[], nn.Module]] = {
    "tiny-synthetic": lambda: train_depth_net(),
}


def load_depth_net(spec: str | Path, *, allow_model_code: bool = False) -> nn.Module:
    """A depth network in eval mode from a name in :data:`DEPTH_MODELS` or a file.

    Args:
        spec: ``"tiny-synthetic"`` (trains :class:`TinyDepthNet` on 256 synthetic 32 x 48 scenes,
            seed 0, 400 steps: about 10-20 s on one CPU core), the path of a :func:`save_depth_net` checkpoint, or the
            path of a TorchScript archive (or a whole pickled ``nn.Module``) taking normalised (B, 3, H, W) images
            and returning (B, 1, h, w) or (B, h, w) depth.
        allow_model_code: consent to load a file that runs code (TorchScript, a pickled module):
            ``--allow-model-code`` on the command line; see :mod:`extractors.model_code`. A
            :func:`save_depth_net` checkpoint (tensors only) needs none.

    The network's ``rsa_bridge_info`` records the file, its SHA-256 and, for model code, the consent
    (``model_code`` attribute), so the results' provenance carries them.

    Raises:
        RSABridgeError: an unknown name, an unreadable / unsuitable file, or model code without consent.
    """
    text = str(spec)
    if text in DEPTH_MODELS:
        return DEPTH_MODELS[text]().eval()
    path = Path(text)
    if not path.is_file():
        raise RSABridgeError(
            f"depth model {text!r} is neither a known name ({', '.join(sorted(DEPTH_MODELS))}) nor an existing file; "
            "pass a name, a TorchScript archive or a checkpoint from save_depth_net"
        )
    code = is_torchscript(path)
    if not code:
        try:
            net = _load_checkpoint(path)
        except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, ValueError) as err:
            if not holds_code(path):
                raise RSABridgeError(f"cannot load depth model {str(path)!r}: "
                                     f"{str(err).splitlines()[0] if str(err) else err}") from None
            code = True  # a pickled module: model code
    if code:
        net = load_model_code(path, allow_model_code=allow_model_code, what="depth model")
    net.eval()
    info = getattr(net, "rsa_bridge_info", None)
    if not isinstance(info, ModelInfo):
        info = ModelInfo(name=f"file:{path.name}", weights=str(path), source="file")
        net.rsa_bridge_info = info
    info.weights, info.weights_sha256 = str(path), file_sha256(path)
    if code:
        info.extra[MODEL_CODE_ATTR] = MODEL_CODE_ALLOWED
    return net
