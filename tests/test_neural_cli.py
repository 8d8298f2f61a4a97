"""``rsa-bridge neural import|info|ceiling|rdm|export``, run through the command module as rsa_bridge.app.cli does."""
from __future__ import annotations

import argparse
import re

import numpy as np
import pytest

from rsa_bridge.app.commands import neural
from rsa_bridge.datasets import load_dataset
from rsa_bridge.errors import USER_ERRORS
from rsa_bridge.neural import schema as S
from rsa_bridge.neural.importers import from_array
from rsa_bridge.neural.load import read_neural
from rsa_bridge.stats import noise_ceiling


def run(argv: list[str]) -> int:
    """Parse and run like ``rsa_bridge.app.cli.main``: a user error is one line on stderr and exit code 2."""
    parser = argparse.ArgumentParser(prog="rsa-bridge")
    neural.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as err:
        import sys

        print(f"rsa-bridge {args.command}: error: {err}", file=sys.stderr)
        return 2


@pytest.fixture
def counts_file(rng, tmp_path):
    array = rng.poisson(np.broadcast_to(rng.gamma(2.0, 2.0, size=(6, 12, 1)), (6, 12, 6))).astype(float)
    array[:, :4, 5] = np.nan
    np.save(tmp_path / "counts.npy", array)
    return tmp_path / "counts.npy"


def test_import_and_info(counts_file, tmp_path, capsys):
    out = tmp_path / "rates.nc"
    assert run(["neural", "import", str(counts_file), "--region", "V4", "--stimulus-ids", "img{n:02d}",
                "--animal", "M1", "--units", "spike count", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "6 neuroids x 68 presentations of 12 stimuli" in text and "V4  M1  unknown  6" in text
    rates = S.load_rates(out)
    assert rates.attrs["units"] == "spike count" and rates.sizes[S.PRESENTATION] == 68
    assert run(["neural", "info", str(out), "--splits", "4"]) == 0
    text = capsys.readouterr().out
    assert "repetitions per stimulus: min 5, median 6, max 6" in text
    assert re.search(r"V4: neuroid split-half reliability \(Spearman-Brown\) median [0-9.]+", text)
    assert "RDM split-half reliability" in text


def test_import_errors_leave_nothing(counts_file, tmp_path, capsys):
    out = tmp_path / "x.nc"
    assert run(["neural", "import", str(counts_file), "--region", "V4", "--stimulus-ids", "a,b", "--out",
                str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "error:" in err
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY garbage")
    assert run(["neural", "import", str(tmp_path / "bad.npy"), "--region", "V4", "--stimulus-ids", "s{i}",
                "--out", str(out)]) == 2
    assert "corrupt, truncated" in capsys.readouterr().err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bad.npy", "counts.npy"]


def test_ceiling_on_shipped_rdms(capsys):
    hit = load_dataset("kriegeskorte2008_92images")["hIT"]
    for method in ("nili", "algonauts"):
        assert run(["neural", "ceiling", "kriegeskorte2008_92images", "--area", "hIT", "--method", method]) == 0
        line = capsys.readouterr().out
        ceiling = noise_ceiling(hit.stack(replicate=("subject", "session")).transpose("replicate", ...),
                                definition=method)
        assert f"lower {ceiling.lower:.4f}  upper {ceiling.upper:.4f}" in line and "8 RDMs" in line
    assert run(["neural", "ceiling", "kriegeskorte2008_92images", "--area", "hIT", "--groups", "subject"]) == 0
    assert "in 4 subject groups" in capsys.readouterr().out
    assert run(["neural", "ceiling", "kriegeskorte2008_92images", "--area", "V9"]) == 2
    assert "unknown area 'V9'; choose one of IT, hIT" in capsys.readouterr().err


def test_ceiling_from_rates(counts_file, tmp_path, capsys):
    assert run(["neural", "ceiling", str(counts_file), "--region", "V4", "--stimulus-ids", "s{i}", "--method",
                "split-half", "--splits", "5"]) == 0
    assert re.search(r"V4: split-half RDM reliability .* over 5 splits, seed 0", capsys.readouterr().out)
    assert run(["neural", "ceiling", str(counts_file), "--region", "V4", "--stimulus-ids", "s{i}"]) == 2
    assert "use --method split-half" in capsys.readouterr().err


def test_rdm_per_session_usable_by_compare(rng, tmp_path, capsys):
    values = rng.poisson(4.0, size=(40, 6)).astype(float)
    rates = S.make_rates(values, stimulus_ids=np.repeat([f"s{k}" for k in range(10)], 4), repetitions=[0, 1, 2, 3] * 10,
                         neuroid_ids=[f"n{k}" for k in range(6)], region="IT", session=["a"] * 3 + ["b"] * 3)
    S.save_rates(rates, tmp_path / "r.nc")
    stim = tmp_path / "stimuli"
    stim.mkdir()
    (stim / "manifest.csv").write_text("stimulus_id,filename\n")
    out = tmp_path / "rdms.nc"
    assert run(["neural", "rdm", str(tmp_path / "r.nc"), "--metric", "crossnobis", "--by", "session", "--stimuli",
                str(stim), "--out", str(out)]) == 0
    ds = load_dataset(out)
    assert ds["IT"].dims == ("session", "stimulus_row", "stimulus_col") and ds.attrs["stimulus_set"] == "stimuli"
    assert run(["neural", "ceiling", str(out), "--area", "IT"]) == 0
    assert "2 RDMs" in capsys.readouterr().out


def test_export_csv(counts_file, tmp_path):
    assert run(["neural", "export", str(counts_file), "--region", "V4", "--stimulus-ids", "s{i}", "--to", "csv",
                "--out", str(tmp_path / "r.csv")]) == 0
    back = read_neural(tmp_path / "r.csv").data
    np.testing.assert_array_equal(back.values, from_array(np.load(counts_file), stimulus_ids="s{i}", region="V4").values)


def test_import_net2brain_then_ceiling(shared_data, tmp_path, capsys):
    out = tmp_path / "n2b.nc"
    assert run(["neural", "import", str(shared_data / "algonauts2019_78images_net2brain"), "--format", "net2brain",
                "--out", str(out)]) == 0
    assert (tmp_path / "n2b_stimuli.csv").is_file()
    capsys.readouterr()
    assert run(["neural", "ceiling", str(out), "--area", "IT", "--method", "algonauts"]) == 0
    assert "lower 0.0028  upper 0.0647" in capsys.readouterr().out
