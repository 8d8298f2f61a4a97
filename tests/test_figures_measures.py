"""Results that never mix measures, and figures a journal accepts (issue 25 items 1, 5, 6, 9).

A real 3-measure compare run (rsa, cka, linear on a toy network, written by the pipeline's writer) is drawn by
every figure kind: each figure either shows one measure, with that measure's label and exactly the values of
results.csv filtered to it (read back from the Axes), or refuses with one line. Render checks: model_comparison
with 21 layers has no overlapping texts and a y range covering every CI end; the glyphs used exist in the font.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.stats import rankdata

from analyses.figures import best_layer, common, layer_heatmap, layer_profile
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.figures import DOUBLE_MM, SINGLE_MM, model_comparison, overlapping_texts, texts_outside
from rsa_bridge.figures.comparison import smallest_corrected_p
from rsa_bridge.measures.results import ceiling_on_scale, measure_label, measures_in, select_measure

MEASURE_NAMES = ["rsa", "cka", "linear"]
#: the labels the figures must show, written out by hand (not read from the registry)
LABELS = {"rsa": "RSA (Spearman r)", "cka": "linear CKA", "linear": "linear predictivity (median Pearson r, ridge)"}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    """compare with --measure rsa --measure cka --measure linear on a 3-layer toy network (30 stimuli, V1 with
    8 neuroids x 4 repetitions), 20 bootstrap samples, written with write_outputs."""
    from rsa_bridge.app.pipeline import RDMOptions, StatsOptions, compare_model
    from rsa_bridge.app.report import write_outputs
    from rsa_bridge.measures.scoring import MeasureOptions
    from rsa_bridge.neural.schema import make_rates
    from tests.helpers import make_rdm_dataset, make_stimuli
    from tests.test_measures_compare import N, Counting, _transform

    root = tmp_path_factory.mktemp("three_measures")
    ids = make_stimuli(root / "stimuli", n=N, size=16)
    make_rdm_dataset(root / "toy.nc", ids)
    rng = np.random.default_rng(0)
    signal = rng.normal(size=(N, 8))
    values = np.concatenate([signal + 0.5 * rng.normal(size=signal.shape) for _ in range(4)])
    rates = make_rates(values, stimulus_ids=ids * 4, repetitions=np.repeat(np.arange(4), N),
                       neuroid_ids=[f"n{j}" for j in range(8)], region="V1")
    result = compare_model("toy", ["V1"], dataset=str(root / "toy.nc"), layers=["conv", "relu", "fc"],
                           model=Counting(), transform=_transform, progress=False, rdm=RDMOptions(batch_size=8),
                           measures=MEASURE_NAMES, measure_options=MeasureOptions(responses=rates, n_splits=5),
                           stats=StatsOptions(bootstrap=20, seed=0))
    write_outputs(result, root / "results")
    return root


def _csv(root) -> pd.DataFrame:
    return pd.read_csv(root / "results" / "results.csv")


def _only(table: pd.DataFrame, measure: str) -> pd.DataFrame:
    """Independent filter of results.csv (plain boolean indexing)."""
    return table[table["measure"] == measure].reset_index(drop=True)


def _figure(argv, capsys):
    from rsa_bridge.app.cli import main

    code = main(["figure", *argv])
    return code, capsys.readouterr().err.strip().splitlines()


# --- the readers --------------------------------------------------------------------------------------------

def test_reader_returns_one_measure_and_refuses_a_mix(three):
    table = _csv(three)
    assert measures_in(table) == MEASURE_NAMES and len(table) == 9
    with pytest.raises(RSABridgeError, match="--measure") as err:
        select_measure(table)
    assert "\n" not in str(err.value)
    for m in MEASURE_NAMES:
        pd.testing.assert_frame_equal(select_measure(table, m), _only(table, m))
    with pytest.raises(RSABridgeError, match="no cka scores"):
        select_measure(_only(table, "rsa"), "cka")
    with pytest.raises(RSABridgeError, match="unknown measure"):
        select_measure(table, "no_such_measure")
    old = _only(table, "rsa").drop(columns=["measure"])  # results written before measures existed: RSA
    assert measures_in(old) == ["rsa"] and len(select_measure(old)) == 3
    cached = common.read_results(three / "results")
    assert cached.measures == MEASURE_NAMES
    with pytest.raises(RSABridgeError):
        cached.rows()
    np.testing.assert_array_equal(cached.rows("linear")["similarity"], _only(table, "linear")["similarity"])


def test_labels_and_ceiling_scale_come_from_the_registry():
    assert {m: measure_label(m, method) for m, method in
            [("rsa", "spearman"), ("cka", "linear_cka"), ("linear", "ridge")]} == LABELS
    assert ceiling_on_scale("linear", 0.749) == pytest.approx(0.749 ** 0.5)   # a perfect model's r
    assert ceiling_on_scale("cka", 0.749) == 0.749
    assert np.isnan(ceiling_on_scale("linear", -0.1))


def test_drawing_functions_refuse_a_mixed_table(three):
    from rsa_bridge.figures import layer_profile as draw_profile

    table = _csv(three)
    for draw in (layer_heatmap.layer_area_heatmap, draw_profile, best_layer.best_layer_bars):
        with pytest.raises(RSABridgeError, match="never mixed"):
            draw(table)


# --- every figure kind on a 3-measure folder ----------------------------------------------------------------

@pytest.mark.parametrize("kind", ["layer_heatmap", "layer_profile", "best_layer"])
def test_figure_command_writes_one_file_per_measure(kind, three, tmp_path, capsys):
    code, err = _figure([kind, "--results", str(three / "results"), "--out", str(tmp_path), "--dpi", "60"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(f"{kind}_{m}.png" for m in MEASURE_NAMES)
    code, _ = _figure([kind, "--results", str(three / "results"), "--out", str(tmp_path / "one"), "--measure", "cka",
                       "--dpi", "60"], capsys)
    assert code == 0 and [p.name for p in (tmp_path / "one").glob("*.png")] == [f"{kind}_cka.png"]


@pytest.mark.parametrize("measure", MEASURE_NAMES)
def test_heatmap_shows_one_measure(measure, three):
    table = _csv(three)
    fig, ax, h = layer_heatmap.layer_area_heatmap(common.read_results(three / "results").rows(measure))
    rows = _only(table, measure)
    np.testing.assert_allclose(np.asarray(h["image"].get_array())[:, 0], rows["similarity"])
    assert h["colorbar"].ax.get_ylabel() == LABELS[measure]
    best = int(np.argmax(rows["similarity"].to_numpy()))
    assert h["best"]["V1"].get_xy() == (-0.5, best - 0.5)
    assert "in-sample best" in ax.get_title(loc="left")


@pytest.mark.parametrize("measure", MEASURE_NAMES)
def test_profile_shows_one_measure_with_its_ceiling_on_its_scale(measure, three):
    from rsa_bridge.figures import layer_profile as draw_profile

    rows = _only(_csv(three), measure)
    fig, ax, h = draw_profile(common.read_results(three / "results").rows(measure), by="area")
    np.testing.assert_allclose(h["toy V1"].get_ydata(), rows["similarity"])
    np.testing.assert_allclose([s[0][1] for s in h["toy V1 ci"].get_segments()], rows["ci_low"])
    assert ax.get_ylabel().replace("\n", " ") == LABELS[measure]
    if measure == "rsa":  # one RDM, but rates: the split-half RSA ceiling, drawn as a band lower..upper
        band = h["V1 ceiling"].get_path().get_extents(h["V1 ceiling"].get_transform()).transformed(
            ax.transData.inverted())
        assert (band.y0, band.y1) == pytest.approx((rows["ceiling_lower"].iloc[0], rows["ceiling_upper"].iloc[0]))
    else:
        expected = rows["measure_ceiling"].iloc[0] ** (0.5 if measure == "linear" else 1.0)
        assert h["V1 ceiling"].get_ydata()[0] == pytest.approx(expected)
        legend = [t.get_text() for t in h["legend"].get_texts()]
        assert sum("ceiling" in t for t in legend) == 1
        assert any(("√" in t) == (measure == "linear") for t in legend if "ceiling" in t)
    assert overlapping_texts(fig) == [] and texts_outside(fig) == []


@pytest.mark.parametrize("measure", MEASURE_NAMES)
def test_best_layer_shows_one_measure(measure, three):
    rows = _only(_csv(three), measure)
    fig, axes, h = best_layer.best_layer_bars(common.read_results(three / "results").rows(measure), n_samples=20)
    np.testing.assert_allclose([b.get_height() for b in h["toy V1"]], rows["p_best"])
    assert h["toy V1 best"] is h["toy V1"][int(np.argmax(rows["similarity"]))]
    assert LABELS[measure] in h["title"].get_text().replace("\n", " ")
    assert overlapping_texts(fig) == [] and texts_outside(fig) == []
    texts = [t.get_text() for t in axes[0].texts]
    assert texts == ["in-sample\nbest"]
    assert ("neuroids" in axes[0].get_ylabel()) == (measure == "linear")


def test_model_comparison_draws_rsa_and_refuses_other_measures(three, tmp_path, capsys):
    code, err = _figure(["model_comparison", "--results", str(three / "results"), "--out", str(tmp_path),
                         "--dpi", "60"], capsys)
    assert code == 0 and [p.name for p in tmp_path.glob("*.png")] == ["model_comparison_rsa.png"]
    assert any("cka, linear not drawn" in line for line in err)
    cached = common.read_results(three / "results")
    fig, ax, h = model_comparison(cached.results, "V1", rows=[str(r) for r in cached.results["model_layer"].values],
                                  sort=False)
    np.testing.assert_allclose([b.get_height() for b in h["bars"]], _only(_csv(three), "rsa")["similarity"])
    assert ax.get_ylabel().split("\n")[0] == LABELS["rsa"]
    for measure in ("cka", "linear"):
        code, err = _figure(["model_comparison", "--results", str(three / "results"), "--out", str(tmp_path / "x"),
                             "--measure", measure], capsys)
        assert code == 2 and len(err) == 1 and "rsa only" in err[0]
    assert not (tmp_path / "x").exists()


def test_measure_profile_panels_and_ceilings(three):
    """compare's profile.png of several measures: a panel per measure, each with its own values, label and
    ceiling on its scale (RSA band, CKA dashed at the split-half CKA, linear dashed at √reliability)."""
    from rsa_bridge.measures.plots import measure_profile

    table = _csv(three)
    fig, axes = measure_profile(table)
    assert len(axes) == 3
    for ax, measure in zip(axes, MEASURE_NAMES):
        rows = _only(table, measure)
        (line,) = [l for l in ax.lines if l.get_gid() == f"{measure} toy V1"]
        np.testing.assert_allclose(line.get_ydata(), rows["similarity"])
        assert ax.get_ylabel().replace("\n", " ") == LABELS[measure]
        ceilings = [a for a in ax.get_children() if a.get_gid() == f"{measure} V1 ceiling"]
        if measure == "rsa":  # the split-half RSA ceiling from the rates: one band, lower to upper
            [band] = ceilings
            box = band.get_path().get_extents(band.get_transform()).transformed(ax.transData.inverted())
            assert (box.y0, box.y1) == pytest.approx((rows["ceiling_lower"].iloc[0], rows["ceiling_upper"].iloc[0]))
            continue
        expected = rows["measure_ceiling"].iloc[0] ** (0.5 if measure == "linear" else 1.0)
        assert ceilings[0].get_ydata()[0] == pytest.approx(expected)
        [entry] = ax.get_legend().get_texts()  # one entry, saying the definition
        assert ("√" in entry.get_text()) == (measure == "linear")
    assert overlapping_texts(fig) == [] and texts_outside(fig) == []


def test_agreement_figure_integer_ranks_in_house_style(three):
    from rsa_bridge.measures.agreement import agreement_figure

    table = _csv(three)
    fig = agreement_figure(table)
    ax = fig.axes[0]
    fig.canvas.draw()
    for measure in MEASURE_NAMES:
        (line,) = [l for l in ax.lines if l.get_gid() == f"toy {measure} V1"]
        expected = rankdata(-_only(table, measure)["similarity"].to_numpy(), method="min")
        np.testing.assert_array_equal(line.get_ydata(), expected)
    ticks = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert ticks and all(t.lstrip("−-").isdigit() for t in ticks), ticks
    assert not ax.spines["top"].get_visible() and not ax.spines["right"].get_visible()
    assert fig.get_size_inches()[0] * 25.4 == pytest.approx(SINGLE_MM)
    assert overlapping_texts(fig) == []


# --- figure never computes into, or demos over, a folder of another kind ------------------------------------

@pytest.mark.parametrize("kind", ["missed_detections", "depth_masks"])
def test_figure_refuses_a_folder_of_another_kind(kind, three, tmp_path, capsys):
    before = sorted(p.name for p in (three / "results").iterdir())
    code, err = _figure([kind, "--results", str(three / "results")], capsys)
    assert code == 2 and len(err) == 1 and "compare results folder" in err[0]
    assert sorted(p.name for p in (three / "results").iterdir()) == before
    empty = tmp_path / "empty"
    empty.mkdir()
    code, err = _figure([kind, "--results", str(empty)], capsys)
    assert code == 2 and len(err) == 1 and "missing or empty" in err[0]
    assert list(empty.iterdir()) == []


def test_help_texts_agree_with_the_behaviour(capsys):
    from rsa_bridge.app.cli import main
    from analyses.figures.cli import KINDS

    with pytest.raises(SystemExit):
        main(["figure", "--help"])
    top = " ".join(capsys.readouterr().out.split())
    assert "Nothing is computed" in top and "another kind" in top
    for kind in KINDS:
        with pytest.raises(SystemExit) as exit_info:
            main(["figure", kind, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert exit_info.value.code == 0
        assert "computed and written" not in text and "nothing is computed" in text, kind
        assert "--bootstrap" not in text and "--weights" not in text, kind  # no compare job under figure


# --- journal-ready layout ----------------------------------------------------------------------------------

def _one_model_layers(n_layers: int = 21, n_boot: int = 1000) -> tuple[xr.Dataset, list[str]]:
    layers = [f"features.{k}" for k in range(n_layers - 2)] + ["classifier.1", "head"]
    rng = np.random.default_rng(1)
    means = np.linspace(-0.05, 0.28, n_layers)
    samples = means[None, :, None] + 0.06 * rng.normal(size=(n_boot, n_layers, 1))
    labels = [f"mobilenet_v2:{l}" for l in layers]
    ds = xr.Dataset(
        {"similarity": (("model_layer", "area"), means[:, None]),
         "similarity_ci_low": (("model_layer", "area"), np.percentile(samples, 2.5, axis=0)),
         "similarity_ci_high": (("model_layer", "area"), np.percentile(samples, 97.5, axis=0)),
         "similarity_bootstrap": (("bootstrap_sample", "model_layer", "area"), samples),
         "ceiling_lower": ("area", [0.3]), "ceiling_upper": ("area", [0.4])},
        coords={"model_layer": labels, "model": ("model_layer", ["mobilenet_v2"] * n_layers),
                "layer": ("model_layer", layers), "area": ["V4"]},
        attrs={"method": "spearman"})
    return ds, labels


@pytest.mark.parametrize("width", [None, "single"])
def test_model_comparison_with_21_layers_is_readable(width):
    ds, labels = _one_model_layers()
    fig, ax, h = model_comparison(ds, "V4", rows=labels, sort=False, width=width)
    assert overlapping_texts(fig) == [] and texts_outside(fig) == []
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert len(set(ticks)) == 21 and all(t.startswith(("features", "classifier", "head")) for t in ticks)
    low, high = ax.get_ylim()
    assert low <= float(ds["similarity_ci_low"].min()) < 0 and high >= float(ds["similarity_ci_high"].max())
    # Holm over 210 pairs from 1000 samples cannot go below 210 / 1000: no brackets, and the caption says so
    assert smallest_corrected_p(210, 1000, "holm") == pytest.approx(0.21)
    assert h["reachable"] is False and h["brackets"] == {}
    assert "no brackets" in h["note"].get_text() and "210 pairs" in h["note"].get_text().replace("\n", " ")
    assert fig.get_size_inches()[0] * 25.4 == pytest.approx(DOUBLE_MM if width is None else SINGLE_MM)


def test_model_comparison_brackets_where_holm_can_reach_alpha():
    ds, labels = _one_model_layers(n_layers=3)
    fig, ax, h = model_comparison(ds, "V4", rows=labels, sort=False)
    assert smallest_corrected_p(3, 1000, "holm") == pytest.approx(0.003) and h["reachable"] is True
    significant = {(p["a"], p["b"]) for p in h["pairs"] if p["significant"]}
    assert significant and set(h["brackets"]) == significant
    assert "no brackets" not in h["note"].get_text()


def _missing_glyphs(fig) -> list[str]:
    """Characters of the figure's texts (outside $mathtext$) that the font drawing them lacks."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font
    from matplotlib.text import Text

    fig.canvas.draw()
    missing = []
    for text in fig.findobj(Text):
        plain = "".join(part for k, part in enumerate(text.get_text().split("$")) if k % 2 == 0)
        charmap = FT2Font(font_manager.findfont(text.get_fontproperties())).get_charmap()
        missing += [c for c in plain if not c.isspace() and ord(c) not in charmap]
    return missing


