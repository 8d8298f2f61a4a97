"""Figure layout holds for long model and layer names (MobileNetV2 and ViT-B/16 module paths): no two text boxes
overlap after a draw, nothing leaves the figure, controls are reference lines (not layers), each area's ceiling
band is in its colour with a legend entry, and what is plotted equals the table it was drawn from."""
from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.colors import to_rgba

from analyses.figures.rdm_panels import rdm_panels
from rsa_bridge.figures import (STYLE, area_colours, installed_fonts, layer_profile, overlapping_texts, short_label,
                                short_labels, texts_outside, use_style)
from rsa_bridge.figures.layout import spread
from rsa_bridge.rdm import COL, ROW

MOBILENET = [f"features.{k}" for k in range(19)] + ["classifier.1"]
VIT = ["conv_proj"] + [f"encoder.layers.encoder_layer_{k}" for k in range(12)] + ["encoder.ln", "heads.head"]
CEILINGS = {"V4": (0.30, 0.42), "IT": (0.35, 0.47)}


def _table(models=(("mobilenet_v2", MOBILENET), ("vit_b_16", VIT)), controls=("pixels", "gabor"), seed=0):
    """A results.csv-like table; the two controls score nearly the same, so their labels would collide."""
    rng = np.random.default_rng(seed)
    rows = []
    for area, (low, up) in CEILINGS.items():
        for model, layers in models:
            for layer, v in zip(layers, rng.uniform(0.0, 0.4, len(layers))):
                rows.append(dict(model=model, weights="default", layer=layer, area=area, similarity=v, sem=np.nan,
                                 ci_low=v - 0.05, ci_high=v + 0.04, ceiling_lower=low, ceiling_upper=up,
                                 method="spearman", n_rdms=4))
        for k, control in enumerate(controls):
            v = 0.06 + 0.004 * k
            rows.append(dict(model=control, weights="none (image statistics)", layer=control, area=area,
                             similarity=v, sem=np.nan, ci_low=v - 0.03, ci_high=v + 0.03, ceiling_lower=low,
                             ceiling_upper=up, method="spearman", n_rdms=4))
    return pd.DataFrame(rows)


def _band_bounds(band) -> tuple[float, float]:
    ys = band.get_path().transformed(band.get_patch_transform()).vertices[:, 1]
    return float(ys.min()), float(ys.max())


@pytest.mark.parametrize("by", ["model", "area"])
def test_profile_with_long_names_and_controls_has_no_overlapping_text(by):
    table = _table()
    fig, axes, handles = layer_profile(table, title="mobilenet_v2 and vit_b_16 against V4 and IT (toy numbers)",
                                       by=by)
    assert overlapping_texts(fig) == []
    assert texts_outside(fig) == []  # y label and titles inside the figure
    # the plotted values are the table's
    for (model, area), rows in table[~table["model"].isin(["pixels", "gabor"])].groupby(["model", "area"]):
        np.testing.assert_allclose(handles[f"{model} {area}"].get_ydata(), rows["similarity"])
        segments = handles[f"{model} {area} ci"].get_segments()
        np.testing.assert_allclose([s[0][1] for s in segments], rows["ci_low"])
        np.testing.assert_allclose([s[1][1] for s in segments], rows["ci_high"])
    # controls: horizontal lines at their similarity, labelled by name, never a tick on the layer axis
    for control in ("pixels", "gabor"):
        for area in CEILINGS:
            value = table[(table["model"] == control) & (table["area"] == area)]["similarity"].iloc[0]
            np.testing.assert_allclose(handles[f"{control} {area}"].get_ydata(), [value, value])
            assert handles[f"{control} {area} label"].get_text().startswith(control)
    ticks = [t.get_text() for ax in (axes if isinstance(axes, list) else [axes]) for t in ax.get_xticklabels()]
    assert not {"pixels", "gabor"} & set(ticks)
    # ceiling bands: bounds, the area's colour, one legend entry each
    colours = area_colours(CEILINGS)
    legend = [t.get_text() for t in handles["legend"].get_texts()]
    for area, bounds in CEILINGS.items():
        np.testing.assert_allclose(_band_bounds(handles[f"{area} ceiling"]), bounds)
        assert handles[f"{area} ceiling"].get_facecolor()[:3] == pytest.approx(to_rgba(colours[area])[:3])
        assert f"{area} noise ceiling" in legend


