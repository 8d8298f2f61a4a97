"""Classification pre-training of torchvision models on a stimulus set (e.g. FractalDB-style fractals).

    from analyses.pretrain import PretrainConfig, pretrain
    pretrain("fractals", "runs/alexnet_fdb", PretrainConfig(model="alexnet"))   # resumable; weights.pt for compare

Modules: :mod:`.data` (labels, seeded crops), :mod:`.train` (the loop, checkpoints), :mod:`.cli`.
"""
from analyses.pretrain.train import PretrainConfig, PretrainResult, build_model, pretrain

__all__ = ["PretrainConfig", "PretrainResult", "build_model", "pretrain"]
