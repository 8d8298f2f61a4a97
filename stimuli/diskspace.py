"""Full disks, read-only and failing devices: checked before a write, and one line when a write fails.

Two pieces, used by every writer of rsa-bridge (:mod:`stimuli.atomic` and :mod:`rsa_bridge.io`):

- :func:`check_free_space` compares an output's estimated size (bytes; e.g. a dataset's ``nbytes``) plus
  a margin (5% + 1 MiB) with the free space of the folder that will hold it (``shutil.disk_usage``) and
  refuses before any byte is written.
- :func:`disk_error` turns the errors a write meets on a full, read-only or failing device (``ENOSPC``,
  ``EDQUOT``, ``EFBIG``, ``EROFS``, ``EIO`` -- as an ``OSError``, or as the ``errno = N`` inside an HDF5
  library message) into one :class:`RSABridgeError` line; the callers remove their temporary files.

Example::

    check_free_space("runs/x.nc", 3 * 2**30, "the results")   # refuses when < ~3.15 GiB are free
    try:
        write(tmp)
    except Exception as err:
        raise disk_error(err, "runs/x.nc") or err  # None: not a disk error, re-raise as it was
"""
from __future__ import annotations

import errno
import os
import re
import shutil
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from stimuli.errors import RSABridgeError

#: errno values of a device that cannot take the write (full, over quota, file too large, read-only, failing)
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO})
#: free space kept beyond an output's estimated size: a fraction of it plus a fixed amount
MARGIN_FRACTION = 0.05
MARGIN_BYTES = 1 << 20
_HDF5_ERRNO = re.compile(r"errno\s*=\s*(\d+)")


def format_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'`` (binary units, one decimal)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def _existing_folder(path: Path) -> Path:
    folder = Path(os.path.abspath(path)).parent
    while not os.path.isdir(folder) and folder != folder.parent:  # isdir: False (no error) for a name too long
        folder = folder.parent
    return folder


def free_bytes(path: str | os.PathLike) -> int | None:
    """Free bytes (for this user) on the device that will hold ``path`` (its nearest existing folder);
    None when the system cannot say."""
    try:
        return int(shutil.disk_usage(_existing_folder(Path(path))).free)
    except (OSError, ValueError):
        return None


def needed_bytes(n_bytes: float) -> int:
    """``n_bytes`` plus the margin (:data:`MARGIN_FRACTION` of it and :data:`MARGIN_BYTES`)."""
    return int(max(0.0, float(n_bytes)) * (1 + MARGIN_FRACTION)) + MARGIN_BYTES


def check_free_space(path: str | os.PathLike, n_bytes: float, what: str = "the output",
                     option: str = "--out") -> None:
    """Refuse before writing when the device holding ``path`` has less free space than ``n_bytes`` (the
    estimated size of the output) plus the margin.

    Raises:
        RSABridgeError: "no space left on the device holding FOLDER for WHAT: F free, about N needed; free
            space or choose another --out".
    """
    free = free_bytes(path)
    need = needed_bytes(n_bytes)
    if free is not None and free < need:
        folder = _existing_folder(Path(path))
        raise RSABridgeError(f"no space left on the device holding {str(folder)!r} for {what}: "
                             f"{format_bytes(free)} free, about {format_bytes(need)} needed; free space or "
                             f"choose another {option}")


def error_number(err: BaseException) -> int | None:
    """The errno of ``err``: an OSError's, or the ``errno = N`` inside an HDF5 library message (h5py raises
    RuntimeError/OSError whose text carries the C library's errno); None when there is none."""
    if isinstance(err, OSError) and err.errno is not None:
        return err.errno
    found = _HDF5_ERRNO.search(str(err))
    return int(found.group(1)) if found else None


def disk_error(err: BaseException, path: str | os.PathLike, option: str = "--out") -> RSABridgeError | None:
    """One :class:`RSABridgeError` line for ``err`` when it says the device holding ``path`` is full,
    over quota, read-only or failing (:data:`DISK_ERRNOS`); None for any other error.

    Example: ``disk_error(OSError(errno.ENOSPC, "No space left"), "out/x.nc")`` -> "no space left on the
    device holding 'out': 0 B free; free space or choose another --out".
    """
    if isinstance(err, RSABridgeError):
        return None
    code = error_number(err)
    if code not in DISK_ERRNOS:
        return None
    folder = str(_existing_folder(Path(path)))
    if code == errno.EROFS:
        return RSABridgeError(f"the device holding {folder!r} is read-only; choose another {option}")
    if code == errno.EIO:
        return RSABridgeError(f"input/output error while writing into {folder!r} (a failing, disconnected or "
                              f"full device); check the device or choose another {option}")
    free = free_bytes(path)
    shown = "" if free is None else f": {format_bytes(free)} free"
    kind = "the quota is used up" if code == errno.EDQUOT else (
        "the file is too large for the device" if code == errno.EFBIG else "no space left")
    return RSABridgeError(f"{kind} on the device holding {folder!r}{shown}; nothing was written; free space "
                          f"or choose another {option}")


