"""Issue 30 (security item 3 and item 9's signal part): ``--overwrite`` replaces only what rsa-bridge wrote;
``cache clear`` removes only the cache's own files; files written beside an output obey ``--overwrite``;
SIGTERM unwinds publishing, and what a SIGKILL leaves is swept by the next run on the same target."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from PIL import Image

from rsa_bridge.app.cache import TAG, RDMCache, cached_network_rdms
from rsa_bridge.app.cli import main
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.io import MARKER, check_out, publish_file, staged_outputs
from stimuli import atomic, load_stimulus_set
from stimuli.tempfiles import dead_temp, sweep_temp, temp_path

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def myset(tmp_path) -> Path:
    """The user's own image set: images, a manifest.csv and notes (no rsa-bridge marker)."""
    folder = tmp_path / "MYSET"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k in range(3):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(folder / f"img{k}.png")
    (folder / "manifest.csv").write_text("stimulus_id,filename\n" + "".join(f"img{k},img{k}.png\n" for k in range(3)))
    (folder / "notes.txt").write_text("my notes")
    return folder


def _archive(tmp_path: Path) -> Path:
    path = tmp_path / "a.zip"
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(image)
    with zipfile.ZipFile(path, "w") as z:
        z.write(image, "x.png")
    return path


def _out_commands(tmp_path: Path, out: Path) -> dict[str, list[str]]:
    """Every command that publishes an --out folder, with inputs that are only read after the --out check."""
    nowhere = str(tmp_path / "NOWHERE")
    return {
        "fractals": ["stimuli", "fractals", "--categories", "1", "--instances", "1", "--size", "32", "--points",
                     "2000", "--quiet"],
        "from-archive": ["stimuli", "from-archive", str(_archive(tmp_path))],
        "compare": ["compare", "--model", "pixels", "--area", "V4", "--bootstrap", "0"],
        "depth-mask": ["depth-mask", "--depth-model", "tiny-synthetic", "--images", nowhere],
        "missed-detections": ["missed-detections", "--video", nowhere, "--boxes", nowhere + ".csv"],
        "units": ["units", "--model", "alexnet", "--stimuli", nowhere, "--label", "category"],
    }


def _run_cli(capsys, argv) -> tuple[int, list[str]]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("command", ["fractals", "from-archive", "compare", "depth-mask", "missed-detections", "units"])
def test_overwrite_never_replaces_a_users_image_set(tmp_path, myset, capsys, command):
    before = _snapshot(myset)
    argv = _out_commands(tmp_path, myset)[command] + ["--out", str(myset), "--overwrite"]
    code, err = _run_cli(capsys, argv)
    assert code == 2 and len(err) == 1, err
    assert "rsa-bridge did not write" in err[0] or "no earlier rsa-bridge output" in err[0]
    assert "move those files away" in err[0] and "img0.png" in err[0]  # names some of them, says what to do
    assert _snapshot(myset) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no lock, no staging


def _publish(target: Path, text: str, overwrite: bool = True) -> None:
    with staged_outputs(target, ("a.txt", "sub/b.txt"), overwrite=overwrite) as stage:
        (stage / "a.txt").write_text(text)
        (stage / "sub").mkdir()
        (stage / "sub" / "b.txt").write_text(text)


def test_earlier_output_is_replaced_but_not_with_a_users_file_beside_it(tmp_path):
    target = tmp_path / "out"
    _publish(target, "old", overwrite=False)
    marker = json.loads((target / MARKER).read_text())
    assert marker["files"] == {"a.txt": 3, "sub/b.txt": 3} and marker["folders"] == ["sub"]
    _publish(target, "new")  # a genuine earlier output: replaced
    assert (target / "a.txt").read_text() == "new" and (target / "sub" / "b.txt").read_text() == "new"
    for extra in ("mine.txt", "sub/mine.txt", "newdir/"):  # one extra user file (or folder), anywhere
        path = target / extra
        path.mkdir() if extra.endswith("/") else path.write_text("precious")
        with pytest.raises(RSABridgeError, match="rsa-bridge did not write") as info:
            _publish(target, "third")
        assert extra.rstrip("/") in str(info.value) and "move those files away" in str(info.value)
        assert (target / "a.txt").read_text() == "new" and path.exists()
        path.rmdir() if extra.endswith("/") else path.unlink()
    _publish(target, "fourth")
    assert (target / "a.txt").read_text() == "fourth"


