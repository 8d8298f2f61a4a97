"""In-sample best layer vs held-out layer choice on the five shipped Cowley 2023 V4 sessions (docs/guide/held-out.md).

Runs ``rsa-bridge compare --area V4 --select-on cowley2023_v4_210325 --heldout-layer 5`` once per model (one forward
pass per session), then re-commits the layer on each session in turn from the same per-layer table
(:func:`rsa_bridge.stats.heldout.commit_layers`), and prints two markdown tables:

1. per model x session: the in-sample best layer and score, the 5-fold cross-validated score (layer chosen on the
   training stimuli), the selection bias (in-sample max - held-out; and on the same held-out pairs:
   heldout_fold_max - held-out), which layers the folds chose, and the score of the layer committed on 210325;
2. per model x select-on session: the committed layer and the mean over the other four sessions of its score vs
   the mean of their in-sample maxima.

Usage (27 min for AlexNet, 43 min for MobileNetV2 on 2 busy shared CPU cores; the model-RDM cache makes a rerun fast)::

    TORCH_HOME=../shared/data/torchvision_weights python benchmarks/heldout_v4.py --out /tmp/heldout_v4
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd

MODELS = {"alexnet (untrained)": ["--model", "alexnet", "--weights", "none"],
          "mobilenet_v2 (IMAGENET1K_V1)": ["--model", "mobilenet_v2", "--weights", "IMAGENET1K_V1"]}
SELECT = "cowley2023_v4_210325"


def run(out: Path, cache: Path, folds: int, bootstrap: int) -> dict[str, Path]:
    folders = {}
    for label, model in MODELS.items():
        folder = out / model[1]
        if not (folder / "results.csv").exists():
            cmd = [sys.executable, "-m", "rsa_bridge", "compare", *model, "--area", "V4", "--select-on", SELECT,
                   "--heldout-layer", str(folds), "--bootstrap", str(bootstrap), "--seed", "0", "--quiet",
                   "--cache", str(cache), "--out", str(folder), "--overwrite"]
            print("$", " ".join(cmd), file=sys.stderr, flush=True)
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        folders[label] = folder
    return folders


def tables(folders: dict[str, Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    from rsa_bridge.stats.heldout import commit_layers

    per_session, cross = [], []
    for label, folder in folders.items():
        table = pd.read_csv(folder / "results.csv")
        table = table[table["measure"] == "rsa"]
        selection = pd.read_csv(folder / "selection.csv")
        heldout = selection[selection["heldout_similarity"].notna()].set_index("dataset")
        committed = selection[selection["committed_layer"].notna()].set_index("dataset")
        for dataset, rows in table.groupby("dataset", sort=False):
            h = heldout.loc[dataset]
            per_session.append({
                "model": label, "session": dataset.rsplit("_", 1)[1], "n_stimuli": int(rows["n_stimuli"].iloc[0]),
                "in-sample best": f"{h['insample_layer']} {h['insample_max']:.3f}",
                f"held-out ({int(h['heldout_n_folds'])}-fold)": f"{h['heldout_similarity']:.3f}",
                "bias": f"{h['selection_bias']:+.3f}",
                "bias, same pairs": f"{h['heldout_fold_max'] - h['heldout_similarity']:+.3f}",
                "chosen (folds)": h["heldout_choices"],
                f"committed on {SELECT[-6:]}": (f"{committed.loc[dataset, 'committed_layer']} "
                                                f"{committed.loc[dataset, 'similarity']:.3f}"
                                                if dataset in committed.index else "(chosen here)")})
        for select in dict.fromkeys(table["dataset"]):
            c = commit_layers(table, select)
            cross.append({"model": label, "choose on": select.rsplit("_", 1)[1], "layer": c["committed_layer"].iloc[0],
                          "score there": f"{c['committed_on_similarity'].iloc[0]:.3f}",
                          "mean on other 4": f"{c['similarity'].mean():.3f}",
                          "mean in-sample max of other 4": f"{c['insample_max'].mean():.3f}",
                          "gap": f"{c['insample_gap'].mean():+.3f}"})
    return pd.DataFrame(per_session), pd.DataFrame(cross)


def markdown(frame: pd.DataFrame) -> str:
    """A pipe table (no tabulate dependency)."""
    cells = [list(map(str, frame.columns))] + [[str(v) for v in row] for row in frame.itertuples(index=False)]
    lines = ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join([lines[0], "|" + "---|" * len(frame.columns), *lines[1:]])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/heldout_v4"))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/heldout_v4_cache"))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--bootstrap", type=int, default=0)
    args = parser.parse_args(argv)
    per_session, cross = tables(run(args.out, args.cache, args.folds, args.bootstrap))
    print(markdown(per_session))
    print()
    print(markdown(cross))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
