"""``rsa-bridge compare``: score model layers against brain areas; prints a table, writes files."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "compare", help="compare model layer RDMs with brain-area RDMs",
        description="Compare every layer of a network (or precomputed model RDMs) with the RDMs of brain areas.",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", action="append", default=None,
                     help="torchvision model name, e.g. alexnet, vgg16, resnet50; SOURCE:NAME (timm:NAME, "
                          "openclip:ARCH/PRETRAINED, hf:REPO_ID, plugins); or an image-statistics control "
                          "(pixels, luminance_contrast, spatial_frequency, gabor); repeat it to compare models "
                          "on the same bootstrap samples")
    src.add_argument("--model-rdms", type=Path, metavar="FILE", help="precomputed model RDMs (.nc or .mat)")
    p.add_argument("--area", action="append", help="brain area (repeatable), e.g. V4, IT, hIT")
    p.add_argument("--dataset", help="shipped dataset name or an RDM dataset .nc (default: the one with --area)")
    p.add_argument("--stimuli", type=Path, help="stimulus folder with manifest.csv (for a user dataset)")
    p.add_argument("--weights", default="default",
                   help="'default' (pretrained weights from the local cache), an enum member such as IMAGENET1K_V1, "
                        "'none' (untrained), or a state-dict file")
    p.add_argument("--layers", help="comma-separated layer aliases or module paths (default: the model's list)")
    p.add_argument("--tokens", choices=("all", "cls", "mean"), default="all",
                   help="units of transformer token layers (B, tokens, dim): all tokens (default), the class "
                        "token, or the mean over patch tokens; Swin/MaxViT maps: all or mean over positions")
    p.add_argument("--metric", default="correlation", help="RDM metric for model layers (default: correlation)")
    p.add_argument("--method", default="spearman",
                   help="RDM comparison: spearman (default), pearson, kendall_tau_a, rho_a, cosine, "
                        "whitened_pearson, whitened_cosine (see README)")
    stats = p.add_argument_group("statistics")
    stats.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                       help="bootstrap samples for the ci_low/ci_high columns and the best layer (default 1000; 0 = off)")
    stats.add_argument("--bootstrap-over", choices=("stimuli", "rdms", "both"), default="stimuli",
                       help="resample stimuli (default), the area's RDMs (subjects/sessions), or both")
    stats.add_argument("--ci-level", type=float, default=0.95, help="confidence level of the interval (default 0.95)")
    stats.add_argument("--permutations", type=int, default=0, metavar="N",
                       help="stimulus-label permutations for p_value, p_holm, p_fdr (default 0 = off; try 1000)")
    stats.add_argument("--seed", type=int, default=0, help="seed of every random step (default 0; stored in results.nc)")
    stats.add_argument("--normalize-by-ceiling", nargs="?", const="upper", choices=("upper", "lower"), default=None,
                       help="add similarity / noise ceiling (upper bound unless 'lower' is given) as "
                            "similarity_normalized, and print it")
    p.add_argument("--stimulus-ids", metavar="FILE|dataset",
                   help="for .mat model RDMs: a file with one id per line, or 'dataset' if rows follow the dataset's order")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--precision", choices=("float64", "float32"), default="float64",
                   help="arithmetic of the model RDMs: float64 (exact, default) or float32 (about 2x faster, "
                        "about 1e-6 error)")
    p.add_argument("--reduce-units", type=int, metavar="K", default=None,
                   help="sketch layers wider than K units down to K (seeded count sketch, seed --seed; "
                        "recorded in model_rdms.nc)")
    cache = p.add_mutually_exclusive_group()
    cache.add_argument("--cache", type=Path, metavar="DIR",
                       help="model-RDM cache folder (default: $RSA_BRIDGE_CACHE or ~/.cache/rsa-bridge)")
    cache.add_argument("--no-cache", action="store_true", help="neither read nor write the model-RDM cache")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="compute model RDMs as dask tasks: a scheduler address (tcp://host:8786), or local / local:N")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--out", type=Path, help="folder for results.csv, results.nc, model_rdms.nc, profile.pdf/png")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _stimulus_ids(value: str | None, dataset: str | None, area_list):
    if value is None:
        return None
    from rsa_bridge.datasets import load_dataset
    from rsa_bridge.errors import RSABridgeError
    from rsa_bridge.pipeline import select_datasets
    from rsa_bridge.rdm import ROW

    if value == "dataset":
        plan = select_datasets(area_list, dataset)
        if len(plan) != 1:
            raise RSABridgeError("--stimulus-ids dataset needs areas from a single dataset")
        return [str(s) for s in load_dataset(plan[0][0])[ROW].values]
    path = Path(value)
    if not path.is_file():
        raise RSABridgeError(f"--stimulus-ids file {value!r} does not exist")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def run(args: argparse.Namespace) -> int:
    import sys
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        code = _run(args)
    for note in dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)):
        print(f"rsa-bridge compare: note: {note}", file=sys.stderr)
    return code


def _run(args: argparse.Namespace) -> int:
    from rsa_bridge.errors import RSABridgeError
    from rsa_bridge.model_rdms import read_model_rdms
    from rsa_bridge.pipeline import StatsOptions, compare_models, compare_precomputed
    from rsa_bridge.report import format_table, write_outputs

    layers = [s.strip() for s in args.layers.split(",") if s.strip()] if args.layers else None
    if args.bootstrap < 0 or args.permutations < 0:
        raise RSABridgeError("--bootstrap and --permutations take a number of samples >= 0 (0 turns them off)")
    if not 0.0 < args.ci_level < 1.0:
        raise RSABridgeError(f"--ci-level must lie between 0 and 1, e.g. 0.95; got {args.ci_level}")
    if args.seed < 0:
        raise RSABridgeError(f"--seed must be >= 0; got {args.seed}")
    stats = StatsOptions(bootstrap=args.bootstrap, permutations=args.permutations, seed=args.seed,
                         bootstrap_over=args.bootstrap_over, ci_level=args.ci_level,
                         normalize_by_ceiling=args.normalize_by_ceiling, progress=False if args.quiet else None)
    if args.model_rdms is not None:
        ids = _stimulus_ids(args.stimulus_ids, args.dataset, args.area)
        rdms = read_model_rdms(args.model_rdms, stimulus_ids=ids)
        if layers:
            missing = [l for l in layers if l not in rdms["layer"].values]
            if missing:
                raise RSABridgeError(f"{str(args.model_rdms)!r} has no layer {missing[0]!r}; "
                                     f"it has {', '.join(map(str, rdms['layer'].values[:10]))} ...")
            rdms = rdms.sel(layer=layers)
        result = compare_precomputed(rdms, args.area, dataset=args.dataset, method=args.method, stats=stats)
    else:
        if args.model is None:
            raise RSABridgeError("say which model to score: --model NAME or --model-rdms FILE")
        if args.batch_size < 1:
            raise RSABridgeError("--batch-size must be at least 1")
        runner = compare_models
        if getattr(args, "scheduler", None):
            from functools import partial

            from rsa_bridge.distributed import compare_many
            runner = partial(compare_many, scheduler=args.scheduler)
        if args.reduce_units is not None and args.reduce_units < 1:
            raise RSABridgeError(f"--reduce-units must be a number of units >= 1; got {args.reduce_units}")
        rdm_options = {"precision": args.precision, "reduce_units": args.reduce_units, "reduce_seed": args.seed}
        result = runner(args.model, args.area, weights=args.weights, dataset=args.dataset,
                        cache=False if getattr(args, "no_cache", False) else getattr(args, "cache", None),
                        stimuli=args.stimuli, layers=layers, metric=args.metric, method=args.method,
                        batch_size=args.batch_size, device=args.device,
                        progress=False if args.quiet else None, stats=stats, rdm_options=rdm_options,
                        **({"tokens": args.tokens} if getattr(args, "tokens", "all") != "all" else {}))
    print(format_table(result))
    if args.out is not None:
        written = write_outputs(result, args.out)
        print(f"wrote {', '.join(p.name for p in written)} to {args.out}")
    return 0
