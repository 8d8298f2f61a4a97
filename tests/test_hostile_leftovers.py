"""Hostile input, round 3 (issue 30 item 10 and the leftover tracebacks): the cache's digest memo is never
trusted when edited or broken; --out on /proc, /sys, a mount point or a too-long name, RSA_BRIDGE_TIMINGS
naming a folder, a manifest row or zip member with an empty name, ``pretrain --out ''``, a FIFO given as
a file and a link to an image outside a folder are each one RSABridgeError line (exit 2 on the command line)."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from PIL import Image

import rsa_bridge.app.cache as cache_mod
from rsa_bridge import timing
from rsa_bridge.app.cache import RDMCache, file_digests
from rsa_bridge.app.cli import main
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.io import check_out, reading
from stimuli import StimulusError, load_stimulus_set
from stimuli.builders import from_archive, from_folder_tree
from stimuli.stimulus_set import from_folder, read_image
from tests.helpers import make_stimuli


def _cli(capsys, argv) -> tuple[int, list[str]]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err.strip().splitlines()


@contextmanager
def _deadline(seconds: int = 20):
    """Fail (instead of hanging the suite) when the block blocks, e.g. on opening a FIFO."""
    def fire(signum, frame):
        raise TimeoutError(f"blocked for {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- the digest memo (item 10)
@pytest.fixture
def stim(tmp_path):
    make_stimuli(tmp_path / "stimuli", n=4, size=16)
    return load_stimulus_set(tmp_path / "stimuli")


@pytest.fixture
def memoised(stim, tmp_path, monkeypatch):
    """A memo written by file_digests (files old enough to be memoised), and a fresh process memo."""
    monkeypatch.setattr(cache_mod, "RACY_NS", 0)
    monkeypatch.setattr(cache_mod, "_DIGESTS", {})
    memo = tmp_path / "c"
    file_digests(stim.paths, memo)
    monkeypatch.setattr(cache_mod, "_DIGESTS", {})
    return memo / cache_mod.MEMO_FILE


def test_memo_is_checksummed_and_read_back(stim, memoised):
    body = json.loads(memoised.read_text())
    assert body["format"] == 2 and len(body["entries"]) == 4
    assert body["sha256"] == hashlib.sha256(json.dumps(body["entries"], sort_keys=True).encode()).hexdigest()
    assert cache_mod.read_memo(memoised) == body["entries"]


def test_an_edited_memo_is_not_trusted(stim, memoised, monkeypatch, capsys):
    body = json.loads(memoised.read_text())
    keys = sorted(body["entries"], key=lambda k: json.loads(k)[0])  # the entries of paths[0..3] by file name
    first, second = keys[0], keys[1]
    body["entries"][first][0] = body["entries"][second][0]  # image 0's digest now says image 1's
    memoised.write_text(json.dumps(body))
    hashed = []
    real = cache_mod.file_sha256
    monkeypatch.setattr(cache_mod, "file_sha256", lambda p: hashed.append(p) or real(p))
    digests = file_digests(stim.paths, memoised.parent)
    assert digests == [_sha(p) for p in stim.paths] and len(hashed) == 4  # everything hashed again
    assert "does not match its checksum" in capsys.readouterr().err
    assert cache_mod.read_memo(memoised) != {}  # rebuilt, valid again


@pytest.mark.parametrize("text", ["null", "[]", "{}", "42", '"x"', "{not json", '{"format": 2}',
                                  '{"format": 2, "entries": [], "sha256": null}', "\x00\xff" * 10,
                                  '{"a": ["b", 1]}'])
def test_garbage_memos_count_as_empty(stim, memoised, text, monkeypatch):
    memoised.write_bytes(text.encode("latin-1"))
    assert cache_mod.read_memo(memoised) == {}
    assert file_digests(stim.paths, memoised.parent) == [_sha(p) for p in stim.paths]


def test_memo_entries_of_the_wrong_types_are_dropped(memoised):
    body = json.loads(memoised.read_text())
    good = dict(body["entries"])
    entries = {**good, '["/x", "1", 2, 3, 4, 5]': ["0" * 64, 1], '["/y", 1, 2, 3, 4, 5]': [None, 1],
               '["/z", 1, 2, 3, 4, 5]': ["g" * 64, 1], "not json": ["0" * 64, 1]}
    memoised.write_text(json.dumps({"format": 2, "entries": entries, "sha256": cache_mod._memo_checksum(entries)}))
    assert cache_mod.read_memo(memoised) == good


def test_compare_recomputes_after_images_change_under_an_edited_memo(tmp_path, monkeypatch):
    """The campaign's case: the memo maps the new images' files to the old images' digests."""
    torch = pytest.importorskip("torch")
    from torchvision import transforms as T

    from rsa_bridge.app.cache import cached_network_rdms
    from rsa_bridge.app.pipeline import network_rdms
    from rsa_bridge.options import RDMOptions

    monkeypatch.setattr(cache_mod, "RACY_NS", 0)
    make_stimuli(tmp_path / "s", n=5, size=16)
    stim = load_stimulus_set(tmp_path / "s")
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten()).eval()
    store, opts, calls = RDMCache(tmp_path / "c"), RDMOptions(batch_size=5), []

    def compute(*args, **kwargs):
        calls.append(1)
        return network_rdms(*args, **kwargs)

    def run():
        monkeypatch.setattr(cache_mod, "_DIGESTS", {})  # each run a new process
        return cached_network_rdms(compute, net, stim, ["0"], opts, progress=False, transform=T.ToTensor(), cache=store)

    run()
    memo = tmp_path / "c" / cache_mod.MEMO_FILE
    old = {json.loads(k)[0]: v[0] for k, v in json.loads(memo.read_text())["entries"].items()}
    for path in stim.paths:  # new images, and a memo edited to say they are the old ones
        Image.fromarray(np.random.default_rng(7).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(path)
        os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    edited = {json.dumps(cache_mod._stat_key(p)): [old[str(p.resolve())], 1] for p in stim.paths}
    memo.write_text(json.dumps({"format": 2, "entries": edited, "sha256": "0" * 64}))
    again = run()
    assert len(calls) == 2
    xr.testing.assert_allclose(again, network_rdms(net, stim, ["0"], opts, progress=False, transform=T.ToTensor()))


# ---------------------------------------------------------------- --out where nothing can be published
@pytest.mark.parametrize("target,words", [("/proc/x.nc", "proc filesystem"), ("/sys/x.nc", "sysfs filesystem"),
                                          ("/proc/self", "proc filesystem")])
def test_out_on_kernel_filesystems_is_refused(target, words):
    if not Path(target).parent.is_dir():
        pytest.skip("no such filesystem here")
    with pytest.raises(RSABridgeError, match=words):
        check_out(target, kind="file", overwrite=True)


def test_out_that_is_a_mount_point_is_refused():
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    candidates = [m for m in mounts if m not in ("/",) and os.path.isdir(m) and m.startswith(("/tmp", "/work", "/dev/shm"))]
    if not candidates:
        pytest.skip("no mount point to try")
    with pytest.raises(RSABridgeError, match="mount point|kernel"):
        check_out(candidates[0], overwrite=True)


def test_names_too_long_are_refused_before_any_work(tmp_path, capsys):
    long = "a" * 240
    with pytest.raises(RSABridgeError, match="240 bytes long, more than the 191 allowed"):
        check_out(tmp_path / long, kind="folder")
    with pytest.raises(RSABridgeError, match="256 bytes long, more than the 255 allowed"):
        check_out(tmp_path / ("b" * 256) / "x.nc", kind="file")
    check_out(tmp_path / ("c" * 191), kind="folder")  # the longest allowed
    np.save(tmp_path / "r.npy", np.ones((2, 3, 2)))
    code, err = _cli(capsys, ["neural", "import", tmp_path / "r.npy", "--region", "V4", "--stimulus-ids", "s{n}",
                              "--out", tmp_path / (long + ".nc")])
    assert code == 2 and len(err) == 1 and "allowed here" in err[0]
    assert sorted(os.listdir(tmp_path)) == ["r.npy"]


def test_out_on_proc_from_the_command_line(tmp_path, capsys):
    np.save(tmp_path / "r.npy", np.ones((2, 3, 2)))
    code, err = _cli(capsys, ["neural", "import", tmp_path / "r.npy", "--region", "V4", "--stimulus-ids", "s{n}",
                              "--out", "/proc/x.nc"])
    assert code == 2 and len(err) == 1 and "proc filesystem" in err[0]


# ---------------------------------------------------------------- RSA_BRIDGE_TIMINGS
def test_timings_must_name_a_file(tmp_path, monkeypatch):
    monkeypatch.setattr(timing, "_state", {})
    monkeypatch.setenv(timing.ENV, str(tmp_path))
    with pytest.raises(RSABridgeError, match="is a folder; name a file"):
        timing.begin("x")
    os.mkfifo(tmp_path / "fifo.json")
    for bad, words in ((tmp_path / "fifo.json", "not a regular file"), ("/proc/t.json", "proc filesystem"),
                       (str(tmp_path) + "/", "is a folder")):
        with pytest.raises(RSABridgeError, match=words):
            timing.check_path(str(bad))
    assert timing.check_path(str(tmp_path / "t.json")) == tmp_path / "t.json"


def test_timings_write_failure_is_a_line_not_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(timing, "_state", {})
    monkeypatch.setenv(timing.ENV, str(tmp_path / "t.json"))
    rec = timing.recorder()
    try:
        with timing.stage("a"):
            pass
        assert json.loads((tmp_path / "t.json").read_text())["stages"]["a"]["calls"] == 1
        rec.path = tmp_path / "gone" / "sub"  # its folder is now a file: the write fails
        (tmp_path / "gone").write_text("x")
        rec.write(final=False)
        rec.write(final=False)
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "timings not written" in err[0]
    finally:
        rec.stop.set()


# ---------------------------------------------------------------- readers open regular files only
def test_a_fifo_is_refused_without_blocking(tmp_path, capsys):
    fifo = tmp_path / "x.npy"
    os.mkfifo(fifo)
    image = tmp_path / "x.png"
    os.mkfifo(image)
    with _deadline():
        with pytest.raises(RSABridgeError, match="is a FIFO, not a regular file"):
            with reading(fifo, "numpy"):
                pass
        with pytest.raises(StimulusError, match="is a FIFO"):
            read_image(image)
        code, err = _cli(capsys, ["neural", "import", fifo, "--region", "V4", "--stimulus-ids", "s{n}",
                                  "--out", tmp_path / "o.nc"])
    assert code == 2 and len(err) == 1 and "FIFO" in err[0]


def test_a_device_or_folder_is_not_a_file(tmp_path):
    with pytest.raises(RSABridgeError, match="a device, not a regular file"):
        with reading("/dev/null", "NetCDF"):
            pass
    with pytest.raises(RSABridgeError, match="a folder, not a regular file"):
        with reading(tmp_path, "NetCDF"):
            pass


# ---------------------------------------------------------------- empty names
def test_manifest_row_with_an_empty_filename(tmp_path):
    make_stimuli(tmp_path / "s", n=3, size=8)
    manifest = tmp_path / "s" / "manifest.csv"
    lines = manifest.read_text().splitlines()
    lines[2] = lines[2].split(",")[0] + ",,a"
    manifest.write_text("\n".join(lines) + "\n")
    for check in (True, False):
        with pytest.raises(StimulusError, match=r"1 row\(s\) with an empty filename"):
            load_stimulus_set(tmp_path / "s", check_images=check)
    manifest.write_text("stimulus_id,filename\nx,\"  \"\n")
    with pytest.raises(StimulusError, match="empty filename"):
        load_stimulus_set(tmp_path / "s")


def test_zip_member_with_an_empty_name(tmp_path, capsys):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("a.png", b"x")
        handle.writestr(zipfile.ZipInfo(""), b"x")
    with pytest.raises(StimulusError, match=r"unsafe member\(s\) '' \(empty name\)"):
        from_archive(archive, tmp_path / "out")
    code, err = _cli(capsys, ["stimuli", "from-archive", archive, "--out", tmp_path / "out"])
    assert code == 2 and len(err) == 1 and "empty name" in err[0]
    assert sorted(os.listdir(tmp_path)) == ["a.zip"]


def test_pretrain_out_empty_is_refused(tmp_path, capsys):
    make_stimuli(tmp_path / "s", n=2, size=8)
    before = sorted(os.listdir(Path.cwd()))
    for out in ("", "   "):
        code, err = _cli(capsys, ["pretrain", "--stimuli", tmp_path / "s", "--out", out, "--epochs", "1"])
        assert code == 2 and len(err) == 1 and "--out is empty" in err[0]
    (tmp_path / "f").write_text("x")
    code, err = _cli(capsys, ["pretrain", "--stimuli", tmp_path / "s", "--out", tmp_path / "f"])
    assert code == 2 and "give a folder path" in err[0]
    assert sorted(os.listdir(Path.cwd())) == before


# ---------------------------------------------------------------- links leading outside a folder
@pytest.fixture
def linked(tmp_path):
    folder, outside = tmp_path / "set", tmp_path / "elsewhere"
    folder.mkdir()
    outside.mkdir()
    Image.new("RGB", (8, 8), "red").save(folder / "a.png")
    Image.new("RGB", (8, 8), "blue").save(outside / "b.png")
    (folder / "b.png").symlink_to(outside / "b.png")
    return folder


def test_from_folder_refuses_links_leading_outside(linked, capsys):
    for build in (from_folder, from_folder_tree):
        with pytest.raises(StimulusError, match=r"1 image\(s\) in .* are links to files outside it \('b.png'"):
            build(linked)
    code, err = _cli(capsys, ["stimuli", "from-folder", linked])
    assert code == 2 and len(err) == 1 and "links to files outside" in err[0]
    assert not (linked / "manifest.csv").exists()


def test_links_inside_the_folder_are_fine_and_the_manifest_loads(linked, capsys):
    (linked / "b.png").unlink()
    (linked / "store").mkdir()
    Image.new("RGB", (8, 8), "blue").save(linked / "store" / "c.png")
    (linked / "b.png").symlink_to(linked / "store" / "c.png")
    code, _ = _cli(capsys, ["stimuli", "from-folder", linked])
    assert code == 0
    loaded = load_stimulus_set(linked)
    assert len(loaded) >= 2 and "b" in loaded.stimulus_ids


def test_a_linked_subfolder_leading_outside_is_refused(tmp_path):
    folder, outside = tmp_path / "set", tmp_path / "elsewhere"
    (folder / "real").mkdir(parents=True)
    outside.mkdir()
    Image.new("RGB", (8, 8)).save(folder / "real" / "a.png")
    Image.new("RGB", (8, 8)).save(outside / "b.png")
    (folder / "linked").symlink_to(outside, target_is_directory=True)
    try:
        found = from_folder_tree(folder)
    except StimulusError as err:
        assert "outside" in str(err)
    else:  # where rglob does not follow the link, the outside image is simply not part of the set
        assert all(p.resolve().is_relative_to(folder.resolve()) for p in found.paths)


def test_a_fifo_named_manifest_csv_does_not_block(tmp_path):
    """A FIFO named manifest.csv is not a manifest (and nothing blocks)."""
    (tmp_path / "s").mkdir()
    os.mkfifo(tmp_path / "s" / "manifest.csv")
    with _deadline():
        with pytest.raises(StimulusError, match="no manifest.csv"):
            load_stimulus_set(tmp_path / "s")
