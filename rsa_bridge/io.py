"""Atomic file writes: write next to the target, then rename, so a crash leaves no half-written file.

Whole output folders are published as one unit by :func:`staged_outputs` (see :mod:`stimuli.atomic` for
the rule: --out checked first, lock, staging folder beside the target, completion marker, one rename).
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:  # only in annotations: importing this module stays cheap (the CLI's --help uses it)
    import xarray as xr

# the publishing rule lives in the lowest layer (stimuli.atomic); re-exported here for the application layer
from stimuli.atomic import MARKER, check_out, is_complete, publish_file, publish_folder  # noqa: F401


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


def out_path(text: str) -> Path | str:
    """argparse ``type`` for ``--out``: a :class:`~pathlib.Path`, except that an empty or blank value stays
    the string ``''`` so that :func:`check_out` can refuse it (``Path('')`` would silently mean ``.``)."""
    return Path(text) if text.strip() else text


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
def staged_outputs(out_dir: str | os.PathLike, names: tuple[str, ...] | list[str],
                   overwrite: bool = False) -> Iterator[Path]:
    """Render several output files together and publish the folder ``out_dir`` as one unit.

    Yields a staging folder beside ``out_dir``; when the block ends without error and every file in
    ``names`` exists there, the whole folder is published with one atomic rename (see
    :func:`stimuli.atomic.publish_folder`: lock, stale clean-up, completion marker). An existing
    non-empty ``out_dir`` needs ``overwrite`` and is replaced only if it holds an earlier output (one of
    ``names`` or the marker). On any error ``out_dir`` is left exactly as it was.
    """
    with publish_folder(out_dir, overwrite, recognise=tuple(names)) as staging:
        yield staging
        missing = [name for name in names if not (staging / name).exists()]
        if missing:
            raise RuntimeError(f"internal: outputs {missing} were not rendered")


def staged_paths(out_dir: str | os.PathLike, names: tuple[str, ...] | list[str]) -> list[Path]:
    """The final paths of :func:`staged_outputs`' files."""
    return [Path(out_dir) / name for name in names]
