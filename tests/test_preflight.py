"""Issue 25 items 2 and 4: what compare can check before the forward pass fails before it; --responses gives
single-RDM areas the split-half RSA ceiling of the same rates; neural rdm records its source rates."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from rsa_bridge.app.cli import main
from rsa_bridge.app.pipeline import RDMOptions, StatsOptions, compare_model, compare_models
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.measures.scoring import MeasureOptions
from rsa_bridge.neural import load_rates, make_rates, save_rates
from rsa_bridge.neural.ceiling import split_half_ceiling
from rsa_bridge.neural.schema import select_region
from tests.helpers import make_rdm_dataset, make_stimuli


def _rates(ids, n_neur=8, reps=4, seed=0, region="V1"):
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=(len(ids), n_neur))
    values = np.concatenate([signal + 0.7 * rng.normal(size=signal.shape) for _ in range(reps)])
    return make_rates(values, stimulus_ids=list(ids) * reps, repetitions=np.repeat(np.arange(reps), len(ids)),
                      neuroid_ids=[f"n{j}" for j in range(n_neur)], region=region, units="spikes/s")


class Counting(nn.Module):
    """A tiny network that counts its forward passes."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(3 * 8 * 8, 6)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.fc(x.flatten(1))


def _transform(image):
    return torch.from_numpy(np.asarray(image.resize((8, 8)), dtype=np.float32) / 255).permute(2, 0, 1)


@pytest.fixture()
def toy(tmp_path):
    ids = make_stimuli(tmp_path / "stimuli", n=20, size=8)
    make_rdm_dataset(tmp_path / "toy.nc", ids)
    rates = _rates(ids)
    save_rates(rates, tmp_path / "rates.nc")
    return tmp_path, ids, rates


@pytest.fixture()
def no_forward_pass(monkeypatch):
    """Any model build, forward pass or image decode fails the test."""
    import extractors
    import PIL.Image

    import rsa_bridge.app.pipeline as pipeline

    def forbidden(*args, **kwargs):
        raise AssertionError("reached the forward pass")

    monkeypatch.setattr(extractors, "load_model", forbidden)
    monkeypatch.setattr(pipeline, "network_rdms", forbidden)
    monkeypatch.setattr(PIL.Image, "open", forbidden)


def _api(toy, net, measures, **options):
    root, _, _ = toy
    return compare_model("toy", ["V1"], dataset=str(root / "toy.nc"), model=net, transform=_transform,
                         layers=["fc"], progress=False, cache=False, rdm=RDMOptions(batch_size=10),
                         measures=measures, measure_options=MeasureOptions(**options),
                         stats=StatsOptions(bootstrap=0, seed=0))


# ---------------------------------------------------------------- the run: exit 2 in seconds

