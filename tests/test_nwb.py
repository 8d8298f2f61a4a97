"""NWB import: small files written with pynwb itself (known spike times -> known counts), read back; bad files."""
from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

pynwb = pytest.importorskip("pynwb")

from rsa_bridge.app.cli import main  # noqa: E402
from rsa_bridge.errors import RSABridgeError  # noqa: E402
from rsa_bridge.neural import load_rates, read_neural  # noqa: E402
from rsa_bridge.neural.nwb import read_nwb, spike_counts  # noqa: E402

# presentations: (start_time s, stop_time s, stimulus) ; onset = start_time
TRIALS = [(0.0, 0.5, "a"), (1.0, 1.5, "b"), (2.0, 2.5, "a"), (3.0, 3.5, "c"), (4.0, 4.5, "b"), (5.0, 5.5, "c")]
# spikes of unit 0 (V4) and unit 1 (IT): chosen so each 100 ms bin's count is known
SPIKES = {
    0: [0.05, 0.15, 0.16, 1.01, 2.21, 2.22, 2.23, 3.45, 4.11, 5.0],
    1: [0.31, 1.02, 1.03, 1.04, 2.5, 3.05, 3.15, 4.49, 5.2, 5.25],
}


def _write(path, *, units=True, trials=True, column="stimulus_id", epochs=False, locations=("V4", "IT")):
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.file import Subject

    nwb = NWBFile(session_description="test", identifier="file-1", session_id="sess-7",
                  session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc),
                  subject=Subject(subject_id="monkeyA", species="Macaca mulatta"))
    if units:
        device = nwb.create_device(name="array")
        groups = [nwb.create_electrode_group(name=f"g{k}", description="shank", location=loc, device=device)
                  for k, loc in enumerate(locations)]
        for k, loc in enumerate(locations):
            nwb.add_electrode(group=groups[k], location=loc)
        for k, times in SPIKES.items():
            nwb.add_unit(spike_times=times, electrodes=[k], electrode_group=groups[k])
    if trials:
        if column:
            nwb.add_trial_column(name=column, description="the image shown")
        for start, stop, stim in TRIALS:
            nwb.add_trial(start_time=start, stop_time=stop, **({column: stim} if column else {}))
    if epochs:
        nwb.add_epoch_column(name="image", description="the image shown")
        for start, stop, stim in TRIALS:
            nwb.add_epoch(start_time=start, stop_time=stop, image=stim)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


def _expected(start_ms, stop_ms):
    """Counts (presentation, unit) by a plain loop over spikes, in presentation order."""
    out = np.zeros((len(TRIALS), 2))
    for p, (onset, _, _) in enumerate(TRIALS):
        for u, times in SPIKES.items():
            out[p, u] = sum(onset + start_ms / 1000 <= t < onset + stop_ms / 1000 for t in times)
    return out


def test_counts_in_one_window_become_rates(tmp_path):
    rates = read_nwb(_write(tmp_path / "a.nwb"), start=0, stop=300)
    assert rates.dims == ("presentation", "neuroid") and rates.attrs["units"] == "spikes/s"
    np.testing.assert_allclose(rates.values, _expected(0, 300) / 0.3)
    assert list(rates["stimulus_id"].values) == ["a", "b", "a", "c", "b", "c"]
    assert list(rates["repetition"].values) == [0, 0, 1, 0, 1, 1]
    assert list(rates["region"].values) == ["V4", "IT"]  # from the electrodes' locations
    assert set(rates["animal"].values) == {"monkeyA"} and set(rates["session"].values) == {"sess-7"}
    assert list(rates["neuroid_id"].values) == ["0", "1"]


