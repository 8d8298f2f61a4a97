"""One RDM (a brain area or a model layer of a compare run) with thumbnails of the stimuli along both axes,
shown as percentiles of its dissimilarities. The drawing is :func:`rsa_bridge.figures.rdm_with_icons`.

    rsa-bridge figure rdm_icons --results out/ [--rdm IT | --rdm conv5] [--every 2]
"""
from __future__ import annotations

from rsa_bridge.app.argtypes import count

from typing import Sequence

from analyses.figures import common
from analyses.figures.mds import pick_rdm
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.figures import rdm_with_icons

NAME = "rdm_icons"


def main(argv: Sequence[str] | None = None) -> int:
    p = common.parser(NAME, "An RDM with image thumbnails on its axes.", measures=False)
    p.add_argument("--rdm", default=None, help="area or model layer (default: the first area)")
    p.add_argument("--every", type=count("--every", 100_000, minimum=1), default=None, help="draw every k-th icon (default: about 40 icons)")
    p.add_argument("--raw", action="store_true", help="raw dissimilarities instead of percentiles")
    p.add_argument("--width", default="single", help="single, double or millimetres (default single)")
    args = p.parse_args(argv)
    if args.every is not None and args.every < 1:
        raise RSABridgeError(f"--every must be at least 1; got {args.every}")
    cached = common.load_or_compute(args)
    title, rdm, dataset = pick_rdm(cached, args.rdm, args.dataset)
    if not dataset.attrs.get("stimuli_path"):
        raise RSABridgeError("the dataset does not say where its images are; the icons need them")
    from stimuli import load_stimulus_set

    fig, _, _ = rdm_with_icons(rdm, load_stimulus_set(dataset.attrs["stimuli_path"]), percentile=not args.raw,
                               every=args.every, width=args.width, title=title)
    for path in common.save(fig, args.out, NAME, args.dpi):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(common.run(main))