def test_a_manifest_alone_does_not_make_a_folder_replaceable(tmp_path, myset):
    with pytest.raises(RSABridgeError, match="no earlier rsa-bridge output"):
        check_out(myset, True)
    with pytest.raises(RSABridgeError, match="no earlier rsa-bridge output"):  # a marker that is not JSON
        (myset / MARKER).write_text("not json")
        check_out(myset, True)
    (myset / MARKER).write_text(json.dumps({"files": {"img0.png": 1}}))  # lists only some of the files
    with pytest.raises(RSABridgeError, match=r"did not write \(img1.png, img2.png, manifest.csv, \.\.\.\)"):
        check_out(myset, True)


def test_fractals_replace_their_own_earlier_output(tmp_path, capsys):
    out = tmp_path / "set"
    argv = _out_commands(tmp_path, out)["fractals"] + ["--out", str(out), "--seed", "1"]
    assert _run_cli(capsys, argv)[0] == 0
    first = _snapshot(out)
    assert _run_cli(capsys, argv[:-1] + ["2", "--overwrite"])[0] == 0  # another seed replaces it whole
    assert set(_snapshot(out)) == set(first) and _snapshot(out) != first
    assert len(load_stimulus_set(out)) == 100


# ---------------------------------------------------------------- files written beside an output
@pytest.fixture
def net2brain_src(tmp_path, shared_data):
    return shared_data / "algonauts2019_78images_net2brain"


def test_net2brain_sidecar_obeys_overwrite(tmp_path, capsys, net2brain_src, monkeypatch):
    out = tmp_path / "X.nc"
    sidecar = tmp_path / "X_stimuli.csv"
    sidecar.write_text("the user's own list")
    calls = []
    import rsa_bridge.neural.load as load

    real = load.read_neural
    monkeypatch.setattr(load, "read_neural", lambda *a, **k: calls.append(1) or real(*a, **k))
    argv = ["neural", "import", str(net2brain_src), "--format", "net2brain", "--out", str(out)]
    code, err = _run_cli(capsys, argv)
    assert code == 2 and len(err) == 1 and "X_stimuli.csv" in err[0] and "--overwrite" in err[0], err
    assert calls == [] and sidecar.read_text() == "the user's own list" and not out.exists()  # refused before work
    assert _run_cli(capsys, argv + ["--overwrite"])[0] == 0
    assert sidecar.read_text().startswith("stimulus_id,filename") and out.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["X.nc", "X_stimuli.csv"]  # no temp file, no lock


def test_sidecar_and_output_are_published_together(tmp_path):
    from rsa_bridge.neural.published import Imported, write_imported

    import pandas as pd

    rdm = xr.Dataset({"IT": (("stimulus_row", "stimulus_col"), np.array([[0.0, 1.0], [1.0, 0.0]]))},
                     coords={"stimulus_row": ["a", "b"], "stimulus_col": ["a", "b"]})
    imported = Imported(rdm, pd.DataFrame({"stimulus_id": ["a", "b"], "filename": ["/a.png", "/b.png"]}))
    out = tmp_path / "X.nc"
    (tmp_path / "X_stimuli.csv").write_text("old")
    with pytest.raises(RSABridgeError, match="already exists"):  # the library refuses too (default)
        write_imported(imported, out)
    assert (tmp_path / "X_stimuli.csv").read_text() == "old" and not out.exists()
    broken = Imported(xr.Dataset({"IT": (("x",), [1.0])}), imported.manifest)  # fails validation while saving
    with pytest.raises(Exception):
        write_imported(broken, out, overwrite=True)
    assert (tmp_path / "X_stimuli.csv").read_text() == "old" and not out.exists()  # neither was touched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["X_stimuli.csv"]


# ---------------------------------------------------------------- the cache
def _entry(cache: RDMCache, key: str) -> Path:
    rdms = xr.DataArray(np.zeros((1, 2, 2)), dims=("layer", "stimulus_row", "stimulus_col"),
                        coords={"layer": ["l"], "stimulus_row": ["a", "b"], "stimulus_col": ["a", "b"]})
    description = {"model": {"name": "m", "weights": "w"}, "layers": [["l", "l"]], "stimuli": {"name": "s", "n": 2}}
    return cache.put(key, rdms, description)


