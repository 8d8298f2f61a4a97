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
