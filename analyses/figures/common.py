"""What every figure script shares: its command line, cached compare results, and saving.

Each script is ``python -m analyses.figures.NAME --out DIR``. The RSA figures read a
``rsa-bridge compare --out`` folder (``results.csv``, ``results.nc``, ``model_rdms.nc``) given with
``--results DIR``; when that folder holds no ``results.csv`` yet, the compare job runs once (AlexNet,
untrained ``--weights none``, the shipped 92-image set, 200 bootstrap samples, seed 0 unless told
otherwise) and writes its files there, so the next script reuses them. ``--results`` defaults to
``OUT/results``.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd
import xarray as xr

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.figures import save_figure

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


def parser(name: str, description: str, compare: bool = True) -> argparse.ArgumentParser:
    """The common options: ``--out`` (default: the ``--results`` folder), ``--results``, ``--dpi`` and, for RSA
    figures, the compare job's defaults."""
    p = _FigureParser(prog=PROG_TEMPLATE.format(name=name), description=description)
    p.add_argument("--out", type=Path, default=None,
                   help=f"folder for {name}.pdf and {name}.png (default: the --results folder)")
    p.add_argument("--dpi", type=int, default=300, help="resolution of the PNG (default 300; the PDF is vector)")
    p.add_argument("--results", type=Path, default=None,
                   help="cached results folder (default OUT/results); computed and written there when empty")
    if compare:
        job = p.add_argument_group("compare job run when there are no cached results")
        job.add_argument("--model", default=DEFAULT_MODEL, help=f"torchvision model (default {DEFAULT_MODEL})")
        job.add_argument("--weights", default=DEFAULT_WEIGHTS, help="default, none or a state-dict file (default none)")
        job.add_argument("--dataset", default=None,
                         help=f"RDM dataset, shipped name or .nc path (default {DEFAULT_DATASET}); figures that "
                              "draw brain RDMs also read it for cached results of a dataset that is not shipped")
        job.add_argument("--bootstrap", type=int, default=DEFAULT_BOOTSTRAP,
                         help=f"bootstrap samples (default {DEFAULT_BOOTSTRAP})")
        job.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
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
    return CachedResults(pd.read_csv(csv), results, _read_model_rdms(folder / "model_rdms.nc"), folder)


def load_or_compute(args: argparse.Namespace) -> CachedResults:
    """The cached results in ``args.results`` (default ``args.out/results``), computing them first if absent."""
    folder = Path(args.results) if args.results is not None else Path(args.out) / "results"
    if not (folder / "results.csv").is_file() and COMPUTE_MISSING:
        from rsa_bridge.app.pipeline import NetworkOptions, StatsOptions, compare_model
        from rsa_bridge.app.report import write_outputs

        dataset = args.dataset or DEFAULT_DATASET
        print(f"no cached results in {folder}: running compare ({args.model}, weights {args.weights}, "
              f"{dataset}, {args.bootstrap} bootstrap samples)", file=sys.stderr)
        result = compare_model(args.model, dataset=dataset, network=NetworkOptions(weights=args.weights), progress=None,
                               stats=StatsOptions(bootstrap=args.bootstrap, seed=args.seed))
        write_outputs(result, folder)
    return read_results(folder)


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
