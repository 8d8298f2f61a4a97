"""Rebuild the neural data that issue 3 ships in rsa_bridge/data/ from ../shared/data (run by hand, not in CI).

    python scripts/build_neural_data.py [--shared ../shared/data] [--only cowley_sessions|cowley_rates]

- ``cowley_sessions``: the V4 RDMs of Cowley et al. 2023 sessions 190923, 201025, 210225 and 210224
  (1 - Pearson r across neurons of the repeat-averaged spike counts, as for 210325) with their images.
  RDMs are stored as **float32**, zlib-compressed: a 1200 x 1200 float64 RDM is 11.5 MB, float32 + zlib
  4.5 MB. The rounding (relative 6e-8) is far below the sampling error of a correlation over 33-89
  neurons; the builder prints the largest change of a Spearman comparison it causes.
- ``cowley_rates``: the repeat-level spike counts of session 210325 (50 neurons x 4840 presentations of 640
  images, 6-10 repeats) as a firing-rate NetCDF, **float32** (spike counts are integers <= 20, so float32
  is exact), zlib-compressed.

Never ships the Henaff et al. 2021 V1 data (no licence) or the Algonauts/Net2Brain fMRI RDMs.
tests/test_neural_shipped.py checks the shipped files against a recomputation from ../shared.
"""
from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_shipped_data import cowley_rdm_dataset  # noqa: E402  (the same RDM definition as session 210325)

from rsa_bridge.compare import compare_vectors  # noqa: E402
from rsa_bridge.datasets import DATA_DIR, validate_rdm_dataset  # noqa: E402
from rsa_bridge.neural.importers import from_array  # noqa: E402
from rsa_bridge.neural.schema import RatesOptions, save_rates, write_netcdf_encoded  # noqa: E402
from rsa_bridge.rdm import upper_triangle  # noqa: E402

#: session -> animal (SOURCE.md of ../shared/data/cowley2023_v4)
COWLEY_EXTRA_SESSIONS = {"190923": "WE", "201025": "PE", "210225": "PE", "210224": "PE"}
COMPRESS = {"zlib": True, "complevel": 9, "shuffle": True}


def save_float32_rdms(ds: xr.Dataset, path: Path) -> float:
    """Write an RDM dataset as float32 + zlib; returns the largest |Spearman change| vs float64 over a few
    random model vectors (how lossless the rounding is for comparisons)."""
    validate_rdm_dataset(ds, where=str(path))
    small = ds.copy()
    worst = 0.0
    rng = np.random.default_rng(0)
    for name in small.data_vars:
        exact = upper_triangle(ds[name].values)
        rounded = upper_triangle(ds[name].values.astype(np.float32).astype(np.float64))
        probes = np.vstack([exact + rng.normal(scale=exact.std(), size=exact.size) for _ in range(3)])
        change = compare_vectors(probes, exact, "spearman") - compare_vectors(probes, rounded, "spearman")
        worst = max(worst, float(np.abs(change).max()))
        small[name] = small[name].astype(np.float32)
    write_netcdf_encoded(small, path, {name: COMPRESS for name in small.data_vars})
    return worst


def copy_images(archive_path: Path, n: int, session: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with zipfile.ZipFile(archive_path) as archive:
        names = archive.namelist()
        for j in range(n):
            name = f"image{j + 1:04d}.jpg"
            member = next(m for m in names if m.endswith("/" + name) or m == name)
            (out / name).write_bytes(archive.read(member))
            rows.append({"stimulus_id": f"image{j + 1:04d}", "filename": name, "session": session})
    pd.DataFrame(rows).to_csv(out / "manifest.csv", index=False)


def build_cowley_sessions(shared: Path) -> None:
    src = shared / "cowley2023_v4"
    out = DATA_DIR / "cowley2023_v4"
    for session, animal in COWLEY_EXTRA_SESSIONS.items():
        rates = np.load(src / "responses_repeat_averaged" / f"responses_{session}.npy")
        ds = cowley_rdm_dataset(rates, session)
        ds["V4"].attrs["animal"] = animal
        ds["V4"].attrs["storage"] = "float32 (rounded from float64; relative error <= 6e-8)"
        worst = save_float32_rdms(ds, out / f"rdm_{session}.nc")
        copy_images(src / "images" / f"images_{session}.zip", rates.shape[1], session, out / f"stimuli_{session}")
        print(f"session {session}: {rates.shape[0]} neurons x {rates.shape[1]} images; float32 rounding changes "
              f"a Spearman comparison by at most {worst:.1e}")


def build_cowley_rates(shared: Path) -> None:
    raw = np.load(shared / "cowley2023_v4" / "responses_raw" / "responses_210325.npy")
    rates = from_array(raw, stimulus_ids="image{n:04d}", region="V4", animal="PE", session="210325",
                       neuroid_ids="210325_n{i:03d}", units="spike count (100 ms bin)",
                       options=RatesOptions(attrs={
                           "name": "cowley2023_v4_210325_rates",
                           "source": "https://github.com/cowleygroup/V4_compact_models (commit 64abd2e5), "
                                     "responses_raw/responses_210325.npy",
                           "citation": "Cowley BR, Stan PL, Pillow JW, Smith MA (2023) Compact deep neural network "
                                       "models of visual cortex. bioRxiv 2023.11",
                           "licence": "GPL-3.0 (see LICENSE in this folder)", "stimulus_set": "stimuli_210325",
                           "storage": "float32 (spike counts are integers, so exact)"}))
    assert np.array_equal(rates.values.astype(np.float32).astype(np.float64), rates.values)
    save_rates(rates.astype(np.float32).assign_attrs(rates.attrs), DATA_DIR / "cowley2023_v4" / "rates_210325.nc")
    print(f"rates 210325: {rates.sizes['neuroid']} neuroids x {rates.sizes['presentation']} presentations")
    from build_shipped_data import add_repeat_rates  # this folder is on sys.path when run as a script

    add_repeat_rates(DATA_DIR / "cowley2023_v4" / "rdm_210325.nc")  # the V4 RDM names these rates (its ceiling)


BUILDERS = {"cowley_sessions": build_cowley_sessions, "cowley_rates": build_cowley_rates}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--only", choices=sorted(BUILDERS), action="append")
    args = parser.parse_args()
    for name in args.only or BUILDERS:
        BUILDERS[name](args.shared)


if __name__ == "__main__":
    main()
