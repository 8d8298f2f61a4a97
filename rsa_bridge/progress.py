"""Progress bars for every long step (extraction, layer RDMs, bootstrap, permutations, folds, dask tasks).

One rule decides whether a bar is drawn, in this order:

1. the call's own ``progress=`` argument when it is ``True`` or ``False``;
2. the session switch :func:`set_progress` (``rsa_bridge.set_progress(False)`` in Python; the CLI's
   ``--quiet`` sets it), when set;
3. the environment variable ``RSA_BRIDGE_PROGRESS`` (``0``/``off``/``false`` or ``1``/``on``/``true``),
   when set -- e.g. ``RSA_BRIDGE_PROGRESS=0`` in a batch job;
4. otherwise automatic: on in a Jupyter kernel (where ``sys.stderr.isatty()`` is False) and when
   stderr is a terminal; off when stderr goes to a log file or a pipe.

**Stage lines in logs.** A bar that the automatic rule turns off because stderr is a log file or a pipe is
not silent on the command line (the CLI calls :func:`set_stage_lines`): a stage that has run
:data:`STAGE_AFTER_S` seconds prints one line (``rsa-bridge: bootstrap samples: running, 120/1000 samples,
5 s``), one more every :data:`STAGE_EVERY_S` seconds, and one when it ends (``done, 1000/1000 samples in
41 s``) -- so a 10-minute job sent to a log says what it is doing, and quick steps add nothing. An explicit
off (``progress=False``, ``--quiet``, ``RSA_BRIDGE_PROGRESS=0``) silences these lines too.

In a Jupyter kernel the bar is tqdm's widget when ``ipywidgets`` is installed, else :class:`NotebookLine`: one
plain output line per bar (tqdm's text, ``folds: 100%|##########| 50/50 [00:01<00:00, 45.2fold/s]``), redrawn in
place at most every :data:`NOTEBOOK_EVERY_S` seconds, so a saved notebook (and its HTML in the docs) keeps one
clean line per bar -- not the many carriage-return states of a text bar on stderr, shown as red blocks. Peers: tqdm's own ``tqdm.auto`` (which picks the
widget bar but has no "off in logs" rule), scikit-learn's ``verbose=`` (text lines), rsatoolbox (tqdm, always on).

Example::

    from rsa_bridge.progress import progress_bar
    for fold in progress_bar(range(10), desc="folds", unit="fold", progress=None):
        ...
"""
from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

#: the session switch; None = not set (see the module docstring)
_SWITCH: bool | None = None

ENV = "RSA_BRIDGE_PROGRESS"
#: stage lines (see the module docstring): after this many seconds of a stage, then every STAGE_EVERY_S
STAGE_AFTER_S = 5.0
STAGE_EVERY_S = 60.0
_STAGE_LINES = False
#: a notebook bar without ipywidgets redraws its one line at most this often
NOTEBOOK_EVERY_S = 0.5
_ON = {"1", "on", "true", "yes"}
_OFF = {"0", "off", "false", "no"}


def set_progress(enabled: bool | None) -> None:
    """Turn every bar on (True) or off (False) for this session; None returns to the automatic rule."""
    global _SWITCH
    if enabled is not None and not isinstance(enabled, bool):
        raise TypeError(f"set_progress takes True, False or None; got {enabled!r}")
    _SWITCH = enabled


@contextmanager
def progress_switch(enabled: bool | None) -> Iterator[None]:
    """Within the block, :func:`set_progress` (``enabled``; None leaves the switch as it is); restored after."""
    before = _SWITCH
    if enabled is not None:
        set_progress(enabled)
    try:
        yield
    finally:
        set_progress(before)


def in_notebook() -> bool:
    """True inside a Jupyter (IPython kernel) session, where stderr is not a terminal but bars are wanted."""
    ipython_mod = sys.modules.get("IPython")
    if ipython_mod is None:
        return False
    try:
        shell = ipython_mod.get_ipython()
    except Exception:  # an IPython without get_ipython, or a broken one: not a notebook
        return False
    if shell is None:
        return False
    if type(shell).__name__ == "ZMQInteractiveShell":
        return True
    config = getattr(shell, "config", None)
    return bool(config) and "IPKernelApp" in config


def _stderr_is_terminal() -> bool:
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


def progress_enabled(progress: bool | None = None) -> bool:
    """Whether a bar is drawn for a call with this ``progress=`` argument (see the module docstring)."""
    if progress is not None:
        return bool(progress)
    if _SWITCH is not None:
        return _SWITCH
    env = os.environ.get(ENV, "").strip().lower()
    if env in _ON:
        return True
    if env in _OFF:
        return False
    return in_notebook() or _stderr_is_terminal()


