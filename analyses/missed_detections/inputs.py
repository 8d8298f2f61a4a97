"""The inputs of ``rsa-bridge missed-detections``: a folder of frames and the boxes CSV; the output table."""
from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr

from rsa_bridge.errors import RSABridgeError, preview
from stimuli import StimulusError
from stimuli.stimulus_set import IMAGE_SUFFIXES, read_image


class FrameFolder(Sequence):
    """The images of a folder in file-name order, loaded on indexing as (3, H, W) floats in [0, 1]."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise RSABridgeError(f"--video {str(folder)!r} is not a folder; pass a folder of frame images")
        self.paths = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.paths:
            raise RSABridgeError(f"--video {str(folder)!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, k):  # type: ignore[override]
        try:
            pixels = np.asarray(read_image(self.paths[k]), dtype=np.float32) / 255.0
        except StimulusError as err:
            raise RSABridgeError(f"frame: {err}") from None
        return torch.from_numpy(pixels).permute(2, 0, 1).contiguous()

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.paths]


def read_boxes(path: str | Path, frames: FrameFolder, categories: list[str] | None) -> pd.DataFrame:
    """boxes.csv -> table with 0-based frame positions and integer labels.

    ``frame`` may be a 0-based position, a file name or a file stem; ``label`` an integer class
    index or (with pretrained weights) a category name.
    """
    try:
        table = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise RSABridgeError(f"cannot read --boxes {str(path)!r} as CSV ({err})") from None
    from analyses.missed_detections.frames import BOX_COLUMNS

    missing = [c for c in BOX_COLUMNS if c not in table.columns]
    if missing:
        raise RSABridgeError(f"--boxes {str(path)!r} lacks columns {preview(missing)}; "
                             f"it needs {', '.join(BOX_COLUMNS)}")
    table["frame"] = _frame_positions(table["frame"], frames)
    table["label"] = _label_indices(table["label"], categories)
    return table


def _frame_positions(column: pd.Series, frames: FrameFolder) -> pd.Series:
    numeric = pd.to_numeric(column, errors="coerce")
    if numeric.notna().all() and (numeric == numeric.round()).all():
        return numeric.astype(np.int64)
    lookup = {**{p.stem: i for i, p in enumerate(frames.paths)}, **{n: i for i, n in enumerate(frames.names)}}
    unknown = sorted({str(v) for v in column if str(v) not in lookup})
    if unknown:
        raise RSABridgeError(f"boxes name frames {preview(unknown)} that are not files of the video folder; "
                             "use 0-based frame numbers or the frame files' names")
    return column.astype(str).map(lookup).astype(np.int64)


def _label_indices(column: pd.Series, categories: list[str] | None) -> pd.Series:
    numeric = pd.to_numeric(column, errors="coerce")
    if numeric.notna().all():
        return numeric.astype(np.int64)
    if categories is None:
        raise RSABridgeError("labels must be integer class indices for this detector and weights "
                             f"(got {preview(sorted({str(v) for v in column[numeric.isna()]}))})")
    lookup = {name: i for i, name in enumerate(categories) if name and name != "N/A"}
    unknown = sorted({str(v) for v in column if str(v) not in lookup and pd.isna(pd.to_numeric(v, errors="coerce"))})
    if unknown:
        raise RSABridgeError(f"labels {preview(unknown)} are not categories of the detector "
                             f"(e.g. {preview(list(lookup)[:6])})")
    return column.map(lambda v: lookup.get(str(v), v)).astype(np.int64)


def frame_table(ds: xr.Dataset) -> pd.DataFrame:
    """One row per present (frame, object): every scalar variable plus the boxes as x1..y2 columns."""
    scalars = [k for k, v in ds.data_vars.items() if v.dims == ("frame", "object")]
    table = ds[scalars].to_dataframe().reset_index()
    for var, prefix in (("gt_box", "gt"), ("best_anchor_box", "anchor"), ("detection_box", "det")):
        values = ds[var].transpose("frame", "object", "coord").values.reshape(-1, 4)
        for c, name in enumerate(ds["coord"].values):
            table[f"{prefix}_{name}"] = values[:, c]
    return table[table["present"].astype(bool)].reset_index(drop=True)


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name))[:80] or "object"
