"""Orchestration of ``rsa-bridge fit`` and ``rsa-bridge partition``: load the area's RDMs and the model RDMs,
align them by ``stimulus_id`` (:func:`rsa_bridge.fitting.fit_data`), run the core, write the files.

Both read model RDMs from NetCDF files (``model_rdms.nc`` of ``rsa-bridge compare --out``, or any RDM dataset
whose variables are layers); with several files a layer is named ``FILE_STEM:LAYER``.

Example::

    data = load_fit_data(FitInputs(area="hIT", model_rdms=("run/model_rdms.nc",)))
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rsa_bridge.errors import RSABridgeError


@dataclass(frozen=True)
class FitInputs:
    """What to load: the brain area (and dataset: a shipped name or a .nc path; default the shipped one with
    the area), the model-RDM files and the layers to keep (() = all)."""

    area: str
    model_rdms: tuple[str, ...]
    dataset: str | None = None
    layers: tuple[str, ...] = ()


def _models(paths: tuple[str, ...], layers: tuple[str, ...]):
    import xarray as xr

    from rsa_bridge.model_rdms import LAYER, read_model_rdms
    from rsa_bridge.provenance import file_sha256
    from rsa_bridge.rdm import COL, ROW

    if not paths:
        raise RSABridgeError("give model RDMs with --model-rdms FILE (e.g. model_rdms.nc of `rsa-bridge compare "
                             "--out DIR`)")
    parts, attrs = [], {}
    for k, path in enumerate(paths):
        if Path(path).suffix.lower() == ".mat":
            raise RSABridgeError(f"{str(path)!r} is a .mat file without stimulus ids; write it as NetCDF with ids "
                                 "first: `rsa-bridge compare --model-rdms FILE.mat --stimulus-ids FILE|dataset "
                                 "--area AREA --out DIR` gives DIR/model_rdms.nc")
        rdm = read_model_rdms(path)
        if len(paths) > 1:
            rdm = rdm.assign_coords({LAYER: [f"{Path(path).stem}:{v}" for v in rdm[LAYER].values]})
        parts.append(rdm.drop_vars([c for c in rdm.coords if c not in (LAYER, ROW, COL)]))
        suffix = "" if len(paths) == 1 else f"_{k}"
        attrs[f"model_rdms_file{suffix}"] = str(path)
        attrs[f"model_rdms_sha256{suffix}"] = file_sha256(path)
        for key in ("model", "weights"):
            attrs[f"source_{key}{suffix}"] = str(rdm.attrs.get(key, "unknown"))
    if len(parts) > 1:
        ids = [set(map(str, p[ROW].values)) for p in parts]
        if any(i != ids[0] for i in ids):
            raise RSABridgeError("the --model-rdms files cover different stimuli; give RDMs over the same stimulus ids")
        parts = [p.sel({ROW: parts[0][ROW].values, COL: parts[0][COL].values}) for p in parts]
    models = xr.concat(parts, dim=LAYER) if len(parts) > 1 else parts[0]
    if layers:
        from rsa_bridge.registry import unknown_name

        have = [str(v) for v in models[LAYER].values]
        for name in layers:
            if name not in have:
                raise RSABridgeError(unknown_name("model RDM", name, have, hint="names in the --model-rdms files"))
        models = models.sel({LAYER: list(layers)})
    return models, attrs


def load_fit_data(inputs: FitInputs):
    """:class:`~rsa_bridge.fitting.FitData` of the area's RDMs and the model RDMs, with provenance."""
    from rsa_bridge.datasets import area_rdms, load_dataset, locate_area, resolve_area
    from rsa_bridge.fitting import fit_data

    models, attrs = _models(tuple(inputs.model_rdms), tuple(inputs.layers))
    source = inputs.dataset if inputs.dataset is not None else locate_area(inputs.area)[0]
    ds = load_dataset(source)
    area = resolve_area(ds, inputs.area)
    brain = area_rdms(ds, area)
    attrs.update(dataset=str(ds.attrs.get("name", source)), area=area,
                 brain_rdm_metric=str(ds[area].attrs.get("metric", ds.attrs.get("metric", "unknown"))))
    return fit_data(brain, models, attrs=attrs)


def write_tables(out, overwrite: bool, files: dict) -> list[Path]:
    """Write ``{name: Dataset or DataFrame}`` into the folder ``out`` as one unit (NetCDF / CSV by suffix)."""
    from rsa_bridge.io import staged_outputs, staged_paths, write_netcdf
    from stimuli.csv_cells import frame_to_csv

    with staged_outputs(out, tuple(files), overwrite=overwrite) as staging:
        for name, obj in files.items():
            if name.endswith(".nc"):
                write_netcdf(obj, staging / name)
            else:
                frame_to_csv(obj, staging / name, index=False)
    return staged_paths(out, tuple(files))
