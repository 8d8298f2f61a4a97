"""The head start of ``compare --model`` (rsa_bridge.app.head_start, extractors.ahead): the network built and the
first images decoded in a background thread change no number, no provenance, and leave no thread behind."""
from __future__ import annotations

import threading

import pytest
import torch
import xarray as xr

from extractors.ahead import AHEAD, DecodedAhead
from rsa_bridge.app.cli import main
from rsa_bridge.app.head_start import HEAD_START_ENV
from stimuli import read_image
from tests.helpers import make_rdm_dataset, make_stimuli

JOB = ["compare", "--model", "alexnet", "--weights", "none", "--area", "IT", "--layers", "conv1,fc7",
       "--bootstrap", "0", "--no-cache", "--quiet"]


def _threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "rsa-bridge-head-start" and t.is_alive()]


def _run(tmp_path, name, monkeypatch, on: bool):
    monkeypatch.setenv(HEAD_START_ENV, "1" if on else "0")
    out = tmp_path / name
    assert main([*JOB, "--out", str(out)]) == 0
    assert not _threads()  # joined when the command returns
    return out


def test_same_bytes_with_and_without_the_head_start(tmp_path, monkeypatch, capsys):
    """The shipped 92-image job: results.csv, model_rdms.nc and results.nc (values and provenance) are the same
    bits whether the network and the images came from the head start's thread or from the pipeline."""
    before = _run(tmp_path, "off", monkeypatch, on=False)
    after = _run(tmp_path, "on", monkeypatch, on=True)
    assert AHEAD.taken > 0  # images decoded ahead reached the forward pass
    assert (before / "results.csv").read_bytes() == (after / "results.csv").read_bytes()
    for name in ("model_rdms.nc", "results.nc"):
        with xr.open_dataset(before / name) as a, xr.open_dataset(after / name) as b:
            assert a.identical(b), name  # values, coordinates and attrs (provenance: weights, seed, state hash)
            for key in a.variables:
                assert a[key].values.tobytes() == b[key].values.tobytes(), (name, key)


def test_a_user_error_still_comes_first_and_no_thread_is_left(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(HEAD_START_ENV, "1")
    code = main([*JOB[:-1], "--area", "V9", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "unknown area 'V9'" in err and len(err.strip().splitlines()) == 1
    assert not _threads() and len(AHEAD) == 0


def test_a_corrupt_image_is_the_pipelines_one_line_error(tmp_path, monkeypatch, capsys):
    """The thread meets the corrupt image first and stops; the loader reads it and raises its own error."""
    ids = make_stimuli(tmp_path / "stim", n=8)
    make_rdm_dataset(tmp_path / "toy.nc", ids)
    victim = sorted((tmp_path / "stim").glob("*.png"))[2]
    victim.write_bytes(b"not a png")
    monkeypatch.setenv(HEAD_START_ENV, "1")
    code = main(["compare", "--model", "alexnet", "--weights", "none", "--layers", "conv1", "--quiet",
                 "--dataset", str(tmp_path / "toy.nc"), "--stimuli", str(tmp_path / "stim"),
                 "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and victim.name in err and len(err.strip().splitlines()) == 1
    assert not _threads()


@pytest.fixture()
def images(tmp_path):
    make_stimuli(tmp_path / "s", n=6)
    return sorted((tmp_path / "s").glob("*.png"))


def _transform(image):
    return torch.from_numpy(__import__("numpy").asarray(image, dtype="float32")).permute(2, 0, 1) / 255


def test_decoded_ahead_hands_over_the_same_bytes_once(images):
    ahead = DecodedAhead()
    assert ahead.run(images, _transform) == len(images)
    got = ahead.take(images[0], _transform)
    assert torch.equal(got, _transform(read_image(images[0])))
    assert ahead.take(images[0], _transform) is None  # handed over once
    assert ahead.take(images[1], lambda im: _transform(im)) is None  # another transform: decode it yourself
    ahead.stop()
    assert len(ahead) == 0 and ahead.take(images[2], _transform) is None


def test_decoded_ahead_stops_at_a_limit_and_at_a_corrupt_image(images):
    ahead = DecodedAhead()
    one = _transform(read_image(images[0]))
    assert ahead.run(images, _transform, limit_bytes=2 * one.numel() * 4) == 2
    images[3].write_bytes(b"broken")
    assert DecodedAhead().run(images, _transform) == 3  # stops before the corrupt one, raises nothing


def _gated(gate: threading.Event):
    """A transform that waits for ``gate`` before its third image (a producer caught mid-way)."""
    calls = []

    def transform(image):
        calls.append(1)
        if len(calls) == 3:
            assert gate.wait(30)
        return _transform(image)

    return transform


def _started(ahead: DecodedAhead, images, transform) -> threading.Thread:
    producer = threading.Thread(target=ahead.run, args=(images, transform))
    producer.start()
    while len(ahead) < 2:  # two decoded, the third waits for the gate
        pass
    return producer


def test_an_image_asked_for_again_is_no_miss(images):
    """The probe pass takes the first image and the first batch asks for it again: the producer goes on."""
    gate, ahead = threading.Event(), DecodedAhead()
    transform = _gated(gate)
    producer = _started(ahead, images, transform)
    assert ahead.take(images[0], transform) is not None
    assert ahead.take(images[0], transform) is None  # asked again: no miss
    gate.set()
    producer.join()
    assert ahead.taken == 1 and len(ahead) == len(images) - 1  # it went on to the end


def test_a_miss_stops_the_producer_and_keeps_what_it_made(images):
    gate, ahead = threading.Event(), DecodedAhead()
    transform = _gated(gate)
    producer = _started(ahead, images, transform)
    assert ahead.take(images[4], transform) is None  # not reached yet: a miss
    gate.set()
    producer.join()
    assert len(ahead) == 2  # the image in flight was dropped, none after it was decoded
    assert torch.equal(ahead.take(images[1], transform), _transform(read_image(images[1])))


def test_sigterm_while_the_thread_runs_ends_the_command_cleanly(tmp_path):
    """SIGTERM while the head start's thread is decoding: exit 143 with the one line, nothing published, and the
    process ends (the thread is stopped and joined on the way out)."""
    import signal
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import sys, time
        from extractors import ahead
        from rsa_bridge.app import cli

        def run(self, paths, transform, limit_bytes=0):  # a decoding that lasts until it is stopped
            with self._lock:
                self._stopped = False
            print("ready", flush=True)
            for _ in range(6000):
                if self._stopped:
                    return 0
                time.sleep(0.01)
            print("never stopped", file=sys.stderr)
            return 0

        ahead.DecodedAhead.run = run
        sys.exit(cli.main({[*JOB, "--out", str(tmp_path / "out")]!r}))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**__import__("os").environ, HEAD_START_ENV: "1"})
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "terminated (SIGTERM)" in err and "never stopped" not in err
    assert not (tmp_path / "out").exists()
