"""CORnet-RT- and CORnet-S-style recurrent networks, written here from the paper's description.

Kubilius, Schrimpf, Kar, et al. (2019), "Brain-like object recognition with high-performing shallow
recurrent ANNs" (NeurIPS). Four areas named after the ventral stream, ``V1 -> V2 -> V4 -> IT``, then a
decoder (global average pool, linear read-out to 1000 classes). The facts used (not the authors' code):

- **CORnet-S**: V1 = conv 7x7/2 (64) + BN + ReLU, max-pool 3x3/2, conv 3x3 (64) + BN + ReLU (no
  recurrence). V2, V4, IT (128, 256, 512 channels) are recurrent bottleneck blocks run for 2, 4, 2
  steps. Step 0 maps the area's input with a 1x1 convolution and keeps a skip branch (1x1 conv,
  stride 2, BN); every step runs conv 1x1 (x4 channels) + BN + ReLU, conv 3x3 (stride 2 at step 0,
  1 afterwards, the same weights) + BN + ReLU, conv 1x1 + BN, adds the skip (the step's input after
  step 0) and a ReLU. Each step has its own batch norms; the convolutions are shared across steps.
- **CORnet-RT**: every area is "input conv + GroupNorm + ReLU, added to the area's state, then conv +
  GroupNorm + ReLU"; V1's input conv is 7x7/4, the others 3x3/2 (64, 128, 256, 512 channels). The
  network is unrolled in *biological* time for 5 steps: at step t an area reads the output its input
  area produced at step t - 1 (V1 reads the image at every step). Here an area runs only once its
  input exists, so V1 runs at steps 0-4, V2 at 1-4, V4 at 2-4, IT at 3-4 (5, 4, 3 and 2 calls);
  ``IT@0`` is IT's first output (biological step 3). ``extra["step_offsets"]`` records the offsets.

Each area is one module called once per step (``area.forward`` *is* the step function), so the hook
layer reads it per call: ``V2@1`` is V2's output after its step 1, ``V2@all`` every step (see
:mod:`extractors.hooks`). The networks are untrained: ``--weights none`` initialises them from a seed
(PyTorch's default initialisation under a private RNG), or ``--weights PATH`` loads a state dict saved
from the same builder. No pretrained weights ship with rsa-bridge.

    >>> model = load_cornet("cornet_s", "none", seed=0)
    >>> model.rsa_bridge_info.default_layers
    ['V1', 'V2@all', 'V4@all', 'IT@all']
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from rsa_bridge.errors import RSABridgeError

#: (channels, kernel, stride) of the input convolution of each CORnet-RT area
_RT_AREAS = {"V1": (64, 7, 4), "V2": (128, 3, 2), "V4": (256, 3, 2), "IT": (512, 3, 2)}
#: (channels, steps) of each recurrent CORnet-S area
_S_AREAS = {"V2": (128, 2), "V4": (256, 4), "IT": (512, 2)}
_PAPER = "Kubilius et al. 2019, Brain-like object recognition with high-performing shallow recurrent ANNs"


class Decoder(nn.Module):
    """Global average pool + linear read-out: (B, C, H, W) -> (B, classes)."""

    def __init__(self, channels: int, classes: int = 1000) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.linear = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.flatten(self.avgpool(x)))


class AreaRT(nn.Module):
    """One CORnet-RT area; ``forward(inp, state)`` is one time step.

    Args:
        in_channels, out_channels: channels of the input and of the output/state.
        kernel, stride: of the input convolution.

    ``forward(inp (B, in, H, W), state (B, out, H', W') or None) -> (B, out, H', W')``; the output
    is the area's next state.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.conv_input = nn.Conv2d(in_channels, out_channels, kernel, stride, padding=kernel // 2)
        self.norm_input = nn.GroupNorm(32, out_channels)
        self.conv1 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.norm1 = nn.GroupNorm(32, out_channels)

    def forward(self, inp: torch.Tensor, state: torch.Tensor | None = None) -> torch.Tensor:
        drive = F.relu(self.norm_input(self.conv_input(inp)))
        if state is not None:
            drive = drive + state
        return F.relu(self.norm1(self.conv1(drive)))


