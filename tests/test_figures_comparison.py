"""Model-comparison bars with pairwise-test brackets, MDS maps, RDMs with image icons, and `rsa-bridge figure`:
plotted values equal the result data; p-values equal rsatoolbox's bootstrap pair test, corrected by a
hand-written Holm; the figures' texts do not overlap."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from PIL import Image
from scipy.spatial.distance import pdist, squareform

from rsa_bridge.figures import mds_embedding, mds_plot, model_comparison, overlapping_texts, rdm_with_icons
from rsa_bridge.figures.comparison import pairwise_bootstrap_p
from rsa_bridge.rdm import COL, ROW
from tests.helpers import make_rdm_dataset, make_stimuli

MODELS = {"vit_b_16:encoder.layers.encoder_layer_11": 0.50, "mobilenet_v2:features.18": 0.30,
          "resnet50:layer4": 0.29, "pixels:pixels": 0.10}


def _results(n_boot: int = 400, seed: int = 0) -> xr.Dataset:
    """A results.nc-like Dataset: 4 models x 2 areas with bootstrap samples around set means."""
    rng = np.random.default_rng(seed)
    labels = list(MODELS)
    means = np.array(list(MODELS.values()))
    samples = means[None, :, None] + 0.03 * rng.normal(size=(n_boot, len(labels), 2))
    observed = means[:, None] + np.array([[0.0, -0.05]])
    return xr.Dataset(
        {"similarity": (("model_layer", "area"), observed),
         "similarity_ci_low": (("model_layer", "area"), np.percentile(samples, 2.5, axis=0)),
         "similarity_ci_high": (("model_layer", "area"), np.percentile(samples, 97.5, axis=0)),
         "similarity_bootstrap": (("bootstrap_sample", "model_layer", "area"), samples),
         "ceiling_lower": ("area", [0.55, np.nan]), "ceiling_upper": ("area", [0.62, np.nan])},
        coords={"model_layer": labels, "model": ("model_layer", [l.split(":")[0] for l in labels]),
                "layer": ("model_layer", [l.split(":")[1] for l in labels]), "area": ["IT", "V4"]},
        attrs={"method": "spearman"})


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm step-down, written out: sorted p_(k) * (m - k), running maximum, capped at 1."""
    order = np.argsort(p)
    out = np.empty_like(p)
    running = 0.0
    for rank, k in enumerate(order):
        running = max(running, min(1.0, p[k] * (len(p) - rank)))
        out[k] = running
    return out


def test_model_comparison_bars_p_values_and_brackets():
    from rsatoolbox.util.inference_util import bootstrap_pair_tests

    results = _results()
    fig, ax, h = model_comparison(results, "IT")
    rows = h["rows"]
    assert rows == list(MODELS)  # already sorted from best to worst
    np.testing.assert_allclose([b.get_height() for b in h["bars"]], results["similarity"].sel(area="IT", model_layer=rows))
    segments = h["ci"].get_segments()
    np.testing.assert_allclose([s[0][1] for s in segments], results["similarity_ci_low"].sel(area="IT", model_layer=rows))
    # p-values: rsatoolbox's bootstrap pair test; correction: Holm written out above
    evaluations = results["similarity_bootstrap"].sel(area="IT", model_layer=rows).values
    expected = bootstrap_pair_tests(evaluations)
    p = np.array([pair["p"] for pair in h["pairs"]])
    pairs = [(rows.index(pair["a"]), rows.index(pair["b"])) for pair in h["pairs"]]
    np.testing.assert_allclose(p, [expected[i, j] for i, j in pairs])
    np.testing.assert_allclose([pair["p_corrected"] for pair in h["pairs"]], _holm(p))
    # brackets exactly over the significant pairs; mobilenet_v2 vs resnet50 (0.30 vs 0.29) is not one
    significant = {(pair["a"], pair["b"]) for pair in h["pairs"] if pair["p_corrected"] < 0.05}
    assert set(h["brackets"]) == significant
    assert ("mobilenet_v2:features.18", "resnet50:layer4") not in significant and len(significant) == 5
    low, up = (lambda v: (v.min(), v.max()))(h["ceiling"].get_path().transformed(
        h["ceiling"].get_patch_transform()).vertices[:, 1])
    assert (low, up) == pytest.approx((0.55, 0.62))
    assert "Holm" in h["note"].get_text() and overlapping_texts(fig) == []
    # brackets sit above every bar, CI and the ceiling
    assert min(line.get_ydata().min() for line in h["brackets"].values()) > 0.62


def test_model_comparison_sorting_fdr_and_errors():
    from rsa_bridge.errors import RSABridgeError
    from scipy.stats import false_discovery_control

    results = _results()
    fig, ax, h = model_comparison(results, "V4", rows=["pixels:pixels", "resnet50:layer4"], correction="fdr",
                                  sort=True)
    assert h["rows"] == ["resnet50:layer4", "pixels:pixels"] and h["ceiling"] is None
    pairs, p, corrected = pairwise_bootstrap_p(results["similarity_bootstrap"].sel(area="V4").values, "fdr")
    np.testing.assert_allclose(corrected, false_discovery_control(p, method="bh"))
    with pytest.raises(RSABridgeError, match="no area"):
        model_comparison(results, "MT")
    with pytest.raises(RSABridgeError, match="bootstrap"):
        model_comparison(results.drop_vars("similarity_bootstrap"), "IT")


