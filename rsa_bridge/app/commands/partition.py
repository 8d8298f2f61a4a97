"""``rsa-bridge partition``: unique and shared variance of a brain area's RDM explained by 2-4 model RDMs.

R^2 of ordinary least squares with intercept on the condensed RDM vectors, for every subset of predictors;
components by inclusion-exclusion (:mod:`rsa_bridge.fitting.partition`); percentile CIs from a seeded
bootstrap over stimuli. Writes ``partition.nc`` and ``partition.csv``.
"""
from __future__ import annotations

import argparse

from rsa_bridge.app.argtypes import count, real, seed
from rsa_bridge.io import out_path


def register(subparsers) -> None:
    from rsa_bridge.fitting.schemes import PARTITION_TRANSFORMS

    p = subparsers.add_parser(
        "partition", help="variance partitioning of a brain RDM by 2-4 model RDMs (unique and shared R^2)",
        description="Partition the variance of a brain area's RDM (the mean of its RDMs) among 2 to 4 predictor "
                    "RDMs: R^2 of OLS with intercept on the condensed upper triangles for every subset of "
                    "predictors, unique and shared components by inclusion-exclusion, bootstrap CIs over stimuli.")
    p.add_argument("--model-rdms", action="append", required=True, metavar="FILE",
                   help="model RDMs (.nc: model_rdms.nc of `rsa-bridge compare --out`); repeatable")
    p.add_argument("--predictors", required=True, help="2 to 4 comma-separated model RDM names (layers)")
    p.add_argument("--area", required=True, help="brain area, e.g. hIT (see `rsa-bridge datasets`)")
    p.add_argument("--dataset", help="shipped dataset name or an RDM dataset .nc (default: the one with --area)")
    p.add_argument("--transform", default="none", type=PARTITION_TRANSFORMS.argparse_type,
                   choices=PARTITION_TRANSFORMS.argparse_choices(),
                   help="; ".join(f"{k}: {v[1]}" for k, v in PARTITION_TRANSFORMS.items()) + " (default none)")
    p.add_argument("--bootstrap", type=count("--bootstrap", 100_000), default=1000, metavar="N",
                   help="bootstrap draws over stimuli for the CIs (default 1000; 0 = none)")
    p.add_argument("--seed", type=seed(), default=0, help="seed of the bootstrap (default 0)")
    p.add_argument("--ci-level", type=real("--ci-level", 0, 1, open_ends=True), default=0.95,
                   help="confidence level (default 0.95)")
    p.add_argument("--out", type=out_path, help="folder for partition.nc and partition.csv")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder of an earlier run")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rsa_bridge.app.fitting import FitInputs, load_fit_data, write_tables
    from rsa_bridge.errors import RSABridgeError
    from rsa_bridge.fitting.partition import MAX_PREDICTORS, PartitionOptions, partition_variance

    names = tuple(x.strip() for x in args.predictors.split(",") if x.strip())
    if not 2 <= len(names) <= MAX_PREDICTORS:
        raise RSABridgeError(f"--predictors names 2 to {MAX_PREDICTORS} model RDMs; got {len(names)}")
    data = load_fit_data(FitInputs(args.area, tuple(args.model_rdms), args.dataset, names))
    options = PartitionOptions(args.transform, args.bootstrap, args.seed, args.ci_level)
    result = partition_variance(data.rdms.mean(axis=0), data.model_rdms, data.model_names, options)
    result.attrs.update({k: str(v) for k, v in data.attrs.items()},
                        brain_rdm=f"mean of the area's {len(data.rdms)} RDMs", n_stimuli=data.n_stimuli)
    frame = result[[v for v in ("component", "ci_low", "ci_high") if v in result]].to_dataframe().reset_index()
    frame = frame.rename(columns={"component": "r2", "component_name": "component"})
    frame.insert(1, "measure", "r2_ols_intercept")
    print(f"# {result.attrs['dataset']} {result.attrs['area']} (mean of {len(data.rdms)} RDMs, {data.n_stimuli} "
          f"stimuli); R^2 of OLS with intercept on the condensed RDMs (transform {args.transform}); "
          + (f"{args.ci_level:g} CI from {args.bootstrap} stimulus draws, seed {args.seed}" if args.bootstrap
             else "no bootstrap"))
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if args.out is not None:
        written = write_tables(args.out, args.overwrite, {"partition.nc": result, "partition.csv": frame})
        print(f"wrote {', '.join(p.name for p in written)} to {args.out}")
    return 0
