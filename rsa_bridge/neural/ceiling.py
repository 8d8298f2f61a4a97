"""A noise ceiling for an area with a single RDM: the split-half reliability of that RDM.

Single-animal recordings give one RDM per area, so the Nili et al. (2014) ceiling (which needs several
subjects) does not exist. When the repeat-level responses behind the RDM are known, its reliability
does. Definition (``split-half``):

- ``n_splits`` random splits (seeded), each putting floor(k/2) of a stimulus's k repetitions in half
  A and as many in half B (:func:`rsa_bridge.stats.resample.split_halves`);
- per split: r = sim(RDM of half A, RDM of half B) with the compare method (e.g. Spearman), both RDMs
  with the area's metric, corrected to the full number of repetitions by Spearman-Brown,
  r_SB = 2 r / (1 + r);
- ``R`` = the mean over splits of r_SB (what ``rsa-bridge neural ceiling --method split-half`` prints).

Band: **lower = R**, the similarity expected between the recorded RDM and an independent replicate
recording of the same size (a model as good as a second recording); **upper = sqrt(R)**, the
similarity expected between the recorded RDM and its noise-free version (the classical attenuation
bound of test theory: no model can beat it on average). Brain-Score divides by the reliability R
(our ``lower``); the Nili ceiling of several subjects is the analogue for groups.

Peers: Brain-Score ``InternalConsistency`` (split-half, Spearman-Brown); rsatoolbox has no
single-RDM ceiling.

Where the data come from: the area variable's attribute ``repeat_rates`` names a firing-rate NetCDF
file (:mod:`rsa_bridge.neural.schema`), relative to the RDM dataset's file. Its repeat-averaged RDM
must be the area's RDM (same stimuli). A computed result may be stored with the dataset (attributes
``split_half_method``, ``split_half_metric``, ``split_half_n_splits``, ``split_half_seed``,
``split_half_per_split``) and is reused when those match the request.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import xarray as xr

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.stats.ceiling import NoiseCeiling

#: how many random splits and which seed ``compare`` uses for a single-RDM ceiling
N_SPLITS = 100
SEED = 0
DEFINITION = "split-half"
REPEAT_RATES_ATTR = "repeat_rates"
_CACHE = ("split_half_method", "split_half_metric", "split_half_n_splits", "split_half_seed")


def ceiling_from_reliability(per_split_corrected: np.ndarray, method: str) -> NoiseCeiling:
    """The split-half band from per-split Spearman-Brown corrected reliabilities (n_splits,).

    lower = mean over splits (R), upper = sqrt(R) (NaN when R < 0: no reliable structure).
    """
    values = np.asarray(per_split_corrected, dtype=np.float64).ravel()
    r = float(np.mean(values))
    upper = float(np.sqrt(r)) if r >= 0 else float("nan")
    return NoiseCeiling(r, upper, DEFINITION, method, 1, 1, "r", values, np.sqrt(np.clip(values, 0, None)))


def split_half_ceiling(rates: xr.DataArray, metric: str = "correlation", method: str = "spearman", *,
                       region: str | None = None, n_splits: int = N_SPLITS, seed: int = SEED) -> NoiseCeiling:
    """The single-RDM ceiling of ``rates`` (presentation x neuroid, repeat-level; see the module docstring).

    Example:
        >>> rates = load_rates("rates_210325.nc")                      # doctest: +SKIP
        >>> c = split_half_ceiling(rates, "correlation", "spearman")    # doctest: +SKIP
        >>> c.lower, c.upper                                            # doctest: +SKIP
        (0.7838, 0.8853)
    """
    from rsa_bridge.neural.reliability import rdm_reliability

    rel = rdm_reliability(rates, metric, method=method, region=region, n_splits=n_splits, seed=seed)
    return ceiling_from_reliability(rel.corrected, method)


def repeat_rates_path(dataset: xr.Dataset, area: str) -> Path | None:
    """The repeat-level rate file of ``area`` named by its ``repeat_rates`` attribute, or None.

    For a dataset read from a file (``attrs['path']``) the name is relative to the file's folder and must stay
    inside it (:func:`rsa_bridge.data_paths.inside_folder`); an in-memory dataset's name is taken as given."""
    from rsa_bridge.data_paths import inside_folder, text_attr

    name = text_attr(dataset[area].attrs, REPEAT_RATES_ATTR, f"area {area!r}", "text (a rates file name)")
    if not name:
        return None
    base = dataset.attrs.get("path")
    if isinstance(base, str) and Path(base).is_file():
        where = f"dataset {base!r}, area {area!r}: attribute {REPEAT_RATES_ATTR!r}"
        return inside_folder(Path(base).parent, name, where)
    path = Path(str(name))
    if not path.is_absolute():
        base = dataset.attrs.get("path")
        path = (Path(base).parent if base else Path(".")) / path
    return path


