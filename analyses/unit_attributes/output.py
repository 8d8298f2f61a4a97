"""Tables, the layer-profile figure and atomic file output of a unit-attributes Dataset."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from rsa_bridge.figures import save_figure
from rsa_bridge.io import staged_outputs, staged_paths
from stimuli.csv_cells import frame_to_csv

#: files written by :func:`write_outputs`, in this order
OUTPUT_FILES = ("units.nc", "layers.csv", "units.csv", "profile.png", "profile.pdf")
_LAYER_COLUMNS = ("n_units", "divergence_mean", "divergence_median", "divergence_max", "prime_divergence_mean",
                  "prime_divergence_null", "prime_divergence_null_std", "prime_divergence_excess",
                  "visualness", "visualness_std", "visualness_balanced", "chance")


def layer_table(ds: xr.Dataset) -> pd.DataFrame:
    """One row per layer: module path, units, divergence summary, top unit, visualness."""
    rows = []
    for i, layer in enumerate(ds["layer"].values):
        row = {"layer": str(layer), "module_path": str(ds["module_path"].values[i]),
               "unit_shape": str(ds["unit_shape"].values[i])}
        for name in _LAYER_COLUMNS:
            value = ds[name].values[i]
            row[name] = int(value) if name == "n_units" else float(value)
        row["top_unit"] = int(ds["prime_unit"].values[i, 0])
        row["top_divergence"] = float(ds["prime_divergence"].values[i, 0])
        rows.append(row)
    return pd.DataFrame(rows)


def unit_table(ds: xr.Dataset) -> pd.DataFrame:
    """One row per (layer, unit) that exists: divergence, rank, is_prime, mean activations."""
    frames = []
    for i, layer in enumerate(ds["layer"].values):
        n = int(ds["n_units"].values[i])
        frames.append(pd.DataFrame({
            "layer": str(layer), "unit": np.arange(n),
            "divergence": ds["divergence"].values[i, :n], "rank": ds["rank"].values[i, :n],
            "is_prime": ds["is_prime"].values[i, :n].astype(bool),
            "mean_positive": ds["mean_positive"].values[i, :n], "mean_negative": ds["mean_negative"].values[i, :n],
        }))
    return pd.concat(frames, ignore_index=True)


def format_table(ds: xr.Dataset) -> str:
    """The per-layer table printed by ``rsa-bridge units``, with a header and the perceptual depth."""
    a = ds.attrs
    k = a.get("option_k")
    head = (f"{a.get('model', 'model')} (weights {a.get('weights', '?')}): {a.get('positive', 'positives')} "
            f"(n={a.get('n_positive')}) vs {a.get('negative', 'negatives')} (n={a.get('n_negative')}); "
            f"KL in nats, {a.get('option_bins')} bins, {a.get('option_pooling')} pooling, k={k}, "
            f"{a.get('option_classifier')} {a.get('option_folds')}-fold")
    t = layer_table(ds)
    lines = [head, f"{'layer':<12}{'units':>7}{'KL mean':>10}{'KL max':>9}{f'prime({k})':>11}{'null':>8}"
                   f"{'excess':>8}{'top unit':>10}{'visualness':>15}{'balanced':>10}"]
    for _, r in t.iterrows():
        lines.append(f"{r.layer:<12}{r.n_units:>7}{r.divergence_mean:>10.4f}{r.divergence_max:>9.4f}"
                     f"{r.prime_divergence_mean:>11.4f}{r.prime_divergence_null:>8.4f}"
                     f"{r.prime_divergence_excess:>8.4f}{r.top_unit:>10}"
                     f"{r.visualness:>9.3f}±{r.visualness_std:<5.3f}{r.visualness_balanced:>10.3f}")
    lines.append(f"null: prime-unit KL with shuffled labels ({a.get('option_permutations')} permutations); "
                 f"chance (larger set): {t['chance'].iloc[0]:.3f}")
    lines.append(f"perceptual depth: {a.get('perceptual_depth')} ({a.get('perceptual_depth_definition')}); "
                 f"most visual layer: {a.get('most_visual_layer')}")
    return "\n".join(lines)


def profile_figure(ds: xr.Dataset):
    """Two panels over layers: divergence (mean of all units, mean of prime units) and visualness.

    Returns a matplotlib ``Figure`` (no pyplot state).
    """
    from matplotlib.figure import Figure

    t = layer_table(ds)
    x = np.arange(len(t))
    fig = Figure(figsize=(7.1, 2.8), constrained_layout=True)
    ax1, ax2 = fig.subplots(1, 2)
    k = ds.attrs.get("option_k")
    ax1.plot(x, t["prime_divergence_mean"], marker="o", color="#0072B2", label=f"prime units (top {k})")
    if t["prime_divergence_null"].notna().any():
        null, spread = t["prime_divergence_null"], t["prime_divergence_null_std"]
        ax1.plot(x, null, ls="--", color="#0072B2", label="prime units, shuffled labels")
        ax1.fill_between(x, null - spread, null + spread, color="#0072B2", alpha=0.15, lw=0)
    ax1.plot(x, t["divergence_mean"], marker="s", color="#E69F00", label="all units")
    depth = int(ds.attrs.get("perceptual_depth_index", np.argmax(t["prime_divergence_mean"])))
    ax1.axvline(depth, color="0.6", lw=0.8, ls=":")
    ax1.set_ylabel("KL(P+ || P-) [nats]")
    ax1.set_title("divergence by layer")
    ax1.legend(fontsize=7, frameon=False)
    ax2.errorbar(x, t["visualness"], yerr=t["visualness_std"], marker="o", color="#009E73", capsize=2,
                 label="accuracy")
    ax2.plot(x, t["visualness_balanced"], marker="^", color="#CC79A7", label="balanced accuracy")
    ax2.axhline(t["chance"].iloc[0], color="0.5", lw=0.8, ls="--", label="chance (larger set)")
    ax2.set_ylim(0.0, 1.02)
    ax2.set_ylabel("cross-validated accuracy")
    ax2.set_title(f"visualness (top {k} units)")
    ax2.legend(fontsize=7, frameon=False)
    for ax in (ax1, ax2):
        ax.set_xticks(x)
        ax.set_xticklabels(t["layer"], rotation=45, ha="right", fontsize=7)
    fig.suptitle(f"{ds.attrs.get('model', '')}: {ds.attrs.get('positive', '')} vs {ds.attrs.get('negative', '')}",
                 fontsize=9)
    return fig


def write_outputs(ds: xr.Dataset, out_dir: str | os.PathLike, overwrite: bool = False) -> list[Path]:
    """Write :data:`OUTPUT_FILES` into ``out_dir``: all are rendered into a temporary folder first,
    then each is moved into place with an atomic rename (a failure leaves no partial output)."""
    with staged_outputs(out_dir, OUTPUT_FILES, overwrite=overwrite) as staging:
        ds.to_netcdf(staging / "units.nc", engine="h5netcdf")
        frame_to_csv(layer_table(ds), staging / "layers.csv", index=False)  # formula cells quoted
        frame_to_csv(unit_table(ds), staging / "units.csv", index=False)
        save_figure(profile_figure(ds), staging / "profile", dpi=200)
    return staged_paths(out_dir, OUTPUT_FILES)
