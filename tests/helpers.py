"""Small on-disk fixtures shared by the pipeline and CLI tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from PIL import Image
from scipy.spatial.distance import pdist, squareform

from rsa_bridge.rdm import COL, ROW


def make_stimuli(folder: Path, n: int = 10, seed: int = 0, size: int = 40) -> list[str]:
    """n random RGB PNGs with a manifest; returns the ids (not in sorted order)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    ids = [f"stim_{k:02d}" for k in rng.permutation(n)]
    for sid in ids:
        pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{sid}.png")
    pd.DataFrame({"stimulus_id": ids, "filename": [f"{s}.png" for s in ids],
                  "category": ["ab"[k % 2] for k in range(n)]}).to_csv(folder / "manifest.csv", index=False)
    return ids


def make_rdm_dataset(path: Path, ids: list[str], stimuli_rel: str = "stimuli", seed: int = 1,
                     order: np.ndarray | None = None) -> xr.Dataset:
    """A dataset with area V1 (one RDM) and IT (3 subjects) over ``ids``; ``order`` permutes the file's rows."""
    rng = np.random.default_rng(seed)
    rates = rng.normal(size=(len(ids), 30))
    v1 = squareform(pdist(rates, "correlation"))
    it = np.stack([squareform(pdist(rates + rng.normal(size=rates.shape), "correlation")) for _ in range(3)])
    order = np.arange(len(ids)) if order is None else order
    file_ids = [ids[k] for k in order]
    ds = xr.Dataset(
        {"V1": ((ROW, COL), v1[np.ix_(order, order)], {"metric": "correlation"}),
         "IT": (("subject", ROW, COL), it[:, order][:, :, order], {"metric": "correlation"})},
        coords={ROW: file_ids, COL: file_ids, "subject": ["s1", "s2", "s3"]},
        attrs={"name": "toy", "stimulus_set": stimuli_rel},
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.to_netcdf(path, engine="h5netcdf")
    return ds


def cli_code(argv: list[str]) -> int:
    """The exit code of ``rsa-bridge ARGV``: what ``main`` returns, or the code of the SystemExit argparse raises
    for an option refused while parsing (one line on stderr, exit code 2)."""
    from rsa_bridge.app.cli import main

    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 2
