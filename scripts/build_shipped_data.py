"""Rebuild the datasets that ship in rsa_bridge/data/ from ../shared/data (run by hand, not in CI).

    python scripts/build_shipped_data.py [--shared ../shared/data]

Each builder reads the original files named in the dataset's SOURCE.md, computes what rsa-bridge
ships (RDMs as NetCDF, images + manifest.csv) and writes it atomically. tests/test_shipped_data.py
checks the shipped files against a recomputation from ../shared when it is present.
"""
from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.io as sio
import xarray as xr
from scipy.spatial.distance import squareform

from rsa_bridge.datasets import DATA_DIR, save_dataset
from rsa_bridge.rdm import COL, ROW, compute_rdm

COWLEY_SESSIONS = ("210325",)
COWLEY_CITATION = (
    "Cowley BR, Stan PL, Pillow JW, Smith MA (2023) Compact deep neural network models of visual cortex. "
    "bioRxiv 2023.11"
)
KRIEGESKORTE_CITATION = (
    "Kriegeskorte N, Mur M, Ruff DA, Kiani R, Bodurka J, Esteky H, Tanaka K, Bandettini PA (2008) Matching "
    "categorical object representations in inferior temporal cortex of man and monkey. Neuron 60:1126-1141; "
    "Kiani R, Esteky H, Mirpour K, Tanaka K (2007) J Neurophysiol 97:4296-4309"
)


def cowley_rdm_dataset(rates: np.ndarray, session: str) -> xr.Dataset:
    """V4 RDM (1 - Pearson r across neurons) from repeat-averaged rates (neurons, images)."""
    ids = [f"image{j + 1:04d}" for j in range(rates.shape[1])]
    rdm = compute_rdm(rates.T, "correlation", stimulus_ids=ids)
    rdm.attrs = {
        "region": "V4",
        "metric": "correlation",
        "species": "macaque",
        "n_neurons": int(rates.shape[0]),
        "description": f"1 - Pearson r across {rates.shape[0]} V4 neurons of repeat-averaged spike counts "
        "(100 ms bin)",
    }
    return xr.Dataset(
        {"V4": rdm},
        attrs={
            "name": f"cowley2023_v4_{session}",
            "title": f"Macaque V4 RDM, Cowley et al. 2023, session {session}",
            "source": "https://github.com/cowleygroup/V4_compact_models (commit 64abd2e5)",
            "citation": COWLEY_CITATION,
            "licence": "GPL-3.0 (see LICENSE in this folder)",
            "stimulus_set": f"stimuli_{session}",
        },
    )


def add_repeat_rates(path: Path, area: str = "V4", rates_name: str = "rates_210325.nc") -> None:
    """Name the repeat-level rates next to the RDM file and store the split-half ceiling (spearman, 100 splits,
    seed 0) that ``compare`` shows for this single-RDM area (see rsa_bridge/neural/ceiling.py)."""
    from rsa_bridge.neural.ceiling import with_repeat_rates

    if not (path.parent / rates_name).is_file():
        return
    with xr.open_dataset(path, engine="h5netcdf") as handle:
        ds = handle.load()
    ds.attrs["path"] = str(path)  # where relative names are resolved; not written
    ds = with_repeat_rates(ds, area, rates_name)
    del ds.attrs["path"]
    save_dataset(ds, path)


def build_cowley(shared: Path) -> None:
    src = shared / "cowley2023_v4"
    out = DATA_DIR / "cowley2023_v4"
    for session in COWLEY_SESSIONS:
        rates = np.load(src / "responses_repeat_averaged" / f"responses_{session}.npy")
        save_dataset(cowley_rdm_dataset(rates, session), out / f"rdm_{session}.nc")
        add_repeat_rates(out / f"rdm_{session}.nc", rates_name=f"rates_{session}.nc")
        stim_dir = out / f"stimuli_{session}"
        stim_dir.mkdir(parents=True, exist_ok=True)
        rows = []
        with zipfile.ZipFile(src / "images" / f"images_{session}.zip") as archive:
            for j in range(rates.shape[1]):
                name = f"image{j + 1:04d}.jpg"
                member = next(m for m in archive.namelist() if m.endswith("/" + name) or m == name)
                (stim_dir / name).write_bytes(archive.read(member))
                rows.append({"stimulus_id": f"image{j + 1:04d}", "filename": name, "session": session})
        pd.DataFrame(rows).to_csv(stim_dir / "manifest.csv", index=False)


