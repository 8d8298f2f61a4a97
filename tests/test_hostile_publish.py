"""Output folders are published as one unit: a run killed at any publishing step leaves the target with
the old complete result or the new complete result, never a mix; --out is checked before any work;
two runs cannot publish to one --out at once; stale staging folders are cleaned by the next run."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rsa_bridge.app.cli import main
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.io import MARKER, check_out, is_complete, staged_outputs
from stimuli import atomic

NAMES = ("a.txt", "b.txt", "c.txt")
REPO = Path(__file__).resolve().parents[1]


def _publish(target: Path, version: str, overwrite: bool = True) -> None:
    with staged_outputs(target, NAMES, overwrite=overwrite) as stage:
        for name in NAMES:
            (stage / name).write_text(version)


def _versions(target: Path) -> set[str]:
    return {(target / name).read_text() for name in NAMES if (target / name).exists()}


def _killed_run(target: Path, step: str, exchange: bool) -> int:
    """Publish version 'new' in a child process that dies (os._exit, no clean-up) at ``step``."""
    script = textwrap.dedent(f"""
        import os, sys
        from pathlib import Path
        from stimuli import atomic
        from rsa_bridge.io import staged_outputs
        if not {exchange!r}:
            atomic._exchange = lambda a, b: False
        atomic.FAULT_HOOK = lambda name: os._exit(9) if name == {step!r} else None
        with staged_outputs(Path({str(target)!r}), {NAMES!r}, overwrite=True) as stage:
            for name in {NAMES!r}:
                (stage / name).write_text("new")
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True).returncode


STEPS = [("before-marker", True), ("before-publish", True), ("after-exchange", True), ("published", True),
         ("before-marker", False), ("between-renames", False), ("published", False)]


@pytest.mark.parametrize("step,exchange", STEPS)
def test_kill_at_each_publishing_step_never_mixes(tmp_path, step, exchange):
    target = tmp_path / "out"
    _publish(target, "old", overwrite=False)
    assert is_complete(target) and _versions(target) == {"old"}
    assert _killed_run(target, step, exchange) == 9
    # what a reader sees right after the kill: one complete result, or (only between the two fallback
    # renames) no result at all until the next run restores the old one
    if target.exists():
        assert _versions(target) in ({"old"}, {"new"}) and len(list(target.glob("*.txt"))) == 3
        assert is_complete(target)
    else:
        assert step == "between-renames"
    # the next run cleans what the killed one left (staging, stashed old folder) and publishes whole
    with atomic._Lock(target.resolve()):
        atomic._clean_stale(target.resolve())
    assert _versions(target) in ({"old"}, {"new"})
    _publish(target, "third")
    assert _versions(target) == {"third"} and is_complete(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging, no lock, no stash left


def test_error_inside_the_block_leaves_the_old_result(tmp_path):
    target = tmp_path / "out"
    _publish(target, "old", overwrite=False)
    with pytest.raises(ZeroDivisionError):
        with staged_outputs(target, NAMES, overwrite=True) as stage:
            (stage / "a.txt").write_text("new")
            1 / 0
    assert _versions(target) == {"old"} and sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with pytest.raises(RuntimeError, match="not rendered"):  # a missing output is never published
        with staged_outputs(target, NAMES, overwrite=True) as stage:
            (stage / "a.txt").write_text("new")
    assert _versions(target) == {"old"}


def test_existing_output_needs_overwrite_and_foreign_folders_are_never_replaced(tmp_path):
    target = tmp_path / "out"
    _publish(target, "old", overwrite=False)
    with pytest.raises(RSABridgeError, match="--overwrite"):
        _publish(target, "new", overwrite=False)
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(RSABridgeError, match="holds no earlier rsa-bridge output"):
        _publish(foreign, "new", overwrite=True)
    assert (foreign / "thesis.tex").read_text() == "precious"
    empty = tmp_path / "empty"
    empty.mkdir()
    _publish(empty, "new", overwrite=False)  # an empty folder is fine
    assert _versions(empty) == {"new"}


def test_two_runs_cannot_publish_to_one_out_at_once(tmp_path):
    target = tmp_path / "out"
    with staged_outputs(target, NAMES) as stage:
        for name in NAMES:
            (stage / name).write_text("first")
        with pytest.raises(RSABridgeError, match="another rsa-bridge run is writing"):
            _publish(target, "second", overwrite=True)
    assert _versions(target) == {"first"}


def test_stale_staging_of_a_killed_run_is_cleaned(tmp_path):
    target = tmp_path / "out"
    assert _killed_run(target, "before-publish", True) == 9
    assert [p.name for p in tmp_path.iterdir() if "staging" in p.name]  # left by the kill
    _publish(target, "next", overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("bad,match", [
    ("", "is empty"), ("  ", "is empty"), ("/dev/null", "not a regular"), ("FILE", "is a file"),
    ("FILE/sub", "is a file, not a folder"), ("/", "root folder"),
])
def test_out_is_validated(tmp_path, bad, match):
    (tmp_path / "FILE").write_text("x")
    bad = bad.replace("FILE", str(tmp_path / "FILE"))
    with pytest.raises(RSABridgeError, match=match):
        check_out(bad)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write anywhere")
def test_read_only_parent_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(RSABridgeError, match="permission denied"):
            check_out(ro / "out")
    finally:
        ro.chmod(0o700)


def test_file_outputs_need_overwrite(tmp_path):
    path = tmp_path / "r.nc"
    path.write_text("x")
    with pytest.raises(RSABridgeError, match="--overwrite"):
        check_out(path, kind="file")
    assert check_out(path, True, kind="file") == path
    with pytest.raises(RSABridgeError, match="is a folder"):
        check_out(tmp_path, True, kind="file")


@pytest.mark.parametrize("argv", [
    ["compare", "--model", "pixels", "--area", "V4", "--bootstrap", "0", "--out", ""],
    ["compare", "--model", "pixels", "--area", "V4", "--bootstrap", "0", "--out", "EXISTING"],
    ["compare", "--model", "pixels", "--area", "V4", "--bootstrap", "0", "--out", "/dev/null"],
    ["neural", "import", "cowley2023_v4_210325_rates", "--out", "EXISTING/results.csv"],
    ["neural", "import", "cowley2023_v4_210325_rates", "--out", ""],
    ["stimuli", "contact-sheet", "NOWHERE", "--out", ""],
    ["stimuli", "from-archive", "NOWHERE.zip", "--out", ""],
])
def test_cli_refuses_bad_out_before_work(tmp_path, capsys, argv):
    existing = tmp_path / "EXISTING"
    existing.mkdir()
    (existing / "results.csv").write_text("old")
    argv = [a.replace("EXISTING", str(existing)) for a in argv]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out" in err[0], err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before and (existing / "results.csv").read_text() == "old"


def test_marker_lists_the_files(tmp_path):
    _publish(tmp_path / "out", "v", overwrite=False)
    assert (tmp_path / "out" / MARKER).is_file() and is_complete(tmp_path / "out")
    (tmp_path / "out" / "b.txt").write_text("truncated!")
    assert not is_complete(tmp_path / "out")  # sizes no longer match the marker
