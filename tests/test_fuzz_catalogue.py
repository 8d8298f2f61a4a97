"""The fuzz suite: every hostile input of ``tests/fuzz_catalogue.json`` (data, not code) is run through the
command line by one parametrised test, which asserts exit code 2, exactly one line on stderr, no
traceback, no file left behind, nothing outside the scratch folder touched and no code run from data.

The makers below only build the inputs a case names (tiny files: a few pixels, a few bytes); the cases
themselves — which command, which options, what the error line must say — live in the catalogue.
Run: ``python -m pytest tests/test_fuzz_catalogue.py -q``.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from PIL import Image

from rsa_bridge.app.cli import main

CATALOGUE = Path(__file__).with_name("fuzz_catalogue.json")
CASES = json.loads(CATALOGUE.read_text())["cases"]


class _Payload:
    """Unpickling this creates ``marker``: proof that code ran from a data file."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _png(value: int = 100, size: int = 4) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) \
        + chunk(b"IEND", b"")


def _content(spec: str) -> bytes:
    """Bytes from a short spec: png, zeros:N, text:..., png_header:WxH, float:V, truncated_jpeg."""
    kind, _, arg = spec.partition(":")
    if kind == "png":
        return _png()
    if kind == "zeros":
        return b"\0" * int(arg)
    if kind == "text":
        return arg.encode()
    if kind == "png_header":
        w, h = map(int, arg.split("x"))
        return _png_header(w, h)
    if kind == "float":
        buf = io.BytesIO()
        Image.fromarray(np.full((4, 4), float(arg), np.float32)).save(buf, format="TIFF")
        return buf.getvalue()
    if kind == "truncated_jpeg":
        buf = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(buf, "JPEG")
        return buf.getvalue()[:200]
    raise ValueError(f"unknown content spec {spec!r}")


def _pickle_payload(tmp: Path, spec: dict) -> Path:
    path = tmp / spec["name"]
    path.write_bytes(pickle.dumps(_Payload(str(tmp / "PWNED"))))
    return path


def _text(tmp: Path, spec: dict) -> Path:
    path = tmp / spec["name"]
    path.write_bytes(spec["text"].encode("latin-1"))
    return path


def _npy(tmp: Path, spec: dict) -> Path:
    fill = {"nan": np.nan, "inf": np.inf}.get(spec["fill"], spec["fill"])
    path = tmp / spec["name"]
    np.save(path, np.full(spec["shape"], fill, dtype=np.float64))
    return path


def _object_npy(tmp: Path, spec: dict) -> Path:
    path = tmp / spec["name"]
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    return path


def _folder(tmp: Path, spec: dict) -> Path:
    path = tmp / spec["name"]
    path.mkdir()
    for name, content in spec.get("files", {}).items():
        (path / name).write_bytes(_content(content))
    return path


def _images(tmp: Path, spec: dict) -> Path:
    path = _folder(tmp, spec)
    for k in range(spec.get("good", 0)):
        (path / f"img{k}.png").write_bytes(_png(10 * k))
    if "manifest" in spec:
        (path / "manifest.csv").write_text(spec["manifest"])
    elif spec.get("write_manifest"):
        names = sorted(p.name for p in path.glob("*.png"))
        (path / "manifest.csv").write_text("stimulus_id,filename\n" + "".join(f"{Path(n).stem},{n}\n" for n in names))
    return path


def _zip(tmp: Path, spec: dict) -> Path:
    path = tmp / spec["name"]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, content in spec["members"].items():
            z.writestr(name, _content(content))
    if "truncate" in spec:
        path.write_bytes(path.read_bytes()[: spec["truncate"]])
    return path


def _tar(tmp: Path, spec: dict) -> Path:
    path = tmp / spec["name"]
    with tarfile.open(path, "w:gz" if path.name.endswith("gz") else "w") as t:
        for name, content in spec["members"].items():
            data = _content(content)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        for name, target in spec.get("links", {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            t.addfile(info)
    return path


#: maker name -> function(scratch folder, spec) -> path of the input
MAKERS: dict[str, Callable[[Path, dict], Path]] = {
    "pickle_payload": _pickle_payload, "text": _text, "npy": _npy, "object_npy": _object_npy,
    "folder": _folder, "images": _images, "zip": _zip, "tar": _tar,
}


def _snapshot(root: Path) -> dict[str, Any]:
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns) if p.is_file() else st.st_mode
    return out


def _fill(text: str, places: dict[str, str]) -> str:
    for key, value in places.items():
        text = text.replace("{" + key + "}", value)
    return text


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_hostile_input(case, tmp_path, capsys, monkeypatch):
    scratch, cwd, outside = tmp_path / "scratch", tmp_path / "cwd", tmp_path / "outside"
    for folder in (scratch, cwd, outside):
        folder.mkdir()
    (outside / "keep.txt").write_text("untouched")
    monkeypatch.chdir(cwd)  # a command that writes into '.' would show up here
    places = {"tmp": str(scratch)}
    for name, spec in case["inputs"].items():
        places[name] = str(MAKERS[spec["maker"]](scratch, spec))
    argv = [_fill(a, places) for a in case["argv"]]
    before = {"scratch": _snapshot(scratch), "outside": _snapshot(outside)}

    try:
        code = main(argv)
    except SystemExit as stop:  # a refusal while parsing (OneLineParser: one line, exit 2)
        code = stop.code

    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, f"exit {code}; stderr: {captured.err!r}"
    assert len(lines) == 1, f"expected one stderr line, got {lines!r}"
    assert "Traceback" not in captured.err and lines[0].startswith("rsa-bridge ")
    if "stderr" in case:
        assert case["stderr"] in lines[0], lines[0]
    assert _snapshot(scratch) == before["scratch"], "a file was left behind or changed"
    assert _snapshot(outside) == before["outside"] and not any(cwd.iterdir()), "something outside was touched"
    assert not (scratch / "PWNED").exists(), "code ran from a data file"
