"""Spill folders: temporary folders that hold features or RDMs on disk while one run needs them.

A run deletes its spill folders when it ends, also on an error. A run that is *killed* (SIGKILL, the
out-of-memory killer, a power cut) cannot, and at 22,000 stimuli what it leaves is tens of GB. So every
spill folder carries an owner file (``owner.json``: process id, host name, creation time) on which its
process holds an exclusive ``flock`` for as long as the folder lives; the kernel releases that lock when the
process dies, however it dies. Making a new spill folder first sweeps the folder it goes into: a folder
with one of our prefixes is removed when its owner file names this host, its process id no longer runs
here, **and** its lock can be taken. The lock is what decides: it holds across PID namespaces (two
containers with the same host name sharing a folder) and against a reused process id. Nothing else is
touched: folders of other hosts, of live processes, without an owner file or with an unreadable one.
Only on POSIX (``fcntl``); elsewhere nothing is swept.

Peers: Python's :class:`tempfile.TemporaryDirectory` (cleanup on exit only); joblib's memmapping
folders (the same owner-process idea for its worker pools).

Example::

    >>> folder = spill_folder("rsa-bridge-spill-")
    >>> (Path(folder.name) / OWNER).exists()
    True
    >>> folder.cleanup()
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

from stimuli.tempfiles import process_alive

try:
    import fcntl
except ImportError:  # not POSIX: no sweep
    fcntl = None

#: the prefixes of the spill folders (extractors.streaming's features, rsa_bridge.rdm_store's RDMs)
PREFIXES = ("rsa-bridge-spill-", "rsa-bridge-rdms-")
#: the owner file in each spill folder
OWNER = "owner.json"


def _owner(folder: Path) -> tuple[int, str] | None:
    try:
        owner = json.loads((folder / OWNER).read_text())
        return int(owner["pid"]), str(owner["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def stale(folder: Path, host: str | None = None) -> bool:
    """Whether ``folder`` is a spill folder left by a process of this host that no longer runs (its owner
    file's lock is free). Takes and releases the lock to find out."""
    if fcntl is None or folder.is_symlink() or not folder.is_dir() or not folder.name.startswith(PREFIXES):
        return False
    owner = _owner(folder)
    if owner is None or owner[1] != (host or socket.gethostname()) or owner[0] == os.getpid() or process_alive(owner[0]):
        return False
    try:
        with open(folder / OWNER, "rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released when the file closes
    except OSError:  # held: a live process (in another PID namespace, or the id was reused)
        return False
    return True


def sweep(spill_dir: str | os.PathLike | None = None) -> list[Path]:
    """Remove the stale spill folders (see :func:`stale`) directly in ``spill_dir`` (default: the system
    temporary folder); return those removed."""
    if fcntl is None:
        return []
    root = Path(spill_dir) if spill_dir is not None else Path(tempfile.gettempdir())
    try:
        candidates = [p for p in root.iterdir() if p.name.startswith(PREFIXES)]
    except OSError:
        return []
    host, removed = socket.gethostname(), []
    for folder in candidates:
        if stale(folder, host):
            shutil.rmtree(folder, ignore_errors=True)
            if not folder.exists():
                removed.append(folder)
    return removed


class SpillFolder(tempfile.TemporaryDirectory):
    """A :class:`tempfile.TemporaryDirectory` whose owner file is locked while it exists."""

    def __init__(self, prefix: str, spill_dir: str | os.PathLike | None = None) -> None:
        super().__init__(prefix=prefix, dir=spill_dir)
        self._lock = open(Path(self.name) / OWNER, "w")  # noqa: SIM115 - held open for the folder's life
        if fcntl is not None:
            fcntl.flock(self._lock, fcntl.LOCK_EX)
        self._lock.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "created": time.time()}))
        self._lock.flush()

    def cleanup(self) -> None:
        self._lock.close()
        super().cleanup()


def spill_folder(prefix: str, spill_dir: str | os.PathLike | None = None) -> SpillFolder:
    """A new spill folder with ``prefix`` in ``spill_dir`` (default: the system temporary folder) and its locked
    owner file, after sweeping the stale folders there."""
    if not prefix.startswith(PREFIXES):
        raise ValueError(f"a spill folder's prefix starts with one of {PREFIXES}; got {prefix!r}")
    sweep(spill_dir)
    return SpillFolder(prefix, spill_dir)
