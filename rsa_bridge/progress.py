"""Progress bars for every long step (extraction, layer RDMs, bootstrap, permutations, folds, dask tasks).

One rule decides whether a bar is drawn, in this order:

1. the call's own ``progress=`` argument when it is ``True`` or ``False``;
2. the session switch :func:`set_progress` (``rsa_bridge.set_progress(False)`` in Python; the CLI's
   ``--quiet`` sets it), when set;
3. the environment variable ``RSA_BRIDGE_PROGRESS`` (``0``/``off``/``false`` or ``1``/``on``/``true``),
   when set -- e.g. ``RSA_BRIDGE_PROGRESS=0`` in a batch job;
4. otherwise automatic: on in a Jupyter kernel (where ``sys.stderr.isatty()`` is False) and when
   stderr is a terminal; off when stderr goes to a log file or a pipe.

In a Jupyter kernel the bar is tqdm's widget when ``ipywidgets`` is installed, else tqdm's text bar on the
cell's stderr (Jupyter renders its carriage returns in place). Peers: tqdm's own ``tqdm.auto`` (which picks the
widget bar but has no "off in logs" rule), scikit-learn's ``verbose=`` (text lines), rsatoolbox (tqdm, always on).

Example::

    from rsa_bridge.progress import progress_bar
    for fold in progress_bar(range(10), desc="folds", unit="fold", progress=None):
        ...
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

#: the session switch; None = not set (see the module docstring)
_SWITCH: bool | None = None

ENV = "RSA_BRIDGE_PROGRESS"
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


def _bar_class(show: bool):
    if show and in_notebook():
        try:
            import ipywidgets  # noqa: F401  (tqdm's widget bar needs it)
            from tqdm.notebook import tqdm
            return tqdm
        except ImportError:
            pass
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
        a tqdm object; disabled bars cost nothing and print nothing.
    """
    show = progress_enabled(progress)
    cls = _bar_class(show)
    if cls.__module__.startswith("tqdm.std"):
        options.setdefault("file", sys.stderr)
    return cls(iterable, total=total, desc=desc, unit=unit, disable=not show, **options)
