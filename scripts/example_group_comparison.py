"""Worked group comparison (docs/guide/which-test.md): monkey IT vs the human IT subjects of the shipped 92-image
set, scored against the image-statistics control models on joint bootstrap draws.

    python scripts/example_group_comparison.py --bootstrap 1000 --seed 0

Prints, per control model: the similarity with each set [95% CI], p against 0 and against the lower noise ceiling
(t-tests on the bootstrap variance, rsatoolbox's), and the paired difference monkey IT - human IT with its p.
"""
from __future__ import annotations

import argparse

import xarray as xr

from rsa_bridge.app.argtypes import count, seed
from rsa_bridge.control_rdms import control_model_names, control_model_rdms
from rsa_bridge.datasets import SHIPPED, load_dataset
from rsa_bridge.stats.groups import GroupOptions, compare_groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", type=count("--bootstrap", 100_000, minimum=20), default=1000,
                        help="joint bootstrap draws (default 1000)")
    parser.add_argument("--seed", type=seed(), default=0, help="seed of the draws (default 0)")
    args = parser.parse_args()
    shipped = SHIPPED["kriegeskorte2008_92images"]
    ds = load_dataset(shipped.name)
    models = xr.concat([control_model_rdms(name, shipped.stimuli) for name in control_model_names()], "layer")
    models = models.rename(layer="model_layer").drop_vars([c for c in models.coords if c not in
                                                           ("layer", "stimulus_row", "stimulus_col")])
    res = compare_groups(models, {"IT": ds["IT"], "hIT": ds["hIT"]},
                         GroupOptions(n_bootstrap=args.bootstrap, seed=args.seed))
    print(f"spearman similarity (rsa), {args.bootstrap} joint draws, seed {args.seed}; "
          f"IT: {res.attrs['group_units_IT']}, hIT: {res.attrs['group_units_hIT']}")
    print(f"hIT lower/upper noise ceiling: {float(res['ceiling_lower'].sel(group='hIT')):.3f} / "
          f"{float(res['ceiling_upper'].sel(group='hIT')):.3f}")
    for m in res["model_layer"].values:
        cells = []
        for g in ("IT", "hIT"):
            r = res.sel(model_layer=m, group=g)
            cells.append(f"{g} {float(r['similarity']):.3f} [{float(r['ci_low']):.3f}, {float(r['ci_high']):.3f}] "
                         f"p0 {float(r['p_zero']):.3g}" + ("" if g == "IT" else f" p_ceil {float(r['p_ceiling']):.3g}"))
        d = res.sel(model_layer=m)
        print(f"{m:<20} " + " | ".join(cells) + f" | IT-hIT {float(d['difference']):+.3f} "
              f"[{float(d['difference_ci_low']):+.3f}, {float(d['difference_ci_high']):+.3f}] "
              f"p {float(d['p_difference']):.3g}")


if __name__ == "__main__":
    main()
