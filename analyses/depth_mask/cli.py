"""``rsa-bridge depth-mask``: train mask networks for a depth network over a λ sweep; write masks and a figure.

Registered in ``rsa_bridge.app.cli.COMMANDS`` as ``"depth-mask": "analyses.depth_mask.cli"``. Parses,
calls :mod:`analyses.depth_mask.sweep`, prints; no science here.
"""
from __future__ import annotations

from rsa_bridge.app.argtypes import count, real, seed

import argparse
from pathlib import Path
import sys
import warnings

from rsa_bridge.errors import RSABridgeError

EPILOG = """\
examples:
  rsa-bridge depth-mask --depth-model tiny-synthetic --images scenes/ --lam 4,5,6 --out out/
  rsa-bridge depth-mask --depth-model fastdepth_scripted.pt --allow-model-code --images nyu/ --size 224x224 \\
      --lam 1,3,5 --steps 5000 --out out/

--depth-model takes a name (tiny-synthetic: a small network trained on synthetic scenes, seed 0), a
TorchScript archive of any depth network (normalised (B,3,H,W) -> (B,1,h,w) depth), or a checkpoint
from analyses.depth_mask.depthnet.save_depth_net. A real network whose Python class you have and its
torch.save(state_dict) file: build it and call analyses.depth_mask.depthnet.load_depth_net_weights(net, PATH)
in Python (docs/guide/depth-masks.md). The output says which network ran (attribute depth_network, the
figure's caption, the first line printed). A TorchScript archive (or a pickled module) runs code:
it loads only with --allow-model-code, which the output records (attribute model_code). Writes OUT/masks/lam_<λ>/<id>.png,
OUT/depth_masks.nc and OUT/depth_masks.png. A collapsed mask (all ones / all zeros / constant) is
reported on stderr with advice and flagged in the files, not presented as a result.

Defaults are the paper's (λ sweep 1,3,5; Adam lr 1e-4, weight decay 1e-4; masked pixels become the
mean colour) except the number of steps. The depth network receives (image - mean) / std, with
--mean/--std defaulting to the network's own image_mean/image_std buffers, else ImageNet statistics;
for a network that takes raw [0, 1] pixels pass --mean 0,0,0 --std 1,1,1 (the mean fill is then black).
"""


