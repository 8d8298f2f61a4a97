"""The settings of a pre-training run (no torch here, so ``rsa-bridge pretrain --help`` starts at once)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PretrainConfig:
    """Settings of a pre-training run (stored in the checkpoint and ``pretrain.json``).

    Attributes:
        model: torchvision builder name (``alexnet``, ``resnet18``, ``resnet50``, ...).
        label: manifest column with the class of each image (FractalDB sets: ``category``).
        num_classes: output units; default 1000 (so ``weights.pt`` fits torchvision's ImageNet-shaped
            model that ``compare --weights PATH`` builds); must be >= the number of classes.
        epochs, lr, momentum, weight_decay, milestones, gamma: SGD and its step schedule (per epoch).
        batch_size, crop, mean, std: batches of random ``crop`` x ``crop`` crops, ``(x - mean) / std``.
        seed: initialisation, data order, crops and dropout.
        steps_per_epoch: stop each epoch after this many batches (None: the whole set; for smoke tests).
        workers: DataLoader worker processes (0: load in this process).
        device: ``cpu`` or ``cuda``.
    """

    model: str = "alexnet"
    label: str = "category"
    num_classes: int = 1000
    epochs: int = 90
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    milestones: tuple[int, ...] = (30, 60)
    gamma: float = 0.1
    batch_size: int = 256
    crop: int = 224
    mean: float = 0.2
    std: float = 0.5
    seed: int = 0
    steps_per_epoch: int | None = None
    workers: int = 0
    device: str = "cpu"
