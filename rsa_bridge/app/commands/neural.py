"""``rsa-bridge neural``: import neural data, describe it, turn rates into RDMs, noise ceilings."""
from __future__ import annotations

import argparse
from pathlib import Path

from rsa_bridge.app.argtypes import count, real, seed
from rsa_bridge.definitions import COMPARISONS
from rsa_bridge.io import out_path
from rsa_bridge.neural.formats import all_formats, format_help, pickling_formats


#: the longest time an option in ms may name (a day): windows, bins and steps
MAX_MS = 86_400_000.0


def _source_options(parser: argparse.ArgumentParser) -> None:
    """The options that say how to read the source: one group, the same in import, info, ceiling, rdm and export."""
    parser.add_argument("src", help="file, folder or shipped name (e.g. cowley2023_v4_210325_rates)")
    p = parser.add_argument_group("reading the source (the same options in every `neural` action; see the Neural "
                                  "data guide)")
    formats = all_formats()  # built-ins, then entry points of rsa_bridge.neural_formats
    p.add_argument("--format", type=formats.argparse_type, choices=formats.argparse_choices(), metavar="FORMAT",
                   help=format_help(formats))
    p.add_argument("--region", help="region of the neuroids (label where the source has none, else the one to keep)")
    p.add_argument("--stimulus-ids", help="file with one id per line, or a pattern such as 'image{n:04d}'")
    p.add_argument("--neuroid-ids", help="file with one id per line, or a pattern such as 'V4_{i:03d}'")
    p.add_argument("--layout", help="axes of an array, e.g. neuroid,stimulus,repetition (the default)")
    p.add_argument("--variable", help="the array inside a .npz/.mat file")
    p.add_argument("--animal", help="animal/subject of the neuroids")
    p.add_argument("--session", help="session of the neuroids")
    p.add_argument("--units", help="unit of the values, e.g. 'spikes/s' or 'spike count (100 ms)'")
    p.add_argument("--allow-pickle", action="store_true",
                   help=f"UNSAFE: let a .pkl file of a format that may hold one ({', '.join(pickling_formats())}) be "
                        "loaded; loading a pickle runs any code inside it, so only for a file you trust completely "
                        "(default: pickles are refused; convert to HDF5)")
    p.add_argument("--allow-missing", action="store_true",
                   help="keep NaN of single neuroids as missing observations (a unit lost for some trials)")
    nwb = parser.add_argument_group("NWB files (units table + trials/epochs)")
    nwb.add_argument("--window-start", type=real("--window-start", -MAX_MS, MAX_MS), metavar="MS", help="count spikes from MS after onset (default 0)")
    nwb.add_argument("--window-stop", type=real("--window-stop", -MAX_MS, MAX_MS), metavar="MS",
                     help="count spikes until MS after onset (required; at most a day)")
    nwb.add_argument("--bin-width", type=real("--bin-width", 0, MAX_MS, open_ends=True), metavar="MS",
                     help="time bins of MS (default: one bin; at most 10,000 bins)")
    nwb.add_argument("--stimulus-column", help="column of the trials/epochs table naming the stimulus")
    nwb.add_argument("--onset-column", help="column of stimulus onset times in s (default: start_time)")
    nwb.add_argument("--intervals", help="trials (default), epochs, or the name of another intervals table")


