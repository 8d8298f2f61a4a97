"""Resource limits: archive bombs (size, member count, compression ratio), image-size bombs and memory
estimates for --bootstrap / --permutations / fractal --size are refused with one line, before work."""
from __future__ import annotations

import os

import io
import struct
import tarfile
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image

from rsa_bridge.app.cli import main
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.limits import MAX_SEED, check_seed, check_statistics_memory, statistics_bytes
from stimuli import StimulusError, read_image
from stimuli.builders import from_archive
from stimuli.limits import ArchiveLimits, format_size, memory_budget, parse_size


def _png_bytes(value: int = 128) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((4, 4, 3), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _zip(path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def test_ordinary_archive_still_extracts(tmp_path):
    _zip(tmp_path / "ok.zip", {"a.png": _png_bytes(1), "b.png": _png_bytes(2)})
    assert len(from_archive(tmp_path / "ok.zip", tmp_path / "out")) == 2


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_compression_ratio_bomb_is_refused(tmp_path, capsys, kind):
    zeros = b"\0" * (8 * 1024 * 1024)  # 8 MiB of zeros packs to ~8 KiB: ratio ~1000 > 200
    path = tmp_path / f"bomb.{kind}"
    if kind == "zip":
        _zip(path, {"a.png": _png_bytes(), "big.png": zeros})
    else:
        with tarfile.open(path, "w:gz") as t:
            info = tarfile.TarInfo("big.png")
            info.size = len(zeros)
            t.addfile(info, io.BytesIO(zeros))
    assert main(["stimuli", "from-archive", str(path), "--out", str(tmp_path / "out")]) == 2
    line = _one_error_line(capsys)
    assert "expands" in line and "nothing was extracted" in line and "RSA_BRIDGE_MAX_COMPRESSION_RATIO" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no staging folder left behind


def test_total_size_and_member_count_limits(tmp_path, monkeypatch):
    _zip(tmp_path / "many.zip", {f"i{k}.png": _png_bytes(k) for k in range(6)})
    with pytest.raises(StimulusError, match="6 members"):
        from_archive(tmp_path / "many.zip", tmp_path / "o1", limits=ArchiveLimits(max_files=5))
    monkeypatch.setenv("RSA_BRIDGE_MAX_EXTRACT_BYTES", "100")
    with pytest.raises(StimulusError, match="uncompressed"):
        from_archive(tmp_path / "many.zip", tmp_path / "o2")
    monkeypatch.setenv("RSA_BRIDGE_MAX_EXTRACT_BYTES", "1M")
    assert len(from_archive(tmp_path / "many.zip", tmp_path / "o3")) == 6
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_lying_sizes_are_stopped_by_the_bytes_written(tmp_path):
    # a tar member whose header is honest but bigger than the budget counted while writing
    from stimuli.builders import _Budget

    budget = _Budget(tmp_path / "x.tar", ArchiveLimits(max_bytes=10))
    with pytest.raises(StimulusError, match="more than 10 bytes written"):
        budget.copy(io.BytesIO(b"x" * 11), tmp_path / "t" / "f")


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [8000, 20000])  # 64 Mpx: our limit; 400 Mpx: Pillow's bomb error too
def test_image_bomb_header_is_one_line(tmp_path, side):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header(side, side))
    with pytest.raises(StimulusError, match="RSA_BRIDGE_MAX_IMAGE_PIXELS"):
        read_image(path)


def _parsed_exit(argv) -> int:
    """The exit code of a command line refused while parsing (argparse exits: one line, code 2)."""
    with pytest.raises(SystemExit) as stop:
        main(argv)
    return stop.value.code


def test_fractal_size_and_points_refused_before_work(tmp_path, capsys):
    out = tmp_path / "f"
    assert _parsed_exit(["stimuli", "fractals", "--size", "100000", "--out", str(out), "--quiet"]) == 2
    assert "--size" in _one_error_line(capsys)  # bounded when parsed (rsa_bridge.app.argtypes)
    assert main(["stimuli", "fractals", "--size", "8192", "--out", str(out), "--quiet"]) == 2  # in bounds, 67 Mpx
    assert "pixels" in _one_error_line(capsys)
    os.environ["RSA_BRIDGE_MAX_MEMORY"] = "1M"  # in-bounds points, over a small memory budget
    try:
        code = main(["stimuli", "fractals", "--points", str(10**8), "--out", str(out), "--quiet"])
    finally:
        del os.environ["RSA_BRIDGE_MAX_MEMORY"]
    assert code == 2
    line = _one_error_line(capsys)
    assert "needs about" in line and "--points" in line
    assert not out.exists()


def test_statistics_memory_estimate_against_hand_count():
    # bootstrap: 3 int64 per stimulus + 1 float64 per layer x rdm, per sample
    assert statistics_bytes(10, bootstrap=100, n_layers=2, n_rdms=3) == 100 * (3 * 8 * 10 + 8 * 6)
    assert statistics_bytes(10, permutations=7) == 7 * (8 * 10 + 8)
    with pytest.raises(RSABridgeError, match=r"--bootstrap 1000000000000 .* e\.g\. --bootstrap 1000"):
        check_statistics_memory(92, bootstrap=10**12)
    check_statistics_memory(92, bootstrap=1000, permutations=1000)


def test_compare_refuses_huge_bootstrap_before_any_model(capsys):
    assert _parsed_exit(["compare", "--model", "pixels", "--area", "V4", "--bootstrap", str(10**12)]) == 2
    assert "--bootstrap" in _one_error_line(capsys)  # bounded when parsed; the memory estimate below the bound:
    os.environ["RSA_BRIDGE_MAX_MEMORY"] = "1M"
    try:
        code = main(["compare", "--model", "pixels", "--area", "V4", "--bootstrap", "100000"])
    finally:
        del os.environ["RSA_BRIDGE_MAX_MEMORY"]
    assert code == 2
    line = _one_error_line(capsys)
    assert "needs about" in line and "MiB" in line
    assert _parsed_exit(["compare", "--model", "pixels", "--area", "V4", "--permutations", str(10**13), "--bootstrap", "0"]) == 2
    assert "--permutations" in _one_error_line(capsys)


def test_memory_budget_env_and_sizes(monkeypatch):
    assert parse_size("4G") == 4 * 1024**3 and parse_size("512M") == 512 * 1024**2 and parse_size("1000") == 1000
    assert format_size(1024**4 * 58) == "58.0 TiB"
    monkeypatch.setenv("RSA_BRIDGE_MAX_MEMORY", "1K")
    assert memory_budget() == 1024
    with pytest.raises(RSABridgeError, match="1.0 KiB"):
        check_statistics_memory(92, bootstrap=10)
    monkeypatch.setenv("RSA_BRIDGE_MAX_MEMORY", "lots")
    with pytest.raises(StimulusError, match="not a size"):
        memory_budget()


def test_seed_bounds(capsys):
    assert check_seed(MAX_SEED) == MAX_SEED
    for bad in (-1, MAX_SEED + 1, 10**30, 1.5, True):
        with pytest.raises(RSABridgeError, match="--seed"):
            check_seed(bad)
    assert _parsed_exit(["compare", "--model", "pixels", "--area", "V4", "--seed", str(10**30), "--bootstrap", "0"]) == 2
    assert "2**63 - 1" in _one_error_line(capsys)


def test_stimulus_error_is_an_rsa_bridge_error():
    assert issubclass(StimulusError, RSABridgeError)
