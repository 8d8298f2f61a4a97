"""Neural-data formats are one registry (rsa_bridge.neural.formats): each record decides its suffixes, whether it
takes --region, whether it may read a pickle and which options it reads; the CLI, detection and the extending
guide's one-module format all go through it (issue 24 item 3)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rsa_bridge.app.cli import main
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.neural import formats as F
from rsa_bridge.neural import schema as S
from rsa_bridge.neural.load import read_neural

ROOT = Path(__file__).resolve().parents[1]


def _long_table(rng, sep: str, with_region: bool = False) -> tuple[str, dict]:
    """A long table of 3 stimuli x 2 repetitions x 4 neuroids and the same numbers by (stimulus, rep, neuroid)."""
    truth, lines = {}, ["stimulus_id", "neuroid_id", "repetition", "rate"] + (["region"] if with_region else [])
    lines = [sep.join(lines)]
    for stim in ("s1", "s2", "s3"):
        for rep in (0, 1):
            for neur in ("n0", "n1", "n2", "n3"):
                value = float(rng.integers(0, 50))
                truth[stim, rep, neur] = value
                lines.append(sep.join([stim, neur, str(rep), f"{value:g}"] + (["IT"] if with_region else [])))
    return "\n".join(lines) + "\n", truth


def _check_rates(rates, truth: dict, region: str) -> None:
    flat = S.flat_coords(rates)
    stim = [str(s) for s in flat[S.STIMULUS_ID].values]
    reps = [int(r) for r in flat[S.REPETITION].values]
    neur = [str(n) for n in flat[S.NEUROID_ID].values]
    got = {(s, r, n): float(rates.values[i, j]) for i, (s, r) in enumerate(zip(stim, reps)) for j, n in enumerate(neur)}
    assert got == truth
    assert set(map(str, flat[S.REGION].values)) == {region}


def test_tsv_with_region_imports_through_the_cli(rng, tmp_path, capsys):
    """The issue's command: `neural import rates.tsv --region V4` (the side tuple dropped --region)."""
    text, truth = _long_table(rng, "\t")
    (tmp_path / "rates.tsv").write_text(text)
    out = tmp_path / "rates.nc"
    assert main(["neural", "import", str(tmp_path / "rates.tsv"), "--region", "V4", "--out", str(out)]) == 0
    assert "4 neuroids x 6 presentations of 3 stimuli" in capsys.readouterr().out
    rates = S.load_rates(out)
    _check_rates(rates, truth, "V4")
    assert rates.attrs["source_format"] == "csv"  # the csv reader with a tab separator