def register(subparsers) -> None:
    p = subparsers.add_parser("neural", help="import neural data, reliability, noise ceilings, rates -> RDMs",
                              description="Neural data: firing rates (presentation x neuroid) and RDM datasets.")
    sub = p.add_subparsers(dest="neural_command", metavar="ACTION")
    imp = sub.add_parser("import", description="Read firing rates or RDMs in any supported format (--format, or the suffix) and write rsa-bridge's NetCDF; sources with images also write OUT_stimuli.csv beside it.",
                         help="read any supported format and write rsa-bridge NetCDF")
    _source_options(imp)
    imp.add_argument("--metric", help="RDM metric of formats that make RDMs from rates: "
                     + ", ".join(n for n, f in all_formats().items() if "metric" in f.options) + " (default correlation)")
    imp.add_argument("--similarity-to-dissimilarity", action="store_true",
                     help="the source holds similarity matrices (diagonal 1): import 1 - s, recorded in the attrs ("
                     + ", ".join(n for n, f in all_formats().items() if "similarity_to_dissimilarity" in f.options)
                     + "); without it a similarity matrix is refused")
    imp.add_argument("--out", type=out_path, required=True, help="output .nc (firing rates or an RDM dataset)")
    imp.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    imp.set_defaults(func=run_import)

    info = sub.add_parser("info", description='Describe firing rates: neuroids per region/animal/session, repetitions, the share of NaN, and split-half reliabilities.',
                         help="counts per region/animal, repetitions, NaN share, reliability")
    _source_options(info)
    info.add_argument("--splits", type=count("--splits", 100_000, minimum=1), default=20,
                      help="random splits for the reliabilities (default 20)")
    info.add_argument("--seed", type=seed(), default=0, help="seed of the random splits (default 0)")
    info.add_argument("--no-reliability", action="store_true", help="skip the split-half reliabilities")
    info.set_defaults(func=run_info)

    ceil = sub.add_parser("ceiling", description='The noise ceiling of an area: Nili et al. 2014 bounds, the Algonauts definition, or split-half RDM reliability from repetitions.',
                         help="noise ceiling (nili, algonauts) or split-half RDM reliability of an area")
    _source_options(ceil)
    ceil.add_argument("--area", help="area / region (default: the only one)")
    ceil.add_argument("--method", default="nili", choices=["nili", "algonauts", "split-half"],
                      help="nili: Nili et al. 2014 bounds; algonauts: squared, raw-mean pool (Net2Brain's LNC/UNC); "
                           "split-half: Spearman-Brown corrected RDM reliability from repetitions")
    ceil.add_argument("--compare", default="spearman", type=COMPARISONS.argparse_type, choices=COMPARISONS.argparse_choices(),
                      help="RDM comparison method (default spearman; rsatoolbox's names are accepted)")
    ceil.add_argument("--by", choices=["animal", "session"],
                      help="for firing rates: one RDM per animal or session (default: whichever varies)")
    ceil.add_argument("--metric", default="correlation", help="RDM metric for firing rates (default correlation)")
    ceil.add_argument("--splits", type=count("--splits", 100_000, minimum=1), default=100,
                      help="random splits for split-half (default 100)")
    ceil.add_argument("--seed", type=seed(), default=0, help="seed of the random splits (default 0)")
    ceil.add_argument("--groups", metavar="DIM",
                      help="leave out whole groups along this replicate dim or coordinate (e.g. subject, when an area "
                           "has subject x session RDMs, or rsatoolbox RDMs carry a subject descriptor)")
    ceil.set_defaults(func=run_ceiling)

    rdm = sub.add_parser("rdm", description='Turn firing rates into an RDM dataset (one RDM per area, animal or session; optionally per time bin) for compare --dataset; records the source rates and metric.',
                         help="firing rates -> an RDM dataset usable with compare --dataset")
    _source_options(rdm)
    rdm.add_argument("--metric", default="correlation",
                     help="correlation, euclidean, sqeuclidean, cosine, sqeuclidean_cv, crossnobis, poisson_kl_cv")
    rdm.add_argument("--by", choices=["animal", "session"], help="one RDM per animal or session")
    rdm.add_argument("--reliable", type=real("--reliable", -1, 1), metavar="R",
                     help="keep neuroids with split-half reliability >= R (recorded in the attrs)")
    rdm.add_argument("--seed", type=seed(), default=0,
                     help="seed of the splits behind --reliable and the cross-validated metrics (default 0)")
    rdm.add_argument("--stimuli", type=Path, help="stimulus folder (manifest.csv) to record for compare")
    rdm.add_argument("--time-resolved", action="store_true",
                     help="one RDM per time bin (rates with a time_bin dim); compare then scores every bin")
    rdm.add_argument("--window", type=real("--window", 0, MAX_MS, open_ends=True), metavar="MS", help="with --time-resolved: sliding window width (ms)")
    rdm.add_argument("--step", type=real("--step", 0, MAX_MS, open_ends=True), metavar="MS", help="with --window: step between windows (ms; default the width)")
    rdm.add_argument("--out", type=out_path, required=True, help="output .nc: the RDM dataset")
    rdm.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    rdm.set_defaults(func=run_rdm)

    exp = sub.add_parser("export", description='Write firing rates as netcdf, numpy, mat, csv, brainscore or rsatoolbox files.',
                         help="write firing rates as netcdf, numpy, mat, csv, brainscore or rsatoolbox")
    _source_options(exp)
    exp.add_argument("--to", required=True, help="netcdf, numpy, mat, csv, brainscore, rsatoolbox")
    exp.add_argument("--out", type=out_path, required=True, help="output file (its suffix should fit --to)")
    exp.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    exp.set_defaults(func=run_export)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _read(args, **format_options):
    """Read ``args.src``; ``format_options`` (e.g. ``metric`` of ``neural import``) go to the reader, whose
    format refuses those it does not take."""
    from rsa_bridge.neural.load import read_neural

    if getattr(args, "out", None) is not None or hasattr(args, "overwrite"):  # check --out before any work
        from rsa_bridge.io import check_out

        check_out(args.out, args.overwrite, kind="file")

    return read_neural(args.src, args.format, region=args.region, stimulus_ids=args.stimulus_ids,
                       neuroid_ids=args.neuroid_ids, layout=args.layout, variable=args.variable, animal=args.animal,
                       session=args.session, units=args.units, allow_missing=args.allow_missing or None,
                       allow_pickle=args.allow_pickle,
                       **format_options,
                       start=args.window_start, stop=args.window_stop, bin_width=args.bin_width,
                       stimulus_column=args.stimulus_column, onset_column=args.onset_column, intervals=args.intervals)