class CORnetRT(nn.Module):
    """CORnet-RT-style network: four recurrent areas unrolled in biological time (see the module docstring).

    ``forward(x (B, 3, H, W)) -> (B, 1000)`` class scores from IT's last output.
    """

    def __init__(self, steps: int = 5) -> None:
        super().__init__()
        self.steps = int(steps)
        channels = 3
        for name, (out, kernel, stride) in _RT_AREAS.items():
            self.add_module(name, AreaRT(channels, out, kernel, stride))
            channels = out
        self.decoder = Decoder(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        names = list(_RT_AREAS)
        latest: dict[str, torch.Tensor] = {}
        for _ in range(self.steps):
            new = {}
            for k, name in enumerate(names):
                inp = x if k == 0 else latest.get(names[k - 1])  # the lower area's output of the previous step
                if inp is not None:
                    new[name] = getattr(self, name)(inp, latest.get(name))
            latest.update(new)
        if "IT" not in latest:
            raise RSABridgeError(f"CORnet-RT needs at least {len(names)} steps for IT to run; got {self.steps}")
        return self.decoder(latest["IT"])


class AreaS(nn.Module):
    """One recurrent CORnet-S area; ``forward(x, t)`` is step ``t`` (0-based).

    At step 0, ``x`` is the area's input (B, in, H, W); afterwards the previous step's output
    (B, out, H/2, W/2), which is also the output's shape.
    """

    def __init__(self, in_channels: int, out_channels: int, steps: int, scale: int = 4) -> None:
        super().__init__()
        self.steps = int(steps)
        wide = out_channels * scale
        self.conv_input = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.skip = nn.Conv2d(out_channels, out_channels, 1, stride=2, bias=False)
        self.norm_skip = nn.BatchNorm2d(out_channels)
        self.conv1 = nn.Conv2d(out_channels, wide, 1, bias=False)
        self.conv2 = nn.Conv2d(wide, wide, 3, padding=1, bias=False)
        self.conv3 = nn.Conv2d(wide, out_channels, 1, bias=False)
        for i in (1, 2, 3):  # one batch norm per step and position
            size = out_channels if i == 3 else wide
            self.add_module(f"norms{i}", nn.ModuleList(nn.BatchNorm2d(size) for _ in range(self.steps)))

    def forward(self, x: torch.Tensor, t: int) -> torch.Tensor:
        if not 0 <= t < self.steps:
            raise RSABridgeError(f"step {t} of a CORnet-S area with {self.steps} steps; steps are 0..{self.steps - 1}")
        if t == 0:
            x = self.conv_input(x)
            skip = self.norm_skip(self.skip(x))
        else:
            skip = x
        h = F.relu(self.norms1[t](self.conv1(x)))
        h = F.conv2d(h, self.conv2.weight, stride=2 if t == 0 else 1, padding=1)  # shared weights, stride per step
        h = F.relu(self.norms2[t](h))
        h = self.norms3[t](self.conv3(h))
        return F.relu(h + skip)


class CORnetS(nn.Module):
    """CORnet-S-style network (see the module docstring). ``forward(x (B, 3, H, W)) -> (B, 1000)``."""

    def __init__(self) -> None:
        super().__init__()
        self.V1 = nn.Sequential(
            nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1),
            nn.Conv2d(64, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
        )
        channels = 64
        for name, (out, steps) in _S_AREAS.items():
            self.add_module(name, AreaS(channels, out, steps))
            channels = out
        self.decoder = Decoder(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.V1(x)
        for name in _S_AREAS:
            area = getattr(self, name)
            for t in range(area.steps):
                x = area(x, t)
        return self.decoder(x)


def _rt_info() -> dict[str, Any]:
    names = list(_RT_AREAS)
    return {"architecture": f"CORnet-RT-style, 5 steps in biological time ({_PAPER})",
            "step_offsets": ",".join(f"{n}:{k}" for k, n in enumerate(names))}


def _s_info() -> dict[str, Any]:
    return {"architecture": f"CORnet-S-style ({_PAPER})",
            "area_steps": "V1:1," + ",".join(f"{n}:{s}" for n, (_, s) in _S_AREAS.items())}


#: builder name -> (constructor, default layers, provenance extras)
ARCHITECTURES: dict[str, tuple[Callable[[], nn.Module], list[str], Callable[[], dict[str, Any]]]] = {
    "cornet_rt": (CORnetRT, ["V1@all", "V2@all", "V4@all", "IT@all"], _rt_info),
    "cornet_s": (CORnetS, ["V1", "V2@all", "V4@all", "IT@all"], _s_info),
}


#: bare model names rsa-bridge builds itself (``--model cornet_s``); also ``rsa-bridge:cornet_s``
OWN_MODELS = tuple(ARCHITECTURES)


def _transform() -> Any:
    from torchvision.transforms._presets import ImageClassification

    return ImageClassification(crop_size=224, resize_size=256)  # ImageNet statistics, as the paper's training


def _attach(model: nn.Module, name: str, weights: str, seed: int | None, sha: str = "") -> nn.Module:
    from extractors.models import ModelInfo
    from extractors.provenance import describe_transform, state_dict_sha256

    _, defaults, extra = ARCHITECTURES[name]
    transform = _transform()
    areas = {n: n for n in ("V1", "V2", "V4", "IT")}
    model.rsa_bridge_info = ModelInfo(
        name=name, weights=weights, weights_sha256=sha, transform=transform,
        preprocessing=describe_transform(transform), aliases={**areas, "decoder": "decoder"},
        default_layers=list(defaults), presets={"blocks": list(defaults)}, seed=seed,
        state_sha256="" if any(t.device.type == "meta" for t in model.state_dict().values())
        else state_dict_sha256(model),
        source="rsa-bridge", extra={**extra(), "trained": "no" if weights == "none" else "unknown"})
    return model


def _check_name(name: str) -> str:
    if name not in ARCHITECTURES:
        raise RSABridgeError(f"unknown recurrent model {name!r}; rsa-bridge builds {', '.join(ARCHITECTURES)}")
    return name


def load_cornet(name: str, weights: Any = "none", device: Any = "cpu", seed: int = 0) -> nn.Module:
    """A CORnet-style network in eval mode with ``rsa_bridge_info``.

    Args:
        name: ``"cornet_rt"`` or ``"cornet_s"``.
        weights: ``"none"`` (untrained, from ``seed``) or a state-dict file saved from this builder.
        device: where to put it.
        seed: seed of the initialisation (private RNG; the global one is untouched).

    Raises:
        RSABridgeError: an unknown name, ``"default"`` weights (none ship), a bad weights file.
    """
    from extractors.sources.common import load_file, seeded, weights_kind

    name = _check_name(name)
    if isinstance(weights, str) and weights.strip().lower() == "default":
        raise RSABridgeError(f"rsa-bridge ships no pretrained weights for {name} (it is written here from the "
                             "paper, untrained); pass --weights none or --weights PATH to a state dict of this "
                             "builder")
    kind, path = weights_kind(weights)
    model = seeded(ARCHITECTURES[name][0], int(seed))
    if kind == "file":
        sha = load_file(model, path, name)
        return _attach(model, name, str(path), None, sha).eval().to(device)
    return _attach(model, name, "none", int(seed)).eval().to(device)


def cornet_skeleton(name: str) -> nn.Module:
    """The network on the meta device (no weights), for ``rsa-bridge layers``."""
    name = _check_name(name)
    with torch.device("meta"):
        model = ARCHITECTURES[name][0]()
    return _attach(model, name, "none", 0).eval()
