"""Held-out layer choice (rsa_bridge.stats.heldout, rsa_bridge.app.selection, compare --heldout-layer/--select-on).

References: the cross-validated score, the fold choices and the bootstrap CI are recomputed by a hand-written
loop over square RDMs restricted with ``np.ix_`` and scored with ``scipy.stats.spearmanr``; the in-sample
maximum must equal ``compare``'s best-layer similarity; the commitment table is checked against pandas argmax.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.spatial.distance import pdist, squareform
from scipy.stats import spearmanr

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.measures.folds import make_folds
from rsa_bridge.rdm import COL, ROW
from rsa_bridge.stats.heldout import (HeldoutOptions, check_heldout_sizes, commit_layers, heldout_choice,
                                      pair_index, parse_select_on, subset_pairs)
from tests.helpers import cli_code, make_stimuli


def _square(rng, n, n_layers=4, n_subjects=3, signal=(0.2, 0.6, 1.0, 3.0)):
    """(L, n, n) model and (R, n, n) brain RDMs: layer k shares the brain's patterns with noise signal[k]."""
    base = rng.normal(size=(n, 12))
    brain = np.stack([squareform(pdist(base + rng.normal(0, 0.8, base.shape), "correlation"))
                      for _ in range(n_subjects)])
    model = np.stack([squareform(pdist(base + rng.normal(0, s, base.shape), "correlation"))
                      for s in signal[:n_layers]])
    return model, brain


def _upper(x):
    rows, cols = np.triu_indices(x.shape[-1], 1)
    return x[..., rows, cols]


def _hand_score(model_sq, brain_sq, idx):
    """Mean over subjects of Spearman rho of one layer with each subject on the stimuli idx (sorted)."""
    sub = np.ix_(idx, idx)
    return float(np.mean([spearmanr(_upper(model_sq[sub]), _upper(b[sub]))[0] for b in brain_sq]))


def test_cv_score_and_choices_equal_a_hand_loop_with_scipy(rng):
    n = 30
    model, brain = _square(rng, n)
    options = HeldoutOptions(folds=3, repeats=2, seed=7)
    out = heldout_choice(_upper(model), _upper(brain), n, ["a", "b", "c", "d"], options)
    scores, chosen = [], []
    for r in range(2):
        for train, test in make_folds(n, 3, seed=[7, r]):
            on_train = [_hand_score(m, brain, train) for m in model]
            k = int(np.argmax(on_train))
            chosen.append(k)
            scores.append(_hand_score(model[k], brain, test))
    np.testing.assert_allclose(out.fold_scores.ravel(), scores, rtol=1e-12, atol=1e-12)
    assert out.chosen.ravel().tolist() == chosen
    assert out.score == pytest.approx(np.mean(scores), abs=1e-12)
    assert out.counts.tolist() == np.bincount(chosen, minlength=4).tolist() and out.counts.sum() == 6
    insample = [_hand_score(m, brain, np.arange(n)) for m in model]
    assert out.insample_max == pytest.approx(max(insample), abs=1e-12)
    assert out.insample_layer == "abcd"[int(np.argmax(insample))]
    assert np.isnan(out.ci_low) and out.row()["selection_bias"] == pytest.approx(max(insample) - np.mean(scores))


def test_bootstrap_ci_equals_a_hand_loop_over_held_out_stimuli(rng):
    n = 25
    model, brain = _square(rng, n, n_layers=2, n_subjects=1)
    options = HeldoutOptions(folds=2, seed=3, bootstrap=40, ci_level=0.9)
    out = heldout_choice(_upper(model), _upper(brain), n, ["x", "y"], options)
    draws = np.random.default_rng([3, 1, 1])
    folds = make_folds(n, 2, seed=[3, 0])
    samples = []
    for _ in range(40):
        values = []
        for (_, test), k in zip(folds, out.chosen.ravel()):
            s = draws.choice(test, size=len(test), replace=True)
            a, b = np.triu_indices(len(s), 1)
            keep = s[a] != s[b]
            i, j = s[a][keep], s[b][keep]
            values.append(spearmanr(model[k][i, j], brain[0][i, j])[0])
        samples.append(np.mean(values))
    assert out.ci_low == pytest.approx(np.quantile(samples, 0.05), abs=1e-12)
    assert out.ci_high == pytest.approx(np.quantile(samples, 0.95), abs=1e-12)