def _check_splits(args, data) -> None:
    """Refuse --splits that cannot fit in memory, before the resampling starts (issue 17)."""
    from rsa_bridge.limits import check_splits_memory
    from rsa_bridge.neural.schema import NEUROID, STIMULUS_ID, flat_coords, is_rates

    if is_rates(data):
        n_stim = len(set(map(str, flat_coords(data)[STIMULUS_ID].values)))
        check_splits_memory(args.splits, n_stim, int(data.sizes[NEUROID]))


def _rates(imported, what: str):
    from rsa_bridge.errors import RSABridgeError
    from rsa_bridge.neural.schema import is_rates

    if not is_rates(imported.data):
        raise RSABridgeError(f"{what} needs firing rates; this source holds RDMs")
    return imported.data


def run_import(args) -> int:
    from rsa_bridge.io import check_out
    from rsa_bridge.neural.published import manifest_path, write_imported

    check_out(args.out, args.overwrite, kind="file")
    # the stimulus manifest that sources with images write beside --out obeys --overwrite too, before any work
    check_out(manifest_path(args.out), args.overwrite, kind="file", option="the stimulus manifest beside --out")
    imported = _read(args, metric=args.metric, similarity_to_dissimilarity=args.similarity_to_dissimilarity or None)
    written = write_imported(imported, args.out, overwrite=args.overwrite)
    _print_summary(imported.data)
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0