def test_bins_relative_to_onset(tmp_path):
    rates = read_nwb(_write(tmp_path / "b.nwb"), start=0, stop=500, bin_width=100)
    assert rates.dims == ("presentation", "neuroid", "time_bin") and rates.sizes["time_bin"] == 5
    np.testing.assert_array_equal(rates["time_bin_start"].values, [0, 100, 200, 300, 400])
    for k in range(5):
        np.testing.assert_allclose(rates.isel(time_bin=k).values, _expected(100 * k, 100 * (k + 1)) / 0.1)
    # spike at exactly 5.0 s (onset of the last trial) is in [0, 100) ms; spike at 2.5 s is not in trial 3's window
    assert rates.isel(presentation=5, neuroid=0, time_bin=0).item() == 10.0


def test_spike_counts_by_hand():
    counts = spike_counts(np.array([0.3, 0.1, 0.25, 1.0]), np.array([0.0, 1.0]), np.array([0.0, 200.0, 400.0]))
    np.testing.assert_array_equal(counts, [[1, 2], [1, 0]])


def test_epochs_table_and_named_column_through_read_neural_and_cli(tmp_path, capsys):
    path = _write(tmp_path / "c.nwb", trials=False, epochs=True)
    imported = read_neural(path, intervals="epochs", stop=200.0, start=100.0)
    np.testing.assert_allclose(imported.data.values, _expected(100, 200) / 0.1)
    out = tmp_path / "rates.nc"
    assert main(["neural", "import", str(path), "--intervals", "epochs", "--stimulus-column", "image",
                 "--window-start", "0", "--window-stop", "400", "--bin-width", "200", "--out", str(out)]) == 0
    assert "2 neuroids x 6 presentations of 3 stimuli" in capsys.readouterr().out
    back = load_rates(out)
    np.testing.assert_allclose(back.isel(time_bin=1).values, _expected(200, 400) / 0.2)


def test_units_without_location_take_the_region_option(tmp_path):
    from pynwb import NWBHDF5IO, NWBFile

    nwb = NWBFile(session_description="t", identifier="x", session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc))
    for times in SPIKES.values():
        nwb.add_unit(spike_times=times)
    nwb.add_trial_column(name="stimulus", description="image")
    for start, stop, stim in TRIALS:
        nwb.add_trial(start_time=start, stop_time=stop, stimulus=stim)
    with NWBHDF5IO(str(tmp_path / "d.nwb"), "w") as io:
        io.write(nwb)
    rates = read_neural(tmp_path / "d.nwb", region="V1", stop=300.0).data
    assert set(rates["region"].values) == {"V1"} and set(rates["animal"].values) == {"unknown"}


@pytest.mark.parametrize("kind,options,message", [
    ("no_units", {"stop": 300}, "no units table"),
    ("no_trials", {"stop": 300}, "no 'trials' table"),
    ("no_column", {"stop": 300}, "no stimulus column"),
    ("ok", {"stop": 600}, "outside 6 of 6 presentations"),
    ("ok", {"start": -100, "stop": 200}, "outside 6 of 6 presentations"),
    ("ok", {"stop": 300, "bin_width": 70}, "does not divide"),
    ("ok", {"stop": 300, "stimulus_column": "colour"}, "no column 'colour'"),
    ("ok", {}, "say which window"),
    ("ok", {"stop": 300, "intervals": "epochs"}, "no 'epochs' table"),
])
def test_bad_files_give_one_clear_error(tmp_path, kind, options, message):
    path = tmp_path / f"{kind}.nwb"
    _write(path, units=kind != "no_units", trials=kind != "no_trials", column=None if kind == "no_column" else
           "stimulus_id")
    with pytest.raises(RSABridgeError, match=message):
        read_nwb(path, **options)


def test_not_an_nwb_file_and_cli_exit_code(tmp_path, capsys):
    bad = tmp_path / "bad.nwb"
    bad.write_bytes(b"not hdf5 at all")
    with pytest.raises(RSABridgeError, match="cannot read"):
        read_nwb(bad, stop=100)
    path = _write(tmp_path / "e.nwb")
    assert main(["neural", "import", str(path), "--window-stop", "900", "--out", str(tmp_path / "x.nc")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "outside" in err[0]
