"""``rsa-bridge stimuli``: make stimulus sets (FractalDB-style fractals, folders, CSVs, archives)
and draw contact sheets. Parses arguments, calls :mod:`stimuli`, prints; no science here."""
from __future__ import annotations

from rsa_bridge.app.argtypes import count, real, seed

import argparse
import json
import time
from pathlib import Path

from rsa_bridge.io import check_out as _check_out
from rsa_bridge.io import out_path


def check_out(target, overwrite=False, **options):
    """:func:`rsa_bridge.io.check_out`, raising :class:`stimuli.StimulusError` (an RSABridgeError) like the
    rest of the stimuli commands."""
    from stimuli import StimulusError

    return _check_out(target, overwrite, error=StimulusError, **options)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "stimuli",
        help="make stimulus sets (fractals, folder, CSV, archive) and contact sheets",
        description="Make and inspect stimulus sets: folders of images with a manifest.csv.",
    )
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])
    actions = parser.add_subparsers(dest="stimuli_action", metavar="ACTION")

    p = actions.add_parser(
        "fractals",
        help="generate a FractalDB-style fractal stimulus set",
        description="Search IFS categories (filling rate >= 0.2 on 512x512 with 100,000 points) and render "
        "25 weight vectors x INSTANCES x 4 flips = 100*INSTANCES images per category.",
    )
    p.add_argument("--categories", type=count("--categories", 100_000, minimum=1), default=100,
                   help="number of IFS categories, 1 to 100,000 (default 100)")
    p.add_argument("--instances", type=count("--instances", 10_000, minimum=1), default=10,
                   help="random draws per category and weight vector, 1 to 10,000 (default 10)")
    p.add_argument("--out", required=True, type=out_path, help="folder to create")
    p.add_argument("--seed", type=seed(), default=0, help="master seed; same seed => byte-identical PNGs (default 0)")
    p.add_argument("--size", type=count("--size", 8192, minimum=8), default=362, help="image side in pixels, 8 to 8192 (default 362)")
    p.add_argument("--points", type=count("--points", 100_000_000, minimum=1), default=200_000,
                   help="chaos-game points per image, up to 100 million (default 200000)")
    p.add_argument("--delta", type=real("--delta", 0, 0.5, open_ends=True), default=0.1,
                   help="weight-vector step, between 0 and 0.5: factors 1 - 2 delta .. 1 + 2 delta (default 0.1)")
    p.add_argument("--draw", choices=["patch", "point"], default="patch", help="3x3 random patches or single points (default patch)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run_fractals)

    p = actions.add_parser("from-folder", help="write a manifest for a folder of images (ids from file names)",
                           description="Write manifest.csv for a folder of images: one row per image, the id from its "
                                       "file name (without suffix); images must stay inside the folder.")
    p.add_argument("folder", type=Path, help="folder of images")
    p.add_argument("--out", type=out_path, help="manifest to write (default FOLDER/manifest.csv)")
    p.add_argument("--recursive", action="store_true", help="include subfolders (ids 'sub/name', label column 'folder')")
    p.add_argument("--overwrite", action="store_true", help="replace an existing manifest")
    p.set_defaults(func=run_from_folder)

    p = actions.add_parser("from-csv", help="write a manifest from a CSV with a column of image paths",
                           description="Write manifest.csv from your own table: a column of image paths (relative to the "
                                       "CSV), ids from a column or the file names; other columns are kept as labels.")
    p.add_argument("csv", type=Path, help="CSV file with a column of image paths")
    p.add_argument("--path-column", default="path", help="column with image paths, relative to the CSV (default 'path')")
    p.add_argument("--id-column", help="column with stimulus ids (default: file names without suffix)")
    p.add_argument("--out", type=out_path, help="manifest to write (default: manifest.csv next to the CSV)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing manifest")
    p.set_defaults(func=run_from_csv)

    p = actions.add_parser("from-archive", help="extract a zip/tar archive safely into a stimulus set folder",
                           description="Extract a zip or tar archive into a new stimulus set folder with a manifest; "
                                       "members that leave the folder, links, bombs and oversized images are refused.")
    p.add_argument("archive", type=Path, help="zip or tar archive of images (bounded: see the reliability guide)")
    p.add_argument("--out", required=True, type=out_path, help="folder to create")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    p.set_defaults(func=run_from_archive)

    p = actions.add_parser("contact-sheet", help="draw thumbnails of a stimulus set, titled by stimulus_id",
                           description="Draw a grid of thumbnails of a stimulus set, each titled by its stimulus_id, "
                                       "optionally framed in colours of a manifest column.")
    p.add_argument("folder", type=Path, help="stimulus set folder (or its manifest)")
    p.add_argument("--out", required=True, type=out_path, help="figure to write (.png, .pdf, .svg)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument("--label", help="manifest column that colours the frames")
    p.add_argument("--columns", type=count("--columns", 100, minimum=1), help="thumbnails per row, 1 to 100 (default: about square)")
    p.add_argument("--max-images", type=count("--max-images", 2_000, minimum=1), default=100,
                   help="show at most this many, up to 2,000 (default 100)")
    p.set_defaults(func=run_contact_sheet)


def run_fractals(args: argparse.Namespace) -> int:
    from rsa_bridge.progress import progress_enabled
    from stimuli.fractals import RenderSettings, make_fractal_set

    check_out(args.out, args.overwrite)
    start = time.perf_counter()
    stimulus_set = make_fractal_set(
        args.out, categories=args.categories, instances=args.instances, seed=args.seed,
        render=RenderSettings(size=args.size, points=args.points, delta=args.delta, draw=args.draw),
        overwrite=args.overwrite,
        progress=progress_enabled(False if args.quiet else None),  # off in logs unless asked (rsa_bridge.progress)
    )
    info = json.loads((stimulus_set.root / "fractals.json").read_text())
    print(
        f"wrote {len(stimulus_set)} images of {args.categories} categories to {stimulus_set.root} "
        f"in {time.perf_counter() - start:.1f} s (search: {info['search_candidates']} candidates, "
        f"acceptance {info['search_acceptance_rate']:.1%})"
    )
    return 0


def run_from_folder(args: argparse.Namespace) -> int:
    from stimuli import from_folder
    from stimuli.builders import from_folder_tree, write_manifest

    if args.out is not None:
        check_out(args.out, args.overwrite, kind="file")
    stimulus_set = from_folder_tree(args.folder) if args.recursive else from_folder(args.folder)
    path = write_manifest(stimulus_set, args.out, overwrite=args.overwrite)
    print(f"wrote manifest of {len(stimulus_set)} stimuli to {path}")
    return 0


def run_from_csv(args: argparse.Namespace) -> int:
    from stimuli.builders import from_csv, write_manifest

    if args.out is not None:
        check_out(args.out, args.overwrite, kind="file")
    stimulus_set = from_csv(args.csv, path_column=args.path_column, id_column=args.id_column)
    path = write_manifest(stimulus_set, args.out or args.csv.parent / "manifest.csv", overwrite=args.overwrite)
    print(f"wrote manifest of {len(stimulus_set)} stimuli to {path}")
    return 0


def run_from_archive(args: argparse.Namespace) -> int:
    from stimuli.builders import from_archive

    check_out(args.out, args.overwrite)
    stimulus_set = from_archive(args.archive, args.out, overwrite=args.overwrite)
    print(f"extracted {len(stimulus_set)} stimuli to {stimulus_set.root}")
    return 0


def run_contact_sheet(args: argparse.Namespace) -> int:
    from stimuli import load_stimulus_set
    from stimuli.contact_sheet import contact_sheet

    check_out(args.out, args.overwrite, kind="file")
    stimulus_set = load_stimulus_set(args.folder)
    path = contact_sheet(stimulus_set, args.out, label=args.label, columns=args.columns, max_images=args.max_images)
    print(f"wrote contact sheet of {min(len(stimulus_set), args.max_images)} stimuli to {path}")
    return 0