def _print_summary(data) -> None:
    from rsa_bridge.datasets import areas
    from rsa_bridge.neural.load import describe_rates
    from rsa_bridge.neural.schema import is_rates
    from rsa_bridge.rdm import COL, ROW

    if is_rates(data):
        d = describe_rates(data)
        print(f"firing rates: {d['n_neuroids']} neuroids x {d['n_presentations']} presentations of {d['n_stimuli']} "
              f"stimuli; units {d['units']}" + (f"; {d['time_bins']} time bins" if d["time_bins"] else ""))
        print(f"repetitions per stimulus: min {d['repetitions_min']}, median {d['repetitions_median']:g}, "
              f"max {d['repetitions_max']}; padding {100 * d['padding_share']:.1f}%, "
              f"missing observations {100 * d['missing_share']:.2f}%")
        print("region  animal  session  neuroids")
        for (region, animal, session), n in d["groups"].items():
            print(f"{region}  {animal}  {session}  {n}")
        return
    name = data.attrs.get("name")
    print(f"RDM dataset {name!r}: {data.sizes[ROW]} stimuli" if name else f"RDM dataset (unnamed): {data.sizes[ROW]} stimuli")
    for area in areas(data):
        var = data[area]
        reps = [f"{dim}={var.sizes[dim]}" for dim in var.dims if dim not in (ROW, COL)]
        print(f"  {area}: {', '.join(reps) or '1 RDM'}; metric {var.attrs.get('metric', 'unknown')}")


def run_info(args) -> int:
    import numpy as np

    from rsa_bridge.neural.reliability import neuroid_reliability, rdm_reliability
    from rsa_bridge.neural.schema import REGION, flat_coords, is_rates

    imported = _read(args)
    if not args.no_reliability:
        _check_splits(args, imported.data)
    _print_summary(imported.data)
    if not is_rates(imported.data) or args.no_reliability:
        return 0
    rates = imported.data
    rel = neuroid_reliability(rates, n_splits=args.splits, seed=args.seed)
    for region in dict.fromkeys(map(str, flat_coords(rates)[REGION].values)):
        values = rel.values[np.asarray(rel[REGION].values) == region]
        q1, med, q3 = np.nanpercentile(values, [25, 50, 75])
        rdm = rdm_reliability(rates, region=region, n_splits=args.splits, seed=args.seed)
        low, high = rdm.interval
        print(f"{region}: neuroid split-half reliability (Spearman-Brown) median {med:.3f} [IQR {q1:.3f} to {q3:.3f}]; "
              f"RDM split-half reliability (correlation RDM, Spearman, Spearman-Brown) {rdm.mean:.3f} "
              f"± {rdm.sd:.3f} [{low:.3f}, {high:.3f}] over {args.splits} splits, seed {args.seed}")
    return 0


def run_ceiling(args) -> int:
    from rsa_bridge.datasets import area_rdms, areas
    from rsa_bridge.errors import RSABridgeError
    from rsa_bridge.neural.rdms import rates_to_rdm_dataset
    from rsa_bridge.neural.reliability import rdm_reliability
    from rsa_bridge.neural.schema import REGION, flat_coords, is_rates
    from rsa_bridge.stats import noise_ceiling

    imported = _read(args)
    data = imported.data
    if args.method == "split-half":
        _check_splits(args, data)
    if is_rates(data):
        regions = list(dict.fromkeys(map(str, flat_coords(data)[REGION].values)))
        area = _one(args.area, regions, "region")
        if args.method == "split-half":
            rel = rdm_reliability(data, args.metric, method=args.compare, region=area, n_splits=args.splits,
                                  seed=args.seed)
            low, high = rel.interval
            print(f"{area}: split-half RDM reliability ({args.metric} RDM, {args.compare}, Spearman-Brown corrected): "
                  f"{rel.mean:.4f} ± {rel.sd:.4f} (2.5-97.5%: {low:.4f}-{high:.4f}; uncorrected "
                  f"{float(rel.raw.mean()):.4f}) over {args.splits} splits, seed {args.seed}")
            return 0
        by = args.by or _varying(data, area)
        data = rates_to_rdm_dataset(data, args.metric, regions=[area], by=by)
    elif args.method == "split-half":
        raise RSABridgeError("--method split-half needs repeat-level firing rates; this source holds RDMs")
    else:
        area = _one(args.area, areas(data), "area")
    var = data[area]
    along = [c for c in var.coords if c not in var.dims and not {"stimulus_row", "stimulus_col"} & set(var[c].dims)]
    if args.groups is not None and args.groups not in var.dims and args.groups not in along:
        raise RSABridgeError(f"--groups {args.groups!r}: the {area} RDMs have no such dim or replicate coordinate "
                             f"(they have {', '.join(map(str, [*var.dims, *along]))})")
    rdms = data[area] if args.groups is not None else area_rdms(data, area)
    ceiling = noise_ceiling(rdms, method=args.compare, definition=args.method, groups=args.groups)
    groups = f" in {ceiling.n_groups} {args.groups} groups" if args.groups else ""
    print(f"{area}: noise ceiling ({ceiling.definition}, {ceiling.method}, {ceiling.n_rdms} RDMs{groups}, "
          f"units {ceiling.units}): lower {ceiling.lower:.4f}  upper {ceiling.upper:.4f}")
    return 0


