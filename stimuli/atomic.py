"""Publishing outputs as one unit: a file or a whole folder appears complete or not at all, never mixed.

The rule, for every command that writes ``--out`` (one rule, in :func:`check_out`):

1. ``--out`` is checked before any computing: not empty, not a device, a folder where a folder is written
   (a file where a file is), inside a writable folder. An existing non-empty target needs ``--overwrite``.
2. **``--overwrite`` replaces only what rsa-bridge wrote.** A folder is replaced only when it holds the
   completion marker :data:`MARKER` (JSON: the files and sizes of the publication) and nothing beyond the
   files (and folders) the marker lists. A folder without the marker is never replaced, whatever it holds
   (a ``manifest.csv`` or ``results.csv`` does not make a folder an rsa-bridge output; outputs written
   before the marker existed are refused too: move them away once). A refusal names up to a few of the
   files rsa-bridge did not write and says what to do (choose another ``--out``, or move them). A single
   file output replaces a regular file with ``--overwrite``; files written *beside* it (sidecars, such
   as ``X_stimuli.csv`` of ``neural import --out X.nc``) are checked the same way before any work and are
   published together with it (:func:`publish_files`).
3. A lock file beside the target (``.NAME.rsa-bridge.lock``, ``flock``; released by the kernel when a run
   dies) lets one run at a time publish to it; a second run stops with one line.
4. Everything is written into a staging folder beside the target (``.NAME.rsa-bridge-staging-*``) or a
   temporary file (``.NAME.rsa-bridge-tmp-HOST-PID-*``), then the marker is written last, and the result is
   published with one atomic rename -- onto an existing folder with Linux ``renameat2(RENAME_EXCHANGE)``,
   which swaps both in one step. Where that call is missing, the old folder is moved aside first and moved
   back by the next run if a crash came between the two renames.
5. SIGTERM (sent by ``timeout`` and batch schedulers) and SIGINT while publishing raise
   :class:`Interrupted` (a ``KeyboardInterrupt``) in the main thread, so the staging folder, the lock and
   temporary files are removed before the process ends; the previous handlers are restored afterwards.
   What a SIGKILL leaves (staging folders, lock files, temporary files whose process is dead) is swept
   by the next run on the same target.
6. A full, read-only or failing device is one line (:mod:`stimuli.diskspace`), temporary files removed.

Example::

    with publish_folder("runs/a", overwrite=True) as stage:
        (stage / "results.csv").write_text("...")     # runs/a appears (or is replaced) whole

Peers: ``tempfile`` + ``os.replace`` (``atomicwrites``); exchange renames as ``git`` and package managers.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

from stimuli.diskspace import check_location, check_name_lengths, disk_errors
from stimuli.errors import RSABridgeError, StimulusError
from stimuli.tempfiles import Interrupted, exchange as _exchange, signals_raise, sweep_temp, temp_path

#: the completion marker written last into every published folder
MARKER = ".rsa-bridge-complete"
_STAGING = ".rsa-bridge-staging-"
_OLD = ".rsa-bridge-old-"
_MARKER_MAX = 64 << 20  # a marker larger than this is not ours
_SHOWN = 3  # foreign files named in a refusal

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

    The temporary file is removed when ``write`` fails or SIGTERM/SIGINT arrive; an existing ``path`` is
    replaced only on success. Temporary files of dead earlier runs on ``path`` are swept first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_temp(path)
    with signals_raise(), disk_errors(path):
        tmp = temp_path(path)
        try:
            write(tmp)
            os.chmod(tmp, 0o666 & ~_umask())
            _step("file-before-rename")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return path


# ---------------------------------------------------------------- the check
def _writable_parent(target: Path, option: str, error: type[RSABridgeError] = RSABridgeError) -> None:
    parent = target.parent  # the nearest existing folder
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise error(f"{option} {str(target)!r}: {str(parent)!r} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise error(f"{option} {str(target)!r}: cannot write into {str(parent)!r} (permission denied); "
                             "choose a folder you can write to")


def _listed(folder: Path) -> tuple[set[str], set[str]] | None:
    """(files, folders) the marker of ``folder`` lists, or None without a readable marker."""
    marker = folder / MARKER
    try:
        if marker.is_symlink() or not marker.is_file() or marker.stat().st_size > _MARKER_MAX:
            return None
        body = json.loads(marker.read_text())
        files = {str(name) for name in body["files"]}
        folders = {str(name) for name in body.get("folders", [])}
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None
    for name in files:  # every parent of a listed file is a listed folder
        parts = name.split("/")[:-1]
        folders.update("/".join(parts[:k]) for k in range(1, len(parts) + 1))
    return files, folders


def foreign_files(folder: str | os.PathLike, limit: int = _SHOWN) -> list[str]:
    """Up to ``limit`` entries of ``folder`` (relative posix paths) that its completion marker does not list
    -- everything, when there is no marker. Empty: the folder holds only an earlier rsa-bridge output."""
    folder = Path(folder)
    listed = _listed(folder)
    files, folders = listed if listed is not None else (set(), set())
    found: list[str] = []
    for root, dirs, names in os.walk(folder):
        rel = Path(root).relative_to(folder).as_posix()
        prefix = "" if rel == "." else f"{rel}/"
        for name in sorted(names):
            path = prefix + name
            if path not in files and path != MARKER:
                found.append(path)
        for name in sorted(dirs):
            path = prefix + name
            if path not in folders or os.path.islink(os.path.join(root, name)):
                found.append(path + ("" if os.path.islink(os.path.join(root, name)) else "/"))
        dirs[:] = [d for d in sorted(dirs) if prefix + d in folders and not os.path.islink(os.path.join(root, d))]
        if len(found) >= limit:
            break
    return found[:limit]


def _refuse_foreign(path: Path, option: str, error: type[RSABridgeError]) -> None:
    foreign = foreign_files(path, _SHOWN + 1)
    if not foreign:
        return
    names = ", ".join(foreign[:_SHOWN]) + (", ..." if len(foreign) > _SHOWN else "")
    what = ("holds no earlier rsa-bridge output (no completion marker)" if _listed(path) is None
            else "holds files beside its earlier rsa-bridge output that rsa-bridge did not write")
    raise error(f"{option} {str(path)!r} {what} ({names}); refusing to replace it even with --overwrite; "
                f"choose another {option}, or move those files away")


def check_out(target: str | os.PathLike | None, overwrite: bool = False, *, kind: str = "folder",
              option: str = "--out", error: type[RSABridgeError] = RSABridgeError) -> Path:
    """Validate an output path before any work (the rule of the module docstring); return it as a Path.

    Args:
        target: the folder (``kind="folder"``) or file (``kind="file"``) to publish.
        overwrite: an existing target may be replaced -- a folder only when it holds nothing but an
            earlier rsa-bridge output (its :data:`MARKER` and the files it lists), a file when it is a
            regular file.
        option: the option's name for the messages.

    Raises:
        RSABridgeError: empty path, a device or other special file, a kernel filesystem (/proc, /sys), a
            mount point, a name too long, a file where a folder is needed (or the other way round), a folder that cannot be written, an existing target without
            ``overwrite``, or a folder with files rsa-bridge did not write.

    Example::

        check_out("runs/a", overwrite=True)   # fine when runs/a is missing, empty or an earlier output
    """
    if target is None or not str(target).strip():
        raise error(f"{option} is empty; give a {kind} path")
    path = Path(target)
    check_name_lengths(path, option, error)  # first: a name too long makes even exists() fail
    if Path(os.path.abspath(path)).parent == Path(os.path.abspath(path)):
        raise error(f"{option} {str(path)!r} is the root folder; choose another {kind}")
    if (path.exists() or path.is_symlink()) and not (path.is_dir() or path.is_file()):
        raise error(f"{option} {str(path)!r} is not a regular {kind} (a device or a broken link?)")
    check_location(path, option, error)  # /proc, /sys, a mount point, a name too long
    if path.exists() or path.is_symlink():
        if kind == "folder":
            if not path.is_dir():
                raise error(f"{option} {str(path)!r} is a file; give a folder path")
            if any(path.iterdir()):
                if not overwrite:
                    raise error(f"{option} {str(path)!r} already exists and is not empty; pass --overwrite "
                                         "to replace it, or choose another folder")
                _refuse_foreign(path, option, error)
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
    check_out(target, overwrite, kind="folder", option="stimulus folder", error=StimulusError)


# ---------------------------------------------------------------- lock, stale clean-up, marker
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
    """Under the lock: restore an old folder stranded by a crash between two renames, delete stale staging
    folders and the temporary files of dead runs."""
    prefix = f".{target.name}"
    for entry in sorted(target.parent.glob(f"{prefix}{_OLD}*")):
        previous = entry / "previous"
        if not target.exists() and previous.is_dir():
            os.rename(previous, target)
        shutil.rmtree(entry, ignore_errors=True)
    for entry in target.parent.glob(f"{prefix}{_STAGING}*"):
        shutil.rmtree(entry, ignore_errors=True)
    sweep_temp(target)


def _write_marker(folder: Path, info: dict) -> None:
    files, folders = {}, []
    for root, dirs, names in os.walk(folder):  # links are listed, never followed
        rel = Path(root).relative_to(folder).as_posix()
        prefix = "" if rel == "." else f"{rel}/"
        for name in dirs:
            (files.__setitem__(prefix + name, os.lstat(os.path.join(root, name)).st_size)
             if os.path.islink(os.path.join(root, name)) else folders.append(prefix + name))
        files.update({prefix + name: os.lstat(os.path.join(root, name)).st_size for name in names})
    files.pop(MARKER, None)
    body = {"complete": True, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "pid": os.getpid(),
            "files": dict(sorted(files.items())), "folders": sorted(folders), **info}
    (folder / MARKER).write_text(json.dumps(body, indent=1, default=str) + "\n")


def is_complete(folder: str | os.PathLike) -> bool:
    """True when ``folder`` was published whole by rsa-bridge (it holds :data:`MARKER` and every file listed)."""
    folder = Path(folder)
    try:
        files = json.loads((folder / MARKER).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return all((folder / name).is_file() and (folder / name).stat().st_size == size for name, size in files.items())


# ---------------------------------------------------------------- publishing
@contextmanager
def publish_folder(target: str | os.PathLike, overwrite: bool = False, *, option: str = "--out", info: dict | None = None,
                   error: type[RSABridgeError] = RSABridgeError) -> Iterator[Path]:
    """Yield a staging folder beside ``target``; when the block ends without error, publish it as ``target``.

    The module docstring gives the rule (check, lock, stale clean-up, marker, one atomic rename, signals).
    On an exception (SIGTERM and SIGINT included) the staging folder is removed and ``target`` is left
    exactly as it was.
    """
    target = Path(os.path.abspath(check_out(target, overwrite, kind="folder", option=option, error=error)))
    target.parent.mkdir(parents=True, exist_ok=True)
    with signals_raise(), disk_errors(target, option), _Lock(target):
        _clean_stale(target)
        check_out(target, overwrite, kind="folder", option=option, error=error)  # again, under the lock
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
    only an earlier rsa-bridge output is replaced (see :func:`check_out`), never a folder of the user's
    images, even one with a ``manifest.csv``.
    """
    with publish_folder(target, overwrite, option="stimulus folder", error=StimulusError) as tmp:
        yield tmp


