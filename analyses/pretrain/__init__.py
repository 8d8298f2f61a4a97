"""Classification pre-training of torchvision models on a stimulus set (e.g. FractalDB-style fractals).

    from analyses.pretrain import PretrainConfig, pretrain
    pretrain("fractals", "runs/alexnet_fdb", PretrainConfig(model="alexnet"))   # resumable; weights.pt for compare

Modules: :mod:`.data` (labels, seeded crops), :mod:`.train` (the loop, checkpoints), :mod:`.cli`.
"""
import importlib

from analyses.pretrain.config import PretrainConfig


def __getattr__(name: str):
    if name in ("PretrainResult", "build_model", "pretrain"):
        return getattr(importlib.import_module("analyses.pretrain.train"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["PretrainConfig", "PretrainResult", "build_model", "pretrain"]
