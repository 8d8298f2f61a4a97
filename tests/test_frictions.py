"""Issue 18 item 3 and issue 16 item 3 (parts): the small frictions of daily use, each where it lives."""
from __future__ import annotations

import argparse
import inspect
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats
from scipy.spatial.distance import pdist, squareform

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.rdm import COL, ROW, upper_triangle
from tests.helpers import make_rdm_dataset, make_stimuli


def _compare_parser():
    from rsa_bridge.app.commands import compare

    parser = argparse.ArgumentParser(prog="rsa-bridge")
    compare.register(parser.add_subparsers(dest="command"))
    return parser


def test_compare_cli_accepts_aliases_and_case_and_lists_the_choices(capsys):
    parser = _compare_parser()
    args = parser.parse_args(["compare", "--model", "alexnet", "--method", "corr", "--metric", "Euclidean"])
    assert (args.method, args.metric) == ("pearson", "euclidean")
    assert parser.parse_args(["compare", "--method", "TAU-A"]).method == "kendall_tau_a"
    from rsa_bridge.app.cli import main

    assert main(["compare", "--model", "pixels", "--area", "IT", "--method", "spearmann", "--quiet"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()  # one line, from the library, with a did-you-mean
    assert "unknown comparison method 'spearmann'" in line and "did you mean 'spearman'?" in line
    assert main(["compare", "--model", "pixels", "--area", "it", "--metric", "corelation", "--quiet"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "unknown RDM metric 'corelation'" in line and "did you mean 'correlation'?" in line
    with pytest.raises(SystemExit):
        parser.parse_args(["compare", "--help"])
    help_text = re.sub(r"\s+", " ", capsys.readouterr().out)
    for word in ("IMAGENET1K_V1", "IMAGENET1K_V2", "{correlation,euclidean,sqeuclidean,cosine}", "corr",
                 "Python API's StatsOptions defaults to 0"):
        assert word in help_text, word


def test_weights_members_in_the_help_are_torchvisions():
    import torchvision.models as tvm

    from rsa_bridge.app.commands.compare import WEIGHTS_MEMBERS

    members = {m for n in tvm.list_models(module=tvm) for m in tvm.get_model_weights(n).__members__}
    assert set(WEIGHTS_MEMBERS) <= members
    for model in ("alexnet", "resnet50", "mobilenet_v2", "vgg16", "vit_b_16"):
        assert set(tvm.get_model_weights(model).__members__) - {"DEFAULT", "IMAGENET1K_FEATURES"} <= set(WEIGHTS_MEMBERS)


def test_python_and_cli_defaults_agree_or_the_difference_is_stated():
    from rsa_bridge.app.pipeline import RDMOptions, StatsOptions, compare_models

    args = _compare_parser().parse_args(["compare"])
    api = inspect.signature(compare_models).parameters
    rdm = RDMOptions()
    assert (args.metric, args.method, args.batch_size, args.device, args.precision) == (
        rdm.metric, api["method"].default, rdm.batch_size, rdm.device, rdm.precision)
    options = StatsOptions()
    assert (args.permutations, args.seed, args.bootstrap_over, args.ci_level) == (
        options.permutations, options.seed, options.bootstrap_over, options.ci_level)
    assert args.bootstrap == 1000 and options.bootstrap == 0  # differs on purpose; said in both texts:
    assert "--bootstrap 1000" in StatsOptions.__doc__


def test_model_difference_line_names_a_control_once():
    from rsa_bridge.app.report import _best_lines

    diffs = pd.DataFrame({"area": ["IT"], "model_a": ["pixels"], "layer_a": ["pixels"], "model_b": ["alexnet"],
                          "layer_b": ["conv5"], "difference": [-0.05], "ci_low": [-0.1], "ci_high": [0.02],
                          "p_value": [0.4]})
    (line,) = _best_lines(SimpleNamespace(best=None, model_differences=diffs))
    assert line.startswith("IT: pixels - alexnet conv5 = -0.0500 [-0.1000, +0.0200]")


def test_a_star_with_a_ci_over_zero_is_explained():
    from rsa_bridge.app.report import _disagreement_note

    table = pd.DataFrame({"model": ["alexnet", "alexnet"], "layer": ["conv1", "conv5"], "area": ["IT", "IT"],
                          "p_holm": [0.01, 0.01], "ci_low": [-0.02, 0.1], "ci_high": [0.3, 0.4]})
    note = _disagreement_note(table)
    assert "alexnet conv1 / IT" in note and "conv5" not in note and "permutation" in note
    assert _disagreement_note(table.assign(ci_low=[0.05, 0.1])) is None
    assert _disagreement_note(table.drop(columns=["ci_low", "ci_high"])) is None


def test_in_memory_dataset_and_rsatoolbox_rdms_as_model_rdms(tmp_path):
    pytest.importorskip("rsatoolbox")
    from rsatoolbox.rdm import RDMs

    from rsa_bridge.neural.rsatoolbox_io import rdms_from_rsatoolbox
    from rsa_bridge.app.pipeline import compare_precomputed, select_datasets

    ids = [f"s{k}" for k in range(9)]
    ds = make_rdm_dataset(tmp_path / "toy.nc", ids)
    assert select_datasets(["it"], ds)[0][1] == ["IT"]  # in memory, and case-insensitive
    rng = np.random.default_rng(5)
    layers = [squareform(pdist(rng.normal(size=(9, 12)), "correlation")) for _ in range(2)]
    rt = RDMs(np.stack([squareform(m) for m in layers]), dissimilarity_measure="correlation",
              rdm_descriptors={"name": ["a", "b"]}, pattern_descriptors={"stimulus_id": ids})
    for model in (rdms_from_rsatoolbox(rt, replicate_descriptor="name"),            # as it comes: (replicate, n, n)
                  rdms_from_rsatoolbox(rt, replicate_descriptor="name", dim="layer")):
        result = compare_precomputed(model, ["IT"], dataset=ds, method="corr")
        assert result.results.attrs["method"] == "pearson"
        got = result.table.set_index("layer")["similarity"]
        for k, layer in enumerate(["a", "b"]):
            want = np.mean([stats.pearsonr(squareform(layers[k], checks=False),
                                           upper_triangle(ds["IT"].values[s])).statistic for s in range(3)])
            assert got[layer] == pytest.approx(want, abs=1e-12)


def test_as_model_rdms_errors():
    from rsa_bridge.model_rdms import as_model_rdms

    one = xr.DataArray(np.zeros((3, 3)), dims=(ROW, COL), coords={ROW: list("abc"), COL: list("abc")})
    assert as_model_rdms(one, "x").dims == ("layer", ROW, COL)
    with pytest.raises(RSABridgeError, match="several leading dims"):
        as_model_rdms(one.expand_dims(a=[0], b=[0]))
    with pytest.raises(RSABridgeError, match="must be a DataArray"):
        as_model_rdms(np.zeros((3, 3)))


def test_compare_model_takes_the_options_of_compare_models():
    from rsa_bridge.app.pipeline import compare_model, compare_models

    single = set(inspect.signature(compare_model).parameters)
    many = set(inspect.signature(compare_models).parameters)
    assert many - single == {"model_names"} and single - many == {"model_name"}  # built modules: network.models


def test_compare_model_with_in_memory_dataset_cache_and_rdm_options(tmp_path):
    import torch
    from torch import nn

    from rsa_bridge.app.pipeline import compare_model
    from rsa_bridge.options import RDMOptions

    ids = make_stimuli(tmp_path / "stimuli", n=8, size=16)
    ds = make_rdm_dataset(tmp_path / "toy.nc", ids)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten()).eval()

    from torchvision import transforms as T

    transform = T.Compose([T.Resize((16, 16)), T.ToTensor()])  # an object the cache can describe
    kw = dict(dataset=ds, stimuli=tmp_path / "stimuli", layers=["1"], model=net, transform=transform,
              cache=tmp_path / "cache", rdm=RDMOptions(precision="float32"))
    result = compare_model("tiny", ["V1"], **kw)
    rdms = result.model_rdms["tiny|toy"]
    assert rdms.attrs["rdm_precision"] == "float32"
    assert list((tmp_path / "cache").rglob("*.nc"))  # the cache was used
    order = [str(s) for s in rdms[ROW].values]
    want = stats.spearmanr(upper_triangle(rdms.sel(layer="1").values),
                           upper_triangle(ds["V1"].sel({ROW: order, COL: order}).values)).statistic
    assert float(result.table["similarity"].iloc[0]) == pytest.approx(want, abs=1e-12)


def test_in_memory_assembly_with_image_id_gets_the_rename_hint():
    from rsa_bridge.neural import schema as S

    rates = S.make_rates(np.arange(24.0).reshape(6, 4), stimulus_ids=["a", "a", "b", "b", "c", "c"],
                         repetitions=[0, 1] * 3, neuroid_ids=["n0", "n1", "n2", "n3"], region="IT")
    old = rates.rename(stimulus_id="image_id")
    with pytest.raises(RSABridgeError, match=r"older Brain-Score name 'image_id'.*rename\(image_id='stimulus_id'\)"):
        S.validate_rates(old)
    S.validate_rates(old.rename(image_id="stimulus_id"))  # the hint's fix works


def _run_neural(argv):
    from rsa_bridge.app.commands import neural

    parser = argparse.ArgumentParser(prog="rsa-bridge")
    neural.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


def test_neural_rdm_names_the_dataset_and_info_prints_a_readable_iqr(tmp_path, capsys):
    from rsa_bridge.datasets import load_dataset
    from rsa_bridge.neural import schema as S

    rng = np.random.default_rng(3)
    values = rng.normal(size=(40, 6))  # values around 0: reliabilities can be negative
    rates = S.make_rates(values, stimulus_ids=np.repeat([f"s{k}" for k in range(10)], 4), repetitions=[0, 1, 2, 3] * 10,
                         neuroid_ids=[f"n{k}" for k in range(6)], region="IT")
    S.save_rates(rates, tmp_path / "r.nc")
    assert _run_neural(["neural", "rdm", str(tmp_path / "r.nc"), "--out", str(tmp_path / "v4_rdms.nc")]) == 0
    out = capsys.readouterr().out
    assert "RDM dataset 'v4_rdms': 10 stimuli" in out and "''" not in out
    assert load_dataset(tmp_path / "v4_rdms.nc").attrs["name"] == "v4_rdms"
    assert _run_neural(["neural", "info", str(tmp_path / "r.nc"), "--splits", "4"]) == 0
    out = capsys.readouterr().out
    match = re.search(r"\[IQR (-?\d\.\d{3}) to (-?\d\.\d{3})\]", out)
    assert match and float(match.group(1)) <= float(match.group(2)), out
    from rsa_bridge.app.commands.neural import _print_summary

    _print_summary(load_dataset(tmp_path / "v4_rdms.nc").assign_attrs(name=""))
    assert "RDM dataset (unnamed): 10 stimuli" in capsys.readouterr().out
