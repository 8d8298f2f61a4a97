"""Issue 25 item 7: the printed table's header names each model once, and the permutation star keeps columns
aligned."""
from __future__ import annotations

import re
from types import SimpleNamespace

import pandas as pd
import xarray as xr

from rsa_bridge.app.report import format_table, header
from rsa_bridge.control_rdms import CONTROL_WEIGHTS


def _result(models: dict[str, tuple[str, list[str]]], p_holm=None):
    """A CompareResult-like object: per model (weights, layers), areas V4 and IT, values and p as given."""
    rows, k = [], 0
    for model, (weights, layers) in models.items():
        for layer in layers:
            for area in ("V4", "IT"):
                p = None if p_holm is None else p_holm[k % len(p_holm)]
                rows.append(dict(model=model, weights=weights, layer=layer, area=area, dataset="toy",
                                 metric="correlation", method="spearman", n_stimuli=20,
                                 similarity=[0.4123, -0.0512, 0.1, 0.25][k % 4], sem=0.01,
                                 ci_low=-0.1 if k % 3 else 0.05, ci_high=0.3, p_holm=p))
                k += 1
    table = pd.DataFrame(rows)
    if p_holm is None:
        table = table.drop(columns=["p_holm"])
    return SimpleNamespace(table=table, results=xr.Dataset(attrs={"stats_bootstrap": 10}), best=None,
                           model_differences=None)


def test_several_models_get_one_entry_each_in_the_header():
    result = _result({"alexnet": ("none", ["conv1", "conv5"]), "pixels": (CONTROL_WEIGHTS, ["pixels"]),
                      "resnet50": ("IMAGENET1K_V2", ["layer4"])})
    line = header(result)
    assert line.startswith("models alexnet: untrained (weights none); pixels: image statistics (control); "
                           "resnet50: weights IMAGENET1K_V2 | dataset toy | "), line
    assert "none, none" not in line and "(untrained network" not in line


def test_one_model_header_is_unchanged():
    line = header(_result({"alexnet": ("none", ["conv1"])}))
    assert line.startswith("model alexnet | weights none (untrained network: a control, not a trained model) | "
                           "dataset toy | metric correlation | comparison spearman | stimuli 20"), line
    assert header(_result({"pixels": (CONTROL_WEIGHTS, ["pixels"])})).startswith(
        f"model pixels | weights {CONTROL_WEIGHTS} | dataset toy")


def _table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.search(r"-?\d\.\d{4} \[", line)]


def test_star_keeps_each_column_aligned():
    result = _result({"alexnet": ("none", ["conv1", "conv2", "conv5"]), "pixels": (CONTROL_WEIGHTS, ["pixels"])},
                     p_holm=[0.01, 0.2, 0.3, 0.04, 0.5])
    rows = _table_rows(format_table(result))
    assert len(rows) == 4
    assert any("*" in r for r in rows) and any(re.search(r"\] ", r) for r in rows)  # starred and plain cells
    starts = [[m.start() for m in re.finditer(r"-?\d\.\d{4} \[", r)] for r in rows]
    assert all(len(s) == 2 for s in starts)
    assert len({s[0] for s in starts}) == 1 and len({s[1] for s in starts}) == 1, "\n".join(rows)
    # and the cells keep their text: value, CI and the star where p_holm < 0.05
    assert "0.4123 [0.0500, 0.3000]*" in rows[0]


def test_without_permutations_cells_have_no_star_and_stay_aligned():
    rows = _table_rows(format_table(_result({"alexnet": ("none", ["conv1", "conv2", "conv5"])})))
    starts = [[m.start() for m in re.finditer(r"-?\d\.\d{4} \[", r)] for r in rows]
    assert "*" not in "".join(rows) and len({tuple(s) for s in starts}) == 1


def test_figure_title_names_each_model_once():
    from rsa_bridge.app.report import short_title

    result = _result({"alexnet": ("none", ["conv1"]), "pixels": (CONTROL_WEIGHTS, ["pixels"]),
                      "resnet50": ("IMAGENET1K_V2", ["layer4"])})
    assert short_title(result) == "alexnet (untrained), pixels (control), resnet50 (weights IMAGENET1K_V2) vs toy"
    assert short_title(_result({"alexnet": ("none", ["conv1"])})) == "alexnet (weights none, untrained) vs toy"
