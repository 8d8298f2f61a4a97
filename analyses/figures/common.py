"""What every figure script shares: its command line, cached compare results, and saving.

Each script is ``python -m analyses.figures.NAME --out DIR``. The RSA figures read a
``rsa-bridge compare --out`` folder (``results.csv``, ``results.nc``, ``model_rdms.nc``) given with
``--results DIR``; when that folder is missing or empty, the ``python -m`` script runs the compare job once
(AlexNet, untrained ``--weights none``, the shipped 92-image set, 200 bootstrap samples, seed 0 unless told
otherwise) and writes its files there, so the next script reuses them. ``--results`` defaults to
``OUT/results``. ``rsa-bridge figure KIND`` never computes: a missing or empty folder is an error.

A folder's kind is recognised by its files (:data:`FOLDER_KINDS`): a figure refuses a folder of another
kind (a compare folder given to ``missed_detections``) rather than compute or demo into it.

Measures: results.csv holds one row per (model, layer, area, measure), every measure's score in one
``similarity`` column. :func:`measure_tables` hands a figure one measure at a time (``--measure NAME``, or
every measure present, one figure each, named ``NAME_MEASURE`` when the results hold several).
"""
from __future__ import annotations

from rsa_bridge.app.argtypes import count, seed

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd
import xarray as xr

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.figures import save_figure
from stimuli.csv_cells import read_own_csv
from rsa_bridge.measures import MEASURES
from rsa_bridge.measures.results import measures_in, select_measure

#: defaults of the compare job that runs when no cached results exist
DEFAULT_MODEL, DEFAULT_WEIGHTS, DEFAULT_DATASET, DEFAULT_BOOTSTRAP = "alexnet", "none", "kriegeskorte2008_92images", 200


@dataclass
class CachedResults:
    """A compare run read back from its folder.

    Attributes:
        table: ``results.csv`` (one row per model x layer x area).
        results: ``results.nc`` (None when absent).
        model_rdms: per model name, its ``(layer, stimulus_row, stimulus_col)`` RDMs from ``model_rdms.nc``
            (empty when absent).
        folder: where they were read from.
    """

    table: pd.DataFrame
    results: xr.Dataset | None
    model_rdms: dict[str, xr.DataArray]
    folder: Path

    @property
    def measures(self) -> list[str]:
        """The measures in ``table`` (``["rsa"]`` for results without a ``measure`` column)."""
        return measures_in(self.table)

    def rows(self, measure: str | None = None) -> pd.DataFrame:
        """The rows of one measure; RSABridgeError for ``None`` when the results hold several (never a mix)."""
        return select_measure(self.table, measure)


#: how a script names itself in its usage line (``rsa-bridge figure`` sets ``rsa-bridge figure {name}``)
PROG_TEMPLATE = "python -m analyses.figures.{name}"
#: run the compare job when the results folder is empty (the scripts do; ``rsa-bridge figure`` does not)
COMPUTE_MISSING = True


class _FigureParser(argparse.ArgumentParser):
    """``--out`` defaults to the ``--results`` folder; one of the two is needed."""

    def parse_args(self, args=None, namespace=None):  # noqa: D102
        parsed = super().parse_args(args, namespace)
        if parsed.out is None:
            if parsed.results is None:
                self.error("say where to write the figure: --out DIR (or --results DIR to write beside the results)")
            parsed.out = parsed.results
        return parsed


#: folder kind -> (the file that marks it, the command that writes it); recognised in this order
FOLDER_KINDS: dict[str, tuple[str, str]] = {
    "compare": ("results.csv", "rsa-bridge compare ... --out DIR"),
    "depth_masks": ("depth_masks.nc", "rsa-bridge depth-mask ... --out DIR"),
    "missed_detections": ("missed_detections.nc", "rsa-bridge missed-detections ... --out DIR"),
    "partition": ("partition.nc", "rsa-bridge partition ... --out DIR"),
}


