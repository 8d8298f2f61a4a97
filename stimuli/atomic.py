"""Publishing outputs as one unit: a file or a whole folder appears complete or not at all, never mixed.

The rule, for every command that writes ``--out``:

1. ``--out`` is checked before any computing (:func:`check_out`): not empty, not a device, a folder
   where a folder is written (a file where a file is), inside a writable folder; an existing non-empty
   target needs ``--overwrite``, and a folder is only ever replaced when it holds an earlier rsa-bridge
   output (its completion marker, or files the command itself writes) — never a folder of other things.
2. A lock file beside the target (``.NAME.rsa-bridge.lock``, ``flock``; released by the kernel when a run
   dies) lets one run at a time publish to it; a second run stops with one line.
3. Everything is written into a staging folder beside the target (``.NAME.rsa-bridge-staging-*``), then a
   completion marker (:data:`MARKER`, JSON: files and sizes) is written last, and the folder is published
   with one atomic rename — onto an existing target with Linux ``renameat2(RENAME_EXCHANGE)``, which swaps
   both in one step. Where that call is missing, the old folder is moved aside first and moved back by
   the next run if a crash came between the two renames.
4. Stale staging folders of killed runs are removed by the next run on the same target (under the lock).

Peers: ``tempfile`` + ``os.replace`` is the usual file recipe (e.g. ``atomicwrites``); whole-folder
publishing with an exchange rename follows what ``git`` and package managers do for their stores.
"""
from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

from stimuli.errors import RSABridgeError, StimulusError

#: the completion marker written last into every published folder
MARKER = ".rsa-bridge-complete"
_STAGING = ".rsa-bridge-staging-"
_OLD = ".rsa-bridge-old-"

#: test hook: called with the name of each publishing step (fault injection kills the run there)
FAULT_HOOK: Callable[[str], None] | None = None


def _step(name: str) -> None:
    if FAULT_HOOK is not None:
        FAULT_HOOK(name)


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
        _step("file-before-rename")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _writable_parent(target: Path, option: str, error: type[RSABridgeError] = RSABridgeError) -> None:
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise error(f"{option} {str(target)!r}: {str(parent)!r} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise error(f"{option} {str(target)!r}: cannot write into {str(parent)!r} (permission denied); "
                             "choose a folder you can write to")


def _is_earlier_output(target: Path, recognise: Sequence[str]) -> bool:
    return (target / MARKER).is_file() or any((target / name).exists() for name in recognise)


def check_out(target: str | os.PathLike | None, overwrite: bool = False, *, kind: str = "folder",
              recognise: Sequence[str] = (), option: str = "--out",
              error: type[RSABridgeError] = RSABridgeError) -> Path:
    """Validate an output path before any work; return it as a :class:`~pathlib.Path`.

    Args:
        target: the folder (``kind="folder"``) or file (``kind="file"``) to publish.
        overwrite: an existing non-empty target may be replaced.
        recognise: names whose presence marks a folder as an earlier output of this command (besides
            :data:`MARKER`); a non-empty folder with neither is never replaced.
        option: the option's name for the messages.

    Raises:
        RSABridgeError: empty path, a device or other special file, a file where a folder is needed (or
            the other way round), a folder that cannot be written, or an existing target without
            ``overwrite``.
    """
    if target is None or not str(target).strip():
        raise error(f"{option} is empty; give a {kind} path")
    path = Path(target)
    if Path(os.path.abspath(path)).parent == Path(os.path.abspath(path)):
        raise error(f"{option} {str(path)!r} is the root folder; choose another {kind}")
    if path.exists() or path.is_symlink():
        if not (path.is_dir() or path.is_file()):
            raise error(f"{option} {str(path)!r} is not a regular {kind} (a device or a broken link?)")
        if kind == "folder":
            if not path.is_dir():
                raise error(f"{option} {str(path)!r} is a file; give a folder path")
            if any(path.iterdir()):
                if not overwrite:
                    raise error(f"{option} {str(path)!r} already exists and is not empty; pass --overwrite "
                                         "to replace it, or choose another folder")
                if not _is_earlier_output(path, recognise):
                    raise error(f"{option} {str(path)!r} is not empty and holds no earlier rsa-bridge output; "
                                         "refusing to replace it even with --overwrite; choose another folder")
        else:
            if path.is_dir():
                raise error(f"{option} {str(path)!r} is a folder; give a file path")
            if not overwrite:
                raise error(f"{option} {str(path)!r} already exists; pass --overwrite to replace it, "
                                     "or choose another file")
    _writable_parent(Path(os.path.abspath(path)), option, error)
    return path


def check_target_folder(target: Path, overwrite: bool) -> None:
    """Refuse a target that is a file, or a non-empty folder unless ``overwrite`` (see :func:`check_out`)."""
    check_out(target, overwrite, kind="folder", recognise=("manifest.csv",), option="stimulus folder",
              error=StimulusError)


