"""The measures take the core's own input type (issue 24 item 4): no core module knows the app's ``Piece``.

An ast scan of rsa_bridge/ less rsa_bridge/app/ for the name ``Piece`` and for the attributes only the app's
record defines; then the measures run on a :class:`MeasureInput` built by hand (no app import), and their
numbers are checked against an independent linear CKA and the table rows against the scores.
"""
from __future__ import annotations

import ast
import dataclasses
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
#: fields only the app's Piece defines (the core types have none of them)
APP_ONLY = {"dataset_obj", "dataset_time", "per_rdm", "measure_scores", "stacked", "measure_input"}


def core_files() -> list[Path]:
    return sorted(p for p in (ROOT / "rsa_bridge").rglob("*.py") if p.relative_to(ROOT / "rsa_bridge").parts[0] != "app")


def app_mentions(path: Path) -> list[str]:
    """Where ``path`` names ``Piece`` (identifier, attribute, import or docstring) or reads an app-only field."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == "Piece":
            hits.append(f"{node.lineno}: name Piece")
        elif isinstance(node, ast.Attribute) and (node.attr == "Piece" or node.attr in APP_ONLY):
            hits.append(f"{node.lineno}: attribute .{node.attr}")
        elif isinstance(node, ast.alias) and node.name.split(".")[-1] == "Piece":
            hits.append(f"{node.lineno}: import Piece")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and ("Piece" in node.value.split()
                                                                                  or "piece.Piece" in node.value
                                                                                  or "getattr(piece" in node.value):
            hits.append(f"{node.lineno}: text names Piece")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "setattr") \
                and len(node.args) > 1 and isinstance(node.args[1], ast.Constant) and node.args[1].value in APP_ONLY:
            hits.append(f"{node.lineno}: {node.func.id}(..., {node.args[1].value!r})")
    return hits


def test_no_core_module_mentions_the_apps_piece():
    bad = [f"{p.relative_to(ROOT).as_posix()}:{hit}" for p in core_files() for hit in app_mentions(p)]
    assert not bad, "core modules reading the app's record:\n" + "\n".join(bad)


def test_the_scan_finds_what_it_looks_for(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("from rsa_bridge.app.piece import Piece\n"
                    "def f(p):\n    '''reads a :class:`rsa_bridge.app.piece.Piece`'''\n"
                    "    p.measure_scores = 1\n    return getattr(p, 'per_rdm', None), Piece\n")
    found = app_mentions(path)
    assert {h.split(": ", 1)[1] for h in found} == {"import Piece", "text names Piece", "attribute .measure_scores",
                                                   "getattr(..., 'per_rdm')", "name Piece"}
    path.write_text("def f(x):\n    return x.model_rdms, x.kernels\n")
    assert app_mentions(path) == []


def test_the_piece_does_not_reach_core_types():
    from rsa_bridge.measures.inputs import MeasureInput, ModelScores

    fields = {f.name for f in dataclasses.fields(MeasureInput)} | {f.name for f in dataclasses.fields(ModelScores)}
    assert not fields & APP_ONLY
    assert MeasureInput.__dataclass_params__.frozen and ModelScores.__dataclass_params__.frozen


def _case(seed=0, n=24, p=7, t=5, reps=4):
    rng = np.random.default_rng(seed)
    ids = [f"s{i:02d}" for i in range(n)]
    feats = {"a": rng.normal(size=(n, p)), "b": rng.normal(size=(n, p + 3))}
    signal = feats["a"] @ rng.normal(size=(p, t))
    vals = np.concatenate([signal + 0.5 * rng.normal(size=signal.shape) for _ in range(reps)])
    rates = xr.DataArray(vals, dims=("presentation", "neuroid"),
                         coords={"stimulus_id": ("presentation", ids * reps),
                                 "repetition": ("presentation", np.repeat(np.arange(reps), n)),
                                 "neuroid_id": ("neuroid", [f"n{j}" for j in range(t)]),
                                 "region": ("neuroid", ["V4"] * t)}, attrs={"rsa_bridge_kind": "firing_rates"})
    grams = {}
    for name, x in feats.items():
        xc = x - x.mean(0)
        grams[name] = xc @ xc.T
    rdms = xr.DataArray(np.zeros((2, n, n)), dims=("layer", "stimulus_row", "stimulus_col"),
                        coords={"layer": ["a", "b"], "stimulus_row": ids, "stimulus_col": ids,
                                "module_path": ("layer", ["features.0", "features.3"])})
    return feats, grams, rates, rdms


def _feature_cka(x, y):
    x, y = x - x.mean(0), y - y.mean(0)
    return np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


def test_measures_run_on_a_hand_built_core_input_without_the_app():
    from rsa_bridge.measures.inputs import MeasureInput, ModelScores
    from rsa_bridge.measures.results import add_measures
    from rsa_bridge.measures.scoring import MeasureOptions, score_models
    from rsa_bridge.options import StatsOptions

    feats, grams, rates, rdms = _case()
    item = MeasureInput("toy", "random", "toyset", ["V4"], rdms, grams)
    control = MeasureInput("pixels", "none", "toyset", ["V4"], rdms, None)
    with pytest.warns(RuntimeWarning, match="pixels has no layer Gram"):
        scored = score_models([item, control], ["cka", "linear"], MeasureOptions(n_splits=4), StatsOptions(),
                              rates={("toyset", "V4"): rates})
    assert scored[1] is None and isinstance(scored[0], ModelScores)
    got = scored[0]
    assert (got.model, got.weights, got.dataset, got.layers, got.n_stimuli) == ("toy", "random", "toyset",
                                                                               ("a", "b"), 24)
    mean = rates.groupby("stimulus_id").mean().sel(stimulus_id=item.stimulus_ids).values
    want = [_feature_cka(feats[l], mean) for l in ("a", "b")]
    np.testing.assert_allclose(got.scores["V4"]["cka"].score, want, rtol=1e-10)
    assert got.scores["V4"]["linear"].score[0] > got.scores["V4"]["linear"].score[1]  # layer a is the readout
    assert dict(item.kernels) == grams  # the input is not mutated (the Grams stay)
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.model = "other"

    table = pd.DataFrame({"model": ["toy", "toy"], "layer": ["a", "b"], "area": ["V4", "V4"], "similarity": [0.1, 0.2]})
    results = xr.Dataset(coords={"model_layer": ["toy:a", "toy:b"], "area": ["V4"]})
    table, results = add_measures(table, results, scored)
    cka = table[table["measure"] == "cka"].set_index("layer")
    np.testing.assert_allclose(cka.loc[["a", "b"], "similarity"], want, rtol=1e-10)
    assert list(cka["module_path"]) == ["features.0", "features.3"] and set(cka["n_stimuli"]) == {24}
    np.testing.assert_allclose(results["score"].sel(measure="cka", area="V4").values, want, rtol=1e-10)
    assert results["linear_per_neuroid_toyset_V4"].shape == (2, 5)


def test_the_measures_import_no_app_module():
    import subprocess

    code = ("import sys, rsa_bridge.measures.scoring, rsa_bridge.measures.results, rsa_bridge.measures.inputs; "
            "print(sorted(m for m in sys.modules if m.startswith(('rsa_bridge.app', 'extractors', 'analyses'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_app_builds_the_core_input_from_its_piece():
    from rsa_bridge.app.piece import Piece

    _, grams, _, rdms = _case()
    piece = Piece(model="toy", weights="random", dataset="toyset", dataset_obj=xr.Dataset(), metric="correlation",
                  similarity=xr.DataArray(), sem=xr.DataArray(), per_rdm={}, model_rdms=rdms, kernels=grams,
                  areas=["V4"], stimuli="stim")
    item = piece.measure_input()
    assert (item.model, item.weights, item.dataset, item.areas, item.stimuli) == ("toy", "random", "toyset",
                                                                                  ("V4",), "stim")
    assert item.model_rdms is rdms and dict(item.kernels) == grams and item.module_paths == ["features.0", "features.3"]