def test_depth_mask_titles_use_drawable_glyphs(tmp_path):
    from analyses.figures import depth_masks
    from tests.test_figures import _toy_sweep

    _toy_sweep(tmp_path)
    ds, pixels = depth_masks.load(tmp_path)
    fig, axes, _ = depth_masks.depth_mask_grid(ds, pixels, rows=1)
    titles = [ax.get_title() for ax in axes[0]]
    assert not any("⊙" in t for t in titles) and sum(r"$\odot$" in t for t in titles) == 2
    assert _missing_glyphs(fig) == []


def test_measure_figures_use_drawable_glyphs(three):
    from rsa_bridge.measures.plots import measure_profile

    fig, _ = measure_profile(_csv(three))
    assert _missing_glyphs(fig) == []


def test_printed_measure_blocks_say_in_sample(three):
    from rsa_bridge.measures.results import measure_blocks

    blocks = "\n".join(measure_blocks(_csv(three)))
    for measure in ("cka", "linear"):
        rows = _only(_csv(three), measure)
        top = rows.loc[rows["similarity"].idxmax()]
        assert f"best layer for V1: toy {top['layer']} (in-sample {measure} {top['similarity']:.4f}," in blocks
    flat = _csv(three)
    flat.loc[flat["measure"] == "cka", "similarity"] = 1.0                # every layer ties (CCA saturated, say)
    tied = "\n".join(measure_blocks(flat))
    assert "best layer for V1: none, every layer of toy scores 1.0000 (in-sample cka)" in tied
    assert "best layer for V1: toy" in tied                                # the other measures still name one


