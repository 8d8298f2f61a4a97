"""Seeded generated stimuli and synthetic neural RDMs for end-to-end ``compare`` runs at 5,000-22,000 stimuli.

Used by ``benchmarks/bench_large_compare.py``; nothing here is a recording. What is built, in a cache
folder outside the repository (default ``$RSA_BRIDGE_BENCH_DATA`` or ``/tmp/rsa_bridge_large``):

- ``stimuli/``: N PNG images of ``size`` x ``size`` RGB pixels and ``manifest.csv`` (``stimulus_id``,
  ``filename``), the format ``rsa-bridge stimuli`` writes and ``compare --stimuli`` reads. Image i is
  drawn from its own stream ``default_rng(SeedSequence(seed, spawn_key=(i,)))``: an 8-number latent
  z_i sets a background colour, an oriented sinusoidal grating (orientation, spatial frequency,
  contrast), a Gaussian blob (position, width, colour) and a smooth noise texture (a 6 x 6 noise
  field upsampled bicubically). The same seed gives the same bytes whatever N.
- ``neural.nc``: an RDM dataset (:mod:`rsa_bridge.datasets` schema) with one area ``V4`` of
  ``n_rdms`` RDMs (dim ``session``) over the same ``stimulus_id`` s. Its "neurons" are a seeded
  random projection of the images' pixel statistics (each image averaged into 8 x 8 x 3 blocks,
  standardised over stimuli), rectified, plus Gaussian noise (``noise`` x the signal's SD, a fresh
  draw per RDM); the RDM is 1 - Pearson r across neurons (float32). So model and "brain" share the
  images' structure and similarities are not ~0. The file's attrs say ``synthetic = "yes"`` and how
  it was made.

Cost: about 1 ms per image (numpy + PIL, one process) and one N x N GEMM for the RDMs.

    python benchmarks/large_data.py --n 5000      # builds (or reuses) the folder, prints its path
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

#: bump when the images or the neural model change (part of the folder name)
VERSION = 1
NEURONS = 60
POOL = 8


def default_root() -> Path:
    return Path(os.environ.get("RSA_BRIDGE_BENCH_DATA", "/tmp/rsa_bridge_large"))


def image(index: int, seed: int, size: int = 64) -> np.ndarray:
    """Image ``index`` of the set: (size, size, 3) uint8, from its own seeded stream."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))
    z = rng.normal(size=8)
    y, x = np.mgrid[0:size, 0:size] / size
    base = 0.5 + 0.15 * np.tanh(z[:3])                                  # background colour
    theta, freq = np.pi * (0.5 + 0.5 * np.tanh(z[3])), 2 + 6 / (1 + np.exp(-z[4]))
    grating = np.sin(2 * np.pi * freq * (x * np.cos(theta) + y * np.sin(theta)) + rng.uniform(0, 2 * np.pi))
    contrast = 0.25 / (1 + np.exp(-z[5]))
    cx, cy = rng.uniform(0.2, 0.8, size=2)
    width = 0.08 + 0.12 / (1 + np.exp(-z[6]))
    blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * width ** 2))
    blob_colour = 0.35 * np.tanh(z[7] + rng.normal(size=3))
    noise = np.asarray(Image.fromarray(rng.normal(size=(6, 6)).astype(np.float32), mode="F")
                       .resize((size, size), Image.BICUBIC))
    img = (base[None, None, :] + contrast * grating[..., None] + blob[..., None] * blob_colour[None, None, :]
           + 0.06 * noise[..., None])
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def pixel_statistics(img: np.ndarray) -> np.ndarray:
    """The image averaged in POOL x POOL blocks: (POOL * POOL * 3,) float64."""
    s = img.shape[0] // POOL
    return img[: s * POOL, : s * POOL].reshape(POOL, s, POOL, s, 3).mean(axis=(1, 3)).ravel() / 255.0


def write_stimuli(folder: Path, n: int, seed: int, size: int) -> np.ndarray:
    """Write the PNGs and manifest.csv into ``folder``; return the (n, features) pixel statistics."""
    folder.mkdir(parents=True, exist_ok=True)
    stats, rows = np.empty((n, POOL * POOL * 3)), []
    for i in range(n):
        img = image(i, seed, size)
        name = f"gen_{i:05d}.png"
        Image.fromarray(img).save(folder / name, optimize=False)
        stats[i] = pixel_statistics(img)
        rows.append((stimulus_id(i), name))
    pd.DataFrame(rows, columns=["stimulus_id", "filename"]).to_csv(folder / "manifest.csv", index=False)
    return stats


