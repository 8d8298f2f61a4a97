"""The ``rsa-bridge groups`` job: read the model RDMs and two sets of a dataset, compare, tabulate, write.

Orchestration only; the statistics are :func:`rsa_bridge.stats.groups.compare_groups`.

Example::

    >>> res = run_groups(GroupJob(dataset="kriegeskorte2008_92images", sets=("IT", "hIT"),
    ...                           controls=("pixels",)))                                  # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import xarray as xr

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.stats.groups import GroupOptions

#: files ``--out`` receives
GROUP_FILES = ("groups.csv", "groups.nc")


@dataclass(frozen=True)
class GroupJob:
    """What to compare: models (an RDM file and/or control models) against two areas of one dataset.

    Attributes:
        dataset: shipped name or RDM NetCDF; sets: the two areas; model_rdms: a model-RDM file (or None);
        controls: image-statistics control models scored on the dataset's stimuli; options: the statistics.
    """

    dataset: str
    sets: tuple[str, ...]
    model_rdms: Path | None = None
    controls: tuple[str, ...] = ()
    options: GroupOptions = field(default_factory=GroupOptions)


def _models(job: GroupJob, ds: xr.Dataset) -> xr.DataArray:
    from rsa_bridge.model_rdms import read_model_rdms

    parts = []
    if job.model_rdms is not None:
        parts.append(read_model_rdms(job.model_rdms))
    if job.controls:
        from rsa_bridge.control_rdms import control_model_rdms

        folder = ds.attrs.get("stimuli_path")
        if not folder:
            raise RSABridgeError(f"dataset {ds.attrs.get('name')!r} ships no stimuli, so control models cannot be "
                                 "computed; pass --model-rdms FILE")
        parts += [control_model_rdms(name, folder) for name in job.controls]
    if not parts:
        raise RSABridgeError("say what to compare with the two sets: --model-rdms FILE and/or --control NAME")
    keep = ("layer", "stimulus_row", "stimulus_col")
    parts = [p.drop_vars([c for c in p.coords if c not in keep]) for p in parts]
    ids = [str(s) for s in parts[0]["stimulus_row"].values]
    parts = [p.sel(stimulus_row=ids, stimulus_col=ids) if set(map(str, p["stimulus_row"].values)) == set(ids) else p
             for p in parts]
    return xr.concat(parts, "layer").rename(layer="model_layer")


def run_groups(job: GroupJob) -> xr.Dataset:
    """Load, check and compare (see :func:`rsa_bridge.stats.groups.compare_groups`); the result's attrs name the inputs."""
    from rsa_bridge.datasets import load_dataset, resolve_area
    from rsa_bridge.stats.groups import compare_groups

    if len(job.sets) != 2:
        raise RSABridgeError(f"name exactly two sets: --set A --set B; got {len(job.sets)}")
    ds = load_dataset(job.dataset)
    names = [resolve_area(ds, a) for a in job.sets]
    if names[0] == names[1]:
        raise RSABridgeError(f"the two sets are the same area ({names[0]}); name two different areas")
    models = _models(job, ds)
    res = compare_groups(models, {a: ds[a] for a in names}, job.options)
    res.attrs.update({"dataset": str(ds.attrs.get("name", job.dataset)),
                      "model_rdm_file": str(job.model_rdms) if job.model_rdms else "none",
                      "control_models": ",".join(job.controls) or "none"})
    return res


def group_table(res: xr.Dataset) -> pd.DataFrame:
    """One row per model and set: measure, method, similarity, CI, p_zero, p_ceiling, and the set difference."""
    rows = []
    for m in res["model_layer"].values:
        for g in res["group"].values:
            r = res.sel(model_layer=m, group=g)
            rows.append({"model": str(m), "set": str(g), "measure": "rsa", "method": res.attrs["group_method"],
                         "similarity": float(r["similarity"]), "ci_low": float(r["ci_low"]),
                         "ci_high": float(r["ci_high"]), "p_zero": float(r["p_zero"]),
                         "p_ceiling": float(r["p_ceiling"]), "ceiling_lower": float(r["ceiling_lower"]),
                         "difference": float(r["difference"]), "p_difference": float(r["p_difference"]),
                         "units": res.attrs[f"group_units_{g}"]})
    return pd.DataFrame(rows)


def write_groups(res: xr.Dataset, out: Path, overwrite: bool = False) -> list[Path]:
    """``groups.csv`` (the table) and ``groups.nc`` (everything, draws included) into ``out``, atomically."""
    from rsa_bridge.io import staged_outputs, write_netcdf
    from stimuli.csv_cells import frame_to_csv

    with staged_outputs(out, GROUP_FILES, overwrite=overwrite) as staging:
        frame_to_csv(group_table(res), staging / "groups.csv", index=False)
        write_netcdf(res, staging / "groups.nc")
    return [Path(out) / name for name in GROUP_FILES]