def folder_kind(folder: str | Path) -> str | None:
    """The kind of a results folder by its files (:data:`FOLDER_KINDS`): ``None`` for a missing or empty
    folder, ``"other"`` for a folder of anything else."""
    folder = Path(folder)
    if not folder.is_dir() or not any(folder.iterdir()):
        return None
    for kind, (marker, _) in FOLDER_KINDS.items():
        if (folder / marker).is_file():
            return kind
    return "other"


def check_folder(folder: str | Path, kind: str) -> bool:
    """True when ``folder`` holds results of ``kind``; False when it is missing or empty and may be computed
    (``python -m`` scripts); RSABridgeError for a folder of another kind, or an empty one under
    ``rsa-bridge figure`` (which never computes)."""
    folder = Path(folder)
    found = folder_kind(folder)
    marker, command = FOLDER_KINDS[kind]
    if found == kind:
        return True
    if found is None and COMPUTE_MISSING:
        return False
    what = {None: "is missing or empty", "other": f"holds no {marker} (other files only)"}.get(
        found, f"is a {found} results folder ({FOLDER_KINDS.get(found, ('?',))[0]})")
    raise RSABridgeError(f"{str(folder)!r} {what}; this figure draws {marker} written by `{command}`: "
                         "pass that folder as --results (rsa-bridge figure never computes or writes results)")


def parser(name: str, description: str, compare: bool = True, measures: bool = True) -> argparse.ArgumentParser:
    """The common options: ``--out`` (default: the ``--results`` folder), ``--results``, ``--dpi``, for figures
    of scores ``--measure``, and for RSA figures the compare job's defaults (shown only where a missing
    folder is computed: the ``python -m`` scripts)."""
    p = _FigureParser(prog=PROG_TEMPLATE.format(name=name), description=description)
    files = f"{name}.pdf and {name}.png" + (f" ({name}_MEASURE.* from results of several measures)"
                                            if compare and measures else "")
    p.add_argument("--out", type=Path, default=None, help=f"folder for {files} (default: the --results folder)")
    p.add_argument("--dpi", type=count("--dpi", 1200, minimum=30), default=300, help="resolution of the PNG (default 300; the PDF is vector)")
    p.add_argument("--results", type=Path, default=None,
                   help=("results folder (default OUT/results); when it is missing or empty the job runs and "
                         "writes its results there") if COMPUTE_MISSING else
                        "the results folder to draw; nothing is computed: a missing or empty folder, or one "
                        "of another kind, is an error")
    if compare and measures:
        p.add_argument("--measure", choices=tuple(MEASURES), default=None,
                       help="the measure to draw (default: every measure in the results, one figure each, "
                            f"named {name}_MEASURE when there are several); measures are never mixed")
    if compare:
        shown = (lambda text: text) if COMPUTE_MISSING else (lambda text: argparse.SUPPRESS)
        job = p.add_argument_group("compare job run when there are no cached results" if COMPUTE_MISSING
                                   else "reading the results")
        job.add_argument("--model", default=DEFAULT_MODEL, help=shown(f"torchvision model (default {DEFAULT_MODEL})"))
        job.add_argument("--weights", default=DEFAULT_WEIGHTS,
                         help=shown("default, none or a state-dict file (default none)"))
        job.add_argument("--dataset", default=None,
                         help=f"RDM dataset, shipped name or .nc path (default {DEFAULT_DATASET}); figures that "
                              "draw brain RDMs also read it for cached results of a dataset that is not shipped")
        job.add_argument("--bootstrap", type=count("--bootstrap", 100_000), default=DEFAULT_BOOTSTRAP,
                         help=shown(f"bootstrap samples (default {DEFAULT_BOOTSTRAP})"))
        job.add_argument("--seed", type=seed(), default=0, help="seed of the bootstrap / layout (default 0)")
    return p


