"""rsatoolbox objects both ways: firing rates <-> ``rsatoolbox.data.Dataset``, RDMs <-> ``rsatoolbox.rdm.RDMs``.

rsatoolbox keeps one observation per row (``measurements`` (n_obs, n_channel)), with per-row
``obs_descriptors`` and per-channel ``channel_descriptors``; rsa-bridge's presentations are its
observations and neuroids its channels. A rate array with a ``time_bin`` dim maps to a
``TemporalDataset`` (``time_descriptors['time']`` = bin starts in ms).

Pickle policy: rsatoolbox can save objects as Python pickles (``.pkl``). Loading a pickle runs whatever
code the file names, so files are read as HDF5 only (told apart by their first bytes, not their
suffix); a pickle is refused with a line saying how to convert it, unless the caller passes
``allow_pickle=True`` (``--allow-pickle``), which states that the file is trusted. See
docs/guide/reliability.md.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import xarray as xr

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.hdf5_guard import check_self_contained
from rsa_bridge.neural import schema as S
from rsa_bridge.condensed import check_square
from rsa_bridge.rdm import COL, ROW, rdm_dataarray
from rsa_bridge.value_checks import real_numbers, whole_numbers

#: the first 8 bytes of every HDF5 file (the format signature)
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

#: how to turn a trusted pickle into HDF5, quoted in the refusal
CONVERT_HINT = ("convert it once, in a Python session you trust, to rsatoolbox's HDF5: "
                "rsatoolbox.data.load_dataset('{path}', file_type='pkl').save('{stem}.h5', file_type='hdf5') "
                "(RDMs: rsatoolbox.rdm.load_rdm(...).save(..., file_type='hdf5')); or pass --allow-pickle "
                "(allow_pickle=True) only for a file you trust completely")


def rsatoolbox_file_type(path: str | os.PathLike, *, allow_pickle: bool = False) -> str:
    """``'hdf5'`` or ``'pkl'``: how rsatoolbox should open ``path``, decided by its content.

    A file that does not start with the HDF5 signature is taken to be a pickle; it is refused with
    :class:`RSABridgeError` unless ``allow_pickle`` is true, because loading a pickle executes code.
    """
    path = Path(path)
    if not path.is_file():
        raise RSABridgeError(f"no such file: {str(path)!r}")
    with open(path, "rb") as handle:
        head = handle.read(len(HDF5_SIGNATURE))
    if head == HDF5_SIGNATURE:
        return "hdf5"
    if not allow_pickle:
        looks_pickled = path.suffix.lower() in (".pkl", ".pickle") or head[:1] == b"\x80"  # protocol >= 2
        if not looks_pickled:
            raise RSABridgeError(f"cannot read {str(path)!r} as an rsatoolbox HDF5 file: it does not start with the "
                                 "HDF5 signature (corrupt, truncated or another format); rsa-bridge reads rsatoolbox "
                                 "files as HDF5 only (a pickle needs --allow-pickle)")
        what = "a Python pickle"
        raise RSABridgeError(f"refusing to load {str(path)!r}: it is {what}, and loading a pickle runs any code "
                             f"inside it; " + CONVERT_HINT.format(path=path, stem=path.with_suffix("").as_posix()
                                                                   + ("_hdf5" if path.suffix.lower() == ".h5" else "")))
    return "pkl"


#: rsatoolbox obs_descriptor names that rsa-bridge reads as the stimulus, in order of preference
STIMULUS_DESCRIPTORS = ("stimulus_id", "stimulus", "conds", "condition", "image")


def to_rsatoolbox_dataset(rates: xr.DataArray):
    """An ``rsatoolbox.data.Dataset`` (``TemporalDataset`` with time bins) holding the same rates.

    obs_descriptors: ``stimulus_id``, ``repetition`` (+ other presentation coords); channel_descriptors:
    ``neuroid_id``, ``region``, ``animal``, ``session`` (+ others); descriptors: ``units`` and provenance.
    """
    from rsatoolbox.data import Dataset, TemporalDataset

    S.validate_rates(rates)
    flat = S.flat_coords(rates).transpose(S.PRESENTATION, S.NEUROID, ...)
    obs = {c: _plain(flat[c].values) for c in flat.coords if flat[c].dims == (S.PRESENTATION,)}
    chn = {c: _plain(flat[c].values) for c in flat.coords if flat[c].dims == (S.NEUROID,)}
    desc = {k: v for k, v in flat.attrs.items() if isinstance(v, (str, int, float))}
    if S.TIME_BIN in flat.dims:
        return TemporalDataset(np.asarray(flat.values, dtype=np.float64), descriptors=desc, obs_descriptors=obs,
                               channel_descriptors=chn,
                               time_descriptors={"time": np.asarray(flat[S.TIME_BIN_START].values, dtype=float)})
    return Dataset(np.asarray(flat.values, dtype=np.float64), descriptors=desc, obs_descriptors=obs,
                   channel_descriptors=chn)


def _plain(values) -> np.ndarray:
    values = np.asarray(values)
    return np.asarray([str(v) for v in values]) if values.dtype.kind in "OU" else values


def from_rsatoolbox_dataset(dataset, *, stimulus_descriptor: str | None = None,
                            repetition_descriptor: str | None = None, region: str | None = None,
                            units: str | None = None, allow_missing: bool = False) -> xr.DataArray:
    """Firing rates from an ``rsatoolbox.data.Dataset`` / ``TemporalDataset``.

    Args:
        stimulus_descriptor: the obs_descriptor naming the stimulus (default: the first of
            :data:`STIMULUS_DESCRIPTORS` present).
        repetition_descriptor: the obs_descriptor numbering repetitions (default ``repetition`` if
            present, else repetitions are numbered per stimulus in row order).
        region, units: fill what the dataset's descriptors lack (channel_descriptor ``region``,
            descriptor ``units``).
    """
    measurements = np.asarray(getattr(dataset, "measurements", None))
    if measurements.ndim not in (2, 3):
        raise RSABridgeError("not an rsatoolbox Dataset: measurements must be (n_obs, n_channel[, n_time])")
    obs = dict(dataset.obs_descriptors)
    chn = dict(dataset.channel_descriptors)
    key = stimulus_descriptor or next((d for d in STIMULUS_DESCRIPTORS if d in obs), None)
    if key is None or key not in obs:
        raise RSABridgeError(f"the rsatoolbox Dataset has no stimulus descriptor (looked for "
                             f"{stimulus_descriptor or ', '.join(STIMULUS_DESCRIPTORS)}); it has {', '.join(obs) or 'none'}")
    stim = [str(s) for s in np.asarray(obs.pop(key)).ravel()]
    rep_key = repetition_descriptor or ("repetition" if "repetition" in obs else None)
    if rep_key is not None:
        if rep_key not in obs:
            raise RSABridgeError(f"the rsatoolbox Dataset has no obs_descriptor {rep_key!r}")
        reps = whole_numbers(np.asarray(obs.pop(rep_key)).ravel(), f"obs_descriptor {rep_key!r}")
    else:
        counts: dict[str, int] = {}
        reps = np.zeros(len(stim), dtype=np.int64)
        for k, s in enumerate(stim):
            reps[k] = counts.get(s, 0)
            counts[s] = reps[k] + 1
    n_chan = measurements.shape[1]
    neuroid_ids = chn.pop(S.NEUROID_ID, None)
    if neuroid_ids is None:
        neuroid_ids = [f"channel{k:03d}" for k in range(n_chan)]
    labels = {c: chn.pop(c, None) for c in (S.REGION, S.ANIMAL, S.SESSION)}
    if labels[S.REGION] is None:
        labels[S.REGION] = region
    if labels[S.REGION] is None:
        raise RSABridgeError("the rsatoolbox Dataset has no 'region' channel_descriptor; pass region= (--region)")
    desc = dict(getattr(dataset, "descriptors", {}) or {})
    unit = units or desc.pop("units", None)
    bins = None
    if measurements.ndim == 3:
        times = real_numbers(dataset.time_descriptors.get("time", np.arange(measurements.shape[2])), "time")
        step = np.diff(times).min() if times.size > 1 else np.nan
        bins = [(t, t + step) for t in times]
    attrs = {k: v for k, v in desc.items() if isinstance(v, (str, int, float))}
    attrs["source_format"] = "rsatoolbox"
    return S.make_rates(measurements, stimulus_ids=stim, repetitions=reps, neuroid_ids=neuroid_ids,
                        region=labels[S.REGION], animal=labels[S.ANIMAL], session=labels[S.SESSION], units=unit,
                        options=S.RatesOptions(
                            time_bins=bins,
                            presentation_coords={k: np.asarray(v) for k, v in obs.items() if np.ndim(v) == 1},
                            neuroid_coords={k: np.asarray(v) for k, v in chn.items() if np.ndim(v) == 1},
                            allow_missing=allow_missing, attrs=attrs))


def read_rsatoolbox(path: str | os.PathLike, *, region: str | None = None, units: str | None = None,
                    allow_missing: bool = False, stimulus_descriptor: str | None = None,
                    allow_pickle: bool = False, **unused) -> xr.DataArray:
    """Rates from a Dataset saved by rsatoolbox (``Dataset.save``: HDF5; a ``.pkl`` only with
    ``allow_pickle=True``, which runs the pickle's code — see :func:`rsatoolbox_file_type`)."""
    from rsatoolbox.data import load_dataset

    path = Path(path)
    kind = rsatoolbox_file_type(path, allow_pickle=allow_pickle)
    try:
        check_self_contained(path)  # no external links, external storage or virtual datasets (before rsatoolbox reads)
        dataset = load_dataset(str(path), file_type=kind)
    except RSABridgeError:
        raise
    except Exception as err:  # rsatoolbox raises KeyError/OSError/ValueError/UnpicklingError on bad files
        raise RSABridgeError(f"cannot read {str(path)!r} as an rsatoolbox Dataset ({type(err).__name__}: {err})") from None
    rates = from_rsatoolbox_dataset(dataset, stimulus_descriptor=stimulus_descriptor, region=region, units=units,
                                    allow_missing=allow_missing)
    rates.attrs["source_file"] = str(path)
    return rates


def rdms_to_rsatoolbox(rdms: xr.DataArray, dissimilarity_measure: str | None = None):
    """An ``rsatoolbox.rdm.RDMs`` from an RDM DataArray ``(..., stimulus_row, stimulus_col)``.

    Leading dims are stacked into RDMs; each leading coordinate becomes an rdm_descriptor and the
    stimulus ids the pattern_descriptor ``stimulus_id``.
    """
    from rsatoolbox.rdm import RDMs

    if ROW not in rdms.dims or COL not in rdms.dims:
        raise RSABridgeError("expected an RDM DataArray with dims (..., stimulus_row, stimulus_col)")
    rdms = rdms.transpose(..., ROW, COL)
    lead = [d for d in rdms.dims if d not in (ROW, COL)]
    values = np.asarray(rdms.values, dtype=np.float64).reshape(-1, rdms.sizes[ROW], rdms.sizes[COL])
    rdm_desc = {}
    if lead:
        grids = np.meshgrid(*[np.asarray(rdms[d].values) if d in rdms.coords else np.arange(rdms.sizes[d])
                              for d in lead], indexing="ij")
        rdm_desc = {d: _plain(g.ravel()) for d, g in zip(lead, grids)}
    measure = dissimilarity_measure or str(rdms.attrs.get("metric", "")) or None
    return RDMs(values, dissimilarity_measure=measure, rdm_descriptors=rdm_desc,
                pattern_descriptors={"stimulus_id": [str(s) for s in rdms[ROW].values]})


def rdms_from_rsatoolbox(rdms, *, pattern_descriptor: str | None = None, replicate_descriptor: str | None = None,
                         stimulus_ids: Sequence[str] | None = None, dim: str = "replicate") -> xr.DataArray:
    """An RDM DataArray ``(replicate, stimulus_row, stimulus_col)`` from ``rsatoolbox.rdm.RDMs``.

    Stimulus ids come from ``pattern_descriptor`` (default ``stimulus_id``, else one of
    :data:`STIMULUS_DESCRIPTORS`) or ``stimulus_ids``; rsatoolbox's bare ``index`` is never taken as an id.
    Replicate labels come from ``replicate_descriptor`` (default: rsatoolbox's ``index``). ``dim="layer"``
    names the leading dim ``layer``: model RDMs for :func:`rsa_bridge.app.pipeline.compare_precomputed` (which
    also accepts the ``replicate`` form as it is).

    Example::

        model = rdms_from_rsatoolbox(rsatoolbox_rdms, replicate_descriptor="layer_name", dim="layer")
    """
    matrices = real_numbers(rdms.get_matrices(), "the rsatoolbox RDMs").astype(np.float64, copy=False)
    for k, matrix in enumerate(matrices):  # finite, symmetric per entry (rsatoolbox keeps no diagonal to check)
        check_square(matrix, f"rsatoolbox (RDM {k})")
    patterns = dict(rdms.pattern_descriptors)
    if stimulus_ids is None:
        key = pattern_descriptor or next((d for d in STIMULUS_DESCRIPTORS if d in patterns), None)
        if key is None or key not in patterns:
            raise RSABridgeError("the RDMs carry no stimulus ids (pattern_descriptor 'stimulus_id'); pass "
                                 "pattern_descriptor= or stimulus_ids=")
        stimulus_ids = [str(s) for s in patterns[key]]
    if len(stimulus_ids) != matrices.shape[-1]:
        raise RSABridgeError(f"{len(stimulus_ids)} stimulus ids for RDMs of {matrices.shape[-1]} patterns")
    rep_key = replicate_descriptor or "index"
    if rep_key not in rdms.rdm_descriptors:
        raise RSABridgeError(f"the RDMs have no rdm_descriptor {rep_key!r}; they have {', '.join(rdms.rdm_descriptors)}")
    labels = [str(v) for v in rdms.rdm_descriptors[rep_key]]
    out = xr.concat([rdm_dataarray(m, stimulus_ids) for m in matrices], dim="replicate")
    out = out.assign_coords(replicate=labels)
    for key, vals in rdms.rdm_descriptors.items():
        if key != rep_key and len(vals) == len(labels):
            out = out.assign_coords({key: ("replicate", _plain(vals))})
    out.attrs = {"metric": str(rdms.dissimilarity_measure or "unknown"), "source_format": "rsatoolbox"}
    return out if dim == "replicate" else out.rename(replicate=dim)