def parse_lams(text: str) -> list[float]:
    """``"1,3,5"`` -> [1.0, 3.0, 5.0]; RSABridgeError for anything else."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise RSABridgeError(f"--lam must be comma-separated numbers such as 1,3,5, not {text!r}") from None
    if not values or any(not (v >= 0) for v in values):
        raise RSABridgeError(f"--lam needs one or more numbers >= 0 such as 1,3,5, not {text!r}")
    return values


def parse_size(text: str | None) -> tuple[int, int] | None:
    """``"32x48"`` -> (32, 48) (height x width); None stays None."""
    if text is None:
        return None
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise RSABridgeError(f"--size must be HEIGHTxWIDTH such as 32x48, not {text!r}") from None
    if h < 8 or w < 8:
        raise RSABridgeError(f"--size must be at least 8x8, not {text!r}")
    return h, w


def parse_triple(text: str | None, option: str) -> tuple[float, float, float] | None:
    """``"0.5,0.4,0.3"`` -> (0.5, 0.4, 0.3); None stays None."""
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not all(v == v and abs(v) != float("inf") for v in values):
        raise RSABridgeError(f"{option} must be three comma-separated numbers (R,G,B) such as 0.485,0.456,0.406, not {text!r}")
    if option == "--std" and min(values) <= 0:
        raise RSABridgeError(f"--std values must be > 0, not {text!r}")
    return values  # type: ignore[return-value]


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``depth-mask`` parser."""
    p = subparsers.add_parser(
        "depth-mask",
        help="which pixels a depth network needs (Hu, Zhang & Okatani 2019 masks)",
        description="Train a mask network per λ so that a frozen depth network predicts nearly the same depth "
        "from the masked image, with the mask as sparse as possible; write masks (PNG, NetCDF) and a figure.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--depth-model", required=True, metavar="PATH_OR_NAME", help="tiny-synthetic, or a file")
    p.add_argument("--allow-model-code", action="store_true",
                   help="let a --depth-model file that runs code (TorchScript, a pickled module) load; "
                        "only for a file you trust completely (a save_depth_net checkpoint needs no consent)")
    p.add_argument("--images", required=True, metavar="DIR", help="image folder (manifest.csv optional)")
    p.add_argument("--lam", default="1,3,5", metavar="L1,L2,...", help="sparsity weights λ (default 1,3,5)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder of an earlier run")
    p.add_argument("--fill", default="mean", choices=["mean", "black", "blur"],
                   help="what a masked pixel becomes (default mean: the paper's)")
    p.add_argument("--mean", default=None, metavar="R,G,B", help="input normalisation mean (default: the network's)")
    p.add_argument("--std", default=None, metavar="R,G,B", help="input normalisation std (default: the network's)")
    p.add_argument("--size", default=None, metavar="HxW", help="resize images to this size (default: first image's)")
    p.add_argument("--steps", type=count("--steps", 1_000_000, minimum=1), default=300, help="Adam steps per λ (default 300)")
    p.add_argument("--lr", type=real("--lr", 0, 10, open_ends=True), default=1e-4, help="Adam learning rate (default 1e-4, the paper's)")
    p.add_argument("--weight-decay", type=real("--weight-decay", 0, 1), default=1e-4, help="Adam weight decay (default 1e-4, the paper's)")
    p.add_argument("--batch-size", type=count("--batch-size", 4096, minimum=1), default=8, help="images per step (default 8)")
    p.add_argument("--seed", type=seed(), default=0, help="seed of the mask network and batch order (default 0)")
    p.add_argument("--rows", type=count("--rows", 64, minimum=1), default=4, help="images shown in the figure (default 4)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit code."""
    from analyses.depth_mask.depthnet import load_depth_net
    from analyses.depth_mask.metrics import DepthMaskCollapseWarning
    from analyses.depth_mask.sweep import lam_sweep, load_images, write_results

    lams = parse_lams(args.lam)
    size = parse_size(args.size)
    norm = {k: v for k, v in (("mean", parse_triple(args.mean, "--mean")), ("std", parse_triple(args.std, "--std")))
            if v is not None}
    from rsa_bridge.io import check_out, publish_folder
    check_out(args.out, args.overwrite)  # before any training (issue 17)
    images, ids = load_images(args.images, size)  # cheap checks first: a named model may train for seconds
    net = load_depth_net(args.depth_model, allow_model_code=args.allow_model_code)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DepthMaskCollapseWarning)
        ds = lam_sweep(
            net, images, lams, stimulus_ids=ids, fill=args.fill, steps=args.steps, lr=args.lr,
            weight_decay=args.weight_decay, batch_size=args.batch_size, seed=args.seed, **norm,
        )
    with publish_folder(args.out, args.overwrite) as stage:  # one unit
        staged = write_results(ds, images, stage, rows=args.rows)
    paths = {name: Path(args.out) / Path(path).relative_to(stage) for name, path in staged.items()}
    print(f"depth network N: {ds.attrs.get('depth_network', 'unknown')}")
    print(f"{len(ids)} images {images.shape[2]}x{images.shape[3]}, depth at {ds.sizes['y_depth']}x{ds.sizes['x_depth']}, "
          f"fill={args.fill}, {args.steps} steps per lam")
    print(f"{'lam':>6} {'mask_mean':>10} {'frac>0.5':>9} {'fid_rmse':>9} {'fid_absrel':>10} {'fid_d1':>7}  collapse")
    for lam in ds["lam"].values:
        row = ds[["mask_mean", "mask_frac_above_half", "fidelity_rmse", "fidelity_abs_rel", "fidelity_delta1"]]
        row = row.sel(lam=lam).mean("presentation")
        print(f"{float(lam):>6g} {float(row.mask_mean):>10.3f} {float(row.mask_frac_above_half):>9.3f} "
              f"{float(row.fidelity_rmse):>9.3f} {float(row.fidelity_abs_rel):>10.3f} {float(row.fidelity_delta1):>7.3f}  "
              f"{str(ds['collapse'].sel(lam=lam).values)}")
    for w in caught:
        if issubclass(w.category, DepthMaskCollapseWarning):
            print(f"rsa-bridge depth-mask: warning: {w.message}", file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    for name, path in paths.items():
        print(f"wrote {name}: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m analyses.depth_mask.cli depth-mask ...``: the same as ``rsa-bridge depth-mask ...``."""
    from rsa_bridge.app.cli import main as rsa_bridge_main

    return rsa_bridge_main(argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