def cached(dataset: xr.Dataset, area: str, method: str, metric: str, n_splits: int, seed: int) -> NoiseCeiling | None:
    """The stored split-half result of ``area`` when it was computed with these settings."""
    attrs = dataset[area].attrs
    if "split_half_per_split" not in attrs:
        return None
    stored = tuple(str(attrs.get(k)) for k in _CACHE)
    if stored != (method, metric, str(n_splits), str(seed)):
        return None
    return ceiling_from_reliability(np.atleast_1d(attrs["split_half_per_split"]), method)


def cache_attrs(ceiling: NoiseCeiling, metric: str, n_splits: int, seed: int) -> dict:
    """Attributes that store a split-half result with an area variable (see :func:`cached`)."""
    return {"split_half_method": ceiling.method, "split_half_metric": metric, "split_half_n_splits": int(n_splits),
            "split_half_seed": int(seed), "split_half_per_split": np.asarray(ceiling.per_group_lower, float)}


def single_rdm_ceiling(dataset: xr.Dataset, area: str, method: str, *, n_splits: int = N_SPLITS,
                       seed: int | None = SEED) -> tuple[NoiseCeiling | None, str]:
    """The split-half ceiling of a single-RDM area, or None with the reason why there is none.

    Returns:
        (ceiling, note): note describes the definition (``split-half reliability, 100 splits, seed 0``)
        or the reason for ``n/a`` (``1 RDM, no repeat-level rates``).
    """
    from rsa_bridge.neural.schema import load_rates, select_region

    metric = str(dataset[area].attrs.get("metric", dataset.attrs.get("metric", "correlation")))
    note = (f"split-half reliability of the RDM ({metric} RDMs, Spearman-Brown, {n_splits} splits, "
            f"seed {'none (fresh entropy)' if seed is None else seed})")
    stored = cached(dataset, area, method, metric, n_splits, seed) if seed is not None else None
    if stored is not None:
        source = dataset[area].attrs.get("split_half_source")  # e.g. compare --responses FILE
        return stored, f"{note[:-1]}; rates: {source})" if source else note
    path = repeat_rates_path(dataset, area)
    if path is None:
        return None, "1 RDM, no repeat-level rates"
    if not path.is_file():
        raise RSABridgeError(f"area {area!r} names repeat-level rates {str(path)!r} that do not exist; fix the "
                             f"{REPEAT_RATES_ATTR!r} attribute or remove it")
    rates = load_rates(path)
    region = dataset[area].attrs.get("region")
    if region is not None:
        try:
            rates = select_region(rates, str(region))
        except RSABridgeError:
            pass  # the rate file may label its neuroids otherwise; then all of them make the RDM
    ids = {str(s) for s in rates["stimulus_id"].values}
    wanted = {str(s) for s in dataset["stimulus_row"].values}
    if ids != wanted:
        raise RSABridgeError(f"the repeat-level rates of area {area!r} ({str(path)!r}) cover other stimuli than its "
                             f"RDM ({len(ids & wanted)} of {len(wanted)} shared); they must be the same stimuli")
    return split_half_ceiling(rates, metric, method, n_splits=n_splits, seed=seed), note


def with_repeat_rates(dataset: xr.Dataset, area: str, rates_file: str | os.PathLike, method: str = "spearman",
                      n_splits: int = N_SPLITS, seed: int = SEED, store: bool = True) -> xr.Dataset:
    """A copy of ``dataset`` whose ``area`` names its repeat-level rates (and stores the split-half result).

    ``rates_file`` is written as given (make it relative to where the dataset file will live).
    """
    out = dataset.copy()
    out[area] = out[area].copy()
    out[area].attrs[REPEAT_RATES_ATTR] = str(rates_file)
    if store:
        ceiling, _ = single_rdm_ceiling(out, area, method, n_splits=n_splits, seed=seed)
        metric = str(out[area].attrs.get("metric", "correlation"))
        out[area].attrs.update(cache_attrs(ceiling, metric, n_splits, seed))
    return out
