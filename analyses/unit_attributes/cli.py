"""``rsa-bridge units``: unit-level attribute discovery (parsing and printing only).

    rsa-bridge units --model alexnet --stimuli DIR --label COLUMN [--positive VALUE] [--out DIR]

Prints one row per layer (divergence summary, top unit, visualness) and, with ``--out``, writes
``units.nc``, ``layers.csv``, ``units.csv``, ``profile.png`` and ``profile.pdf`` (atomically).
"""
from __future__ import annotations

from rsa_bridge.app.argtypes import count, real, seed

import argparse
from pathlib import Path

from rsa_bridge.io import out_path

from analyses.unit_attributes.defaults import (CLASSIFIER_NAMES, DEFAULT_BINS, DEFAULT_CLASSIFIER, DEFAULT_EPSILON,
                                               DEFAULT_FOLDS, DEFAULT_K, DEFAULT_POOLING, POOLING_NAMES, SELECTIONS)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "units", help="find the units of each layer that tell a positive from a negative image set",
        description="Unit-level attribute discovery (after Vittayakorn et al., ECCV 2016): per unit, the KL "
                    "divergence of its activation histograms over positive vs negative stimuli; the top-k prime "
                    "units per layer; visualness = cross-validated accuracy of a linear classifier on them.",
    )
    p.add_argument("--model", required=True, help="torchvision model name, e.g. alexnet, vgg16, resnet50")
    p.add_argument("--weights", default="default",
                   help="'default' (torchvision weights from the local cache), 'none' (untrained), "
                        "or a state-dict file")
    p.add_argument("--stimuli", type=Path, required=True, help="stimulus folder with manifest.csv")
    p.add_argument("--label", required=True, help="manifest column that defines the sets")
    p.add_argument("--positive", help="label value of the positive set (default: 1/true of a binary column)")
    p.add_argument("--negative", help="label value of the negative set (default: every other labelled stimulus)")
    p.add_argument("--layers", help="comma-separated layer aliases or module paths (default: the model's list)")
    p.add_argument("--bins", type=count("--bins", 10_000, minimum=2), default=DEFAULT_BINS, help=f"histogram bins per unit (default {DEFAULT_BINS})")
    p.add_argument("--epsilon", type=real("--epsilon", 0, 1e6), default=DEFAULT_EPSILON,
                   help=f"smoothing added to every bin probability (default {DEFAULT_EPSILON:g})")
    p.add_argument("--pooling", choices=list(POOLING_NAMES), default=DEFAULT_POOLING,
                   help=f"spatial pooling of conv channels (default {DEFAULT_POOLING}; none: every position a unit)")
    p.add_argument("--top-k", "-k", dest="k", type=count("--top-k", 10_000_000, minimum=1), default=DEFAULT_K,
                   help=f"prime units per layer (default {DEFAULT_K})")
    p.add_argument("--classifier", choices=list(CLASSIFIER_NAMES), default=DEFAULT_CLASSIFIER,
                   help=f"linear classifier for visualness (default {DEFAULT_CLASSIFIER})")
    p.add_argument("--folds", type=count("--folds", 1000, minimum=2), default=DEFAULT_FOLDS, help=f"stratified CV folds (default {DEFAULT_FOLDS})")
    p.add_argument("--selection", choices=list(SELECTIONS), default="in_fold",
                   help="choose prime units on each training fold (in_fold, default) or on all stimuli (all)")
    p.add_argument("--permutations", type=count("--permutations", 100_000), default=20,
                   help="label shuffles for the null of the prime units' divergence (default 20; 0 = none)")
    p.add_argument("--seed", type=seed(), default=0,
                   help="seed of the folds, the classifier and the label shuffles (default 0)")
    p.add_argument("--no-histograms", action="store_true", help="leave the per-unit histograms out of units.nc")
    p.add_argument("--batch-size", type=count("--batch-size", 4096, minimum=1), default=32, help="images per forward pass (default 32)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--out", type=out_path, help="folder for units.nc, layers.csv, units.csv, profile.png/pdf")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder of an earlier run")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from analyses.unit_attributes.discover import Extraction, UnitOptions, unit_attributes
    from analyses.unit_attributes.labels import split_by_label
    from analyses.unit_attributes.output import format_table, write_outputs
    from extractors import load_model
    from rsa_bridge.errors import RSABridgeError
    from stimuli import load_stimulus_set

    from rsa_bridge.io import check_out  # --batch-size and --seed are bounded when parsed (rsa_bridge.app.argtypes)

    if args.layers is not None and not args.layers.strip(","+" "):
        raise RSABridgeError("--layers is empty; name layers, e.g. --layers conv1,fc6, or leave the option out")
    if args.out is not None:  # before any computing (issue 17)
        check_out(args.out, args.overwrite)
    options = UnitOptions(bins=args.bins, epsilon=args.epsilon, pooling=args.pooling, k=args.k,
                          classifier=args.classifier, folds=args.folds, seed=args.seed, selection=args.selection,
                          histograms=not args.no_histograms, permutations=args.permutations)
    stim = load_stimulus_set(args.stimuli)
    split = split_by_label(stim, args.label, args.positive, args.negative)  # fail before loading the model
    options.check(split.is_positive)
    layers = [s.strip() for s in args.layers.split(",") if s.strip()] if args.layers else None
    model = load_model(args.model, args.weights, device=args.device)
    ds = unit_attributes(model, stim, args.label, args.positive, args.negative, layers=layers, options=options,
                         extraction=Extraction(batch_size=args.batch_size, device=args.device,
                                               progress=False if args.quiet else None))
    print(format_table(ds))
    if args.out is not None:
        written = write_outputs(ds, args.out, overwrite=args.overwrite)
        print(f"wrote {', '.join(p.name for p in written)} to {args.out}")
    return 0
