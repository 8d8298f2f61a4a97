"""Full, read-only and failing disks (issue 30 item 9): free space is checked before a write, a write that
meets ENOSPC/EDQUOT/EIO/EROFS is one RSABridgeError line with no temporary file left, and a NetCDF/HDF5
write that fails never crashes the interpreter (it used to die with SIGSEGV inside HDF5)."""
from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import rsa_bridge.io as rio
from rsa_bridge.app.cache_store import RDMCache
from rsa_bridge.errors import RSABridgeError
from stimuli import atomic, diskspace
from stimuli.diskspace import check_free_space, disk_error, error_number, needed_bytes

REPO = Path(__file__).resolve().parents[1]
Usage = namedtuple("Usage", "total used free")


def _no_temps(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if "rsa-bridge" in p.name]


def _fake_free(monkeypatch, free: int) -> None:
    monkeypatch.setattr(diskspace.shutil, "disk_usage", lambda p: Usage(10 * free + 1, 9 * free, free))


@pytest.fixture
def small_disk(tmp_path):
    """A real 1 MiB tmpfs (needs root and mount); skipped where it cannot be made."""
    where = tmp_path / "small"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", str(where)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.decode().strip()})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _child(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **env})


# ---------------------------------------------------------------- the estimate, by hand
def test_needed_bytes_is_size_plus_five_percent_plus_one_mib():
    assert needed_bytes(0) == 1 << 20
    assert needed_bytes(100 << 20) == (105 << 20) + (1 << 20)
    assert needed_bytes(-5) == 1 << 20


def test_free_space_check_refuses_before_any_byte(tmp_path, monkeypatch):
    _fake_free(monkeypatch, 2 << 20)  # 2 MiB free
    check_free_space(tmp_path / "x.nc", 900 << 10)  # 0.9 MiB * 1.05 + 1 MiB < 2 MiB: fine
    with pytest.raises(RSABridgeError, match=r"no space left on the device holding .* 2\.0 MiB free, about "
                                             r"3\.1 MiB needed; free space or choose another --out"):
        check_free_space(tmp_path / "x.nc", 2 << 20)


def test_write_netcdf_refuses_a_too_large_dataset_and_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "x.nc"
    rio.write_netcdf(xr.Dataset({"a": ("x", np.arange(3.0))}), target)
    before = target.read_bytes()
    _fake_free(monkeypatch, 1 << 20)
    big = xr.Dataset({"a": (("x", "y"), np.zeros((400, 400)))})  # 1.2 MiB of data
    with pytest.raises(RSABridgeError) as caught:
        rio.write_netcdf(big, target)
    assert "\n" not in str(caught.value) and "'x.nc'" in str(caught.value)
    assert target.read_bytes() == before and _no_temps(tmp_path) == []


# ---------------------------------------------------------------- errors during a write
@pytest.mark.parametrize("code,words", [(errno.ENOSPC, "no space left on the device holding"),
                                        (errno.EDQUOT, "the quota is used up"),
                                        (errno.EROFS, "is read-only"),
                                        (errno.EIO, "input/output error"),
                                        (errno.EFBIG, "too large")])
def test_each_device_error_is_one_line(tmp_path, code, words):
    mapped = disk_error(OSError(code, os.strerror(code)), tmp_path / "x.nc")
    assert isinstance(mapped, RSABridgeError) and words in str(mapped) and "\n" not in str(mapped)
    assert disk_error(OSError(errno.ENOENT, "gone"), tmp_path / "x.nc") is None
    assert disk_error(ValueError("nothing to do with disks"), tmp_path) is None


def test_the_errno_inside_an_hdf5_message_counts():
    text = "Disable slist on flush dest failure failed (file write failed: ..., errno = 28, error message = 'No space"
    assert error_number(RuntimeError(text)) == errno.ENOSPC
    assert error_number(OSError(errno.EIO, "x")) == errno.EIO
    assert error_number(RuntimeError("no number")) is None


@pytest.mark.parametrize("publish", ["file", "files", "folder", "atomic_write", "atomic_path"])
def test_enospc_inside_every_publisher_is_one_line_and_leaves_nothing(tmp_path, publish):
    target = tmp_path / ("out" if publish == "folder" else "out.nc")
    if publish == "folder":
        with atomic.publish_folder(target) as stage:
            (stage / "a.txt").write_text("old")
    else:
        target.write_text("old")

    def fail(tmp):
        Path(tmp).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(RSABridgeError, match="no space left on the device holding"):
        if publish == "file":
            with atomic.publish_file(target, overwrite=True) as tmp:
                fail(tmp)
        elif publish == "files":
            with atomic.publish_files([tmp_path / "side.csv", target], overwrite=True) as (side, tmp):
                side.write_text("side")
                fail(tmp)
        elif publish == "folder":
            with atomic.publish_folder(target, overwrite=True) as stage:
                fail(stage / "a.txt")
        elif publish == "atomic_write":
            atomic.atomic_write(target, fail)
        else:
            with rio.atomic_path(target) as tmp:
                fail(tmp)
    kept = (target / "a.txt") if publish == "folder" else target
    assert kept.read_text() == "old" and not (tmp_path / "side.csv").exists()
    assert [n for n in os.listdir(tmp_path) if n not in ("out", "out.nc")] == []


