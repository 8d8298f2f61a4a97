"""``rsa-bridge compare``: score model layers against brain areas; prints a table, writes files."""
from __future__ import annotations

from rsa_bridge.app.argtypes import count, real, seed
from rsa_bridge.app.gram_routes import ROUTE_CHOICES

import argparse
from pathlib import Path

from rsa_bridge.io import out_path
from rsa_bridge.definitions import COMPARISONS, METRICS, method_help, metric_help

#: torchvision's weights enum members of its ImageNet classifiers (DEFAULT aside), for ``--weights``' help
WEIGHTS_MEMBERS = ("IMAGENET1K_V1", "IMAGENET1K_V2", "IMAGENET1K_SWAG_E2E_V1", "IMAGENET1K_SWAG_LINEAR_V1")


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
    p.add_argument("--weights", action="append", default=None, metavar="WEIGHTS",
                   help="'default' (the model's torchvision DEFAULT weights, from the local cache), 'none' "
                        f"(untrained), a torchvision weights enum member of the model ({', '.join(WEIGHTS_MEMBERS)}; "
                        "which ones a model has: torchvision's docs), or a state-dict file (default: default); "
                        "with --between-models once per --model, in the same order")
    p.add_argument("--between-models", action="store_true",
                   help="instead of brain areas: the layer x layer map of one --measure (default cka; rsa uses "
                        "--method) between the two --model (or one and itself), on the images of --dataset or "
                        "--stimuli; writes model_map.nc/.csv to --out (docs/guide/measures.md)")
    p.add_argument("--layers", action="append",
                   help="comma-separated layer aliases or module paths (default: the model's list); with "
                        "--between-models once for both networks or once per --model, in the same order")
    p.add_argument("--tokens", choices=("all", "cls", "mean"), default="all",
                   help="units of transformer token layers (B, tokens, dim): all tokens (default), the class "
                        "token, or the mean over patch tokens; Swin/MaxViT maps: all or mean over positions")
    p.add_argument("--metric", default="correlation", type=METRICS.argparse_type, choices=METRICS.argparse_choices(),
                   help=metric_help())
    p.add_argument("--method", default="spearman", type=COMPARISONS.argparse_type, choices=COMPARISONS.argparse_choices(),
                   help=method_help() + "; table: docs/reference/registries.md")
    stats = p.add_argument_group("statistics")
    stats.add_argument("--bootstrap", type=count("--bootstrap", 100_000), default=1000, metavar="N",
                       help="bootstrap samples for the ci_low/ci_high columns and the best layer (default 1000; 0 = off; "
                            "the Python API's StatsOptions defaults to 0)")
    stats.add_argument("--bootstrap-over", choices=("stimuli", "rdms", "both"), default="stimuli",
                       help="resample stimuli (default), the area's RDMs (subjects/sessions), or both")
    stats.add_argument("--group-by", default="auto", metavar="NAME|none|auto",
                       help="unit of resampling for noise ceilings, SEM and --bootstrap-over rdms/both: 'auto' "
                            "(default: the subject/animal coordinate when an area's RDMs carry one), 'none' (each "
                            "RDM), or a replicate coordinate such as subject or session")
    stats.add_argument("--ci-level", type=real("--ci-level", 0, 1, open_ends=True), default=0.95, help="confidence level of the interval (default 0.95)")
    stats.add_argument("--permutations", type=count("--permutations", 1_000_000), default=0, metavar="N",
                       help="stimulus-label permutations for p_value, p_holm, p_fdr (default 0 = off; try 1000)")
    stats.add_argument("--seed", type=seed(), default=0, help="seed of every random step (default 0; stored in results.nc)")
    stats.add_argument("--normalize-by-ceiling", nargs="?", const="upper", choices=("upper", "lower"), default=None,
                       help="add similarity / noise ceiling (upper bound unless 'lower' is given) as "
                            "similarity_normalized, and print it")
    timing = p.add_argument_group("time-resolved areas (rsa_bridge.stats.time_inference; docs/guide/which-test.md)")
    timing.add_argument("--cluster-threshold", type=real("--cluster-threshold", 0, 0.5, open_ends=True), default=None,
                        metavar="P", help="cluster-based permutation test over time bins with this cluster-forming "
                                          "one-sided p (e.g. 0.05); off by default")
    timing.add_argument("--cluster-permutations", type=count("--cluster-permutations", 1_000_000, minimum=1),
                        default=1000, metavar="N", help="sign flips / stimulus permutations of the cluster test "
                                                        "(default 1000; all 2^n sign flips when 2^n <= N + 1)")
    timing.add_argument("--cluster-test", choices=("auto", "sign-flip", "stimulus-permutation"), default="auto",
                        help="what the cluster test permutes: the sign of each subject's time course, or the model "
                             "RDM's stimulus labels (auto: sign-flip with >= 5 subjects; the registry: rsa_bridge.stats.time_inference.TESTS)")
    timing.add_argument("--cross-temporal", action="store_true",
                        help="add the brain time x time similarity matrix of each time-resolved area")
    timing.add_argument("--time-ceiling", action="store_true",
                        help="add the noise ceiling of every time bin (on with --cluster-threshold/--cross-temporal)")
    meas = p.add_argument_group("measures (rsa_bridge.measures; docs/guide/measures.md)")
    from rsa_bridge.measures import MEASURES
    meas.add_argument("--measure", action="append", choices=tuple(MEASURES), default=None,
                      help=f"rsa (default), {', '.join(n for n in MEASURES if n != 'rsa')} (see docs/guide/measures.md); "
                           "repeatable; all from the same forward pass (rsa always runs)")
    meas.add_argument("--linear-estimator", choices=("ridge", "pls"), default="ridge",
                      help="linear predictivity: ridge (alpha by leave-one-out, default) or pls (Brain-Score, 25 "
                           "components)")
    meas.add_argument("--folds", type=count("--folds", 10_000, minimum=2), default=10, metavar="K",
                      help="cross-validation folds (default 10; seed --seed); per-fold scoring needs at least 5 "
                           "held-out stimuli in every fold")
    from rsa_bridge.measures.cv_scores import CV_SCORES
    meas.add_argument("--cv-score", choices=tuple(CV_SCORES), default="per-fold",
                      help="linear: " + "; ".join(f"{k}: {v.description}" for k, v in CV_SCORES.items())
                           + " (default per-fold; pooled for small sets)")
    meas.add_argument("--stratify-by", metavar="COLUMN", help="stratify the folds by this stimulus-manifest column")
    meas.add_argument("--alpha-per-neuroid", action="store_true", help="ridge: each neuroid picks its own alpha")
    meas.add_argument("--shape-alpha", type=real("--shape-alpha", 0, 1), default=0.5, metavar="A",
                      help="--measure shape: regularisation in [0, 1], covariance (1-A) C + A I (0: CCA, 1: "
                           "Procrustes; default 0.5; recorded as measure_shape_alpha)")
    meas.add_argument("--knn-k", type=count("--knn-k", 10**6, minimum=1), default=10, metavar="K",
                      help="--measure mutual_knn/cknna: nearest neighbours per stimulus (default 10)")
    meas.add_argument("--responses", metavar="FILE|NAME",
                      help="repeat-level firing rates for cka/linear (default: the shipped rates of the dataset); "
                           "also the split-half RSA noise ceiling of single-RDM areas")
    from rsa_bridge.app.selection import add_arguments as selection_arguments
    selection_arguments(p)  # --heldout-layer, --heldout-repeats, --select-on
    p.add_argument("--stimulus-ids", metavar="FILE|dataset",
                   help="for .mat model RDMs: a file with one id per line, or 'dataset' if rows follow the dataset's order")
    p.add_argument("--batch-size", type=count("--batch-size", 65_536, minimum=1), default=None,
                   help="images per forward pass (default: as many as fit 10%% of the memory available, at most 64; "
                        "results do not depend on it)")
    p.add_argument("--decode-workers", type=count("--decode-workers", 256, minimum=0), default=None,
                   help="threads decoding the next images while the network runs (default: one per two cores; "
                        "0: decode in the main thread)")
    from rsa_bridge.options import PRECISIONS
    p.add_argument("--precision", type=PRECISIONS.argparse_type, choices=PRECISIONS.argparse_choices(), default="float64",
                   help="arithmetic of the model RDMs: float64 (exact, default) or float32 (about 2x faster, "
                        "about 1e-6 error)")
    p.add_argument("--reduce-units", type=count("--reduce-units", 10**9, minimum=1), metavar="K", default=None,
                   help="sketch layers wider than K units down to K (seeded count sketch, seed --seed; "
                        "recorded in model_rdms.nc)")
    from rsa_bridge.options import RDM_STORAGES, RDM_STORES
    p.add_argument("--rdm-store", default="auto", type=RDM_STORES.argparse_type, choices=RDM_STORES.argparse_choices(),
                   help="where the layer RDMs are kept: auto (dense while they fit the memory, else an RDM store), "
                        "memory or disk (an RDM store of upper triangles; docs/guide/scale.md)")
    p.add_argument("--rdm-storage", default="float64", type=RDM_STORAGES.argparse_type,
                   choices=RDM_STORAGES.argparse_choices(),
                   help="values of an RDM store: float64 (default) or float32 (half the memory; each entry within "
                        "|d| 2^-24, recorded in results.nc)")
    cache = p.add_mutually_exclusive_group()
    cache.add_argument("--cache", type=Path, metavar="DIR",
                       help="model-RDM cache folder (default: $RSA_BRIDGE_CACHE or ~/.cache/rsa-bridge)")
    cache.add_argument("--no-cache", action="store_true", help="neither read nor write the model-RDM cache")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="compute model RDMs, bootstrap samples and permutations as dask tasks (numbers equal to the "
                        "serial run): a scheduler address (tcp://host:8786), or local / local:N")
    tiles = p.add_argument_group("Gram tiles on a dask cluster (docs/guide/scale.md)")
    tiles.add_argument("--gram-tiles", action="store_true",
                       help="with --scheduler: run the forward pass here and each spilled layer's Gram as dask tiles "
                            "(the plan per layer is recorded in results.nc as gram_routes)")
    tiles.add_argument("--gram-route", choices=ROUTE_CHOICES, default="auto",
                       help="with --gram-tiles: auto (default) reads a spilled layer's panels from the spill folder "
                            "(tiles) or recomputes them on the workers (recompute), whichever the measured costs "
                            "say is cheaper; tiles or recompute forces one")
    tiles.add_argument("--gram-read-rate", type=real("--gram-read-rate", minimum=0, open_ends=True),
                       metavar="BYTES/S", default=None,
                       help="with --gram-tiles: bytes per second the workers read the spill folder at, for the "
                            "tiles-or-recompute choice (default: measured per layer by one worker)")
    tiles.add_argument("--spill-dir", type=Path, metavar="DIR",
                       help="folder for the spilled activations (default: the system temp folder); with "
                            "--gram-tiles on several machines, storage every worker mounts at the same path")
    tiles.add_argument("--memory-budget", type=count("--memory-budget", 2**62), metavar="BYTES", default=None,
                       help="bytes of activations kept in memory before layers spill to disk (default: a quarter of "
                            "the memory available, 64 MiB to 2 GiB; model_rdms.nc records the bytes used)")
    tiles.add_argument("--gram-budget", type=count("--gram-budget", 2**62, minimum=1), metavar="BYTES", default=None,
                       help="bytes of a spilled layer's Gram buffers: two unit blocks here, three stimulus panels "
                            "per tile task with --gram-tiles (default 1 GiB)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--out", type=out_path, help="folder for results.csv, results.nc, model_rdms.nc, profile.pdf/png")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder of an earlier run")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _stimulus_ids(value: str | None, dataset: str | None, area_list):
    if value is None:
        return None
    from rsa_bridge.datasets import dataset_header
    from rsa_bridge.errors import RSABridgeError
    from rsa_bridge.app.pipeline import select_datasets
    from rsa_bridge.rdm import ROW

    if value == "dataset":
        plan = select_datasets(area_list, dataset)
        if len(plan) != 1:
            raise RSABridgeError("--stimulus-ids dataset needs areas from a single dataset")
        return [str(s) for s in dataset_header(plan[0][0])[ROW].values]
    path = Path(value)
    if not path.is_file():
        raise RSABridgeError(f"--stimulus-ids file {value!r} does not exist")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def run(args: argparse.Namespace) -> int:
    import sys
    import warnings

    from rsa_bridge.progress import progress_switch

    with warnings.catch_warnings(record=True) as caught, progress_switch(False if args.quiet else None):
        warnings.simplefilter("always", RuntimeWarning)
        code = _run(args)  # --quiet: every bar off, whichever step draws it (rsa_bridge.progress)
    from rsa_bridge.app.notes import notes

    # our own warnings as they are; a library's raw message (numpy, scipy ...) as a sentence (rsa_bridge.app.notes)
    for line in notes((str(w.message), w.category) for w in caught if issubclass(w.category, RuntimeWarning)):
        print(f"rsa-bridge compare: note: {line}", file=sys.stderr)
    return code