def test_profile_layer_names_are_shortened_on_ticks_but_unique():
    fig, axes, _ = layer_profile(_table(), by="model")
    vit_ticks = [t.get_text() for t in axes[1].get_xticklabels()]
    assert len(set(vit_ticks)) == len(VIT) and max(map(len, vit_ticks)) <= 18
    assert "…encoder_layer_11" in vit_ticks and "conv_proj" in vit_ticks


def test_single_network_with_controls_is_one_panel_with_its_layers():
    """The CLI's profile.png: controls no longer take a full-width panel of their own each."""
    table = _table(models=(("mobilenet_v2", MOBILENET),))
    fig, ax, handles = layer_profile(table)
    assert not isinstance(ax, list) and len(fig.axes) == 1
    assert [t.get_text() for t in ax.get_xticklabels()] == MOBILENET
    assert ax.get_xlabel() == "layer"
    assert "bootstrap CI" in handles["legend"].get_title().get_text()
    assert overlapping_texts(fig) == [] and texts_outside(fig) == []


def test_normalized_profile_has_no_band_and_a_line_at_one():
    table = _table(models=(("vit_b_16", VIT),))
    table["similarity_normalized"] = table["similarity"] / table["ceiling_upper"]
    table["normalized_by"] = "ceiling_upper"
    fig, ax, handles = layer_profile(table)
    assert not any(k.endswith(" ceiling") for k in handles)
    np.testing.assert_allclose(handles["vit_b_16 IT"].get_ydata(),
                               table[(table["model"] == "vit_b_16") & (table["area"] == "IT")]["similarity_normalized"])
    assert "ceiling" in ax.get_ylabel() and overlapping_texts(fig) == []


def test_rdm_panel_titles_with_long_names_do_not_overlap(rng):
    ids = [f"s{k}" for k in range(12)]
    x = rng.normal(size=(12, 5))
    rdm = xr.DataArray(np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1)), dims=(ROW, COL),
                       coords={ROW: ids, COL: ids})
    titles = ["mobilenet_v2 features.6", "mobilenet_v2 features.18", "vit_b_16 encoder.layers.encoder_layer_11",
              "vit_b_16 heads.head", "IT (mean of 3)"]
    fig, axes, handles = rdm_panels({t: rdm for t in titles}, pd.Series(["ab"[k % 2] for k in range(12)], index=ids))
    assert overlapping_texts(fig) == [] and texts_outside(fig) == []
    assert all(len(line) <= 24 for ax in axes for line in ax.get_title().split("\n"))


def test_arial_and_helvetica_come_first_when_installed(monkeypatch):
    from matplotlib import font_manager

    first = [f.strip() for f in next(line.split(":", 1)[1] for line in STYLE.read_text().splitlines()
                                     if line.startswith("font.sans-serif")).split(",")]
    assert first[:2] == ["Arial", "Helvetica"] and first[-1] == "DejaVu Sans"
    fake = [type("F", (), {"name": n})() for n in ("Helvetica", "DejaVu Sans")]
    monkeypatch.setattr(font_manager.fontManager, "ttflist", fake)
    assert installed_fonts() == ["Helvetica", "DejaVu Sans"]
    with use_style():
        assert matplotlib.rcParams["font.sans-serif"] == ["Helvetica", "DejaVu Sans"]
        assert matplotlib.rcParams["pdf.fonttype"] == 42


def test_short_labels_and_spread():
    assert short_label("encoder.layers.encoder_layer_11") == "…encoder_layer_11"
    assert short_label("features.6") == "features.6"
    assert len(short_label("a_very_long_module_name_without_dots", 12)) == 12
    names = ["block.aaaaaaaaaaaaaaaaaaaa_1", "other.aaaaaaaaaaaaaaaaaaaa_1"]
    assert len(set(short_labels(names, 10))) == 2
    pos = spread([0.10, 0.101, 0.102, 0.5], gap=0.02)
    assert np.all(np.diff(np.sort(pos)) >= 0.02 - 1e-12) and pos[3] == pytest.approx(0.5, abs=0.03)