def test_cache_clear_leaves_foreign_files(tmp_path, capsys):
    proj = tmp_path / "PROJ"
    cache = RDMCache(proj)
    entry = _entry(cache, "a" * 64)  # a cache used here before ...
    user = xr.Dataset({"rdms": xr.DataArray([[0.0]])})  # ... and the user's own files beside its entries
    user.to_netcdf(proj / "rdms" / "my_rdms.nc", engine="h5netcdf")
    (proj / "rdms" / ".draft.nc.tmp").write_text("my temp")  # looks like a temp file, but not the cache's
    (proj / "notes.txt").write_text("notes")
    assert [e.path for e in cache.entries()] == [entry]
    before = {p: p.read_bytes() for p in proj.rglob("*") if p.is_file() and p != entry}
    code = main(["cache", "--cache", str(proj), "clear"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0 and out[0].startswith("removed 1 entry ") and not entry.exists()
    assert out[1].startswith(f"3 file(s) in {proj} were not written by the rsa-bridge cache and were left in place")
    assert {p: p.read_bytes() for p in proj.rglob("*") if p.is_file()} == before
    untagged = tmp_path / "PROJ2"  # a project folder that never was a cache: clear removes nothing at all
    (untagged / "rdms").mkdir(parents=True)
    user.to_netcdf(untagged / "rdms" / "a.nc", engine="h5netcdf")
    (untagged / "rdms" / ".b.nc.abcdefgh.tmp").write_text("x")
    os.utime(untagged / "rdms" / ".b.nc.abcdefgh.tmp", (0, 0))  # old, like an interrupted write of long ago
    assert main(["cache", "--cache", str(untagged), "clear"]) == 0
    assert "removed 0 entries" in capsys.readouterr().out and len(list(untagged.rglob("*.*"))) == 2
    with pytest.warns(RuntimeWarning, match="not stored: the cache folder .* is not an rsa-bridge cache"):
        assert _entry(RDMCache(untagged), "c" * 64) is None  # and nothing is ever stored there
    assert sorted(p.name for p in untagged.rglob("*")) == [".b.nc.abcdefgh.tmp", "a.nc", "rdms"]


def test_a_foreign_cache_folder_is_refused_for_writing_before_any_model_runs(tmp_path, capsys):
    from stimuli import StimulusSet

    proj = tmp_path / "PROJ"
    (proj / "rdms").mkdir(parents=True)
    (proj / "rdms" / "mine.nc").write_text("x")
    calls = []
    with pytest.raises(RSABridgeError, match=r"is not an rsa-bridge cache \(no CACHEDIR.TAG\) and holds 1 other"):
        cached_network_rdms(lambda *a, **k: calls.append(1), None, StimulusSet.__new__(StimulusSet), None,
                            cache=proj)
    assert calls == [] and sorted(p.name for p in proj.rglob("*")) == ["mine.nc", "rdms"]
    for folder, content in ((tmp_path / "new", {}), (tmp_path / "legacy", {"rdms/" + "b" * 64 + ".nc": "x"})):
        for name, text in content.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
        cache = RDMCache(folder)
        cache.claim()  # a new folder, or an old cache with only cache files in it: adopted and tagged
        assert cache.is_tagged() and (folder / TAG).read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")
        (folder / "later.txt").write_text("a file added to a tagged cache")
        cache.claim()  # the tag decides; clear would still leave later.txt alone
        assert cache.foreign() == (1, ["later.txt"])


# ---------------------------------------------------------------- signals and killed runs
def _child(*parts: str) -> subprocess.Popen:
    script = "\n".join(textwrap.dedent(part) for part in parts)
    return subprocess.Popen([sys.executable, "-c", script], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "the child never reached the publishing step"
        time.sleep(0.05)


HOOK = """
    import time
    from pathlib import Path
    from stimuli import atomic
    def hook(name):
        if name == {step!r}:
            Path({ready!r}).write_text("ready")
            time.sleep(300)
    atomic.FAULT_HOOK = hook
"""


@pytest.mark.parametrize("how,sig", [("staged", signal.SIGTERM), ("staged", signal.SIGINT),
                                     ("fractals-cli", signal.SIGTERM)])
def test_sigterm_while_publishing_leaves_nothing(tmp_path, how, sig):
    target, ready = tmp_path / "out", tmp_path / "ready"
    _publish(target, "old", overwrite=False)
    run = (f"""
        from rsa_bridge.io import staged_outputs
        with staged_outputs(Path({str(target)!r}), ("a.txt",), overwrite=True) as stage:
            (stage / "a.txt").write_text("new")
    """ if how == "staged" else f"""
        import sys
        from rsa_bridge.app.cli import main
        sys.exit(main(["stimuli", "fractals", "--categories", "1", "--instances", "1", "--size", "32",
                       "--points", "2000", "--quiet", "--overwrite", "--out", {str(target)!r}]))
    """)
    proc = _child(HOOK.format(step="before-marker", ready=str(ready)), run)
    _wait_for(ready, proc)
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out"))
    assert any("staging" in n for n in leftovers) and any(n.endswith(".lock") for n in leftovers)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode in (130, -signal.SIGINT, 1), err  # the CLI returns 130; a bare script dies of the interrupt
    if how == "fractals-cli":
        assert proc.returncode == 130 and "interrupted" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "ready"]  # no staging folder, no lock
    assert (target / "a.txt").read_text() == "old"  # the old result, whole


def test_sigkill_leftovers_are_swept_by_the_next_run(tmp_path):
    target, ready = tmp_path / "X.nc", tmp_path / "ready"
    proc = _child(HOOK.format(step="file-before-rename", ready=str(ready)), f"""
        from rsa_bridge.io import publish_file
        with publish_file(Path({str(target)!r})) as tmp:
            tmp.write_text("half")
    """)
    _wait_for(ready, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".X.nc"))
    assert len(left) == 2 and left[1] == ".X.nc.rsa-bridge.lock" and f"-{proc.pid}-" in left[0]
    assert dead_temp(left[0]) and not target.exists()
    foreign = tmp_path / ".X.nc.rsa-bridge-tmp-nothex-1-x.tmp"  # not a name this host's runs make: kept
    foreign.write_text("?")
    with publish_file(target) as tmp:  # the next run on the same target
        tmp.write_text("whole")
    assert target.read_text() == "whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == [foreign.name, "X.nc", "ready"]


def test_temp_files_of_live_processes_are_never_swept(tmp_path):
    target = tmp_path / "x.csv"
    mine = temp_path(target)
    assert mine.name.startswith(".x.csv.rsa-bridge-tmp-") and mine.name.endswith(".tmp.csv")
    assert sweep_temp(target) == [] and mine.exists() and not dead_temp(mine)  # this process is alive
    parent_pid = os.getppid()
    other = mine.with_name(mine.name.replace(f"-{os.getpid()}-", f"-{parent_pid}-"))
    mine.rename(other)
    assert sweep_temp(target) == [] and other.exists()


def test_sigkilled_neural_import_is_swept_by_the_next_import(tmp_path, net2brain_src):
    out, ready = tmp_path / "X.nc", tmp_path / "ready"
    argv = ["neural", "import", str(net2brain_src), "--format", "net2brain", "--out", str(out)]
    proc = _child(HOOK.format(step="file-before-rename", ready=str(ready)), f"""
        from rsa_bridge.app.cli import main
        main({argv!r})
    """)
    _wait_for(ready, proc, timeout=300)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert any(f"-{proc.pid}-" in n for n in left) and not out.exists()  # what a SIGKILL leaves
    assert main(argv) == 0  # the next import on the same --out (nothing was published: no --overwrite needed)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["X.nc", "X_stimuli.csv", "ready"]


def test_atomic_writes_sweep_temp_files_of_dead_processes(tmp_path):
    from rsa_bridge.io import write_text

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    target = tmp_path / "r.csv"
    mine = temp_path(target, keep_suffix=False)
    stale = mine.with_name(mine.name.replace(f"-{os.getpid()}-", f"-{pid}-"))
    mine.rename(stale)
    assert dead_temp(stale)
    write_text("x", target)  # any later write of the same file sweeps it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv"]


def test_digest_memo_is_never_written_among_other_files(tmp_path, myset, monkeypatch):
    import rsa_bridge.app.cache as cache_mod

    monkeypatch.setattr(cache_mod, "RACY_NS", 0)
    monkeypatch.setattr(cache_mod, "_DIGESTS", {})
    paths = sorted(myset.glob("*.png"))
    cache_mod.file_digests(paths, myset)  # a folder of the user's files: no memo written there
    assert not (myset / cache_mod.MEMO_FILE).exists()
    monkeypatch.setattr(cache_mod, "_DIGESTS", {})
    cache_mod.file_digests(paths, tmp_path / "new")  # a new folder is fine
    assert (tmp_path / "new" / cache_mod.MEMO_FILE).is_file()
