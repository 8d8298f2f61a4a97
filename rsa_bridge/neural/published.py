"""Importers for the published data sets in ``../shared/data`` that are not shipped with rsa-bridge.

- ``algonauts2019`` — Cichy et al. 2014/2016 human fMRI RDMs as released for Algonauts 2019
  (``target_fmri_92.mat`` / ``target_fmri_118.mat``, MATLAB v7.3): areas ``EVC`` and ``IT``,
  15 subjects, 1 - Pearson r. The 92-image set shares ids and order with the shipped
  ``kriegeskorte2008_92images`` stimuli; the 118 images are not available.
- ``net2brain`` — Net2Brain's copy of the Algonauts 2019 78-image test set (``fmri_EVC_RDMs.npz``,
  ``fmri_IT_RDMs.npz``: (15, 78, 78)) with its images ``stimuli/image_01.jpg`` ...
- ``henaff2021-v1`` / ``henaff2021-v1-rdms`` — Henaff et al. 2021 macaque V1 spike counts (200 ms
  window) to natural-video frames, one ``<monkey>_<penetration>_image_sequences.mat`` per recording:
  firing rates of one recording, or one V1 RDM per recording (``session`` dim). No licence: import
  locally, never ship.

Each reader returns an :class:`Imported`: the data (an RDM dataset or firing rates) and, when the
images exist, a manifest (``stimulus_id``, ``filename`` as absolute paths) that
:func:`write_imported` saves next to the output so ``rsa-bridge compare --dataset OUT.nc`` finds them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from rsa_bridge.condensed import check_square
from rsa_bridge.datasets import DATA_DIR, save_dataset, validate_rdm_dataset
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.io import publish_files, reading
from rsa_bridge.neural import schema as S
from rsa_bridge.rdm import COL, ROW
from rsa_bridge.value_checks import CONVERTED_ATTR, CONVERTED_VALUE, real_numbers, similarity_to_dissimilarity
from stimuli.csv_cells import frame_to_csv

CICHY_CITATION = ("Cichy RM, Pantazis D, Oliva A (2014) Nat Neurosci 17:455-462; Cichy RM, Khosla A, Pantazis D, "
                  "Torralba A, Oliva A (2016) Sci Rep 6:27755; Cichy RM et al. (2019) The Algonauts Project")
HENAFF_CITATION = ("Henaff OJ, Bai Y, Charlton JA, Nauhaus I, Simoncelli EP, Goris RLT (2021) Primary visual cortex "
                   "straightens natural video trajectories. Nat Commun 12:5982")


@dataclass
class Imported:
    """What an importer of a published set returns: the data and, if the images exist, their manifest."""

    data: xr.Dataset | xr.DataArray
    manifest: pd.DataFrame | None = None


def _rdm_dataset(rdms: dict[str, np.ndarray], ids: list[str], attrs: dict, var_attrs: dict,
                 similarity: bool = False) -> xr.Dataset:
    """The RDM dataset of raw (subject, n, n) matrices, each checked as it came (real, finite, symmetric per entry,
    zero diagonal per row; a similarity matrix is named) before the exact symmetrisation; ``similarity``: the
    source holds similarities, converted by 1 - s (recorded in the area's attrs)."""
    variables = {}
    for area, values in rdms.items():
        values = real_numbers(values, f"the {area} RDMs").astype(np.float64, copy=False)
        if similarity:
            values = similarity_to_dissimilarity(values)
            var_attrs = {**var_attrs, CONVERTED_ATTR: CONVERTED_VALUE}
        for k, matrix in enumerate(values.reshape(-1, *values.shape[-2:])):
            check_square(matrix, f"{area} (subject {k + 1})")  # before the diagonal is zeroed below
        values = (values + np.swapaxes(values, -1, -2)) / 2.0  # exact symmetry (sources are symmetric to ~1e-16)
        values[..., np.arange(len(ids)), np.arange(len(ids))] = 0.0
        subjects = [f"sub{k + 1:02d}" for k in range(values.shape[0])]
        variables[area] = xr.DataArray(values, dims=("subject", ROW, COL),
                                       coords={"subject": subjects, ROW: ids, COL: ids},
                                       attrs={**var_attrs, "region": area})
    ds = xr.Dataset(variables, attrs=attrs)
    return validate_rdm_dataset(ds, where=attrs.get("name", "imported dataset"))


def read_algonauts2019(path: str | os.PathLike, **unused) -> Imported:
    """EVC and IT RDMs (15 subjects) from an Algonauts 2019 ``target_fmri*.mat`` (v7.3/HDF5)."""
    import h5py

    with reading(path, "a MATLAB v7.3 file") as path, h5py.File(path, "r") as handle:
        missing = [k for k in ("EVC_RDMs", "IT_RDMs") if k not in handle]
        if missing:
            raise RSABridgeError(f"{str(path)!r} has no {', '.join(missing)}; is it an Algonauts 2019 target_fmri.mat?")
        rdms = {area: np.transpose(handle[f"{area}_RDMs"][()]) for area in ("EVC", "IT")}
    n = rdms["IT"].shape[-1]
    manifest = None
    if n == 92:
        stim = DATA_DIR / "kriegeskorte2008_92images" / "stimuli"
        frame = pd.read_csv(stim / "manifest.csv", dtype=str)
        ids = frame["stimulus_id"].tolist()
        manifest = pd.DataFrame({"stimulus_id": ids, "filename": [str(stim / f) for f in frame["filename"]]})
    else:
        ids = [f"image_{k + 1:03d}" for k in range(n)]
    attrs = {"name": f"cichy_algonauts2019_{n}images", "title": f"Human fMRI RDMs, EVC and IT, 15 subjects, {n} images "
             "(Algonauts 2019 training set)", "source": str(path), "citation": CICHY_CITATION,
             "licence": "none stated; use for validation, ask before redistributing"}
    var_attrs = {"metric": "correlation", "species": "human",
                 "description": "1 - Pearson r of fMRI response patterns (Algonauts 2019 release)"}
    return Imported(_rdm_dataset(rdms, ids, attrs, var_attrs), manifest)


def read_net2brain(path: str | os.PathLike, similarity_to_dissimilarity: bool = False, **unused) -> Imported:
    """EVC and IT RDMs (15 subjects, 78 images) from Net2Brain's ``fmri_<area>_RDMs.npz`` files: a folder
    holding them (and ``stimuli/``), or one such file.

    Similarity matrices (diagonal 1, entries in [-1, 1]) are refused in one line unless
    ``similarity_to_dissimilarity`` (``--similarity-to-dissimilarity``) converts them by 1 - s, which the
    areas' attrs record (``converted_from``)."""
    path = Path(path)
    if not path.exists():
        raise RSABridgeError(f"no such file or folder: {str(path)!r}")
    files = sorted(path.glob("fmri_*_RDMs.npz")) if path.is_dir() else [path]
    if not files:
        raise RSABridgeError(f"{str(path)!r} holds no fmri_<area>_RDMs.npz file")
    rdms = {}
    for file in files:
        area = file.name.removeprefix("fmri_").removesuffix("_RDMs.npz") if file.name.startswith("fmri_") else file.stem
        try:
            with np.load(file) as content:
                rdms[area] = content[content.files[0]]
        except Exception as err:
            raise RSABridgeError(f"cannot read {str(file)!r} as .npz ({type(err).__name__}: {err})") from None
        if rdms[area].ndim != 3 or rdms[area].shape[1] != rdms[area].shape[2]:
            raise RSABridgeError(f"{str(file)!r}: expected (subject, n, n) RDMs; got shape {rdms[area].shape}")
    n = next(iter(rdms.values())).shape[-1]
    folder = (path if path.is_dir() else path.parent) / "stimuli"
    images = sorted(folder.glob("image_*.jpg")) if folder.is_dir() else []
    ids = [p.stem for p in images] if len(images) == n else [f"image_{k + 1:02d}" for k in range(n)]
    manifest = (pd.DataFrame({"stimulus_id": ids, "filename": [str(p.resolve()) for p in images]})
                if len(images) == n else None)
    attrs = {"name": "algonauts2019_78images", "title": "Human fMRI RDMs, EVC and IT, 15 subjects, 78 images "
             "(Algonauts 2019 test set, Net2Brain copy)", "source": str(path), "citation": CICHY_CITATION,
             "licence": "BSD-3-Clause-style (Net2Brain repository); data/images: none stated"}
    var_attrs = {"metric": "correlation", "species": "human", "description": "fMRI RDMs as distributed by Net2Brain"}
    return Imported(_rdm_dataset(rdms, ids, attrs, var_attrs, bool(similarity_to_dissimilarity)), manifest)


def _chars(handle, key: str) -> str:
    return "".join(map(chr, np.asarray(handle[key][()]).ravel()))


def henaff_stimulus_id(zoom: int, movie: int, frame: int) -> str:
    """Id of natural frame ``frame`` (1-based) of ``movie`` (1-based) at zoom 1 or 2."""
    return f"zoom{zoom}x_movie{movie:02d}_natural{frame:02d}"


def read_henaff_v1(path: str | os.PathLike, **unused) -> Imported:
    """Firing rates (spike counts in the 200 ms window) of one Henaff et al. 2021 V1 recording to the 220
    natural frames (10 movies x 11 frames x 2 zooms).

    Units lost for part of the recording leave NaN in single neuroids; they are kept as missing
    observations (``attrs['missing'] == 'allowed'``), which every rsa-bridge computation handles.
    """
    import h5py

    what = "a Henaff et al. 2021 recording (MATLAB v7.3 with naturalStruct/sortedResponses)"
    with reading(path, what) as path:
        with h5py.File(path, "r") as handle:
            group = handle["naturalStruct"]
            counts = group["sortedResponses"][()]  # h5py order: (rep, unit, frame, movie, category, zoom)
            clusters = np.asarray(group["cluster_list"][()]).ravel()
            cluster_group = np.asarray(group["cluster_group"][()]).ravel()
            area = _chars(group, "cortical_area")
            monkey, penetration = _chars(group, "monkey_ID"), _chars(group, "penetration_ID")
            window = float(np.asarray(group["integrationPeriod"][()]).ravel()[0])
    if counts.ndim != 6 or counts.shape[4] < 1:
        raise RSABridgeError(f"{str(path)!r}: unexpected sortedResponses shape {counts.shape}")
    natural = counts[:, :, :, :, 0, :]  # (rep, unit, frame, movie, zoom)
    n_rep, n_unit, n_frame, n_movie, n_zoom = natural.shape
    ids, values, reps, files = [], [], [], []
    root = path.resolve().parent.parent / "stimuli"
    for z in range(n_zoom):
        for m in range(n_movie):
            for f in range(n_frame):
                block = natural[:, :, f, m, z]  # (rep, unit)
                shown = ~np.isnan(block).all(axis=1)
                sid = henaff_stimulus_id(z + 1, m + 1, f + 1)
                ids.extend([sid] * int(shown.sum()))
                reps.extend(np.flatnonzero(shown).tolist())
                values.append(block[shown])
                files.append((sid, str(root / f"stimSelected-zoom{z + 1}x" / f"movie{m + 1}" / f"natural{f + 1:02d}.png")))
    rates = S.make_rates(np.concatenate(values), stimulus_ids=ids, repetitions=reps,
                         neuroid_ids=[f"{monkey}_{penetration}_c{int(c)}" for c in clusters], region=area or "V1",
                         animal=monkey, session=f"{monkey}_{penetration}",
                         units=f"spike count ({window * 1000:g} ms window)",
                         options=S.RatesOptions(
                             neuroid_coords={"cluster_group": cluster_group.astype(np.int64)}, allow_missing=True,
                             attrs={"name": f"henaff2021_v1_{monkey}_{penetration}", "source_file": str(path),
                                    "citation": HENAFF_CITATION,
                                    "licence": "none stated: use locally, do not redistribute",
                                    "stimuli": "natural frames only (category 1 of 3), both zooms"}))
    manifest = pd.DataFrame(files, columns=["stimulus_id", "filename"])
    exists = manifest["filename"].map(lambda f: Path(f).is_file())
    return Imported(rates, manifest if exists.all() else None)


def read_henaff_v1_rdms(path: str | os.PathLike, metric: str = "correlation", **unused) -> Imported:
    """One V1 RDM per recording (dim ``session``) from a folder of Henaff et al. 2021 ``*_image_sequences.mat``
    files: an RDM dataset whose ``session`` RDMs give a noise ceiling across recordings."""
    from rsa_bridge.neural.rdms import rates_to_rdm

    path = Path(path)
    files = sorted(path.glob("*_image_sequences.mat")) if path.is_dir() else []
    if not files:
        raise RSABridgeError(f"{str(path)!r} is not a folder of *_image_sequences.mat recordings")
    rdms, manifest = [], None
    for file in files:
        imported = read_henaff_v1(file)
        rates = imported.data
        manifest = imported.manifest if manifest is None else manifest
        session = str(S.flat_coords(rates)[S.SESSION].values[0])
        rdm = rates_to_rdm(rates, metric)
        rdms.append(rdm.expand_dims(session=[session]).assign_coords(n_neuroids=("session", [rdm.attrs["n_neuroids"]])))
    ids = [list(r[ROW].values) for r in rdms]
    if any(i != ids[0] for i in ids):
        raise RSABridgeError("the recordings cover different stimuli")
    v1 = xr.concat(rdms, dim="session", combine_attrs="drop")
    v1.attrs = {"region": "V1", "metric": metric, "species": "macaque",
                "description": f"one RDM per recording ({metric}, repeat-averaged spike counts, missing trials excluded)"}
    ds = xr.Dataset({"V1": v1}, attrs={"name": "henaff2021_v1", "title": "Macaque V1, natural video frames, "
                                       f"{len(files)} recordings", "source": str(path), "citation": HENAFF_CITATION,
                                       "licence": "none stated: use locally, do not redistribute"})
    return Imported(validate_rdm_dataset(ds, where=str(path)), manifest)


def manifest_path(out: str | os.PathLike) -> Path:
    """The stimulus manifest written beside an import's ``out`` (``X.nc`` -> ``X_stimuli.csv``)."""
    out = Path(out)
    return out.with_name(out.stem + "_stimuli.csv")


def write_imported(imported: Imported, out: str | os.PathLike, overwrite: bool = False) -> list[Path]:
    """Save an import: the manifest (:func:`manifest_path`, absolute image paths) and the NetCDF (an RDM
    dataset via :func:`rsa_bridge.datasets.save_dataset`, rates via ``save_rates``), published together by
    :func:`rsa_bridge.io.publish_files`: both are checked first (an existing one needs ``overwrite``), and
    on any error neither is touched. Returns the paths written, the manifest first."""
    out = Path(out)
    data = imported.data
    targets = [out] if imported.manifest is None else [manifest_path(out), out]
    with publish_files(targets, overwrite) as temps:
        if imported.manifest is not None:
            temps[0].write_text(frame_to_csv(imported.manifest, index=False))
            data = data.copy()
            data.attrs["stimulus_set"] = targets[0].name
        if isinstance(data, xr.Dataset):
            save_dataset(data, temps[-1])
        else:
            S.save_rates(data, temps[-1])
    return targets