def test_trained_vs_untrained_draws_rsa_rows_only():
    from analyses.figures import trained_vs_untrained as tvu

    rows = []
    for measure, shift in (("rsa", 0.0), ("cka", 0.5)):
        for network, layers in (("trained", ["a", "b", "c"]), ("untrained", ["a", "b", "c"]), ("pixels", ["pixels"]),
                                ("gabor", ["gabor"])):
            for k, layer in enumerate(layers):
                value = shift + 0.1 * k + (0.05 if network == "trained" else 0.0)
                rows.append({"network": network, "model": network, "layer": layer, "area": "V4", "measure": measure,
                             "method": "spearman" if measure == "rsa" else "linear_cka", "similarity": value,
                             "ci_low": value - 0.02, "ci_high": value + 0.02, "ceiling_lower": np.nan,
                             "ceiling_upper": np.nan})
    table = pd.DataFrame(rows)
    fig, axes = tvu.figure(table)
    rsa = table[(table["measure"] == "rsa") & (table["network"] == "trained")]
    [plotted] = [c for c in axes[0].containers if c.get_label() == "MobileNetV2 trained"]
    np.testing.assert_allclose(np.asarray(plotted[0].get_ydata(), float), rsa["similarity"].to_numpy())
    assert axes[0].get_ylabel().replace("\n", " ") == LABELS["rsa"]
    lines = tvu.summary(table)
    assert len(lines) == 1 and "trained c (in-sample best) 0.250" in lines[0] and "0.750" not in lines[0]


@pytest.mark.parametrize("kind", ["rdm_panels", "mds"])
def test_rdm_figures_draw_rdms_and_take_no_measure(kind, three, tmp_path, capsys):
    """RDM figures show RDMs, not scores: they draw from a 3-measure folder and refuse --measure."""
    argv = [kind, "--results", str(three / "results"), "--out", str(tmp_path), "--dataset", str(three / "toy.nc"),
            "--dpi", "60"]
    code, err = _figure(argv, capsys)
    assert code == 0, err
    assert [p.name for p in tmp_path.glob("*.png")] == [f"{kind}.png"]
    with pytest.raises(SystemExit) as exit_info:
        _figure([*argv, "--measure", "cka"], capsys)
    assert exit_info.value.code == 2
