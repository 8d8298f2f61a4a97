"""Atomic writes for stimulus sets: a file or a whole folder appears complete or not at all."""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from stimuli.errors import StimulusError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file next to ``path`` (same suffix), then move it onto ``path``.

    The temporary file is removed when ``write`` fails; an existing ``path`` is replaced only on success.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def check_target_folder(target: Path, overwrite: bool) -> None:
    """Refuse a target that is a file, or a non-empty folder unless ``overwrite``."""
    if target.is_file():
        raise StimulusError(f"{str(target)!r} is a file; give a folder path for the stimulus set")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise StimulusError(f"{str(target)!r} already exists and is not empty; choose another folder or overwrite it")


@contextmanager
def building_folder(target: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary folder next to ``target``; on success it is renamed to ``target``.

    On an exception the temporary folder is deleted and ``target`` is left as it was. With
    ``overwrite`` an existing ``target`` is replaced (moved aside, then deleted after the rename).
    """
    target = Path(target)
    check_target_folder(target, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.rename(target, old / "previous")
            os.rename(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
