"""Write layer activations for a stimulus set to disk, batch by batch: one NetCDF file per layer.

:func:`extract_to_disk` (and ``rsa-bridge extract``) runs the forward passes of
:func:`extractors.extract` but never holds a layer's (stimulus x unit) matrix: each batch's rows are
written into one chunked NetCDF-4/HDF5 file per layer (``LAYER.nc``, variable ``activations``
(presentation, neuroid) float32, chunks of (batch, up to ~4 MiB) so a large set is read back a block
at a time; coordinate ``stimulus_id``; the provenance attrs of :func:`extractors.extract` plus how
the images were preprocessed). zarr is not needed. The folder also holds ``layers.csv`` (layer, file,
module_path, time_step, n_units, unit_shape). Per-call layers (``V2@all``) become one file per step.

The output folder follows the project's publishing rule (:mod:`stimuli.atomic`): it is checked before
any work (``overwrite`` replaces only an earlier rsa-bridge output), written into a staging folder and
published with one rename, so a failed or killed run leaves the old result or the new one, never a mix.

**Preprocessing** (:class:`PreprocessOptions`): by default "as the weights say" (the model's own
transform). Any of ``resize``, ``center_crop`` or ``normalize`` switches to a transform built here:
resize the shorter side to ``resize`` px (bilinear, antialiased), centre-crop ``center_crop`` px
(0 = no crop), scale to [0, 1], normalise with ImageNet's mean/std, none, or given ``MEAN,STD``
(one value each, or three each). Options left out take the weights' own value where the weights'
transform states it (torchvision's ``ImageClassification``), else no resize, no crop, ImageNet
normalisation. Every value is recorded in the attrs (``preprocess``, ``preprocess_resize``,
``preprocess_center_crop``, ``preprocess_normalize``).

    >>> import torch, xarray as xr, tempfile, os
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten())
    >>> out = os.path.join(tempfile.mkdtemp(), "acts")
    >>> files = extract_to_disk(net, torch.rand(5, 3, 6, 6), ["0"], out, ExtractOptions(batch_size=2, progress=False))
    >>> da = read_activations(files["0"])
    >>> da.dims, da.shape, da.attrs["layer"]
    (('presentation', 'neuroid'), (5, 32), '0')
"""
from __future__ import annotations

import csv
import math
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import xarray as xr
from torch import nn

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.gram import check_finite_rows
from rsa_bridge.provenance import clean_attrs
from rsa_bridge.time_steps import TIME_STEP

#: ImageNet channel means and standard deviations (torchvision's ImageClassification)
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
#: the variable holding a layer's activations in each file
VARIABLE = "activations"
_CHUNK_BYTES = 4 << 20