def stimulus_id(index: int) -> str:
    return f"gen{index:05d}"


def neural_responses(stats: np.ndarray, seed: int, n_rdms: int = 1, noise: float = 1.0) -> list[np.ndarray]:
    """Per RDM, the (n, NEURONS) synthetic responses: rectified random projections of ``stats`` plus noise."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(10 ** 6,)))
    z = (stats - stats.mean(0)) / (stats.std(0) + 1e-12)
    weights = rng.normal(size=(z.shape[1], NEURONS)) / np.sqrt(z.shape[1])
    signal = np.maximum(z @ weights, 0)
    return [signal + noise * signal.std() * rng.normal(size=signal.shape) for _ in range(n_rdms)]


def correlation_rdm(responses: np.ndarray) -> np.ndarray:
    """(n, n) float32 1 - Pearson r between rows, exactly symmetric, zero diagonal (one GEMM)."""
    r = responses - responses.mean(1, keepdims=True)
    r /= np.linalg.norm(r, axis=1, keepdims=True)
    d = r @ r.T                                   # A A^T runs as syrk: exactly symmetric
    np.subtract(1.0, d, out=d)
    np.fill_diagonal(d, 0.0)
    return d.astype(np.float32)


def neural_rdms(stats: np.ndarray, seed: int, n_rdms: int = 1, noise: float = 1.0) -> np.ndarray:
    """(n_rdms, n, n) float32 correlation-distance RDMs of synthetic neurons driven by ``stats``."""
    out = np.empty((n_rdms, len(stats), len(stats)), dtype=np.float32)
    for k, responses in enumerate(neural_responses(stats, seed, n_rdms, noise)):
        out[k] = correlation_rdm(responses)
    return out


def build(n: int, seed: int = 0, size: int = 64, n_rdms: int = 1, noise: float = 1.0,
          root: Path | None = None) -> Path:
    """Build (or reuse) the folder for N stimuli; returns it (``stimuli/``, ``neural.nc``, ``params.json``)."""
    import xarray as xr

    root = default_root() if root is None else Path(root)
    params = {"version": VERSION, "n": n, "seed": seed, "size": size, "n_rdms": n_rdms, "noise": noise}
    folder = root / f"n{n}_seed{seed}_{size}px_r{n_rdms}_noise{noise:g}_v{VERSION}"
    if (folder / "params.json").is_file() and json.loads((folder / "params.json").read_text()) == params:
        return folder
    if folder.exists():
        shutil.rmtree(folder)
    stats = write_stimuli(folder / "stimuli", n, seed, size)
    rdms = neural_rdms(stats, seed, n_rdms, noise)
    ids = [stimulus_id(i) for i in range(n)]
    var = xr.DataArray(rdms, dims=("session", "stimulus_row", "stimulus_col"),
                       coords={"session": [f"synthetic{k}" for k in range(n_rdms)],
                               "stimulus_row": ids, "stimulus_col": ids},
                       attrs={"region": "V4", "metric": "correlation", "species": "none (synthetic)",
                              "description": f"synthetic: {NEURONS} rectified random projections of 8x8x3 pixel "
                                             f"block means plus Gaussian noise ({noise:g} x signal SD) per RDM"})
    ds = xr.Dataset({"V4": var}, attrs={
        "name": f"synthetic_large_n{n}", "title": f"synthetic V4 RDMs over {n} generated images",
        "synthetic": "yes", "source": f"benchmarks/large_data.py (version {VERSION}), seed {seed}; not a recording",
        "citation": "none (synthetic)", "licence": "CC0-1.0", "stimulus_set": "stimuli",
        "generator_params": json.dumps(params)})
    from rsa_bridge.io import write_netcdf

    write_netcdf(ds, folder / "neural.nc")
    (folder / "params.json").write_text(json.dumps(params))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--rdms", type=int, default=1)
    parser.add_argument("--root", type=Path, default=None)
    args = parser.parse_args()
    print(build(args.n, args.seed, args.size, args.rdms, root=args.root))


if __name__ == "__main__":
    main()