def test_cli_refuses_measure_without_responses_before_the_forward_pass(tmp_path):
    """The issue's command: --area IT (RDMs only) with --measure linear exits 2 at once, writing nothing."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(__import__("pathlib").Path(__file__).parents[1]),
                                                        os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "rsa_bridge", "compare", "--model", "alexnet", "--weights", "none",
                           "--area", "V4", "--area", "IT", "--measure", "linear", "--quiet", "--no-cache",
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=300)
    wall = time.perf_counter() - start
    assert done.returncode == 2, done.stderr
    assert wall < 60  # measured about 9 s on a loaded 2-core machine; the forward pass alone takes minutes
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "needs per-stimulus responses of area 'IT'" in lines[0] and "--responses FILE" in lines[0]
    assert not (tmp_path / "out").exists()


def test_api_refuses_before_any_model_is_built(no_forward_pass):
    with pytest.raises(RSABridgeError, match="area 'IT'.*holds only RDMs"):
        compare_models(["alexnet"], ["V4", "IT"], weights="none", measures=["linear"], cache=False, progress=False)


# ---------------------------------------------------------------- each check, before the forward pass

def test_duplicate_areas_and_measures(no_forward_pass, capsys):
    assert main(["compare", "--model", "alexnet", "--area", "V4", "--area", "v4"]) == 2
    assert "--area 'V4' is given twice" in capsys.readouterr().err
    assert main(["compare", "--model", "alexnet", "--area", "V4", "--measure", "cka", "--measure", "cka"]) == 2
    assert "--measure 'cka' is given twice" in capsys.readouterr().err
    with pytest.raises(RSABridgeError, match="--area 'IT' is given twice"):
        compare_models(["alexnet"], ["IT", "it"], cache=False)
    with pytest.raises(RSABridgeError, match="--measure 'linear' is given twice"):
        compare_models(["alexnet"], ["IT"], measures=["linear", "linear"], cache=False)


def test_small_folds_refused_before_the_forward_pass(toy):
    root, ids, rates = toy
    net = Counting()
    with pytest.raises(RSABridgeError, match=r"10 folds over 20 stimuli leave 2 held-out .*--folds 4 or fewer, "
                                             r"or --cv-score pooled"):
        _api(toy, net, ["linear"], responses=rates, n_splits=10)
    assert net.calls == 0
    with pytest.raises(RSABridgeError, match="no such column"):  # the stratification column too
        _api(toy, net, ["linear"], responses=rates, n_splits=4, labels="nonexistent")
    assert net.calls == 0


def test_responses_of_other_stimuli_refused_before_the_forward_pass(toy):
    root, ids, _ = toy
    net = Counting()
    other = _rates([*ids[:-1], "somewhere_else"])
    with pytest.raises(RSABridgeError, match="repeat-level rates"):
        _api(toy, net, ["cka"], responses=other)
    with pytest.raises(RSABridgeError, match="repeat-level rates"):  # for the RSA ceiling alone as well
        _api(toy, net, None, responses=other)
    assert net.calls == 0


def test_cli_small_folds_exit_2_without_forward_pass(toy, no_forward_pass, capsys):
    root, _, _ = toy
    code = main(["compare", "--model", "alexnet", "--weights", "none", "--dataset", str(root / "toy.nc"),
                 "--area", "V1", "--responses", str(root / "rates.nc"), "--measure", "linear", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "leave 2 held-out stimuli" in err[0]


def test_budgets_checked_by_the_preflight(tmp_path, monkeypatch, no_forward_pass, capsys):
    import rsa_bridge.budget as budget
    import rsa_bridge.limits as limits

    calls = []
    monkeypatch.setattr(budget, "check_disk", lambda *a: calls.append(("disk", a)))
    real = limits.check_statistics_memory
    monkeypatch.setattr(limits, "check_statistics_memory", lambda *a: calls.append(("stats", a)) or real(*a))
    monkeypatch.setenv("RSA_BRIDGE_MAX_MEMORY", "1M")  # --bootstrap is bounded when parsed; the budget is the check
    code = main(["compare", "--model", "alexnet", "--area", "IT", "--layers", "conv1,fc6", "--bootstrap",
                 "100000", "--out", str(tmp_path / "out")])
    assert code == 2 and "memory" in capsys.readouterr().err
    assert ("disk", (tmp_path / "out", 92, 2, 8)) in calls and ("stats", (92, 100000, 0)) in calls


# ---------------------------------------------------------------- one ceiling story

def test_responses_give_the_rsa_ceiling_of_the_same_rates(toy):
    """V1 is one RDM without repeat_rates: n/a before; with --responses, the split-half ceiling of those rates."""
    root, ids, rates = toy
    plain = _api(toy, Counting(), None).table
    assert plain["ceiling_lower"].isna().all()
    t = _api(toy, Counting(), ["cka"], responses=str(root / "rates.nc")).table
    rsa = t[t["measure"] == "rsa"].iloc[0]
    ref = split_half_ceiling(rates, "correlation", "spearman", seed=0)  # the function the shipped V4 data uses
    assert rsa["ceiling_lower"] == pytest.approx(ref.lower, abs=1e-12)
    assert rsa["ceiling_upper"] == pytest.approx(ref.upper, abs=1e-12)
    assert rsa["ceiling_definition"] == "split-half" and "rates: --responses rates.nc" in rsa["ceiling_note"]
    in_memory = _api(toy, Counting(), None, responses=rates).table  # the Python API's rates in memory: the same
    assert in_memory["ceiling_lower"].iloc[0] == pytest.approx(ref.lower, abs=1e-12)
    assert t.loc[t["measure"] == "rsa", "ceiling_lower"].notna().all()
    assert (t.loc[t["measure"] == "cka", "measure_ceiling"] > 0).all()


def test_neural_rdm_records_its_source_and_compare_uses_it(toy, capsys):
    root, ids, rates = toy
    out = root / "my_rdm.nc"
    assert main(["neural", "rdm", str(root / "rates.nc"), "--out", str(out), "--stimuli", str(root / "stimuli")]) == 0
    from rsa_bridge.datasets import load_dataset

    ds = load_dataset(out)
    sha = hashlib.sha256((root / "rates.nc").read_bytes()).hexdigest()
    assert ds.attrs["source_rates"] == "rates.nc" and ds.attrs["source_rates_sha256"] == sha
    assert ds.attrs["metric"] == "correlation" and ds["V1"].attrs["source_rates_sha256"] == sha
    capsys.readouterr()
    assert main(["compare", "--model", "pixels", "--dataset", str(out), "--responses", str(root / "rates.nc"),
                 "--bootstrap", "0", "--quiet", "--out", str(root / "res")]) == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(root / "res" / "results.csv")
    ref = split_half_ceiling(select_region(load_rates(root / "rates.nc"), "V1"), "correlation", "spearman", seed=0)
    assert table["ceiling_lower"].iloc[0] == pytest.approx(ref.lower, abs=1e-12)
    assert "noise ceiling (lower, upper): V1 [" in printed and "n/a" not in printed.split("noise ceiling")[1]


def test_precomputed_rdms_refuse_measures_and_responses_before_reading_them(toy, capsys):
    root, _, _ = toy
    missing = root / "never_read.nc"  # the file does not exist: the refusal comes before it is opened
    base = ["compare", "--model-rdms", str(missing), "--dataset", str(root / "toy.nc"), "--quiet"]
    assert main([*base, "--measure", "cka"]) == 2
    assert "precomputed model RDMs carry no Gram matrices" in capsys.readouterr().err
    assert main([*base, "--responses", str(root / "rates.nc")]) == 2
    assert "--responses is read with --model only" in capsys.readouterr().err