# ---------------------------------------------------------------- where an output may go
#: filesystems that are views of the kernel, not storage: never the home of an output
VIRTUAL_FILESYSTEMS = frozenset({"proc", "sysfs", "devtmpfs", "devpts", "debugfs", "tracefs", "securityfs",
                                 "cgroup", "cgroup2", "pstore", "bpf", "configfs", "fusectl", "mqueue",
                                 "efivarfs", "binfmt_misc", "autofs", "rpc_pipefs", "nsfs", "selinuxfs"})
#: bytes the longest name rsa-bridge derives from a target's name adds to it (sidecar + temporary file)
NAME_OVERHEAD = 64


def filesystem_type(path: str | os.PathLike) -> str | None:
    """The type (``ext4``, ``tmpfs``, ``proc`` ...) of the filesystem that holds ``path`` (its nearest
    existing folder), from ``/proc/self/mounts``; None where that cannot be read (not Linux)."""
    folder = os.path.realpath(_existing_folder(Path(path)))
    best, kind = "", None
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as handle:
            lines = handle.read(4 << 20).splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[1])
        inside = folder == point or folder.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def check_location(path: str | os.PathLike, option: str = "--out",
                   error: type[RSABridgeError] = RSABridgeError) -> None:
    """Refuse, before any work, an output ``path`` that cannot be published: on a kernel filesystem
    (``/proc``, ``/sys``, ``/dev``: :data:`VIRTUAL_FILESYSTEMS`), a mount point itself (it cannot be
    replaced by a rename), or a name longer than the filesystem allows (``PC_NAME_MAX``, less the
    :data:`NAME_OVERHEAD` bytes of the temporary names rsa-bridge derives from it).

    Example: ``check_location("/proc/x.nc")`` raises "--out '/proc/x.nc' is on a proc filesystem ...".
    """
    check_name_lengths(path, option, error)
    target = Path(os.path.abspath(path))
    kind = filesystem_type(target)
    if kind in VIRTUAL_FILESYSTEMS:
        raise error(f"{option} {str(path)!r} is on a {kind} filesystem (a view of the kernel, not storage); "
                    f"choose a folder on a disk")
    if os.path.exists(target) and os.path.ismount(target):
        raise error(f"{option} {str(path)!r} is a mount point, which rsa-bridge cannot replace by a rename; "
                    f"give a path inside it")


def check_name_lengths(path: str | os.PathLike, option: str = "--out",
                       error: type[RSABridgeError] = RSABridgeError) -> None:
    """Refuse a path with a name longer than its filesystem allows (``PC_NAME_MAX``), the last name less
    :data:`NAME_OVERHEAD` bytes for the temporary names rsa-bridge derives from it. Touches nothing."""
    target = Path(os.path.abspath(path))
    try:
        limit = int(os.pathconf(_existing_folder(target), "PC_NAME_MAX"))
    except (OSError, ValueError):
        limit = 255
    for part in target.parts[1:]:
        size, last = len(os.fsencode(part)), part == target.name
        allowed = limit - NAME_OVERHEAD if last else limit
        if size > allowed:
            extra = f" (the filesystem allows {limit}; rsa-bridge's temporary names add {NAME_OVERHEAD})" if last else ""
            raise error(f"{option}: the name {part[:32]!r}... is {size} bytes long, more than the {allowed} "
                        f"allowed here{extra}; choose a shorter name")


def check_regular_file(path: str | os.PathLike, what: str = "file",
                       error: type[RSABridgeError] = RSABridgeError) -> os.stat_result:
    """``os.stat`` of ``path`` when it is a regular file (links followed); refuses a missing path and a
    folder, FIFO, socket or device *without opening it* (opening a FIFO blocks until a writer comes).

    Example: ``check_regular_file("x.npy")`` on a FIFO raises "'x.npy' is a FIFO, not a regular file ...".
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise error(f"no such file: {str(path)!r}") from None
    except (OSError, ValueError) as err:
        raise error(f"cannot read {str(path)!r} ({type(err).__name__}: {err}); give a readable {what}") from None
    if not stat.S_ISREG(info.st_mode):
        kind = ("a folder" if stat.S_ISDIR(info.st_mode) else "a FIFO" if stat.S_ISFIFO(info.st_mode) else
                "a socket" if stat.S_ISSOCK(info.st_mode) else "a device")
        raise error(f"{str(path)!r} is {kind}, not a regular file; give a regular {what}")
    return info


@contextmanager
def disk_errors(path: str | os.PathLike, option: str = "--out") -> Iterator[None]:
    """Within the block, a full/read-only/failing device (:func:`disk_error`) raises one
    :class:`RSABridgeError` line instead of the library's error; other errors pass unchanged."""
    try:
        yield
    except Exception as err:
        mapped = disk_error(err, path, option)
        if mapped is None:
            raise
        raise mapped from None


__all__ = ["DISK_ERRNOS", "NAME_OVERHEAD", "VIRTUAL_FILESYSTEMS", "check_free_space", "check_location",
           "check_name_lengths",           "check_regular_file",           "filesystem_type", "disk_error", "disk_errors", "error_number", "format_bytes",
           "free_bytes", "needed_bytes"]
