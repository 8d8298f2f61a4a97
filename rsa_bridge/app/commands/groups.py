"""``rsa-bridge groups``: models against two sets of RDMs (e.g. monkey IT vs human IT) on joint bootstrap draws."""
from __future__ import annotations

import argparse
from pathlib import Path

from rsa_bridge.app.argtypes import count, real, seed
from rsa_bridge.definitions import COMPARISONS, method_help
from rsa_bridge.io import out_path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "groups", help="compare models against two sets of RDMs (two areas/species) with paired tests",
        description="Score model RDMs against two areas of one dataset (e.g. monkey IT and the human IT subjects) "
                    "on one bootstrap: stimuli resampled jointly for both sets, subjects within each set. Prints "
                    "similarity [CI], t-tests against 0 and the lower noise ceiling (rsatoolbox's), and the paired "
                    "difference between the sets. See docs/guide/which-test.md.")
    p.add_argument("--dataset", default="kriegeskorte2008_92images",
                   help="shipped dataset name or RDM .nc (default kriegeskorte2008_92images)")
    p.add_argument("--set", dest="sets", action="append", required=True, metavar="AREA",
                   help="an area of the dataset; give exactly two, e.g. --set IT --set hIT")
    p.add_argument("--model-rdms", type=Path, metavar="FILE", help="precomputed model RDMs (.nc or .mat)")
    p.add_argument("--control", action="append", default=None, metavar="NAME",
                   help="an image-statistics control model scored on the dataset's stimuli (repeatable): "
                        "pixels, luminance_contrast, spatial_frequency, gabor")
    p.add_argument("--method", default="spearman", type=COMPARISONS.argparse_type,
                   choices=COMPARISONS.argparse_choices(), help=method_help())
    p.add_argument("--bootstrap", type=count("--bootstrap", 100_000, minimum=20), default=1000, metavar="N",
                   help="joint bootstrap draws (default 1000, at least 20)")
    p.add_argument("--ci-level", type=real("--ci-level", 0, 1, open_ends=True), default=0.95,
                   help="confidence level of the intervals (default 0.95)")
    p.add_argument("--group-by", default="auto", metavar="NAME|none|auto",
                   help="the unit resampled within each set (default auto: subject/animal when present)")
    p.add_argument("--seed", type=seed(), default=0, help="seed of the draws (default 0; stored in groups.nc)")
    p.add_argument("--out", type=out_path, help="folder for groups.csv and groups.nc")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder of an earlier run")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rsa_bridge.app.group_job import GroupJob, group_table, run_groups, write_groups
    from rsa_bridge.stats.groups import GroupOptions

    job = GroupJob(dataset=args.dataset, sets=tuple(args.sets), model_rdms=args.model_rdms,
                   controls=tuple(args.control or ()),
                   options=GroupOptions(method=args.method, n_bootstrap=args.bootstrap, seed=args.seed,
                                        level=args.ci_level, group_by=args.group_by))
    res = run_groups(job)
    table = group_table(res)
    a, b = [str(g) for g in res["group"].values]
    print(f"{res.attrs['group_method']} similarity (rsa) against {a} ({res.attrs[f'group_units_{a}']}) and {b} "
          f"({res.attrs[f'group_units_{b}']}); {args.bootstrap} joint draws, seed {args.seed}")
    for model, rows in table.groupby("model", sort=False):
        cells = [f"{r.set} {r.similarity:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}] p(>0) {r.p_zero:.3g}"
                 + (f" p(=ceiling) {r.p_ceiling:.3g}" if r.p_ceiling == r.p_ceiling else "") for r in rows.itertuples()]
        d = res.sel(model_layer=model)
        print(f"{model}: " + " | ".join(cells) + f" | {a} - {b} {float(d['difference']):+.3f} "
              f"[{float(d['difference_ci_low']):+.3f}, {float(d['difference_ci_high']):+.3f}] "
              f"p {float(d['p_difference']):.3g}")
    if args.out is not None:
        written = write_groups(res, args.out, overwrite=args.overwrite)
        print(f"wrote {', '.join(p.name for p in written)} to {args.out}")
    return 0