def _points_rdm(rng, n=15):
    points = rng.normal(size=(n, 2)) * [3.0, 1.0]
    ids = [f"s{k:02d}" for k in range(n)]
    return points, xr.DataArray(squareform(pdist(points)), dims=(ROW, COL), coords={ROW: ids, COL: ids})


def test_classical_mds_recovers_euclidean_points(rng):
    points, rdm = _points_rdm(rng)
    coords = mds_embedding(rdm)
    np.testing.assert_allclose(pdist(coords), pdist(points), atol=1e-9)  # exact for Euclidean distances
    categories = pd.Series(["ab"[k % 2] for k in range(15)], index=rdm[ROW].values)
    fig, ax, h = mds_plot(rdm, categories)
    np.testing.assert_allclose(h["points"].get_offsets(), coords)
    assert [t.get_text() for t in h["legend"].get_texts()] == ["a", "b"]
    assert overlapping_texts(fig) == []


def test_metric_mds_is_sklearn_smacof_seeded(rng):
    from sklearn.manifold import MDS

    _, rdm = _points_rdm(rng, 10)
    ours = mds_embedding(rdm, method="metric", seed=3)
    theirs = MDS(n_components=2, metric="precomputed", n_init=4, init="random", random_state=3,
                 normalized_stress="auto").fit_transform(rdm.values)
    np.testing.assert_allclose(ours, theirs)
    np.testing.assert_allclose(ours, mds_embedding(rdm, method="metric", seed=3))


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("icons")
    ids = make_stimuli(root / "stimuli", n=12)
    make_rdm_dataset(root / "toy.nc", ids)
    return root, ids


def test_rdm_with_icons_shows_the_rdm_and_the_stimuli(toy):
    from stimuli import load_stimulus_set

    root, ids = toy
    ds = xr.open_dataset(root / "toy.nc", engine="h5netcdf").load()
    rdm = ds["V1"]
    stim = load_stimulus_set(root / "stimuli")
    fig, ax, h = rdm_with_icons(rdm, stim, percentile=False, title="V1")
    shown_ids = [str(s) for s in rdm[ROW].values]
    assert h["ids"] == shown_ids
    np.testing.assert_allclose(np.asarray(h["image"].get_array()), rdm.transpose(ROW, COL).values)
    assert [sid for sid, axis, _ in h["icons"] if axis == "y"] == shown_ids
    sid, _, box = h["icons"][0]
    thumb = Image.open(root / "stimuli" / f"{sid}.png").convert("RGB")
    thumb.thumbnail((64, 64))
    np.testing.assert_array_equal(box.offsetbox.get_data(), np.asarray(thumb))
    assert overlapping_texts(fig) == []
    fig, ax, h = rdm_with_icons(rdm, stim, every=5)  # percentiles, every 5th icon
    assert [sid for sid, axis, _ in h["icons"] if axis == "x"] == shown_ids[::5]
    assert np.nanmax(np.asarray(h["image"].get_array())) == pytest.approx(100.0)


@pytest.fixture(scope="module")
def controls_results(toy):
    """A real compare run of the four image-statistics controls on the toy set (no network needed)."""
    from rsa_bridge.app.pipeline import StatsOptions, compare_models
    from rsa_bridge.app.report import write_outputs

    root, _ = toy
    result = compare_models(["pixels", "luminance_contrast", "gabor"], dataset=str(root / "toy.nc"),
                            stats=StatsOptions(bootstrap=50, seed=0), cache=False, progress=False)
    write_outputs(result, root / "results")
    return root


@pytest.mark.parametrize("kind,extra", [("model_comparison", ["--area", "IT"]), ("layer_profile", []),
                                        ("mds", ["--icons"]), ("rdm_icons", ["--rdm", "IT"]),
                                        ("rdm_panels", ["--layers", "pixels"])])
def test_rsa_bridge_figure_command_writes_each_kind(kind, extra, controls_results, tmp_path):
    from rsa_bridge.app.cli import main

    root = controls_results
    code = main(["figure", kind, "--results", str(root / "results"), "--out", str(tmp_path),
                 "--dataset", str(root / "toy.nc"), *extra])
    assert code == 0
    assert (tmp_path / f"{kind}.pdf").read_bytes().startswith(b"%PDF")
    assert (tmp_path / f"{kind}.png").stat().st_size > 2000


def test_figure_command_errors_are_one_line(tmp_path, capsys):
    from rsa_bridge.app.cli import main

    assert main(["figure", "model_comparison", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "results.csv" in err[0]
    with pytest.raises(SystemExit) as exit_info:
        main(["figure", "no_such_kind"])
    assert exit_info.value.code == 2


def test_figure_command_module_imports_nothing_heavy():
    code = ("import sys, rsa_bridge; before = set(sys.modules); import analyses.figures.cli; "
            "new = set(sys.modules) - before; "
            "print(sorted(m for m in new if m.split('.')[0] in ('torch', 'matplotlib', 'extractors')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
