"""The ``rsa-bridge`` command line: parses arguments, calls the library, prints. No science here.

Sub-commands live in their own modules: the core's in :data:`COMMANDS` (command name -> module path),
and any package's (rsa-bridge's own ``analyses``, or a lab's plugin) in the entry-point group
:data:`ENTRY_POINT_GROUP`, whose value names the module (``depth-mask = "analyses.depth_mask.cli"``).
Each module defines ``register(subparsers)``, which adds its parser and sets ``func`` to a callable
``(args) -> int``. Command modules import nothing heavy (no torch, numpy or xarray) at import time or in
``register``, so ``rsa-bridge --help`` and ``rsa-bridge COMMAND --help`` answer at once; the work's
imports happen in ``func``. User errors (:data:`rsa_bridge.errors.USER_ERRORS`) become one line on
stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from contextlib import contextmanager
from typing import Sequence

#: command name -> module that defines ``register(subparsers)`` (the core's own commands)
COMMANDS: dict[str, str] = {
    "compare": "rsa_bridge.app.commands.compare",
    "layers": "rsa_bridge.app.commands.layers",
    "extract": "rsa_bridge.app.commands.extract",
    "datasets": "rsa_bridge.app.commands.datasets",
    "stimuli": "rsa_bridge.app.commands.stimuli_cmd",
    "neural": "rsa_bridge.app.commands.neural",
    "cache": "rsa_bridge.app.commands.cache",
    "groups": "rsa_bridge.app.commands.groups",
    "fit": "rsa_bridge.app.commands.fit",
    "partition": "rsa_bridge.app.commands.partition",
}
#: entry-point group through which other packages add sub-commands (value: the command's module)
ENTRY_POINT_GROUP = "rsa_bridge.commands"


def plugin_commands() -> dict[str, str]:
    """Command name -> module path of every sub-command registered in :data:`ENTRY_POINT_GROUP`."""
    from importlib.metadata import entry_points

    found: dict[str, str] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in COMMANDS:  # the core's own commands cannot be replaced by a plugin
            found.setdefault(ep.name, ep.module)
    return found


def all_commands() -> dict[str, str]:
    """Every sub-command: the core's, then the plugins' (sorted by name)."""
    return {**COMMANDS, **dict(sorted(plugin_commands().items()))}


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr (``PROG: error: ...; see PROG --help``)
    and exit code 2, like every other user error of rsa-bridge, instead of the usage block plus the error."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every registered sub-command."""
    from rsa_bridge.provenance import package_version

    parser = OneLineParser(
        prog="rsa-bridge",
        description="Compare deep-network layers with primate visual cortex by representational similarity.",
    )
    parser.add_argument("--version", action="version", version=f"rsa-bridge {package_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in all_commands().items():
        try:
            module = importlib.import_module(module_name)
        except Exception as err:  # a broken plugin must not take the whole command line down
            subparsers.add_parser(name, help=f"(unavailable: {type(err).__name__}: {err})")
            continue
        module.register(subparsers)
    return parser


class Terminated(BaseException):
    """SIGTERM (a batch scheduler's time limit, ``kill``) raised in the main thread, so that every ``finally`` and
    context manager runs: spill folders are removed, an unfinished ``--out`` is not published."""


@contextmanager
def _terminate_as_exception():
    """While a command runs, SIGTERM raises :class:`Terminated` (where Python's default would end the process
    without cleaning up: at 22,000 stimuli that leaves up to 43.5 GB of spilled activations in /tmp). Only when
    the handler is still the default and this is the main thread (a host program's own handler is kept)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def raise_terminated(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)   # a second SIGTERM ends the process at once
        raise Terminated()

    signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rsa-bridge`` script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)  # --help, --version and usage errors (one line, OneLineParser) exit here
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from rsa_bridge.errors import USER_ERRORS
    from rsa_bridge.progress import set_stage_lines

    set_stage_lines(True)  # a job whose stderr is a log prints stage lines instead of bars (rsa_bridge.progress)
    try:
        with _terminate_as_exception():
            return int(args.func(args) or 0)
    except Terminated:
        print(f"rsa-bridge {args.command}: terminated (SIGTERM); its spill folders were removed and --out keeps "
              "the result it had before", file=sys.stderr)
        return 143
    except USER_ERRORS as err:
        print(f"rsa-bridge {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `rsa-bridge datasets | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"rsa-bridge {args.command}: interrupted; nothing was written", file=sys.stderr)
        return 130


#: set to 1 to keep Python's full interpreter teardown at the end of a command (e.g. for a profiler)
FULL_EXIT_ENV = "RSA_BRIDGE_FULL_EXIT"


def exit_now(code: int) -> None:
    """End the process with ``code``, skipping the interpreter's teardown when that is safe.

    After a command, Python tears down every module one by one (torch, torchvision, scipy, pandas,
    matplotlib: about half a million objects), which took 1.4 s of the 640-stimulus ``compare`` on a quiet
    machine and over 4 s under load, after the last result was written. Here the ``atexit`` handlers run first
    (the ``RSA_BRIDGE_TIMINGS`` file, temporary folders, logging, multiprocessing), then stdout and stderr are
    flushed and the process ends with ``os._exit``. Whenever another non-daemon thread is still alive (work
    that has not finished), or ``RSA_BRIDGE_FULL_EXIT=1``, it is a normal ``sys.exit`` instead.
    """
    import os
    import threading

    others = [t for t in threading.enumerate() if t is not threading.current_thread() and not t.daemon
              and t.is_alive()]
    if others or os.environ.get(FULL_EXIT_ENV, "").strip() not in ("", "0"):
        sys.exit(code)
    import atexit

    atexit._run_exitfuncs()  # what a normal exit runs before its teardown (pending weakref.finalize too)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed (a broken pipe) or gone: nothing left to flush
            pass
    os._exit(code)


def run() -> None:
    """Entry point of the ``rsa-bridge`` script and ``python -m rsa_bridge``: :func:`main`, then
    :func:`exit_now` with its code (:func:`main` itself returns, for callers in Python)."""
    exit_now(main())


if __name__ == "__main__":  # pragma: no cover
    run()
