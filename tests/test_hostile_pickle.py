"""No code runs from data files: a crafted pickle whose ``__reduce__`` would create a marker file is
refused by every ``neural`` sub-command and by the Python loaders, unless ``--allow-pickle`` is given."""
from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rsa_bridge.app.cli import main
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.neural.load import read_neural
from rsa_bridge.neural.rsatoolbox_io import read_rsatoolbox, rsatoolbox_file_type


class _Payload:
    """Unpickling this calls ``pathlib.Path(marker).touch()``: the proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _crafted(tmp_path: Path, name: str = "evil.pkl") -> tuple[Path, Path]:
    marker = tmp_path / "PWNED"
    path = tmp_path / name
    path.write_bytes(pickle.dumps(_Payload(marker)))
    return path, marker


def test_crafted_pickle_really_runs_code_when_unpickled(tmp_path):
    # the test's own control: the payload does what the refusal tests say never happens
    path, marker = _crafted(tmp_path)
    pickle.loads(path.read_bytes())
    assert marker.exists()


@pytest.mark.parametrize("action", [
    ["import", "--out", "OUT.nc"], ["info"], ["ceiling"], ["rdm", "--out", "OUT.nc"],
    ["export", "--to", "netcdf", "--out", "OUT.nc"],
])
@pytest.mark.parametrize("fmt", [None, "rsatoolbox", "rsatoolbox-rdms"])
def test_every_neural_command_refuses_a_pickle(tmp_path, capsys, action, fmt):
    path, marker = _crafted(tmp_path)
    action = [str(tmp_path / a) if a == "OUT.nc" else a for a in action]
    argv = ["neural", action[0], str(path), "--region", "V4", *action[1:]] + (["--format", fmt] if fmt else [])
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refusing to load" in err[0] and "pickle" in err[0]
    assert "file_type='hdf5'" in err[0] and "--allow-pickle" in err[0]
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.pkl"]


@pytest.mark.parametrize("name", ["evil.pkl", "evil.h5", "evil.hdf5"])  # a pickle renamed to .h5 is refused too
def test_python_loaders_refuse_a_pickle(tmp_path, name):
    path, marker = _crafted(tmp_path, name)
    for call in (lambda: read_neural(path, region="V4"), lambda: read_neural(path, "rsatoolbox-rdms", region="V4"),
                 lambda: read_rsatoolbox(path, region="V4"), lambda: rsatoolbox_file_type(path)):
        with pytest.raises(RSABridgeError, match="runs any code"):
            call()
    assert not marker.exists()


def test_other_formats_refuse_a_pkl_suffix(tmp_path):
    path, marker = _crafted(tmp_path)
    for fmt in ("numpy", "csv", "netcdf", "mat"):
        with pytest.raises(RSABridgeError):
            read_neural(path, fmt, region="V4")
    assert not marker.exists()


def test_cli_refusal_in_a_fresh_process(tmp_path):
    # the whole import chain of the console entry point, in a process of its own
    path, marker = _crafted(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "rsa_bridge", "neural", "info", str(path), "--region", "V4"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not marker.exists()


def _rates_pickle(tmp_path: Path) -> Path:
    from rsa_bridge.neural.rsatoolbox_io import to_rsatoolbox_dataset
    from rsa_bridge.neural.schema import make_rates

    rng = np.random.default_rng(0)
    rates = make_rates(rng.normal(size=(8, 3)), stimulus_ids=[f"s{k % 4}" for k in range(8)],
                       repetitions=[k // 4 for k in range(8)], neuroid_ids=["n0", "n1", "n2"], region="V4",
                       units="spikes/s")
    path = tmp_path / "trusted.pkl"
    to_rsatoolbox_dataset(rates).save(str(path), file_type="pkl")
    return path


def test_opt_in_loads_a_trusted_pickle(tmp_path):
    path = _rates_pickle(tmp_path)
    with pytest.raises(RSABridgeError, match="refusing"):
        read_neural(path)
    rates = read_neural(path, allow_pickle=True).data
    assert rates.sizes["neuroid"] == 3
    assert main(["neural", "info", str(path), "--allow-pickle", "--no-reliability"]) == 0


def test_hdf5_still_loads_without_opt_in(tmp_path):
    path = _rates_pickle(tmp_path)
    from rsatoolbox.data import load_dataset

    h5 = tmp_path / "converted.h5"
    load_dataset(str(path), file_type="pkl").save(str(h5), file_type="hdf5")  # the conversion the refusal suggests
    assert rsatoolbox_file_type(h5) == "hdf5"
    assert read_neural(h5).data.sizes["neuroid"] == 3
