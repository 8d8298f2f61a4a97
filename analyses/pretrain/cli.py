"""``rsa-bridge pretrain``: train a torchvision classifier on a stimulus set (parsing and printing only).

    rsa-bridge pretrain --model alexnet --stimuli FRACTALS --out runs/alexnet_fdb [--epochs 90]

Running the same command again resumes from ``OUT/checkpoint.pt``; ``OUT/weights.pt`` is usable as
``rsa-bridge compare --weights OUT/weights.pt``.
"""
from __future__ import annotations

from rsa_bridge.app.argtypes import count, real, seed
from rsa_bridge.io import out_path

import argparse
from pathlib import Path


def register(subparsers) -> None:
    from analyses.pretrain.config import PretrainConfig

    d = PretrainConfig()
    p = subparsers.add_parser(
        "pretrain", help="train a torchvision classifier on a stimulus set (e.g. FractalDB-style fractals)",
        description="Classification pre-training with the FractalDB recipe (SGD, momentum 0.9, weight decay 1e-4, "
                    "lr /10 at epochs 30 and 60 of 90, random 224 crops, mean 0.2, std 0.5). Resumes from "
                    "OUT/checkpoint.pt when it exists; OUT/weights.pt works as compare --weights PATH.",
    )
    p.add_argument("--model", default=d.model, help=f"torchvision model name (default {d.model}; e.g. resnet50)")
    p.add_argument("--stimuli", type=Path, required=True, help="stimulus folder with manifest.csv")
    p.add_argument("--label", default=d.label, help=f"manifest column with each image's class (default {d.label})")
    p.add_argument("--out", type=out_path, required=True, help="folder for checkpoint.pt, weights.pt, log.csv")
    p.add_argument("--num-classes", type=count("--num-classes", 1_000_000, minimum=1), default=d.num_classes,
                   help=f"output units (default {d.num_classes}, the shape compare --weights expects)")
    p.add_argument("--epochs", type=count("--epochs", 100_000, minimum=1), default=d.epochs, help=f"default {d.epochs}")
    p.add_argument("--lr", type=real("--lr", 0, 10, open_ends=True), default=d.lr, help=f"initial learning rate (default {d.lr})")
    p.add_argument("--momentum", type=real("--momentum", 0, 1), default=d.momentum, help=f"SGD momentum (default {d.momentum})")
    p.add_argument("--weight-decay", type=real("--weight-decay", 0, 1), default=d.weight_decay,
                   help=f"SGD L2 weight decay (default {d.weight_decay})")
    p.add_argument("--milestones", default=",".join(map(str, d.milestones)),
                   help="epochs after which lr is multiplied by --gamma (default 30,60)")
    p.add_argument("--gamma", type=real("--gamma", 0, 1), default=d.gamma,
                   help=f"learning rate multiplied by this at each milestone (default {d.gamma})")
    p.add_argument("--batch-size", type=count("--batch-size", 65_536, minimum=1), default=d.batch_size, help=f"default {d.batch_size}")
    p.add_argument("--crop", type=count("--crop", 8192, minimum=8), default=d.crop, help=f"random square crop in pixels (default {d.crop})")
    p.add_argument("--mean", type=real("--mean", -1e3, 1e3), default=d.mean, help=f"normalisation mean (default {d.mean})")
    p.add_argument("--std", type=real("--std", 0, 1e3, open_ends=True), default=d.std, help=f"normalisation std (default {d.std})")
    p.add_argument("--seed", type=seed(), default=d.seed,
                   help=f"seed of the initialisation, data order, crops and dropout (default {d.seed})")
    p.add_argument("--steps-per-epoch", type=count("--steps-per-epoch", 10_000_000, minimum=1), help="stop each epoch after N batches (smoke tests)")
    p.add_argument("--workers", type=count("--workers", 256), default=d.workers, help="data-loading processes (default 0)")
    p.add_argument("--device", default=d.device, help="cpu or cuda")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    p.set_defaults(func=run)


def check_out_folder(out) -> Path:
    """``--out`` of pretrain, checked before any work: not empty (``''`` would be the current folder), not a
    file, not on a kernel filesystem, not a name too long (:func:`stimuli.diskspace.check_location`). An
    existing folder is fine: pretrain resumes from its checkpoint."""
    from stimuli.diskspace import check_location

    from rsa_bridge.errors import RSABridgeError

    if out is None or not str(out).strip():
        raise RSABridgeError("--out is empty; give a folder path (pretrain writes checkpoint.pt, weights.pt and "
                             "log.csv there)")
    out = Path(out)
    if (out.exists() or out.is_symlink()) and not out.is_dir():
        raise RSABridgeError(f"--out {str(out)!r} is a file or another non-folder; give a folder path")
    check_location(out)
    return out


def run(args: argparse.Namespace) -> int:
    from analyses.pretrain.train import CHECKPOINT, PretrainConfig, pretrain
    from rsa_bridge.errors import RSABridgeError

    args.out = check_out_folder(args.out)

    try:
        milestones = tuple(int(m) for m in str(args.milestones).split(",") if m.strip())
    except ValueError:
        raise RSABridgeError(
            f"--milestones takes comma-separated epochs, e.g. 30,60; got {args.milestones!r}") from None
    config = PretrainConfig(model=args.model, label=args.label, num_classes=args.num_classes, epochs=args.epochs,
                            lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay, milestones=milestones,
                            gamma=args.gamma, batch_size=args.batch_size, crop=args.crop, mean=args.mean,
                            std=args.std, seed=args.seed, steps_per_epoch=args.steps_per_epoch, workers=args.workers,
                            device=args.device)
    if (args.out / CHECKPOINT).is_file():
        print(f"resuming from {args.out / CHECKPOINT}")
    result = pretrain(args.stimuli, args.out, config, progress=None if args.quiet else print)
    if not result.epochs_run:
        print(f"nothing to do: {args.out / CHECKPOINT} already has {config.epochs} epochs")
    last = result.log.iloc[-1]
    print(f"{args.model}: epoch {int(last['epoch'])}/{config.epochs}, loss {last['loss']:.4f}, "
          f"accuracy {last['accuracy']:.3f}; weights for compare: {args.out / 'weights.pt'}")
    return 0