def test_restricting_a_condensed_rdm_is_indexing(rng):
    n = 9
    square = squareform(rng.random(n * (n - 1) // 2))
    idx = np.array([1, 4, 5, 8])
    np.testing.assert_array_equal(squareform(square)[subset_pairs(idx, n)], _upper(square[np.ix_(idx, idx)]))
    i, j = np.array([3, 7, 0]), np.array([2, 1, 8])
    np.testing.assert_array_equal(squareform(square)[pair_index(i, j, n)], square[i, j])


def test_the_insample_maximum_is_compares_best_layer_score(rng):
    from rsa_bridge.layer_scores import compare_layers

    n = 20
    model, brain = _square(rng, n)
    ids = [f"s{k}" for k in range(n)]
    layers = ["l0", "l1", "l2", "l3"]
    rdms = xr.DataArray(model, dims=("layer", ROW, COL), coords={"layer": layers, ROW: ids, COL: ids})
    ds = xr.Dataset({"IT": (("subject", ROW, COL), brain)}, coords={ROW: ids, COL: ids, "subject": ["a", "b", "c"]},
                    attrs={"name": "toy"})
    sim, _, _ = compare_layers(rdms, ds, ["IT"])
    out = heldout_choice(_upper(model), _upper(brain), n, layers, HeldoutOptions(folds=4))
    assert out.insample_max == pytest.approx(float(sim.max()), abs=1e-12)
    assert out.insample_layer == str(sim["layer"].values[int(np.argmax(sim.values[:, 0]))])
    np.testing.assert_allclose(out.insample, sim.sel(area="IT").values, atol=1e-12)


@pytest.mark.parametrize("n, folds, needle", [(20, 5, "use --heldout-layer 4 or fewer"),
                                              (9, 2, "too small"), (30, 1, "at least 2 folds")])
def test_too_few_stimuli_per_fold_is_one_line(n, folds, needle):
    with pytest.raises(RSABridgeError) as info:
        check_heldout_sizes(n, folds)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_hostile_inputs_to_the_core_are_one_line(rng):
    n = 20
    model, brain = _square(rng, n, n_layers=2)
    two = HeldoutOptions(folds=2)
    bad = [(lambda: heldout_choice(_upper(model), _upper(brain)[:, :-1], n, ["a", "b"], two), "need (L, 190)"),
           (lambda: heldout_choice(_upper(model), _upper(brain), n, ["a"], two), "for 1 layers"),
           (lambda: heldout_choice(np.ones_like(_upper(model)), _upper(brain), n, ["a", "b"], two), "constant"),
           (lambda: heldout_choice(_upper(model), np.ones_like(_upper(brain)), n, ["a", "b"], two), "constant"),
           (lambda: heldout_choice(_upper(model), _upper(brain), n, ["a", "b"], HeldoutOptions(folds=2, repeats=0)),
            "at least 1 repeat"),
           (lambda: heldout_choice(_upper(model), np.where(_upper(brain) > 0.9, np.nan, _upper(brain)), n,
                                   ["a", "b"], two), "NaN"),
           (lambda: parse_select_on("ds:"), "DATASET:AREA"), (lambda: parse_select_on(":V4"), "DATASET:AREA")]
    for call, needle in bad:
        with pytest.raises(RSABridgeError) as info:
            call()
        assert needle in str(info.value) and "\n" not in str(info.value)


def _scores_table():
    rows = []
    values = {"A": [0.1, 0.5, 0.3], "B": [0.4, 0.2, 0.1], "C": [0.2, 0.25, 0.3]}
    for dataset, sims in values.items():
        for layer, s in zip(["l1", "l2", "l3"], sims):
            rows.append({"model": "m", "dataset": dataset, "area": "V4", "layer": layer, "similarity": s,
                         "ci_low": s - 0.1, "ci_high": s + 0.1})
    return pd.DataFrame(rows)


def test_commit_layers_chooses_on_one_dataset_and_scores_the_others():
    table = _scores_table()
    out = commit_layers(table, "A")
    assert out["dataset"].tolist() == ["B", "C"] and set(out["committed_layer"]) == {"l2"}
    assert out["select_on"].iloc[0] == "A:V4" and out["committed_on_similarity"].iloc[0] == 0.5
    assert out["similarity"].tolist() == [0.2, 0.25] and out["ci_low"].tolist() == pytest.approx([0.1, 0.15])
    assert out["insample_layer"].tolist() == ["l1", "l3"] and out["insample_gap"].tolist() == pytest.approx([0.2, 0.05])
    assert commit_layers(table, "B")["committed_layer"].unique().tolist() == ["l1"]
    for call, needle in [(lambda: commit_layers(table, "Z"), "was not scored"),
                         (lambda: commit_layers(table, "A", "IT"), "no area 'IT'"),
                         (lambda: commit_layers(table[table["dataset"] == "A"], "A"), "no other data set")]:
        with pytest.raises(RSABridgeError) as info:
            call()
        assert needle in str(info.value)


# --- the command line on tiny synthetic data sets ----------------------------------------------------------------

@pytest.fixture(scope="module")
def toys(tmp_path_factory):
    """Two RDM data sets over the same 20 images (different brains), named toy_a and toy_b."""
    root = tmp_path_factory.mktemp("heldout")
    ids = make_stimuli(root / "stimuli", n=20, size=32)
    rng = np.random.default_rng(5)
    paths = []
    for name in ("toy_a", "toy_b"):
        rates = rng.normal(size=(20, 15))
        rdm = squareform(pdist(rates, "correlation"))
        ds = xr.Dataset({"IT": ((ROW, COL), rdm, {"metric": "correlation"})}, coords={ROW: ids, COL: ids},
                        attrs={"name": name, "stimulus_set": "stimuli"})
        ds.to_netcdf(root / f"{name}.nc", engine="h5netcdf")
        paths.append(root / f"{name}.nc")
    return paths


BASE = ["compare", "--model", "alexnet", "--weights", "none", "--layers", "conv1,conv3,fc6", "--bootstrap", "0",
        "--quiet", "--no-cache"]


def test_select_on_commits_on_one_dataset_and_scores_the_other(toys, tmp_path, capsys):
    a, b = toys
    out = tmp_path / "out"
    assert cli_code([*BASE, "--dataset", str(b), "--select-on", f"{a}:IT", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(out / "results.csv")
    on_a = table[table["dataset"] == "toy_a"]
    committed = on_a.loc[on_a["similarity"].idxmax(), "layer"]
    assert set(table["committed_layer"]) == {committed} and set(table["select_on"]) == {"toy_a:IT"}
    on_b = table[table["dataset"] == "toy_b"]
    assert on_b["is_committed"].sum() == 1 and on_b.loc[on_b["is_committed"], "layer"].item() == committed
    selection = pd.read_csv(out / "selection.csv")
    assert len(selection) == 1 and selection["dataset"].item() == "toy_b" and selection["method"].item() == "spearman"
    assert selection["similarity"].item() == pytest.approx(on_b.loc[on_b["is_committed"], "similarity"].item())
    assert selection["insample_max"].item() == pytest.approx(on_b["similarity"].max())
    assert f"committed layer (rsa) alexnet IT: {committed} chosen on toy_a:IT" in printed
    res = xr.open_dataset(out / "results.nc")
    assert res.attrs["select_on"] == f"{a}:IT"
    assert f"alexnet IT: {committed} (on toy_a:IT)" in res.attrs["committed_layers"]
    assert str(res["committed_layer"].sel(committed_model="alexnet", area="IT", committed_dataset="toy_b").values) \
        == committed
    assert res["similarity"].sel(dataset="toy_b", model_layer=f"alexnet:{committed}", area="IT").item() == \
        pytest.approx(selection["similarity"].item())
    res.close()


def test_heldout_layer_on_the_command_line(toys, tmp_path, capsys):
    a, _ = toys
    out = tmp_path / "out"
    assert cli_code([*BASE, "--dataset", str(a), "--heldout-layer", "2", "--heldout-repeats", "2",
                     "--out", str(out)]) == 0
    assert "held-out layer (rsa, spearman) alexnet IT [toy_a]: cross-validated" in capsys.readouterr().out
    table = pd.read_csv(out / "results.csv")
    summary = pd.read_csv(out / "selection.csv")
    assert table["heldout_times_chosen"].sum() == 4  # 2 folds x 2 repeats
    assert summary["insample_max"].item() == pytest.approx(table["similarity"].max(), abs=1e-12)
    res = xr.open_dataset(out / "results.nc")
    assert int(res.attrs["heldout_folds"]) == 2 and int(res.attrs["heldout_repeats"]) == 2
    assert res["heldout_times_chosen"].sum().item() == 4
    assert "alexnet IT [toy_a]: " in res.attrs["heldout_chosen_layers"]
    res.close()


def _no_forward_pass(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("the forward pass started")
    monkeypatch.setattr("extractors.load_model", boom)


@pytest.mark.parametrize("extra, needle", [
    (["--dataset", "{b}", "--select-on", "no_such_dataset"], "no dataset 'no_such_dataset'"),
    (["--dataset", "{b}", "--select-on", "{a}:V1"], "unknown area 'V1'"),
    (["--dataset", "{a}", "--select-on", "{a}"], "no other data set"),
    (["--dataset", "{a}", "--heldout-layer", "5"], "use --heldout-layer 4 or fewer"),
    (["--dataset", "{b}", "--select-on", "{a}", "--heldout-layer", "5"], "use --heldout-layer 4 or fewer"),
    (["--dataset", "{a}", "--heldout-layer", "2", "--measure", "cka"], "choose layers by RSA"),
    (["--area", "V4", "--select-on", "cowley2023_v4_210325:IT"], "unknown area 'IT'"),
])
def test_bad_selection_exits_2_before_the_forward_pass(toys, tmp_path, capsys, monkeypatch, extra, needle):
    a, b = toys
    _no_forward_pass(monkeypatch)
    extra = [e.format(a=a, b=b) for e in extra]
    assert cli_code([*BASE, *extra, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and not (tmp_path / "o").exists()


def test_select_on_scores_every_shipped_dataset_with_the_area():
    from rsa_bridge.app.preflight import check_selection
    from rsa_bridge.app.selection import LayerSelection

    plan = check_selection(LayerSelection(HeldoutOptions(folds=5), "cowley2023_v4_210225:v4"), ["V4"], None)
    assert plan[0] == ("cowley2023_v4_210225", ["V4"])
    assert sorted(d for d, _ in plan[1:]) == ["cowley2023_v4_190923", "cowley2023_v4_201025", "cowley2023_v4_210224",
                                              "cowley2023_v4_210325"]
    with pytest.raises(RSABridgeError, match="needs the areas to commit"):
        check_selection(LayerSelection(None, "cowley2023_v4_210225"), None, None)