def _run(args: argparse.Namespace) -> int:
    from rsa_bridge.app.commands.between_cmd import one_weights, run_between

    if getattr(args, "between_models", False):
        return run_between(args)
    args.weights = one_weights(args.weights)
    from rsa_bridge.app.head_start import head_start

    # the network is built in a background thread while the rest is imported and checked (rsa_bridge.app.head_start)
    with head_start(args) as start:
        if start is not None:  # and the first images decoded by the same thread once the network is built
            from rsa_bridge.app.head_start import stimulus_paths
            start.decode_ahead(stimulus_paths(args))
        return _run_job(args, start)


def _run_job(args: argparse.Namespace, start) -> int:
    from rsa_bridge.errors import RSABridgeError

    from rsa_bridge.app.pipeline import compare_models, compare_precomputed
    from rsa_bridge.options import RDMOptions, StatsOptions
    from rsa_bridge.app.report import format_table, write_outputs

    layers = layer_lists(args.layers, 1)[0]
    if layers == []:
        raise RSABridgeError("--layers is empty; name layers, e.g. --layers conv1,fc6, or leave the option out "
                             "for the model's default layers")
    # counts, the CI level and the seed are bounded when parsed (rsa_bridge.app.argtypes)
    from rsa_bridge.app.preflight import JobChecks, check_job
    from rsa_bridge.budget import DEFAULT_LAYERS
    from rsa_bridge.options import RDM_STORAGES

    # before any computing (rsa_bridge.app.preflight): names, datasets, --out, its disk, the statistics' memory
    n_layers = len(layers) if layers else DEFAULT_LAYERS
    check_job(JobChecks(areas=args.area, dataset=args.dataset, measures=getattr(args, "measure", None), out=args.out,
                        overwrite=args.overwrite, bootstrap=args.bootstrap, permutations=args.permutations,
                        n_model_rdms=len(args.model) * n_layers if args.model else 0,
                        itemsize=RDM_STORAGES[args.rdm_storage], precomputed=args.model_rdms is not None,
                        responses=getattr(args, "responses", None)))
    from rsa_bridge.app.selection import checked_selection
    selection = checked_selection(args)  # --heldout-layer / --select-on, checked before any forward pass
    stats = StatsOptions(bootstrap=args.bootstrap, permutations=args.permutations, seed=args.seed,
                         bootstrap_over=args.bootstrap_over, ci_level=args.ci_level,
                         normalize_by_ceiling=args.normalize_by_ceiling, progress=False if args.quiet else None,
                         group_by=getattr(args, "group_by", "auto"), time=_time_options(args))
    if args.model_rdms is not None:
        from rsa_bridge.app.pipeline import select_datasets
        from rsa_bridge.app.rdm_stores import read_precomputed

        ids = _stimulus_ids(args.stimulus_ids, args.dataset, args.area)
        # dense, or one layer at a time into an RDM store (--rdm-store / --rdm-storage, as for --model)
        rdms, _ = read_precomputed(args.model_rdms, layers, args.rdm_store, args.rdm_storage,
                                   select_datasets(args.area, args.dataset), method=args.method, stimulus_ids=ids)
        try:
            result = compare_precomputed(rdms, args.area, dataset=args.dataset, method=args.method, stats=stats,
                                         measures=getattr(args, "measure", None))
            print(format_table(result))
            if args.out is not None:
                written = write_outputs(result, args.out, overwrite=args.overwrite)
                print(f"wrote {', '.join(p.name for p in written)} to {args.out}")
        finally:
            if hasattr(rdms, "close"):
                rdms.close()  # a store's spill file
        return 0
    else:
        if args.model is None:
            raise RSABridgeError("say which model to score: --model NAME or --model-rdms FILE")
        runner = compare_models
        if not getattr(args, "gram_tiles", False) and (getattr(args, "gram_route", "auto") != "auto"
                                                       or getattr(args, "gram_read_rate", None) is not None):
            raise RSABridgeError("--gram-route and --gram-read-rate choose where --gram-tiles runs a layer's Gram: "
                                 "add --gram-tiles --scheduler ADDRESS, or drop them")
        if getattr(args, "scheduler", None):
            from functools import partial

            from rsa_bridge.app.distributed import compare_many
            from rsa_bridge.app.gram_routes import GramTiles

            tiled = getattr(args, "gram_tiles", False) and GramTiles(getattr(args, "gram_route", "auto"),
                                                                     getattr(args, "gram_read_rate", None))
            runner = partial(compare_many, scheduler=args.scheduler, gram_tiles=tiled)
        elif getattr(args, "gram_tiles", False):
            raise RSABridgeError("--gram-tiles runs the Grams on a dask cluster: add --scheduler ADDRESS (or local:2)")
        if selection is not None:
            from functools import partial
            from rsa_bridge.app.selection import compare_selected, format_selected, write_selected
            runner = partial(compare_selected, selection=selection)
            format_table, write_outputs = format_selected, write_selected
        if args.reduce_units is not None and args.reduce_units < 1:
            raise RSABridgeError(f"--reduce-units must be a number of units >= 1; got {args.reduce_units}")
        rdm = RDMOptions(metric=args.metric, precision=args.precision, reduce_units=args.reduce_units,
                         reduce_seed=args.seed, batch_size=args.batch_size, device=args.device,
                         store=args.rdm_store, storage=args.rdm_storage, decode_workers=args.decode_workers,
                         spill_dir=getattr(args, "spill_dir", None), memory_budget=getattr(args, "memory_budget", None),
                         gram_budget=getattr(args, "gram_budget", None))
        measure_kw = {}
        if (getattr(args, "measure", None) and set(args.measure) - {"rsa"}) or getattr(args, "responses", None):
            from rsa_bridge.measures.scoring import MeasureOptions
            if getattr(args, "scheduler", None):
                raise RSABridgeError("--measure cka/linear and --responses run in the local forward pass; drop "
                                     "--scheduler for them")
            measure_kw = {"measures": args.measure, "measure_options": MeasureOptions(
                estimator=args.linear_estimator, n_splits=args.folds, fold_seed=args.seed, labels=args.stratify_by,
                per_neuroid_alpha=args.alpha_per_neuroid, responses=args.responses,
                cv_score=getattr(args, "cv_score", "per-fold"), shape_alpha=args.shape_alpha, knn_k=args.knn_k)}
        from rsa_bridge.app.network import NetworkOptions

        network = NetworkOptions(weights=args.weights, layers=layers, stimuli=args.stimuli,
                                 models=start.models() if start is not None and runner is compare_models else None,
                                 cache=False if getattr(args, "no_cache", False) else getattr(args, "cache", None),
                                 tokens=args.tokens if getattr(args, "tokens", "all") != "all" else None)
        result = runner(args.model, args.area, dataset=args.dataset, **measure_kw, network=network,
                        method=args.method, rdm=rdm, progress=False if args.quiet else None, stats=stats)
    print(format_table(result))
    if args.out is not None:
        written = write_outputs(result, args.out, overwrite=args.overwrite)
        print(f"wrote {', '.join(p.name for p in written)} to {args.out}")
    return 0


