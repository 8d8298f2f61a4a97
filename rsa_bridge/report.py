"""Text table for stdout and the files that ``compare --out DIR`` writes (all or nothing)."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import xarray as xr

from rsa_bridge.figures import layer_profile
from rsa_bridge.model_rdms import LAYER
from rsa_bridge.pipeline import CompareResult

OUTPUT_FILES = ("results.csv", "results.nc", "model_rdms.nc", "profile.pdf", "profile.png")


def header(result: CompareResult) -> str:
    """One line of provenance above the table; says plainly when the network is untrained."""
    t = result.table
    weights = ", ".join(dict.fromkeys(t["weights"]))
    note = " (untrained network: a control, not a trained model)" if "none" in t["weights"].values else ""
    return (f"model {', '.join(dict.fromkeys(t['model']))} | weights {weights}{note} | "
            f"dataset {', '.join(dict.fromkeys(t['dataset']))} | metric {', '.join(dict.fromkeys(t['metric']))} | "
            f"comparison {t['method'].iloc[0]} | stimuli {', '.join(str(n) for n in dict.fromkeys(t['n_stimuli']))}")


def short_title(result: CompareResult) -> str:
    """``alexnet (weights none, untrained) - dataset`` for figure titles."""
    t = result.table
    weights = ", ".join(dict.fromkeys(t["weights"]))
    untrained = ", untrained" if "none" in t["weights"].values else ""
    return (f"{', '.join(dict.fromkeys(t['model']))} (weights {weights}{untrained}) vs "
            f"{', '.join(dict.fromkeys(t['dataset']))}")


def format_table(result: CompareResult) -> str:
    """Layers down, areas across: the similarity (± SEM over RDMs when an area has several)."""
    t = result.table
    cells = t.assign(cell=[f"{s:.4f}" + (f" ± {e:.4f}" if pd.notna(e) else "") for s, e in zip(t["similarity"], t["sem"])])
    wide = cells.pivot_table(index=["model", "layer"], columns="area", values="cell", aggfunc="first", sort=False)
    wide = wide.reindex(list(dict.fromkeys(zip(t["model"], t["layer"]))))
    if t["model"].nunique() == 1:
        wide.index = wide.index.get_level_values("layer")
    wide.columns.name = None
    return header(result) + "\n" + wide.to_string()


def _model_rdms_dataset(result: CompareResult) -> xr.Dataset:
    variables = {}
    for k, (key, rdms) in enumerate(result.model_rdms.items()):
        suffix = "" if len(result.model_rdms) == 1 else f"_{k}"
        rename = {} if not suffix else {d: f"{d}{suffix}" for d in rdms.dims}
        renamed = rdms.rename(rename)
        renamed.attrs = {**rdms.attrs, "key": key}
        variables[f"rdm{suffix}"] = renamed
    return xr.Dataset(variables)


def write_outputs(result: CompareResult, out_dir: str | os.PathLike) -> list[Path]:
    """Write results.csv, results.nc, model_rdms.nc, profile.pdf and profile.png into ``out_dir``.

    Everything is rendered into a temporary folder first; only when all files exist are they moved
    into place (each with an atomic rename), so a failure leaves no partial output.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".rsa-bridge-", dir=out_dir))
    try:
        result.table.to_csv(staging / "results.csv", index=False)
        result.results.to_netcdf(staging / "results.nc", engine="h5netcdf")
        _model_rdms_dataset(result).to_netcdf(staging / "model_rdms.nc", engine="h5netcdf")
        fig, _, _ = layer_profile(result.table, title=short_title(result))
        try:
            fig.savefig(staging / "profile.pdf")
            fig.savefig(staging / "profile.png", dpi=200)
        finally:
            import matplotlib.pyplot as plt

            plt.close(fig)
        written = []
        for name in OUTPUT_FILES:
            os.replace(staging / name, out_dir / name)
            written.append(out_dir / name)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)