def test_tsv_without_region_is_one_line(rng, tmp_path, capsys):
    text, _ = _long_table(rng, "\t")
    (tmp_path / "rates.tsv").write_text(text)
    assert main(["neural", "import", str(tmp_path / "rates.tsv"), "--out", str(tmp_path / "x.nc")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "region" in err and "--region" in err
    assert not (tmp_path / "x.nc").exists()


def test_region_of_a_file_with_regions_selects(rng, tmp_path):
    text, truth = _long_table(rng, ",", with_region=True)
    (tmp_path / "rates.csv").write_text(text)
    _check_rates(read_neural(tmp_path / "rates.csv", region="IT").data, truth, "IT")
    with pytest.raises(RSABridgeError, match="V4"):
        read_neural(tmp_path / "rates.csv", region="V4")


def test_every_format_that_takes_region_gets_it(monkeypatch, tmp_path):
    """The record decides: a reader gets region= exactly when takes_region, allow_pickle exactly when
    may_hold_pickle (read through a stub reader, so no file format is involved)."""
    seen = {}

    def stub(path, **options):
        seen.update(options)
        return S.make_rates(np.arange(6.0).reshape(3, 2) ** 2, stimulus_ids=["a", "b", "c"], repetitions=[0, 0, 0],
                            neuroid_ids=["x", "y"], region=options.get("region") or "V1")

    (tmp_path / "f.dat").write_text("")
    for flags in [(False, False), (True, False), (True, True), (False, True)]:
        seen.clear()
        fmt = F.NeuralFormat("stub", stub, "test", takes_region=flags[0], may_hold_pickle=flags[1])
        fmt.read(tmp_path / "f.dat", region="V4", units=None)
        assert ("region" in seen) is flags[0] and ("allow_pickle" in seen) is flags[1]
        assert "units" not in seen  # None options are left out


def test_pickles_and_allow_pickle_only_where_the_record_says(tmp_path):
    (tmp_path / "x.pkl").write_bytes(b"not read")
    with pytest.raises(RSABridgeError, match="does not read pickles"):
        read_neural(tmp_path / "x.pkl", "csv")
    (tmp_path / "x.csv").write_text("stimulus_id,neuroid_id,repetition,rate\n")
    with pytest.raises(RSABridgeError, match=r"--allow-pickle .*applies only to .*rsatoolbox, rsatoolbox-rdms"):
        read_neural(tmp_path / "x.csv", allow_pickle=True)
    assert F.pickling_formats() == ["rsatoolbox", "rsatoolbox-rdms"]


def test_options_of_one_format_are_refused_by_others(tmp_path):
    (tmp_path / "x.csv").write_text("stimulus_id,neuroid_id,repetition,rate\n")
    with pytest.raises(RSABridgeError, match="metric do not apply to format 'csv'"):
        read_neural(tmp_path / "x.csv", metric="euclidean")


def test_detection_by_suffix_and_content(tmp_path, rng):
    from rsa_bridge.datasets import load_dataset, save_dataset

    assert [F.guess_format(f"a{s}") for s in (".npy", ".NPZ", ".mat", ".csv", ".tsv", ".nwb", ".h5", ".pkl")] == \
        ["numpy", "numpy", "mat", "csv", "tsv", "nwb", "rsatoolbox", "rsatoolbox"]
    rates = S.make_rates(rng.normal(size=(4, 3)), stimulus_ids=list("abcd"), repetitions=[0] * 4,
                         neuroid_ids=["x", "y", "z"], region="V4")
    S.save_rates(rates, tmp_path / "rates.nc")
    save_dataset(load_dataset("cowley2023_v4_210325"), tmp_path / "rdms.nc")
    assert F.guess_format(tmp_path / "rates.nc") == "netcdf"
    assert F.guess_format(tmp_path / "rdms.nc") == "rdm-netcdf"
    assert F.guess_format(tmp_path / "other.nc") == "brainscore"  # not a file: the fallback without detect
    with pytest.raises(RSABridgeError, match=r"cannot tell the format of .*\.xyz.*known: \.npy"):
        F.guess_format("a.xyz")


def test_format_help_and_choices_come_from_the_registry():
    import argparse

    from rsa_bridge.app.commands import neural

    parser = argparse.ArgumentParser()
    neural.register(parser.add_subparsers(dest="command"))
    sub = parser._subparsers._group_actions[0].choices["neural"]
    imp = sub._subparsers._group_actions[0].choices["import"]
    action = next(a for a in imp._actions if "--format" in a.option_strings)
    assert list(action.choices) == list(F.FORMATS)
    for name, fmt in F.FORMATS.items():
        assert (f"{name} ({' '.join(fmt.suffixes)})" if fmt.suffixes else name) in action.help
    assert action.type("CSV") == "csv"


def test_unknown_format_is_one_line_with_a_suggestion(tmp_path, capsys):
    (tmp_path / "x.csv").write_text("")
    assert main(["neural", "import", str(tmp_path / "x.csv"), "--format", "tvs", "--out", str(tmp_path / "o.nc")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "unknown format 'tvs'" in err and "did you mean 'tsv'" in err


def test_register_format_refuses_a_taken_name():
    with pytest.raises(ValueError, match="exists already"):
        F.register_format(F.NeuralFormat("csv", "x:y", "another csv"))


def _guide_module() -> str:
    text = (ROOT / "docs" / "guide" / "extending.md").read_text()
    match = re.search(r"<!-- extending:neural-format -->\n```python\n(.*?)```", text, re.S)
    assert match, "the extending guide lost its neural-format example"
    return match.group(1)


def _scratch_file(path: Path, rng) -> np.ndarray:
    values = rng.integers(0, 40, size=(5, 3)).astype(float)
    stimuli = ["a", "b", "a", "c", "b"]
    path.write_text("".join(f"{s} " + " ".join(f"{v:g}" for v in row) + "\n" for s, row in zip(stimuli, values)))
    return values


def test_the_guides_format_module_in_process(tmp_path, rng, monkeypatch):
    """The guide's module, registered in a script: read_neural finds it by suffix and gives it --region."""
    (tmp_path / "mylab_formats.py").write_text(_guide_module())
    monkeypatch.syspath_prepend(str(tmp_path))
    import mylab_formats

    monkeypatch.setattr(F, "_REGISTERED", {})
    F.register_format(mylab_formats.FORMAT)
    values = _scratch_file(tmp_path / "rates.scr", rng)
    rates = read_neural(tmp_path / "rates.scr", region="V4").data
    flat = S.flat_coords(rates)
    assert [str(s) for s in flat[S.STIMULUS_ID].values] == ["a", "b", "a", "c", "b"]
    assert [int(r) for r in flat[S.REPETITION].values] == [0, 0, 1, 0, 1]
    np.testing.assert_array_equal(rates.values, values)


@pytest.mark.slow
def test_the_guides_format_module_through_an_entry_point_and_the_cli(tmp_path, rng):
    """One module plus an entry point (a dist-info folder on the path, as `pip install` leaves it):
    `rsa-bridge neural import --format scratch` reads it in a fresh process, and --help lists it."""
    site = tmp_path / "site"
    (site / "mylab-0.1.dist-info").mkdir(parents=True)
    (site / "mylab_formats.py").write_text(_guide_module())
    (site / "mylab-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: mylab\nVersion: 0.1\n")
    (site / "mylab-0.1.dist-info" / "entry_points.txt").write_text(
        "[rsa_bridge.neural_formats]\nscratch = mylab_formats:FORMAT\n")
    values = _scratch_file(tmp_path / "rates.txt", rng)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cli = [sys.executable, "-m", "rsa_bridge", "neural", "import"]
    run = subprocess.run([*cli, str(tmp_path / "rates.txt"), "--format", "scratch", "--region", "V4",
                          "--out", str(tmp_path / "out.nc")], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    rates = S.load_rates(tmp_path / "out.nc")
    np.testing.assert_array_equal(rates.values, values)
    assert set(map(str, S.flat_coords(rates)[S.REGION].values)) == {"V4"}
    shown = subprocess.run([*cli, "--help"], capture_output=True, text=True, env=env, timeout=300)
    assert "scratch (.scr)" in " ".join(shown.stdout.split())
    refused = subprocess.run([*cli, str(tmp_path / "rates.txt"), "--format", "scratch", "--out",
                              str(tmp_path / "o2.nc")], capture_output=True, text=True, env=env, timeout=300)
    assert refused.returncode == 2 and refused.stderr.strip().count("\n") == 0 and "--region" in refused.stderr


def test_a_broken_format_plugin_is_left_out_with_a_warning(monkeypatch, capsys):
    """A plugin that fails to import, or names no NeuralFormat, must not take the command line down."""
    from importlib import metadata

    eps = [metadata.EntryPoint("broken", "no_such_module_xyz:FORMAT", F.ENTRY_POINT_GROUP),
           metadata.EntryPoint("wrong", "os:path", F.ENTRY_POINT_GROUP)]
    monkeypatch.setattr(metadata, "entry_points", lambda group=None: [e for e in eps if e.group == group])
    with pytest.warns(RuntimeWarning) as record:
        formats = F.all_formats()
    assert list(formats) == list(F.FORMATS)
    text = " ".join(str(w.message) for w in record)
    assert "'broken'" in text and "fails to load" in text and "not a NeuralFormat" in text
    with pytest.warns(RuntimeWarning), pytest.raises(SystemExit) as exit_info:
        main(["neural", "import", "--help"])
    assert exit_info.value.code == 0 and "--format" in capsys.readouterr().out
