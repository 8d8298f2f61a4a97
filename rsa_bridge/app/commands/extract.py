"""``rsa-bridge extract``: write the activations of chosen layers for a stimulus set to disk, one file per layer.

The work is :func:`extractors.to_disk.extract_to_disk` (streaming, batch by batch; chunked NetCDF-4 per
layer; the folder published whole). This module parses and prints only.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from rsa_bridge.app.argtypes import count, seed


def register(subparsers) -> None:
    """Add the ``extract`` sub-command."""
    p = subparsers.add_parser(
        "extract", help="write layer activations for a stimulus set to disk (NetCDF per layer)",
        description=(
            "Run a network on a stimulus set and write the activations of the chosen layers to --out, one "
            "chunked NetCDF-4 file per layer (LAYER.nc: variable 'activations' (presentation x neuroid) float32, "
            "coordinate stimulus_id, provenance attrs) plus layers.csv, batch by batch (no layer is held whole "
            "in memory). Per-call layers of recurrent networks: V2@1, or V2@all for one file per step. "
            "Preprocessing follows the weights unless --resize, --center-crop/--no-center-crop or --normalize "
            "is given; every choice is recorded in the files' attrs."),
    )
    p.add_argument("--model", required=True,
                   help="torchvision model name (alexnet, ...), cornet_rt / cornet_s, or SOURCE:NAME (timm:NAME, ...)")
    p.add_argument("--weights", default="default", metavar="WEIGHTS",
                   help="'default', 'none' (untrained, from --seed), a weights enum member, or a state-dict file")
    p.add_argument("--stimuli", type=Path, required=True, help="stimulus folder (manifest.csv, or images: ids = file stems)")
    p.add_argument("--layers", help="comma-separated aliases or module paths, NAME@t / NAME@all for modules that run "
                                    "several times per pass (default: the model's list; see `rsa-bridge layers`)")
    p.add_argument("--out", type=Path, required=True, help="output folder (published whole when the run succeeds)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier rsa-bridge output at --out")
    pre = p.add_argument_group("preprocessing (default: as the weights say)")
    pre.add_argument("--preprocess", choices=("weights", "custom"), default=None,
                     help="'weights': the weights' own transform (default when no option below is given); 'custom': "
                          "built from --resize/--center-crop/--normalize, unset ones taking the weights' values")
    pre.add_argument("--resize", type=count("--resize", 16_384, minimum=1), metavar="N",
                     help="resize the shorter image side to N px (bilinear, antialiased)")
    crop = pre.add_mutually_exclusive_group()
    crop.add_argument("--center-crop", type=count("--center-crop", 16_384, minimum=1), metavar="N",
                      help="centre-crop N x N px")
    crop.add_argument("--no-center-crop", dest="center_crop", action="store_const", const=0, help="do not crop")
    pre.add_argument("--normalize", metavar="imagenet|none|MEAN,STD",
                     help="channel normalisation: imagenet (mean 0.485,0.456,0.406; std 0.229,0.224,0.225), none, "
                          "MEAN,STD for all channels, or M1,M2,M3,S1,S2,S3")
    p.add_argument("--batch-size", type=count("--batch-size", 65_536, minimum=1), default=32,
                   help="stimuli per forward pass (default 32)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--seed", type=seed(), default=0, help="seed of an untrained network's initialisation (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check everything, extract, print what was written; returns the exit code."""
    from extractors import load_model
    from extractors.to_disk import ExtractOptions, PreprocessOptions, extract_to_disk
    from rsa_bridge.errors import RSABridgeError
    from stimuli.atomic import check_out

    preprocess = PreprocessOptions(resize=args.resize, center_crop=args.center_crop, normalize=args.normalize,
                                   mode=args.preprocess or "auto")
    preprocess.check()
    check_out(args.out, args.overwrite, kind="folder", option="--out")  # before the model is built
    if not args.stimuli.is_dir():
        raise RSABridgeError(f"--stimuli {str(args.stimuli)!r} is not a folder; give a stimulus folder")
    model = load_model(args.model, args.weights, device=args.device, seed=args.seed)
    options = ExtractOptions(batch_size=args.batch_size, device=args.device, preprocess=preprocess,
                             overwrite=args.overwrite, progress=False if args.quiet else None)
    files = extract_to_disk(model, args.stimuli, args.layers, args.out, options)
    print(f"wrote {len(files)} layer file(s) and layers.csv to {args.out}: {', '.join(p.name for p in files.values())}")
    return 0