def set_stage_lines(enabled: bool) -> None:
    """Print stage lines in place of bars that the automatic rule turns off (the command line's choice)."""
    global _STAGE_LINES
    _STAGE_LINES = bool(enabled)


def _automatic(progress: bool | None) -> bool:
    """True when nothing explicit (argument, switch, environment) decided whether bars are drawn."""
    return (progress is None and _SWITCH is None
            and os.environ.get(ENV, "").strip().lower() not in _ON | _OFF)


class StageLines:
    """What a log gets instead of a bar: a line once a stage has run a while, one a minute, one at its end.

    Has the part of tqdm's interface that rsa-bridge uses (iteration, ``update``, ``close``, context manager).
    """

    def __init__(self, iterable: Iterable | None, total: int | None, desc: str, unit: str):
        self.iterable, self.desc, self.unit = iterable, desc or "working", unit
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total, self.n = total, 0
        self.start = time.monotonic()
        self.last: float | None = None  # when the last line was printed
        self.closed = False

    def __iter__(self):
        try:
            for item in self.iterable or ():
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> "StageLines":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, k: int = 1) -> None:
        self.n += k
        now = time.monotonic()
        due = STAGE_AFTER_S if self.last is None else STAGE_EVERY_S
        if now - (self.start if self.last is None else self.last) >= due:
            self._line("running", now)

    def close(self) -> None:
        if not self.closed and self.last is not None:
            self._line("done", time.monotonic())
        self.closed = True

    def _line(self, state: str, now: float) -> None:
        count = f"{self.n}/{self.total}" if self.total is not None else f"{self.n}"
        when = f" in {now - self.start:.0f} s" if state == "done" else f", {now - self.start:.0f} s"
        print(f"rsa-bridge: {self.desc}: {state}, {count} {self.unit}s{when}", file=sys.stderr, flush=True)
        self.last = now


class _Discard:
    """A file that drops what tqdm writes (a :class:`NotebookLine` draws through IPython's display)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def _notebook_line_class():
    """:class:`NotebookLine`, built on first use so that ``import rsa_bridge.progress`` does not import tqdm."""
    global NotebookLine
    if NotebookLine is not None:
        return NotebookLine
    from tqdm.std import tqdm

    class _NotebookLine(tqdm):
        """tqdm's text bar as one ``text/plain`` display output, updated in place (``display_id``).

        Jupyter, nbclient and nbconvert all replace that output on each update, so the saved notebook holds
        one line per bar, its last state; nothing goes to stderr.
        """

        def __init__(self, *args: Any, **kwargs: Any):
            self._handle = None
            kwargs["file"] = _Discard()
            kwargs.setdefault("mininterval", NOTEBOOK_EVERY_S)
            kwargs.setdefault("ascii", True)  # no block characters that some fonts draw at another width
            super().__init__(*args, **kwargs)

        def display(self, msg: str | None = None, pos: int | None = None) -> bool:
            from IPython.display import display

            text = {"text/plain": self.__str__() if msg is None else msg}
            if self._handle is None:
                if not text["text/plain"]:
                    return True
                self._handle = display(text, raw=True, display_id=True)
            else:
                self._handle.update(text, raw=True)
            return True

    NotebookLine = _NotebookLine
    return NotebookLine


#: the notebook bar without ipywidgets (see the module docstring); None until first used
NotebookLine = None


def _bar_class(show: bool):
    if show and in_notebook():
        try:
            import ipywidgets  # noqa: F401  (tqdm's widget bar needs it)
            from tqdm.notebook import tqdm
            return tqdm
        except ImportError:
            return _notebook_line_class()
    from tqdm.std import tqdm
    return tqdm


def progress_bar(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
                 unit: str = "it", progress: bool | None = None, **options: Any):
    """A tqdm bar (terminal text, or the Jupyter widget) that is drawn only when :func:`progress_enabled`.

    Args:
        iterable: what to iterate over (or None and call ``.update(k)`` yourself).
        total: number of steps (default ``len(iterable)``); desc: label; unit: step name.
        progress: the caller's ``progress=`` argument (None: the session switch, then the automatic rule).
        options: passed to tqdm (e.g. ``unit_scale=True``).

    Returns:
        a tqdm object (in a notebook without ipywidgets a :class:`NotebookLine`); disabled bars cost nothing
        and print nothing.
    """
    show = progress_enabled(progress)
    if not show and _STAGE_LINES and _automatic(progress):
        return StageLines(iterable, total, desc, unit)
    cls = _bar_class(show)
    if cls.__module__.startswith("tqdm.std"):  # a NotebookLine (this module) draws through IPython's display
        options.setdefault("file", sys.stderr)
    return cls(iterable, total=total, desc=desc, unit=unit, disable=not show, **options)