def test_cache_put_on_a_full_disk_warns_and_the_job_goes_on(tmp_path, monkeypatch):
    store = RDMCache(tmp_path / "c")
    rdms = xr.DataArray(np.zeros((1, 3, 3)), dims=("layer", "stimulus_row", "stimulus_col"),
                        coords={"layer": ["l"], "stimulus_row": list("abc"), "stimulus_col": list("abc")})
    description = {"model": {"name": "m", "weights": "w"}, "layers": [["l", "0"]], "stimuli": {"name": "s", "n": 3}}
    store.claim()
    _fake_free(monkeypatch, 1000)
    with pytest.warns(RuntimeWarning, match="no space left"):
        assert store.put("0" * 64, rdms, description) is None
    assert store.entries() == [] and store._temps() == []


# ---------------------------------------------------------------- a real full disk (tmpfs of 1 MiB)
def test_netcdf_on_a_real_full_disk_is_one_line_no_crash_no_leftovers(small_disk):
    for check in ("on", "off"):  # off: the write itself meets ENOSPC inside HDF5
        done = _child(f"""
            import gc, numpy as np, xarray as xr
            import rsa_bridge.io as rio
            from rsa_bridge.errors import RSABridgeError
            if {check!r} == "off":
                rio.check_free_space = lambda *a, **k: None
            ds = xr.Dataset({{"a": (("x", "y"), np.random.default_rng(0).random((600, 600)))}})
            try:
                rio.write_netcdf(ds, {str(small_disk / 'x.nc')!r})
            except RSABridgeError as err:
                print("ERROR", err)
            gc.collect()
            print("ALIVE")
        """)
        assert done.returncode == 0, (check, done.returncode, done.stderr[-2000:])
        assert "ERROR no space left on the device holding" in done.stdout and "ALIVE" in done.stdout
        assert os.listdir(small_disk) == []


def test_a_streaming_h5netcdf_writer_on_a_full_disk_does_not_crash(small_disk):
    """As rsa_bridge.rdm_netcdf.write_model_rdms writes: h5netcdf.File on atomic_path's temporary file."""
    done = _child(f"""
        import gc, h5netcdf, numpy as np
        import rsa_bridge.io as rio
        from rsa_bridge.errors import RSABridgeError
        try:
            with rio.atomic_path({str(small_disk / 'm.nc')!r}) as tmp:
                with h5netcdf.File(tmp, "w") as handle:
                    handle.dimensions = {{"x": 600, "y": 600}}
                    v = handle.create_variable("a", ("x", "y"), float)
                    v[...] = np.random.default_rng(0).random((600, 600))
        except RSABridgeError as err:
            print("ERROR", err)
        gc.collect()
        print("ALIVE")
    """)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert "ERROR no space left" in done.stdout and "ALIVE" in done.stdout and os.listdir(small_disk) == []


def test_neural_import_on_a_full_disk_exits_2_with_one_line(small_disk, tmp_path):
    values = np.random.default_rng(0).gamma(2.0, 2.0, size=(1000, 50, 6))  # 2.4 MB, hardly compressible
    np.save(tmp_path / "counts.npy", values)
    argv = ["neural", "import", str(tmp_path / "counts.npy"), "--region", "V4", "--stimulus-ids", "s{n}",
            "--out", str(small_disk / "rates.nc")]
    for check in ("on", "off"):
        done = _child(f"""
            import sys
            import rsa_bridge.io as rio
            if {check!r} == "off":
                rio.check_free_space = lambda *a, **k: None
            from rsa_bridge.app.cli import main
            sys.exit(main({argv!r}))
        """)
        lines = [line for line in done.stderr.strip().splitlines() if "Warning" not in line]  # torch's import
        assert done.returncode == 2 and len(lines) == 1 and "no space left on the device holding" in lines[0], \
            (check, done.returncode, done.stderr[-2000:])
        assert os.listdir(small_disk) == []


def test_archive_larger_than_the_free_space_is_refused_before_extracting(tmp_path, monkeypatch):
    import zipfile

    from stimuli.builders import from_archive

    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("x.png", os.urandom(300_000))
    _fake_free(monkeypatch, 1 << 20)
    with pytest.raises(RSABridgeError, match="no space left .* for the extracted 'a.zip'"):
        from_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() and [p for p in os.listdir(tmp_path) if p != "a.zip"] == []


def test_mid_extraction_enospc_is_the_disk_line(tmp_path, monkeypatch):
    import zipfile

    from stimuli import builders

    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("x.png", b"12345")

    def full(self, source, target):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(builders._Budget, "copy", full)
    with pytest.raises(RSABridgeError, match="no space left on the device holding"):
        builders.from_archive(archive, tmp_path / "out")
    assert [p for p in os.listdir(tmp_path) if p != "a.zip"] == []
