"""Atomic file writes: write next to the target, then rename, so a crash leaves no half-written file."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import xarray as xr


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success it replaces ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; give the file ordinary permissions
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_netcdf(obj: xr.Dataset | xr.DataArray, path: str | os.PathLike) -> Path:
    """Write a Dataset/DataArray to NetCDF-4 (h5netcdf engine) atomically; returns the path."""
    with atomic_path(path) as tmp:
        obj.to_netcdf(tmp, engine="h5netcdf")
    return Path(path)


def write_text(text: str, path: str | os.PathLike) -> Path:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


@contextmanager
def staged_outputs(out_dir: str | os.PathLike, names: tuple[str, ...] | list[str]) -> Iterator[Path]:
    """Render several output files together: yield a temporary folder inside ``out_dir``; when the block
    ends without error and every file in ``names`` exists there, each is moved into place with an atomic
    rename. On any error nothing in ``out_dir`` changes (:func:`staged_paths` gives the final paths).
    """
    import shutil

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".rsa-bridge-", dir=out_dir))
    try:
        yield staging
        missing = [name for name in names if not (staging / name).exists()]
        if missing:
            raise RuntimeError(f"internal: outputs {missing} were not rendered")
        for name in names:
            os.replace(staging / name, out_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def staged_paths(out_dir: str | os.PathLike, names: tuple[str, ...] | list[str]) -> list[Path]:
    """The final paths of :func:`staged_outputs`' files."""
    return [Path(out_dir) / name for name in names]