def layer_lists(given: list[str] | None, n_models: int) -> list[list[str] | None]:
    """One layer list per model from ``--layers`` given once (every model) or once per ``--model`` (in order;
    ``n_models`` > 1, the model-map job only); None: the model's default layers."""
    from rsa_bridge.errors import RSABridgeError

    if not given:
        return [None] * n_models
    if len(given) not in (1, n_models):
        per = " or once per --model (with --between-models)" if n_models == 1 else f" or once per --model ({n_models})"
        raise RSABridgeError(f"--layers is given {len(given)} times; give it once (one list for every model){per}")
    lists = [[s.strip() for s in text.split(",") if s.strip()] for text in given]
    return lists * n_models if len(lists) == 1 else lists


def _time_options(args):
    """The job's inference over time bins (None unless a time option was given)."""
    threshold = getattr(args, "cluster_threshold", None)
    if threshold is None and not getattr(args, "cross_temporal", False) and not getattr(args, "time_ceiling", False):
        return None
    from rsa_bridge.stats.clusters import ClusterOptions
    from rsa_bridge.stats.time_inference import TimeInferenceOptions

    cluster = None if threshold is None else ClusterOptions(threshold, args.cluster_permutations, args.seed)
    return TimeInferenceOptions(cluster=cluster, test=args.cluster_test, cross_temporal=args.cross_temporal,
                                ceiling=True, group_by=getattr(args, "group_by", "auto"))