@dataclass(frozen=True)
class PreprocessOptions:
    """How images become model inputs (see the module docstring).

    Attributes:
        resize: shorter side in px (>= 1), or None (the weights' value).
        center_crop: crop side in px, 0 for no crop, None (the weights' value).
        normalize: ``"imagenet"``, ``"none"``, ``"MEAN,STD"`` or ``"M1,M2,M3,S1,S2,S3"``; None (the weights' value).
        mode: ``"auto"`` (custom when any option above is set, else the weights' transform), ``"weights"``
            (the weights' own transform; setting an option above is then an error) or ``"custom"``
            (built here, unset options taking the weights' values).
    """

    resize: int | None = None
    center_crop: int | None = None
    normalize: str | None = None
    mode: str = "auto"

    @property
    def custom(self) -> bool:
        """Whether the transform is built here (else the weights' own transform runs unchanged)."""
        return self.mode == "custom" or (self.mode == "auto" and self._options_set())

    def _options_set(self) -> bool:
        return any(v is not None for v in (self.resize, self.center_crop, self.normalize))

    def mean_std(self, weights_mean_std: tuple | None) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        """(mean, std) per channel, or None for no normalisation; RSABridgeError for a bad ``normalize``."""
        text = (self.normalize or "").strip().lower()
        if self.normalize is None:
            return weights_mean_std or IMAGENET
        if text == "imagenet":
            return IMAGENET
        if text == "none":
            return None
        try:
            values = [float(v) for v in text.split(",")]
        except ValueError:
            values = []
        if len(values) not in (2, 6) or not all(math.isfinite(v) for v in values):
            raise RSABridgeError(f"--normalize {self.normalize!r}: give imagenet, none, MEAN,STD or "
                                 "M1,M2,M3,S1,S2,S3 (finite numbers)")
        half = len(values) // 2
        mean, std = values[:half] * (3 // half), values[half:] * (3 // half)
        if min(std) <= 0:
            raise RSABridgeError(f"--normalize {self.normalize!r}: a standard deviation must be > 0")
        return tuple(mean), tuple(std)

    def check(self) -> None:
        """RSABridgeError for a bad mode, a size below its minimum or a bad ``normalize`` (before any work)."""
        if self.mode not in ("auto", "weights", "custom"):
            raise RSABridgeError(f"preprocess mode must be auto, weights or custom, not {self.mode!r}")
        if self.mode == "weights" and self._options_set():
            raise RSABridgeError("--preprocess weights uses the weights' own transform; drop --resize/--center-crop/"
                                 "--normalize, or pass --preprocess custom")
        if self.resize is not None and (not isinstance(self.resize, int) or self.resize < 1):
            raise RSABridgeError(f"resize must be a whole number of pixels >= 1, not {self.resize!r}")
        if self.center_crop is not None and (not isinstance(self.center_crop, int) or self.center_crop < 0):
            raise RSABridgeError(f"center_crop must be a whole number of pixels >= 0 (0 = no crop), "
                                 f"not {self.center_crop!r}")
        self.mean_std(None)


def _weights_values(transform: Any) -> tuple[int | None, int | None, tuple | None]:
    """(resize, crop, (mean, std)) stated by a weights transform such as ImageClassification, else Nones."""
    def first(v: Any) -> int | None:
        return int(v[0]) if isinstance(v, (list, tuple)) and v else (int(v) if isinstance(v, int) else None)

    mean, std = getattr(transform, "mean", None), getattr(transform, "std", None)
    return (first(getattr(transform, "resize_size", None)), first(getattr(transform, "crop_size", None)),
            (tuple(mean), tuple(std)) if mean is not None and std is not None else None)


def build_transform(options: PreprocessOptions, weights_transform: Any) -> tuple[Any, dict[str, Any]]:
    """The transform to use (None = the weights' own) and the attrs that record it."""
    options.check()
    resize, crop, mean_std = _weights_values(weights_transform)
    if not options.custom:
        known = weights_transform is not None and mean_std is not None
        return None, {"preprocess": "weights",
                      "preprocess_resize": resize if known else "unknown",
                      "preprocess_center_crop": crop if known else "unknown",
                      "preprocess_normalize": _norm_text(mean_std) if known else "unknown"}
    from torchvision import transforms as T

    resize = options.resize if options.resize is not None else resize
    crop = options.center_crop if options.center_crop is not None else crop
    norm = options.mean_std(mean_std)
    steps = ([T.Resize(resize, antialias=True)] if resize else []) + ([T.CenterCrop(crop)] if crop else [])
    steps += [T.ToTensor()] + ([T.Normalize(norm[0], norm[1])] if norm else [])
    return T.Compose(steps), {"preprocess": "custom", "preprocess_resize": resize or "none",
                              "preprocess_center_crop": crop or "none", "preprocess_normalize": _norm_text(norm)}


def _norm_text(norm: tuple | None) -> str:
    if norm is None:
        return "none"
    return "mean=" + ",".join(f"{v:g}" for v in norm[0]) + ";std=" + ",".join(f"{v:g}" for v in norm[1])


@dataclass(frozen=True)
class ExtractOptions:
    """Options of :func:`extract_to_disk`.

    Attributes:
        batch_size: stimuli per forward pass (rows written at a time).
        device: ``"cpu"``, ``"cuda"``, ...
        preprocess: :class:`PreprocessOptions` (default: the weights' own transform).
        overwrite: replace an earlier rsa-bridge output folder.
        progress: tqdm bar; None = :mod:`rsa_bridge.progress` decides.
        stimulus_ids: which stimuli (and their order) of a stimulus set; ids of a tensor/list.
    """

    batch_size: int = 32
    device: str = "cpu"
    preprocess: PreprocessOptions = field(default_factory=PreprocessOptions)
    overwrite: bool = False
    progress: bool | None = None
    stimulus_ids: Sequence[str] | None = None


def file_name(layer: str, taken: set[str]) -> str:
    """A file name for ``layer`` (characters other than letters, digits, ``._@-`` become ``_``), unique in ``taken``."""
    stem = re.sub(r"[^A-Za-z0-9._@-]", "_", layer).strip(".") or "layer"
    name, k = f"{stem}.nc", 1
    while name.lower() in taken:
        k += 1
        name = f"{stem}_{k}.nc"
    taken.add(name.lower())
    return name


def _check_disk(folder: Path, need: float, n: int, layers: int) -> None:
    free = shutil.disk_usage(folder).free
    if need > free:
        raise RSABridgeError(f"{folder}: the activations of {layers} layer(s) for {n} stimuli need about "
                             f"{need / 2**30:.2f} GiB but the disk has {free / 2**30:.2f} GiB free; choose an --out "
                             "on a larger disk or fewer layers (--layers)")


def _open(path: Path, n: int, width: int, rows: int, ids: list[str], attrs: dict[str, Any]):
    import h5netcdf
    import h5py

    handle = h5netcdf.File(path, "w")
    handle.dimensions = {"presentation": n, "neuroid": width}
    cols = max(1, min(width, _CHUNK_BYTES // (4 * max(1, rows))))
    var = handle.create_variable(VARIABLE, ("presentation", "neuroid"), dtype="f4", chunks=(min(rows, n), cols))
    sid = handle.create_variable("stimulus_id", ("presentation",), dtype=h5py.string_dtype("utf-8"))
    sid[:] = np.array(ids, dtype=object)
    var.attrs["coordinates"] = "stimulus_id"
    for key, value in clean_attrs(attrs).items():
        var.attrs[key] = value
    return handle, var


def extract_to_disk(model: nn.Module, images: Any, layers: Sequence[str] | str | None, out: str | Path,
                    options: ExtractOptions | None = None) -> dict[str, Path]:
    """Write each layer's activations for ``images`` to ``out/LAYER.nc``, streaming batch by batch.

    Args:
        model, images, layers: as in :func:`extractors.extract` (``V2@all`` gives one file per step).
        out: the output folder (published whole; see the module docstring).
        options: :class:`ExtractOptions`.

    Returns:
        layer name -> path of its file in the published folder (read it with :func:`read_activations`).

    Raises:
        RSABridgeError: as :func:`extractors.extract`; an existing ``out`` without ``overwrite`` (or holding
            files rsa-bridge did not write); custom preprocessing for an already preprocessed tensor;
            too little disk space (all before the first batch); NaN/inf activations (naming the stimuli;
            nothing is published).
    """
    from extractors.extract import layer_attrs, prepare_plan, run_plan
    from extractors.models import model_info
    from stimuli.atomic import check_out, publish_folder

    options = options or ExtractOptions()
    target = check_out(out, options.overwrite, kind="folder", option="--out")
    transform, pre_attrs = build_transform(options.preprocess, model_info(model).transform)
    if transform is not None and isinstance(images, torch.Tensor):
        raise RSABridgeError("--resize/--center-crop/--normalize apply to images, not to an already preprocessed "
                             "tensor; preprocess the tensor yourself or pass image files")
    ids = list(options.stimulus_ids) if options.stimulus_ids is not None else None
    plan = prepare_plan(model, images, layers, options.batch_size, options.device, transform, options.progress, ids)
    n = len(plan.inputs)
    widths = {name: math.prod(plan.unit_shapes[name]) for name, _ in plan.layers}
    parent = Path(target).resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    _check_disk(parent, 4.0 * n * sum(widths.values()), n, len(widths))
    taken: set[str] = set()
    names = {name: file_name(name, taken) for name, _ in plan.layers}
    with publish_folder(target, options.overwrite, info={"command": "extract"}) as stage:
        files = {name: _open(stage / names[name], n, widths[name], min(options.batch_size, n), plan.inputs.ids,
                             {**layer_attrs(plan, name, path), **pre_attrs})
                 for name, path in plan.layers}
        try:
            for start, stop, batch in run_plan(plan):
                for name, tensor in batch.items():
                    check_finite_rows(tensor, plan.inputs.ids, start)  # a NaN file is never published
                    files[name][1][start:stop, :] = tensor.numpy()
        finally:
            for handle, _ in files.values():
                handle.close()
        with open(stage / "layers.csv", "w", newline="", encoding="utf-8") as index:
            writer = csv.writer(index)
            writer.writerow(["layer", "file", "module_path", TIME_STEP, "n_units", "unit_shape"])
            for name, path in plan.layers:
                step = plan.layer_attrs(name, path).get(TIME_STEP, "")
                writer.writerow([name, names[name], path, step, widths[name],
                                 "x".join(str(s) for s in plan.unit_shapes[name])])
    return {name: Path(target) / names[name] for name, _ in plan.layers}


def read_activations(path: str | Path) -> xr.DataArray:
    """One file written by :func:`extract_to_disk` as a loaded (presentation, neuroid) DataArray named after its layer."""
    with xr.open_dataarray(path, engine="h5netcdf") as da:
        return da.load().rename(da.attrs.get("layer", VARIABLE))