@contextmanager
def publish_files(targets: Sequence[str | os.PathLike], overwrite: bool = False, *,
                  option: str = "--out") -> Iterator[list[Path]]:
    """Yield one temporary path beside each of ``targets`` (same suffixes); when the block ends without
    error, each written temporary file replaces its target (in the given order: put the main output last,
    its sidecars first). A temporary path that the block deletes is skipped (its target is left alone).

    Every target is checked by :func:`check_out` (``kind="file"``) before and again under the locks (one
    per target); on an exception (SIGTERM and SIGINT included) all temporary files are removed and no
    target is touched. Example::

        with publish_files(["x_stimuli.csv", "x.nc"], overwrite=False) as (csv, nc):
            csv.write_text("stimulus_id,filename\\n")
            nc.write_bytes(b"...")
    """
    paths = [Path(os.path.abspath(check_out(t, overwrite, kind="file", option=option))) for t in targets]
    if len(set(paths)) != len(paths):
        raise RSABridgeError(f"internal: one file named twice among {[str(p) for p in paths]}")
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
    with signals_raise(), disk_errors(paths[-1], option), ExitStack() as stack:
        for path in sorted(paths):  # one order for every run: no deadlock between two runs
            stack.enter_context(_Lock(path))
        temps: list[Path] = []
        try:
            for path in paths:
                sweep_temp(path)
                check_out(path, overwrite, kind="file", option=option)  # again, under the lock
                temps.append(temp_path(path))
            yield list(temps)
            for tmp, path in zip(temps, paths):
                if tmp.exists():
                    os.chmod(tmp, 0o666 & ~_umask())
                    _step("file-before-rename")
                    os.replace(tmp, path)
        finally:
            for tmp in temps:
                tmp.unlink(missing_ok=True)


@contextmanager
def publish_file(target: str | os.PathLike, overwrite: bool = False, *, option: str = "--out") -> Iterator[Path]:
    """Yield a temporary path beside ``target`` (same suffix); on success it replaces ``target`` atomically,
    under the same lock as :func:`publish_folder`, after :func:`check_out` (``kind="file"``)."""
    with publish_files([target], overwrite, option=option) as (tmp,):
        yield tmp


__all__ = ["MARKER", "Interrupted", "StimulusError", "atomic_write", "building_folder", "check_out",
           "check_target_folder", "foreign_files", "is_complete", "publish_file", "publish_files",
           "publish_folder", "signals_raise", "sweep_temp", "temp_path"]