def kriegeskorte_rdm_dataset(shared: Path) -> xr.Dataset:
    """Monkey IT (1 RDM) and human IT (4 subjects x 2 sessions) RDMs over the 92 images."""
    src = shared / "kriegeskorte2008_92images"
    manifest = pd.read_csv(src / "stimuli" / "manifest.csv")
    ids = manifest.sort_values("index_0based")["stimulus_id"].tolist()
    supp = sio.loadmat(src / "Kriegeskorte_Neuron2008_supplementalData.mat")
    fig1 = supp["RDMs_mIT_hIT_fig1"][0]
    mit = next(r for r in fig1 if "mIT" in str(r["name"][0]))
    mit_rdm = squareform(np.asarray(mit["RDM"], dtype=np.float64).ravel())
    brain = sio.loadmat(src / "92_brainRDMs.mat")["RDMs"]
    subjects = [str(brain[0, s, 0]["name"][0]).split("|")[1].strip() for s in range(brain.shape[1])]
    hit = np.stack(
        [np.stack([np.asarray(brain[0, s, t]["RDM"], dtype=np.float64) for t in range(brain.shape[2])])
         for s in range(brain.shape[1])]
    )
    coords = {ROW: ids, COL: ids}
    it = xr.DataArray(mit_rdm, dims=(ROW, COL), coords=coords, attrs={
        "region": "IT", "metric": "correlation", "species": "macaque", "n_neurons": 674,
        "description": "monkey IT, 674 neurons (Kiani et al. 2007), 1 - Pearson r",
    })
    hit_da = xr.DataArray(
        hit, dims=("subject", "session", ROW, COL),
        coords={**coords, "subject": subjects, "session": [1, 2]},
        attrs={"region": "IT", "metric": "correlation", "species": "human",
               "description": "human IT fMRI (Kriegeskorte et al. 2008), 1 - Pearson r across hIT voxels, "
               "4 subjects x 2 sessions"},
    )
    return xr.Dataset(
        {"IT": it, "hIT": hit_da},
        attrs={
            "name": "kriegeskorte2008_92images",
            "title": "92 object images: monkey IT and human IT RDMs",
            "source": "https://github.com/rsagroup/rsatoolbox demos/92imageData (commit 44ac7ca0)",
            "citation": KRIEGESKORTE_CITATION,
            "licence": "MIT (rsatoolbox; see LICENSE); image copyright not stated by the source",
            "stimulus_set": "stimuli",
        },
    )


def build_kriegeskorte(shared: Path) -> None:
    src = shared / "kriegeskorte2008_92images"
    out = DATA_DIR / "kriegeskorte2008_92images"
    save_dataset(kriegeskorte_rdm_dataset(shared), out / "rdms_92images.nc")
    stim_dir = out / "stimuli"
    stim_dir.mkdir(parents=True, exist_ok=True)
    manifest = pd.read_csv(src / "stimuli" / "manifest.csv")
    for rel in manifest["filename"]:
        (stim_dir / Path(rel).name).write_bytes((src / rel).read_bytes())
    manifest["filename"] = [Path(rel).name for rel in manifest["filename"]]
    manifest.to_csv(stim_dir / "manifest.csv", index=False)


BUILDERS = {"cowley2023_v4": build_cowley, "kriegeskorte2008_92images": build_kriegeskorte}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--only", choices=sorted(BUILDERS), action="append")
    args = parser.parse_args()
    for name in args.only or BUILDERS:
        BUILDERS[name](args.shared)
        print(f"built {name}")


if __name__ == "__main__":
    main()
