"""Model x model maps (issue 28 item 1): ``rsa_bridge.measures.model_map`` (core), ``between_models`` (app),
``compare --between-models`` (CLI) and ``rsa-bridge figure model_map``.

References: linear CKA computed here in feature space with numpy (``||Yc^T Xc||_F^2 / (||Xc^T Xc||_F
||Yc^T Yc||_F)``) on the activations :func:`extractors.extract` gives for the same tiny networks and images;
every other Gram measure against its own registered two-Gram score (itself checked in feature space in
tests/test_gram_measures.py and tests/test_shape_measure.py); RSA against scipy's Spearman r.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import torch
import xarray as xr
from PIL import Image
from torch import nn

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.measures import MEASURES
from rsa_bridge.measures.model_map import gram_stack, model_map
from rsa_bridge.measures.scoring import MeasureOptions
from tests.helpers import make_stimuli

N = 16


def feature_cka(x, y):
    xc, yc = x - x.mean(0), y - y.mean(0)
    return np.linalg.norm(yc.T @ xc) ** 2 / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc))


def _features(seed, widths):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(N, 4))
    return [base @ rng.normal(size=(4, p)) + rng.normal(size=(N, p)) for p in widths]


IDS = [f"s{i:02d}" for i in range(N)]


def _stack(feats, prefix):
    return gram_stack([f @ f.T for f in feats], [f"{prefix}{k}" for k in range(len(feats))], IDS)


def test_core_cka_map_equals_feature_space():
    fa, fb = _features(0, (3, 40)), _features(1, (5, 7, 60))
    got = model_map(_stack(fa, "a"), _stack(fb, "b"), "cka")
    assert got.dims == ("layer_a", "layer_b") and got.shape == (2, 3)
    assert list(got["layer_b"].values) == ["b0", "b1", "b2"]
    expected = np.array([[feature_cka(x, y) for y in fb] for x in fa])
    np.testing.assert_allclose(got.values, expected, atol=1e-10)
    assert got.attrs["measure"] == "cka" and got.attrs["measure_label"] == "linear CKA"


@pytest.mark.parametrize("name", [n for n, m in MEASURES.items() if m.gram_score])
def test_core_gram_measure_map_equals_pairwise_scores(name):
    fa, fb = _features(2, (3, 20)), _features(3, (4, 30))
    options = MeasureOptions(shape_alpha=0.3, knn_k=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        got = model_map(_stack(fa, "a"), _stack(fb, "b"), name, options=options)
    score = MEASURES[name].bound(options).gram_score
    prep = MEASURES[name].gram_prepare or (lambda g: g)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)      # CCA's saturation note on the wide layers
        expected = np.array([[score(prep(x @ x.T), prep(y @ y.T)) for y in fb] for x in fa])
    np.testing.assert_allclose(got.values, expected, atol=1e-12)


def test_settings_recorded_in_the_map():
    fa = _features(4, (3, 6))
    m = model_map(_stack(fa, "a"), _stack(fa, "a"), "shape", options=MeasureOptions(shape_alpha=0.2))
    assert m.attrs["measure_shape_alpha"] == 0.2
    np.testing.assert_allclose(np.diag(m.values), 1.0, atol=1e-12)


def test_rsa_map_equals_scipy_spearman():
    from rsa_bridge.rdm import compute_rdm, upper_triangle

    fa, fb = _features(5, (3, 9)), _features(6, (4, 5, 8))
    ra = gram_stack([compute_rdm(f).values for f in fa], ["a0", "a1"], IDS)
    rb = gram_stack([compute_rdm(f).values for f in fb], ["b0", "b1", "b2"], IDS)
    got = model_map(ra, rb, "rsa", method="spearman")
    expected = [[scipy.stats.spearmanr(upper_triangle(x), upper_triangle(y))[0] for y in rb.values] for x in ra.values]
    np.testing.assert_allclose(got.values, expected, atol=1e-12)
    assert got.attrs["method"] == "spearman" and got.attrs["measure_label"] == "RSA (spearman)"


def test_stimuli_aligned_by_id_not_position():
    fa, fb = _features(7, (3,)), _features(8, (5,))
    a, b = _stack(fa, "a"), _stack(fb, "b")
    order = np.random.default_rng(0).permutation(N)
    shuffled = b.isel(stimulus_row=order, stimulus_col=order)
    np.testing.assert_allclose(model_map(a, shuffled, "procrustes").values, model_map(a, b, "procrustes").values,
                               atol=1e-12)


def _bad(kind):
    fa = _features(9, (3, 4))
    a = _stack(fa, "a")
    if kind == "nan":
        b = a.copy()
        b.values[0, 0, 1] = np.nan
        return a, b, "cka", "NaN"
    if kind == "ids":
        return a, a.assign_coords(stimulus_row=[f"x{i}" for i in range(N)], stimulus_col=[f"x{i}" for i in range(N)]), \
            "cka", "only in"
    if kind == "few":
        return a[:, :2, :2], a[:, :2, :2], "cka", "at least 3"
    if kind == "constant":
        return a, gram_stack([np.ones((N, N))], ["c"], IDS), "procrustes", "every layer of the second network is constant"
    if kind == "linear":
        return a, a, "linear", "cannot make a model x model map: it fits a regression"
    if kind == "dims":
        return a, a.values, "cka", "must be a .layer"
    return a, a, "netrep", "unknown measure"


@pytest.mark.parametrize("kind", ["nan", "ids", "few", "constant", "linear", "dims", "unknown"])
def test_hostile_input_refused(kind):
    a, b, measure, message = _bad(kind)
    with pytest.raises(RSABridgeError, match=message):
        model_map(a, b, measure)


def test_one_constant_layer_is_nan_with_a_warning():
    a = _stack(_features(10, (3,)), "a")
    b = gram_stack([np.ones((N, N)), _features(11, (4,))[0] @ _features(11, (4,))[0].T], ["c", "d"], IDS)
    with pytest.warns(RuntimeWarning, match="layer c of the second network is constant"):
        m = model_map(a, b, "cka")
    assert np.isnan(m.values[0, 0]) and np.isfinite(m.values[0, 1])


# --- the app: one pass per network over the same images ------------------------------------------------------

def _transform(image):
    return torch.from_numpy(np.asarray(image.resize((12, 12)), dtype=np.float32) / 255).permute(2, 0, 1)


def _net(seed, width):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, width, 3), nn.ReLU(), nn.Flatten(), nn.Linear(width * 100, 7))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("map") / "stimuli"
    ids = make_stimuli(root, n=N, size=12)
    return root, ids


def _activations(net, root, ids, layers):
    from extractors import extract

    images = torch.stack([_transform(Image.open(root / f"{s}.png").convert("RGB")) for s in ids])
    acts = extract(net, images, layers, stimulus_ids=ids, batch_size=5)
    return [acts[l].values.reshape(len(ids), -1).astype(np.float64) for l in layers]


def test_between_models_equals_numpy_cka_on_the_activations(folder):
    from rsa_bridge.app.between import between_models
    from rsa_bridge.app.network import NetworkOptions
    from rsa_bridge.options import RDMOptions

    root, ids = folder
    net_a, net_b = _net(0, 4), _net(1, 6)
    la, lb = ["0", "1", "3"], ["1", "3"]
    result = between_models(["tiny_a", "tiny_b"], [
        NetworkOptions(models=[net_a], transform=_transform, layers=la, stimuli=root),
        NetworkOptions(models=[net_b], transform=_transform, layers=lb, stimuli=root)],
        measure="cka", rdm=RDMOptions(batch_size=5), progress=False)
    xa, xb = _activations(net_a, root, ids, la), _activations(net_b, root, ids, lb)
    np.testing.assert_allclose(result.values, [[feature_cka(x, y) for y in xb] for x in xa], atol=1e-10)
    at = result.attrs
    assert (at["model_a"], at["model_b"], at["measure"], at["n_stimuli"], at["dataset"]) == \
        ("tiny_a", "tiny_b", "cka", N, "none")
    assert at["weights_a"] == at["weights_b"] == "user-module" and at["state_sha256_a"] != at["state_sha256_b"]
    assert list(result["module_path_b"].values) == lb


def test_between_models_rsa_and_itself(folder, tmp_path):
    from rsa_bridge.app.between import between_models, map_table, write_model_map
    from rsa_bridge.app.network import NetworkOptions
    from rsa_bridge.rdm import compute_rdm, upper_triangle

    root, ids = folder
    net = _net(2, 3)
    result = between_models(["tiny"], NetworkOptions(models=[net], transform=_transform, layers=["0", "3"],
                                                     stimuli=root), measure="rsa", method="pearson", progress=False)
    acts = _activations(net, root, ids, ["0", "3"])
    vec = [upper_triangle(compute_rdm(x).values) for x in acts]
    np.testing.assert_allclose(result.values, np.corrcoef(vec), atol=1e-10)
    assert result.attrs["method"] == "pearson" and result.attrs["metric"] == "correlation"
    written = write_model_map(result, tmp_path / "out")
    with xr.open_dataset(written[0], engine="h5netcdf") as handle:
        back = handle["similarity"].load()
    np.testing.assert_array_equal(back.values, result.values)
    assert back.attrs["model_a"] == "tiny" and back.attrs["measure"] == "rsa"
    table = pd.read_csv(written[1])
    assert list(table.columns) == ["model_a", "layer_a", "model_b", "layer_b", "measure", "method", "similarity"]
    np.testing.assert_allclose(table["similarity"], map_table(result)["similarity"])


@pytest.mark.parametrize("kwargs, message", [
    (dict(models=["a", "b", "c"]), "one or two --model"),
    (dict(measure="linear"), "cannot make a model x model map"),
    (dict(models=["pixels"]), "image-statistics control"),
    (dict(measure="mutual_knn", options=MeasureOptions(knn_k=15)), "at least 17 stimuli"),
    (dict(stimuli=None), "say which stimuli"),
])
def test_between_models_refuses_before_building(folder, kwargs, message):
    from rsa_bridge.app.between import between_models
    from rsa_bridge.app.network import NetworkOptions

    root, _ = folder
    models = kwargs.get("models", ["alexnet_never_built"])
    network = NetworkOptions(weights="none", stimuli=kwargs.get("stimuli", root))
    with pytest.raises(RSABridgeError, match=message):
        between_models(models, network, measure=kwargs.get("measure", "cka"),
                       measure_options=kwargs.get("options"), progress=False)


def test_between_models_refuses_a_layer_of_the_second_network_before_any_pass(folder):
    from rsa_bridge.app.between import between_models
    from rsa_bridge.app.network import NetworkOptions

    root, _ = folder
    counted = _net(0, 4)
    calls = []
    counted.register_forward_hook(lambda *a: calls.append(1))
    with pytest.raises(RSABridgeError, match="nope"):
        between_models(["a", "b"], [NetworkOptions(models=[counted], transform=_transform, layers=["0"], stimuli=root),
                                    NetworkOptions(models=[_net(1, 4)], transform=_transform, layers=["nope"],
                                                   stimuli=root)], progress=False)
    assert calls == []


@pytest.mark.parametrize("argv, message", [
    (["--model", "alexnet", "--model", "vgg16", "--weights", "none", "--weights", "none", "--weights", "none"],
     "--weights is given 3 times for 2 --model"),
    (["--model", "alexnet", "--area", "V4"], "drop --area"),
    (["--model", "alexnet", "--measure", "cka", "--measure", "rsa"], "one measure per map"),
    (["--model", "alexnet", "--model", "alexnet", "--weights", "none", "--layers", "conv1", "--layers", "fc8",
      "--layers", "fc6"], "--layers is given 3 times; give it once (one list for every model) or once per --model (2)"),
    (["--model", "alexnet", "--model", "alexnet", "--weights", "none", "--layers", "conv1", "--layers", ","],
     "--layers is empty"),
])
def test_cli_refusals(argv, message, capsys):
    from rsa_bridge.app.cli import main

    assert main(["compare", "--between-models", *argv]) == 2
    assert message in capsys.readouterr().err


def test_cli_weights_given_twice_without_between_models(capsys):
    from rsa_bridge.app.cli import main

    assert main(["compare", "--model", "alexnet", "--area", "V4", "--weights", "none", "--weights", "none"]) == 2
    assert "--weights is given 2 times" in capsys.readouterr().err


def test_cli_layers_given_twice_without_between_models(capsys):
    from rsa_bridge.app.cli import main

    assert main(["compare", "--model", "alexnet", "--area", "V4", "--weights", "none", "--layers", "conv1",
                 "--layers", "fc8"]) == 2
    assert "--layers is given 2 times; give it once (one list for every model) or once per --model (with " \
           "--between-models)" in capsys.readouterr().err


def test_cli_one_layer_list_per_model(folder, tmp_path, capsys):
    """--layers once per --model: each network its own rows/columns, in order (a 2 x 1 map), the values the
    same as the corresponding cells of the map with one list for both."""
    from rsa_bridge.app.cli import main

    root, _ = folder
    common = ["compare", "--between-models", "--model", "alexnet", "--model", "alexnet", "--weights", "none",
              "--stimuli", str(root), "--measure", "cka", "--quiet", "--no-cache"]
    assert main([*common, "--layers", "conv1,fc8", "--layers", "fc6", "--out", str(tmp_path / "a")]) == 0
    assert main([*common, "--layers", "conv1,fc6,fc8", "--out", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    with xr.open_dataset(tmp_path / "a" / "model_map.nc", engine="h5netcdf") as handle:
        per = handle["similarity"].load()
    with xr.open_dataset(tmp_path / "b" / "model_map.nc", engine="h5netcdf") as handle:
        both = handle["similarity"].load()
    assert per.shape == (2, 1)
    np.testing.assert_allclose(per.values[:, 0], both.values[[0, 2], 1], rtol=0, atol=1e-12)


def test_cli_map_and_figure(folder, tmp_path, capsys):
    """alexnet (untrained) with itself on 16 tiny images, through the command line, then the figure."""
    from rsa_bridge.app.cli import main

    root, _ = folder
    out = tmp_path / "map"
    code = main(["compare", "--between-models", "--model", "alexnet", "--weights", "none", "--layers", "conv1,fc8",
                 "--stimuli", str(root), "--measure", "procrustes", "--out", str(out), "--quiet", "--no-cache"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "MODEL MAP procrustes: Procrustes similarity" in printed
    with xr.open_dataset(out / "model_map.nc", engine="h5netcdf") as handle:
        m = handle["similarity"].load()
    assert m.shape == (2, 2) and m.attrs["weights_a"] == "none"
    np.testing.assert_allclose(np.diag(m.values), 1.0, atol=1e-10)
    np.testing.assert_allclose(m.values, m.values.T, atol=1e-12)
    areas = tmp_path / "areas"
    areas.mkdir()
    pd.DataFrame({"model": ["alexnet"] * 2, "layer": ["conv1", "fc8"], "area": ["V4", "V4"], "measure": ["rsa"] * 2,
                  "method": ["spearman"] * 2, "similarity": [0.1, 0.3]}).to_csv(areas / "results.csv", index=False)
    assert main(["figure", "model_map", "--results", str(out), "--areas", str(areas)]) == 0
    assert (out / "model_map.png").is_file() and (out / "model_map.pdf").is_file()
    from analyses.figures.model_map import model_map_figure

    fig, _, handles = model_map_figure(m, pd.read_csv(areas / "results.csv"))
    assert handles["marks"] == {("a", "V4"): "fc8", ("b", "V4"): "fc8"}
    assert handles["colorbar"].ax.get_ylabel() == "Procrustes similarity"
    np.testing.assert_array_equal(handles["image"].get_array(), m.values)
    import matplotlib.pyplot as plt
    plt.close(fig)
    assert main(["figure", "model_map", "--results", str(areas)]) == 2      # a compare folder is not a map
