"""``rsa-bridge fit``: evaluate fitted RDM models (weighted / selection) of model RDMs against a brain area.

Cross-validated over stimuli (and subjects), optionally inside rsatoolbox's bootstraps; prints one row per
model and writes ``fit.nc`` (every evaluation, the summary, the weights, provenance) and ``fit.csv``.
Choices come from the registries of :mod:`rsa_bridge.fitting` (no numpy at registration).
"""
from __future__ import annotations

import argparse

from rsa_bridge.app.argtypes import count, real, seed
from rsa_bridge.io import out_path


def register(subparsers) -> None:
    from rsa_bridge.definitions import COMPARISONS
    from rsa_bridge.fitting.fitters import FITTERS, MODEL_KINDS
    from rsa_bridge.fitting.schemes import EVALUATORS

    p = subparsers.add_parser(
        "fit", help="fit weighted / selection models of model RDMs to a brain area, cross-validated",
        description="Fit a weighted combination of model RDMs (non-negative least squares or regression) or "
                    "select the best single one on training stimuli/subjects, score it on held-out ones, and "
                    "bootstrap that cross-validation (rsatoolbox's bootstrap_crossval / eval_dual_bootstrap). "
                    "Stimuli are matched by stimulus_id.")
    p.add_argument("--model-rdms", action="append", required=True, metavar="FILE",
                   help="model RDMs (.nc: model_rdms.nc of `rsa-bridge compare --out`); repeatable")
    p.add_argument("--layers", help="comma-separated model RDM names to combine (default: all in the files)")
    p.add_argument("--area", required=True, help="brain area, e.g. hIT (see `rsa-bridge datasets`)")
    p.add_argument("--dataset", help="shipped dataset name or an RDM dataset .nc (default: the one with --area)")
    kinds = "; ".join(f"{k.name}: {k.definition} (fitters {', '.join(k.fitters)})" for k in MODEL_KINDS.values())
    p.add_argument("--model", action="append", type=MODEL_KINDS.argparse_type, choices=MODEL_KINDS.argparse_choices(),
                   help=f"fitted model kind, repeatable (default weighted): {kinds}")
    p.add_argument("--fitter", type=FITTERS.argparse_type, choices=FITTERS.argparse_choices(),
                   help="fitter of the weighted model (default nnls): " +
                        "; ".join(f"{f.name}: {f.definition}" for f in FITTERS.values()))
    p.add_argument("--method", default="pearson", type=COMPARISONS.argparse_type,
                   choices=COMPARISONS.argparse_choices(),
                   help="comparison method the models are fitted for and scored with (default pearson; nnls and "
                        "regress fit for pearson and cosine)")
    p.add_argument("--scheme", default="bootstrap_crossval", type=EVALUATORS.argparse_type,
                   choices=EVALUATORS.argparse_choices(),
                   help="; ".join(f"{e.name}: {e.definition}" for e in EVALUATORS.values()) +
                        " (default bootstrap_crossval)")
    p.add_argument("--folds", type=count("--folds", 1000, minimum=1), default=5, metavar="K",
                   help="cross-validation folds over stimuli (default 5; 1 = none)")
    p.add_argument("--subject-folds", type=count("--subject-folds", 1000, minimum=1), default=1, metavar="K",
                   help="cross-validation folds over subjects (default 1 = none; the RDMs of one subject stay "
                        "together)")
    p.add_argument("--bootstrap", type=count("--bootstrap", 100_000, minimum=2), default=1000, metavar="N",
                   help="bootstrap draws of the bootstrap schemes (default 1000)")
    p.add_argument("--cv-repeats", type=count("--cv-repeats", 100, minimum=1), default=2, metavar="R",
                   help="fold sets per draw (default 2; >= 2 for the cross-validation correction of the variance)")
    p.add_argument("--seed", type=seed(), default=0, help="seed of the folds and draws (default 0)")
    p.add_argument("--ci-level", type=real("--ci-level", 0, 1, open_ends=True), default=0.95,
                   help="confidence level (default 0.95)")
    p.add_argument("--out", type=out_path, help="folder for fit.nc and fit.csv")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder of an earlier run")
    p.set_defaults(func=run)


def specs(kinds, fitter, layers=()):
    """One ModelSpec per --model kind (``fixed``: one per layer in ``layers``); --fitter applies to the kinds it
    fits."""
    from rsa_bridge.errors import RSABridgeError
    from rsa_bridge.fitting.fitters import FITTERS, MODEL_KINDS, ModelSpec

    kinds = list(dict.fromkeys(MODEL_KINDS.resolve(k) for k in (kinds or ["weighted"])))
    fitter = None if fitter is None else FITTERS.resolve(fitter)
    if fitter is not None and not any(fitter in MODEL_KINDS[k].fitters for k in kinds):
        raise RSABridgeError(f"--fitter {fitter} fits none of the models {', '.join(kinds)}; "
                             f"{', '.join(f'{k}: {MODEL_KINDS[k].fitters[0]}' for k in kinds)}")
    out = []
    for k in kinds:
        f = fitter if fitter in MODEL_KINDS[k].fitters else MODEL_KINDS[k].fitters[0]
        if MODEL_KINDS[k].per_rdm:  # one model per RDM (fixed)
            out += [ModelSpec(f"fixed:{layer}", k, f, (layer,)) for layer in layers]
            continue
        out.append(ModelSpec(k if len(MODEL_KINDS[k].fitters) == 1 else f"{k}_{f}", k, f))
    return out


def run(args: argparse.Namespace) -> int:
    from rsa_bridge.app.fitting import FitInputs, load_fit_data, write_tables
    from rsa_bridge.fitting.evaluate import CVOptions
    from rsa_bridge.fitting.run import run_fit, table

    layers = tuple(x.strip() for x in args.layers.split(",") if x.strip()) if args.layers else ()
    specs(args.model, args.fitter)  # names checked before the data are read
    data = load_fit_data(FitInputs(args.area, tuple(args.model_rdms), args.dataset, layers))
    models = specs(args.model, args.fitter, data.model_names)
    options = CVOptions(method=args.method, k_pattern=args.folds, k_rdm=args.subject_folds, n_boot=args.bootstrap,
                        n_cv=args.cv_repeats, seed=args.seed, ci=args.ci_level, correction=args.cv_repeats >= 2)
    result = run_fit(data, models, options, args.scheme)
    frame = table(result)
    print(f"# {result.attrs['dataset']} {result.attrs['area']}: {len(data.rdms)} RDMs of "
          f"{len(data.group_values())} subjects, {data.n_stimuli} stimuli; measure {result.attrs['measure']}; "
          f"{args.scheme}, {args.folds} stimulus x {args.subject_folds} subject folds"
          + (f", {args.bootstrap} draws x {args.cv_repeats} fold sets, seed {args.seed}" if args.scheme != "crossval"
             else f", seed {args.seed}"))
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if args.out is not None:
        written = write_tables(args.out, args.overwrite, {"fit.nc": result, "fit.csv": frame})
        print(f"wrote {', '.join(p.name for p in written)} to {args.out}")
    return 0