def _one(wanted: str | None, have: list[str], what: str) -> str:
    from rsa_bridge.errors import RSABridgeError

    if wanted is None:
        if len(have) != 1:
            raise RSABridgeError(f"say which {what}: --area one of {', '.join(have)}")
        return have[0]
    from rsa_bridge.registry import resolve_name

    return resolve_name(what, wanted, have, hint="the data has these")  # case variants accepted, did-you-mean


def _varying(rates, region: str) -> str:
    from rsa_bridge.errors import RSABridgeError
    from rsa_bridge.neural.schema import ANIMAL, SESSION, flat_coords, select_region

    flat = flat_coords(select_region(rates, region))
    for by in (ANIMAL, SESSION):
        if len(set(map(str, flat[by].values))) > 1:
            return by
    raise RSABridgeError(f"the {region} neuroids come from one animal and one session, so there is one RDM and no "
                         "noise ceiling across RDMs; use --method split-half for its reliability")


def run_rdm(args) -> int:
    import os

    from rsa_bridge.datasets import save_dataset
    from rsa_bridge.errors import RSABridgeError
    from rsa_bridge.neural.rdms import rates_to_rdm_dataset

    rates = _rates(_read(args), "neural rdm")
    if getattr(args, "time_resolved", False):
        from rsa_bridge.neural.time_resolved import time_resolved_dataset

        if args.by is not None:
            raise RSABridgeError("--time-resolved makes one RDM per time bin of each region; drop --by")
        ds = time_resolved_dataset(rates, args.metric, width=args.window, step=args.step,
                                   reliability_threshold=args.reliable, seed=args.seed)
    elif args.window is not None or args.step is not None:
        raise RSABridgeError("--window/--step need --time-resolved")
    else:
        ds = rates_to_rdm_dataset(rates, args.metric, by=args.by, reliability_threshold=args.reliable, seed=args.seed,
                                  name=rates.attrs.get("name") or args.out.stem)  # the file's name when the rates have none
    if args.stimuli is not None:
        if not (args.stimuli / "manifest.csv").is_file():
            raise RSABridgeError(f"--stimuli {str(args.stimuli)!r} has no manifest.csv")
        ds.attrs["stimulus_set"] = os.path.relpath(args.stimuli.resolve(), args.out.resolve().parent)
    from rsa_bridge.neural.rdms import record_source

    ds = record_source(ds, args.src, args.metric)  # which rates (name + SHA-256) and metric made these RDMs
    save_dataset(ds, args.out)
    _print_summary(ds)
    print(f"wrote {args.out}")
    return 0


def run_export(args) -> int:
    from rsa_bridge.neural.exporters import export_rates

    rates = _rates(_read(args), "neural export")
    export_rates(rates, args.out, args.to)
    print(f"wrote {args.out}")
    return 0