def _read_model_rdms(path: Path) -> dict[str, xr.DataArray]:
    """``model_rdms.nc`` as written by :func:`rsa_bridge.app.report.write_outputs`: ``rdm`` or ``rdm_0``, ``rdm_1`` ..."""
    if not path.is_file():
        return {}
    with xr.open_dataset(path, engine="h5netcdf") as handle:
        ds = handle.load()
    out = {}
    for var in ds.data_vars:
        da = ds[var]
        suffix = str(var)[len("rdm"):]
        if suffix:
            da = da.rename({name: name[: -len(suffix)] for name in [*da.dims, *da.coords] if str(name).endswith(suffix)})
        model = str(da.attrs.get("key", da.attrs.get("model", var))).split("|", 1)[0]
        out[model] = da
    return out


def read_results(folder: str | Path) -> CachedResults:
    """Read a ``rsa-bridge compare --out`` folder; RSABridgeError when it has no ``results.csv``."""
    folder = Path(folder)
    csv = folder / "results.csv"
    if not csv.is_file():
        raise RSABridgeError(f"{str(folder)!r} holds no results.csv; run `rsa-bridge compare ... --out {folder}`")
    results = None
    if (folder / "results.nc").is_file():
        with xr.open_dataset(folder / "results.nc", engine="h5netcdf") as handle:
            results = handle.load()
    return CachedResults(read_own_csv(csv), results, _read_model_rdms(folder / "model_rdms.nc"), folder)


def load_or_compute(args: argparse.Namespace) -> CachedResults:
    """The cached results in ``args.results`` (default ``args.out/results``), computing them first if absent."""
    folder = Path(args.results) if args.results is not None else Path(args.out) / "results"
    if not check_folder(folder, "compare"):
        from rsa_bridge.app.pipeline import NetworkOptions, StatsOptions, compare_model
        from rsa_bridge.app.report import write_outputs

        dataset = args.dataset or DEFAULT_DATASET
        print(f"no cached results in {folder}: running compare ({args.model}, weights {args.weights}, "
              f"{dataset}, {args.bootstrap} bootstrap samples)", file=sys.stderr)
        result = compare_model(args.model, dataset=dataset, network=NetworkOptions(weights=args.weights), progress=None,
                               stats=StatsOptions(bootstrap=args.bootstrap, seed=args.seed))
        write_outputs(result, folder)
    return read_results(folder)


def measure_tables(cached: CachedResults, measure: str | None, supported: tuple[str, ...] | None = None,
                   why: str = "") -> list[tuple[str, pd.DataFrame]]:
    """(measure, its rows) for each figure to draw: ``measure`` alone, or every measure present.

    ``supported``: the measures a figure can draw (None: any), ``why`` says why in the refusal; asking for
    another one is an error, and by default the others present are skipped (a note on stderr says so).
    """
    present = cached.measures
    if measure is not None:
        if supported is not None and measure not in supported:
            raise RSABridgeError(f"this figure draws {', '.join(supported)} only{why}; --measure {measure} is drawn by "
                                 "layer_profile, layer_heatmap and best_layer")
        return [(measure, cached.rows(measure))]
    wanted = [m for m in present if supported is None or m in supported]
    skipped = [m for m in present if m not in wanted]
    if skipped:
        print(f"note: {', '.join(skipped)} not drawn by this figure (it draws {', '.join(supported or ())})",
              file=sys.stderr)
    if not wanted:
        raise RSABridgeError(f"the results hold {', '.join(present)}; this figure draws {', '.join(supported or ())} "
                             "only: rerun compare with --measure rsa")
    return [(m, cached.rows(m)) for m in wanted]


def figure_name(name: str, measure: str, cached: CachedResults) -> str:
    """``NAME`` for results of one measure, ``NAME_MEASURE`` when they hold several (one file per measure)."""
    return name if len(cached.measures) == 1 else f"{name}_{measure}"


def save(fig, out: str | Path, name: str, dpi: int = 300) -> list[Path]:
    """``OUT/NAME.pdf`` and ``OUT/NAME.png`` (``dpi``), atomically; closes the figure."""
    if dpi < 50:
        raise RSABridgeError(f"--dpi must be at least 50; got {dpi}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, out / name, dpi=dpi)


def run(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Run a script's main; a user error is one line on stderr and exit code 2."""
    try:
        return main(argv)
    except RSABridgeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
