"""Clean-up helpers of :mod:`stimuli.atomic`: signals that unwind publishing, and temporary files that a
later run can sweep once their process is dead.

- :func:`signals_raise`: within the block, SIGTERM (what ``timeout`` and batch schedulers send) and SIGINT
  raise :class:`Interrupted` (a ``KeyboardInterrupt``) in the main thread, so ``finally`` clean-ups run.
- :func:`temp_path` names a temporary file ``.NAME.rsa-bridge-tmp-HOST-PID-RANDOM.tmp[SUFFIX]``;
  :func:`sweep_temp` removes those of one target whose process (on this host) is dead -- what a SIGKILL
  leaves behind. Example::

      tmp = temp_path("out/x.nc")        # out/.x.nc.rsa-bridge-tmp-1a2b3c4d-4242-k2j3.tmp.nc
      sweep_temp("out/x.nc")             # later run: removes it if process 4242 is gone

- :func:`exchange` swaps two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``), used to publish a
  folder onto an existing one.
"""
from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import re
import signal
import socket
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

_TMP = ".rsa-bridge-tmp-"


# ---------------------------------------------------------------- signals
class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGINT arrived while publishing (``signum`` says which); the clean-up has run."""

    def __init__(self, signum: int):
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum


@contextmanager
def signals_raise() -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT raise :class:`Interrupted` in the main thread (once; a second
    signal while cleaning up is ignored), so ``finally`` clean-ups run. Signals the process ignores stay
    ignored; outside the main thread this does nothing. The previous handlers are restored on exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def handler(signum, frame):
        if not fired:
            fired.append(signum)
            raise Interrupted(signum)

    previous = {}
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            old = signal.getsignal(sig)
            if old is not signal.SIG_IGN:
                previous[sig] = old
                signal.signal(sig, handler)
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)


# ---------------------------------------------------------------- temporary files
def _host() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` is running on this machine (another user's live process counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: someone else's live process
        return True
    return True


def temp_path(target: str | os.PathLike, keep_suffix: bool = True) -> Path:
    """A new empty temporary file beside ``target``: ``.NAME.rsa-bridge-tmp-HOST-PID-RANDOM.tmp[SUFFIX]``.

    The host and pid in the name let :func:`sweep_temp` remove it once its process is dead. ``keep_suffix``
    ends the name in the target's suffix (writers that choose the format by suffix)."""
    target = Path(target)
    suffix = f".tmp{target.suffix}" if keep_suffix else ".tmp"
    handle, name = tempfile.mkstemp(prefix=f".{target.name}{_TMP}{_host()}-{os.getpid()}-", suffix=suffix,
                                    dir=target.parent)
    os.close(handle)
    return Path(name)


def dead_temp(path: str | os.PathLike) -> bool:
    """True when ``path`` is named by :func:`temp_path` by a process of this host that is gone."""
    found = re.search(re.escape(f"{_TMP}{_host()}-") + r"(\d+)-", Path(path).name)
    return bool(found) and int(found.group(1)) != os.getpid() and not process_alive(int(found.group(1)))


def sweep_temp(target: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of ``target`` (see :func:`temp_path`) left by dead processes of this host;
    returns the removed paths."""
    target = Path(target)
    prefix = f".{target.name}{_TMP}"
    removed = []
    try:
        entries = [e for e in os.scandir(target.parent) if e.name.startswith(prefix)]
    except OSError:
        return removed
    for entry in entries:
        if dead_temp(entry.name) and not entry.is_dir(follow_symlinks=False):
            try:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
            except OSError:
                pass
    return removed


# ---------------------------------------------------------------- renames
def exchange(a: Path, b: Path) -> bool:
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
