"""Figure scripts (analyses/figures): each writes a non-empty vector PDF (fonts embedded) and PNG at journal
width, and what it plots equals the result data it was drawn from (read back from the returned artists)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from PIL import Image
from scipy.spatial.distance import pdist, squareform

from analyses.figures import best_layer, common, layer_heatmap, layer_profile, missed_detections, rdm_panels
from rsa_bridge.figures import DOUBLE_MM, SINGLE_MM, STYLE, save_figure
from rsa_bridge.rdm import COL, ROW
from tests.helpers import make_rdm_dataset, make_stimuli

RSA_SCRIPTS = [layer_profile, layer_heatmap, rdm_panels, best_layer]


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory):
    """A real compare run on a toy set (12 stimuli, V1 with 1 RDM, IT with 3 subjects), written as
    ``rsa-bridge compare --out`` writes it; model RDMs from random features (no network needed)."""
    from rsa_bridge.app.pipeline import StatsOptions, compare_precomputed
    from rsa_bridge.app.report import write_outputs

    root = tmp_path_factory.mktemp("figures")
    ids = make_stimuli(root / "stimuli", n=12)
    make_rdm_dataset(root / "toy.nc", ids)
    rng = np.random.default_rng(3)
    layers = ["l1", "l2", "l3", "l4"]
    rdms = xr.DataArray(np.stack([squareform(pdist(rng.normal(size=(12, 20)), "correlation")) for _ in layers]),
                        dims=("layer", ROW, COL), coords={"layer": layers, ROW: ids, COL: ids})
    result = compare_precomputed(rdms, dataset=str(root / "toy.nc"), model_name="toynet",
                                 stats=StatsOptions(bootstrap=40, seed=0))
    write_outputs(result, root / "results")
    return root


def _png_width_mm(path) -> float:
    with Image.open(path) as im:
        return im.size[0] / 300 * 25.4


@pytest.mark.parametrize("script", RSA_SCRIPTS, ids=lambda m: m.NAME)
def test_script_writes_pdf_and_png_at_journal_width(script, results_dir, tmp_path):
    out = tmp_path / "out"
    assert script.main(["--out", str(out), "--results", str(results_dir / "results"),
                        "--dataset", str(results_dir / "toy.nc")]) == 0
    pdf, png = out / f"{script.NAME}.pdf", out / f"{script.NAME}.png"
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 2000
    assert b"/FontFile2" in data, "TrueType fonts must be embedded (pdf.fonttype 42)"
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 2000
    assert min(abs(_png_width_mm(png) - w) for w in (SINGLE_MM, DOUBLE_MM)) < 0.5


def test_layer_profile_plots_the_table(results_dir):
    table = pd.read_csv(results_dir / "results" / "results.csv")
    fig, axes, handles = layer_profile.profile_per_area(table)
    assert [ax.get_title().split(" ")[0] for ax in axes] == ["V1", "IT"]
    for area in ("V1", "IT"):
        rows = table[table["area"] == area]
        np.testing.assert_allclose(handles[f"toynet {area}"].get_ydata(), rows["similarity"])
        segments = handles[f"toynet {area} ci"].get_segments()
        np.testing.assert_allclose([s[0][1] for s in segments], rows["ci_low"])
        np.testing.assert_allclose([s[1][1] for s in segments], rows["ci_high"])
    band = handles["IT ceiling"]
    it = table[table["area"] == "IT"].iloc[0]
    ys = band.get_path().transformed(band.get_patch_transform()).vertices[:, 1] if hasattr(band, "get_patch_transform") \
        else band.get_xy()[:, 1]
    np.testing.assert_allclose([ys.min(), ys.max()], [it["ceiling_lower"], it["ceiling_upper"]])
    assert "V1 ceiling" not in handles  # one RDM: no ceiling
    assert fig.get_size_inches()[0] * 25.4 == pytest.approx(DOUBLE_MM)


def test_heatmap_cells_are_the_similarities(results_dir):
    table = pd.read_csv(results_dir / "results" / "results.csv")
    fig, ax, handles = layer_heatmap.layer_area_heatmap(table)
    expected = table.pivot(index="layer", columns="area", values="similarity").loc[["l1", "l2", "l3", "l4"], ["V1", "IT"]]
    np.testing.assert_allclose(np.asarray(handles["image"].get_array()), expected.to_numpy())
    assert handles["cells"][("l2", "IT")].get_text() == f"{expected.loc['l2', 'IT']:.2f}"
    best_row = int(np.argmax(expected["IT"].to_numpy()))
    assert handles["best"]["IT"].get_xy() == (1 - 0.5, best_row - 0.5)


def _percentiles(rdm: np.ndarray) -> np.ndarray:
    """Independent check: pandas average ranks of the upper triangle, scaled to 0-100."""
    n = rdm.shape[0]
    iu = np.triu_indices(n, 1)
    ranks = pd.Series(rdm[iu]).rank(method="average").to_numpy()
    out = np.full((n, n), np.nan)
    out[iu] = out[iu[1], iu[0]] = (ranks - 1) / (len(ranks) - 1) * 100
    return out


def test_rdm_panels_show_percentiles_grouped_by_category(results_dir):
    cached = common.read_results(results_dir / "results")
    panels, dataset = rdm_panels.panels_from_results(cached, ["l1", "l4"], dataset=str(results_dir / "toy.nc"))
    categories = rdm_panels.dataset_categories(dataset)
    fig, axes, handles = rdm_panels.rdm_panels(panels, categories)
    order = handles["order"]
    labels = [categories[s] for s in order]
    assert labels == sorted(labels, key=lambda c: [categories[s] for s in cached.model_rdms["toynet"][ROW].values].index(c))
    assert [b[0] for b in handles["blocks"]] == list(dict.fromkeys(labels))
    layer = cached.model_rdms["toynet"].sel(layer="l4").sel({ROW: order, COL: order}).values
    np.testing.assert_allclose(np.asarray(handles["toynet l4"].get_array()), _percentiles(layer), equal_nan=True)
    it = dataset["IT"].mean("subject").sel({ROW: order, COL: order}).values
    np.testing.assert_allclose(np.asarray(handles["IT (mean of 3)"].get_array()), _percentiles(it), equal_nan=True)
    assert all(im.get_clim() == (0, 100) for k, im in handles.items() if k not in ("order", "blocks", "colorbar"))


def test_best_layer_bars_are_bootstrap_probabilities(results_dir):
    cached = common.read_results(results_dir / "results")
    fig, axes, handles = best_layer.best_layer_bars(cached.table, n_samples=40)
    for area in ("V1", "IT"):
        rows = cached.table[cached.table["area"] == area]
        heights = [bar.get_height() for bar in handles[f"toynet {area}"]]
        np.testing.assert_allclose(heights, rows["p_best"])
        assert np.isclose(sum(heights), 1.0)
        best = handles[f"toynet {area} best"]
        assert best.get_height() == pytest.approx(float(rows.loc[rows["is_best"], "p_best"].iloc[0]))
    # independent check of p_best from the stored bootstrap samples: the fraction of samples each layer wins
    samples = cached.results["similarity_bootstrap"].sel(area="IT").values
    wins = np.bincount(np.argmax(samples, axis=1), minlength=samples.shape[1]) / samples.shape[0]
    np.testing.assert_allclose([b.get_height() for b in handles["toynet IT"]], wins)


def test_best_layer_without_bootstrap_is_one_line_error(results_dir, tmp_path, capsys):
    folder = tmp_path / "nob"
    folder.mkdir()
    pd.read_csv(results_dir / "results" / "results.csv").drop(columns=["p_best", "is_best"]).to_csv(
        folder / "results.csv", index=False)
    code = common.run(best_layer.main, ["--out", str(tmp_path / "o"), "--results", str(folder)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--bootstrap" in err[0]
    assert not (tmp_path / "o" / "best_layer.pdf").exists()


def _toy_frames() -> xr.Dataset:
    frames = np.arange(12)
    best = np.linspace(0.9, 0.2, 12)
    flags = lambda idx: (("frame", "object"), np.isin(frames, idx)[:, None])  # noqa: E731
    return xr.Dataset(
        {"best_score": (("frame", "object"), best[:, None]),
         "max_score_iou": (("frame", "object"), (best + 0.05)[:, None]),
         "detection_score": (("frame", "object"), (best - 0.05)[:, None]),
         "best_iou": (("frame", "object"), np.linspace(0.4, 0.9, 12)[:, None]),
         "anchor_switch": flags([4, 9]), "missed": flags([5, 6, 10]), "momentary_miss": flags([5])},
        coords={"frame": frames, "object": ["car"], "label": ("object", [3])},
        attrs={"score_threshold": 0.5, "anchor_iou": 0.5})


def test_missed_detection_timeline_plots_the_dataset(tmp_path):
    ds = _toy_frames()
    fig, axes, handles = missed_detections.timeline(ds)
    for name in ("best_score", "max_score_iou", "detection_score", "best_iou"):
        np.testing.assert_array_equal(handles[name].get_xdata(), ds["frame"].values)
        np.testing.assert_allclose(handles[name].get_ydata(), ds[name].sel(object="car").values)
    assert handles["threshold"].get_ydata()[0] == 0.5
    assert (handles["switches"], handles["misses"], handles["momentary"]) == ([4, 9], [5, 6, 10], [5])
    # the script reads a cached missed_detections.nc and writes PDF + PNG
    ds.to_netcdf(tmp_path / "missed_detections.nc", engine="h5netcdf")
    assert missed_detections.main(["--out", str(tmp_path / "o"), "--results", str(tmp_path)]) == 0
    assert (tmp_path / "o" / "missed_detections.pdf").stat().st_size > 2000
    assert abs(_png_width_mm(tmp_path / "o" / "missed_detections.png") - DOUBLE_MM) < 0.5


def test_style_is_packaged_and_applied(tmp_path):
    import matplotlib
    import matplotlib.pyplot as plt

    assert STYLE.is_file()
    before = matplotlib.rcParams["pdf.fonttype"]
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1], label="x")
    paths = save_figure(fig, tmp_path / "f")
    assert [p.suffix for p in paths] == [".pdf", ".png"] and b"/FontFile2" in paths[0].read_bytes()
    assert matplotlib.rcParams["pdf.fonttype"] == before  # the style does not leak into the caller's settings


@pytest.mark.slow
def test_scripts_compute_and_cache_results_when_none_given(results_dir, tmp_path):
    """No cached results: the compare job runs (untrained AlexNet on the toy set) and is reused."""
    argv = ["--out", str(tmp_path), "--dataset", str(results_dir / "toy.nc"), "--bootstrap", "5"]
    assert layer_heatmap.main(argv) == 0
    cached = common.read_results(tmp_path / "results")
    assert set(cached.table["layer"]) >= {"conv1", "fc8"} and cached.table["weights"].iloc[0] == "none"
    stamp = (tmp_path / "results" / "results.csv").stat().st_mtime_ns
    assert best_layer.main(argv) == 0
    assert (tmp_path / "results" / "results.csv").stat().st_mtime_ns == stamp
    assert (tmp_path / "best_layer.png").stat().st_size > 2000


def _toy_sweep(tmp_path):
    """A 2-λ sweep Dataset over 3 images (8 x 12 pixels, depth at 4 x 6), λ=1 collapsed, and its image folder."""
    from analyses.depth_mask.scenes import make_scenes, write_pngs

    scenes = make_scenes(3, height=8, width=12, seed=0)
    write_pngs(scenes, tmp_path / "images")
    rng = np.random.default_rng(0)
    lam = [1.0, 4.0]
    ds = xr.Dataset(
        {"mask": (("lam", "presentation", "y", "x"), np.stack([np.ones((3, 8, 12)), rng.uniform(size=(3, 8, 12))])),
         "depth": (("presentation", "y_depth", "x_depth"), rng.uniform(2, 9, size=(3, 4, 6))),
         "depth_masked": (("lam", "presentation", "y_depth", "x_depth"), rng.uniform(2, 9, size=(2, 3, 4, 6))),
         "collapse": ("lam", ["all_ones", "none"])},
        coords={"lam": lam, "stimulus_id": ("presentation", scenes.stimulus_ids)})
    ds.to_netcdf(tmp_path / "depth_masks.nc", engine="h5netcdf")
    return ds


def test_depth_mask_grid_plots_the_sweep(tmp_path):
    from analyses.figures import depth_masks

    ds = _toy_sweep(tmp_path)
    stored, pixels = depth_masks.load(tmp_path)
    fig, axes, handles = depth_masks.depth_mask_grid(stored, pixels, rows=2)
    assert axes.shape == (2, 6)
    for i, sid in enumerate(["scene_0000", "scene_0001"]):
        np.testing.assert_allclose(np.asarray(handles[("depth", sid)].get_array()), ds["depth"].values[i])
        for k, lam in enumerate([1.0, 4.0]):
            np.testing.assert_allclose(np.asarray(handles[("mask", lam, sid)].get_array()), ds["mask"].values[k, i])
            np.testing.assert_allclose(np.asarray(handles[("masked_depth", lam, sid)].get_array()),
                                       ds["depth_masked"].values[k, i])
            # one depth colour scale per row: that of N(I)
            assert handles[("masked_depth", lam, sid)].get_clim() == handles[("depth", sid)].get_clim()
    image = np.asarray(handles[("image", "scene_0000")].get_array())
    np.testing.assert_allclose(image, np.asarray(Image.open(tmp_path / "images" / "scene_0000.png")) / 255, atol=1e-6)
    assert "collapsed" in axes[0, 2].get_title() and "collapsed" not in axes[0, 4].get_title()
    assert depth_masks.main(["--out", str(tmp_path / "o"), "--results", str(tmp_path)]) == 0
    assert (tmp_path / "o" / "depth_masks.pdf").read_bytes().startswith(b"%PDF")
    assert abs(_png_width_mm(tmp_path / "o" / "depth_masks.png") - DOUBLE_MM) < 0.5