class _Lock:
    """An exclusive ``flock`` on ``.NAME.rsa-bridge.lock`` beside the target (no-op where fcntl is missing)."""

    def __init__(self, target: Path):
        self.target = target
        self.path = target.parent / f".{target.name}.rsa-bridge.lock"
        self.fd = -1

    def __enter__(self) -> "_Lock":
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return self
        while True:
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise RSABridgeError(f"another rsa-bridge run is writing {str(self.target)!r} right now (lock "
                                     f"{self.path.name}); wait for it to finish or choose another --out") from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:  # not a lock file that its previous holder has just removed
                self.fd = fd
                return self
            os.close(fd)

    def __exit__(self, *exc) -> None:
        if self.fd >= 0:
            self.path.unlink(missing_ok=True)
            os.close(self.fd)
            self.fd = -1


def _clean_stale(target: Path) -> None:
    """Under the lock: restore an old folder stranded by a crash between two renames, delete stale staging."""
    prefix = f".{target.name}"
    for entry in sorted(target.parent.glob(f"{prefix}{_OLD}*")):
        previous = entry / "previous"
        if not target.exists() and previous.is_dir():
            os.rename(previous, target)
        shutil.rmtree(entry, ignore_errors=True)
    for entry in target.parent.glob(f"{prefix}{_STAGING}*"):
        shutil.rmtree(entry, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2`` with ``RENAME_EXCHANGE``); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError, TypeError):  # not Linux/glibc (TypeError: CDLL(None) on Windows)
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _write_marker(folder: Path, info: dict) -> None:
    files = {p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}
    body = {"complete": True, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "pid": os.getpid(), "files": files,
            **info}
    (folder / MARKER).write_text(json.dumps(body, indent=1, default=str) + "\n")


def is_complete(folder: str | os.PathLike) -> bool:
    """True when ``folder`` was published whole by rsa-bridge (it holds :data:`MARKER` and every file listed)."""
    folder = Path(folder)
    try:
        files = json.loads((folder / MARKER).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return all((folder / name).is_file() and (folder / name).stat().st_size == size for name, size in files.items())


@contextmanager
def publish_folder(target: str | os.PathLike, overwrite: bool = False, *, recognise: Sequence[str] = (),
                   option: str = "--out", info: dict | None = None,
                   error: type[RSABridgeError] = RSABridgeError) -> Iterator[Path]:
    """Yield a staging folder beside ``target``; when the block ends without error, publish it as ``target``.

    The module docstring gives the rule (check, lock, stale clean-up, marker, one atomic rename). On an
    exception the staging folder is removed and ``target`` is left exactly as it was.
    """
    target = Path(os.path.abspath(check_out(target, overwrite, kind="folder", recognise=recognise, option=option, error=error)))
    target.parent.mkdir(parents=True, exist_ok=True)
    with _Lock(target):
        _clean_stale(target)
        check_out(target, overwrite, kind="folder", recognise=recognise, option=option, error=error)  # again, under the lock
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}{_STAGING}", dir=target.parent))
        try:
            yield staging
            _step("before-marker")
            _write_marker(staging, info or {})
            os.chmod(staging, 0o777 & ~_umask())
            _step("before-publish")
            if not target.exists():
                os.rename(staging, target)
            elif _exchange(staging, target):
                _step("after-exchange")
                shutil.rmtree(staging, ignore_errors=True)  # now holds the old result
            else:
                old = Path(tempfile.mkdtemp(prefix=f".{target.name}{_OLD}", dir=target.parent))
                os.rename(target, old / "previous")
                _step("between-renames")
                os.rename(staging, target)
                shutil.rmtree(old, ignore_errors=True)
            _step("published")
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def building_folder(target: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a fresh staging folder next to ``target``; on success it is published as ``target``.

    On an exception the staging folder is deleted and ``target`` is left as it was. With ``overwrite``
    an existing stimulus folder (one with a manifest, or an earlier rsa-bridge output) is replaced.
    """
    with publish_folder(target, overwrite, recognise=("manifest.csv",), option="stimulus folder",
                        error=StimulusError) as tmp:
        yield tmp


@contextmanager
def publish_file(target: str | os.PathLike, overwrite: bool = False, *, option: str = "--out") -> Iterator[Path]:
    """Yield a temporary path beside ``target`` (same suffix); on success it replaces ``target`` atomically,
    under the same lock as :func:`publish_folder`, after :func:`check_out` (``kind="file"``)."""
    target = Path(os.path.abspath(check_out(target, overwrite, kind="file", option=option)))
    target.parent.mkdir(parents=True, exist_ok=True)
    with _Lock(target):
        check_out(target, overwrite, kind="file", option=option)
        handle, name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
        os.close(handle)
        tmp = Path(name)
        try:
            yield tmp
            os.chmod(tmp, 0o666 & ~_umask())
            _step("file-before-rename")
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)


__all__ = ["MARKER", "StimulusError", "atomic_write", "building_folder", "check_out", "check_target_folder",
           "is_complete", "publish_file", "publish_folder"]
