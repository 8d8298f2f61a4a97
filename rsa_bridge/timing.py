"""Opt-in stage timings of a job: wall seconds, CPU seconds and peak resident memory per stage.

Off by default, and then every call here is a no-op that costs one dictionary look-up. Setting the
environment variable ``RSA_BRIDGE_TIMINGS=FILE`` before the process starts turns it on: each stage
(``decode_forward``, ``gram_rdm``, ``comparison``, ``bootstrap``, ``permutations``, ``write`` in a
``compare`` job) records

- ``wall_s``: wall-clock seconds (``time.perf_counter``);
- ``cpu_s``: CPU seconds of the whole process, every thread (``time.process_time``), so numba's and
  torch's worker threads count;
- ``peak_rss_mib``: the largest resident set size of the process sampled while the stage ran (a
  thread polls ``psutil`` every 20 ms; short peaks between samples can be missed);
- ``calls``: how often the stage ran (repeats add up, the peak is the maximum).

At exit the file is written as JSON: ``{"stages": {name: {...}}, "process": {"wall_s", "cpu_s",
"max_rss_mib", "finished"}, "argv": [...]}`` (since the process started; ``max_rss_mib`` from
``resource.getrusage``, the kernel's high-water mark of the whole process). The file is also rewritten
(atomically) after every stage, with ``"finished": false``, so a job killed later leaves what it did. A stage still open at exit (an error) has ``"open": true``.
Peers: pyinstrument and cProfile profile functions; this records only the few named stages a user of
a large job asks about, with memory, at no cost when off.

Two spellings, the same record::

    from rsa_bridge.timing import stage, begin, end

    with stage("comparison"):
        ...
    begin("gram_rdm")      # begin/end add lines without re-indenting a block
    ...
    end("gram_rdm")
"""
from __future__ import annotations

import atexit
import json
import os
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

#: environment variable naming the JSON file; unset or empty = off
ENV = "RSA_BRIDGE_TIMINGS"
#: seconds between two resident-memory samples
POLL_S = 0.02


class _Recorder:
    """The process's stage records and the memory sampler (one per process, created when on)."""

    def __init__(self, path: Path) -> None:
        import psutil

        self.path = path
        self.failed = False
        self.proc = psutil.Process()
        self.stages: dict[str, dict] = {}
        self.open: dict[str, tuple[float, float]] = {}
        self.peaks: dict[str, int] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True, name="rsa-bridge-timing")
        self.thread.start()
        atexit.register(self.write)

    def _poll(self) -> None:
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(POLL_S)

    def sample(self) -> None:
        try:
            rss = self.proc.memory_info().rss
        except Exception:  # noqa: BLE001 - a failed sample is skipped, never an error of the job
            return
        with self.lock:
            for name in self.open:
                self.peaks[name] = max(self.peaks.get(name, 0), rss)

    def begin(self, name: str) -> None:
        with self.lock:
            self.open[name] = (time.perf_counter(), time.process_time())
            self.peaks[name] = 0
        self.sample()

    def end(self, name: str) -> None:
        self.sample()
        with self.lock:
            if name not in self.open:
                return
            t0, c0 = self.open.pop(name)
            rec = self.stages.setdefault(name, {"wall_s": 0.0, "cpu_s": 0.0, "peak_rss_mib": 0.0, "calls": 0})
            rec["wall_s"] += time.perf_counter() - t0
            rec["cpu_s"] += time.process_time() - c0
            rec["peak_rss_mib"] = max(rec["peak_rss_mib"], self.peaks.pop(name, 0) / 2 ** 20)
            rec["calls"] += 1
        self.write(final=False)  # a job killed later still leaves the stages it finished

    def write(self, final: bool = True) -> None:
        import resource

        if final:
            self.stop.set()
            for name in list(self.open):
                self.end(name)
                self.stages[name]["open"] = True
        max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        data = {"stages": self.stages,
                "process": {"wall_s": time.time() - self.proc.create_time(), "cpu_s": time.process_time(),
                            "max_rss_mib": max_rss, "finished": final},
                "argv": list(sys.argv)}
        from rsa_bridge.io import write_text

        try:
            write_text(json.dumps(data, indent=1), self.path)  # atomic; a full disk is one line
        except (OSError, ValueError) as err:  # the timings never fail the job (RSABridgeError is a ValueError)
            if not self.failed:
                print(f"rsa-bridge: timings not written to {str(self.path)!r} ({err})", file=sys.stderr)
            self.failed = True


_state: dict[str, _Recorder | None] = {}


def check_path(text: str) -> Path:
    """``RSA_BRIDGE_TIMINGS`` as a Path when it can name the timings file: not a folder, FIFO or device,
    not on a kernel filesystem, a name of allowed length (:func:`stimuli.diskspace.check_location`).

    Raises:
        RSABridgeError: "RSA_BRIDGE_TIMINGS '/tmp' is a folder; name a file, e.g. /tmp/timings.json".
    """
    from stimuli.diskspace import check_location

    from rsa_bridge.errors import RSABridgeError

    path = Path(text)
    if path.is_dir() or text.endswith(("/", os.sep)):
        raise RSABridgeError(f"{ENV} {text!r} is a folder; name a file, e.g. {str(path / 'timings.json')!r}")
    if (path.exists() or path.is_symlink()) and not path.is_file():
        raise RSABridgeError(f"{ENV} {text!r} is not a regular file (a FIFO, device or broken link?); name a file")
    check_location(path, ENV)
    parent = Path(os.path.abspath(path)).parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise RSABridgeError(f"{ENV} {text!r}: {str(parent)!r} is a file, not a folder; name a file in a folder")
    return path


def recorder() -> _Recorder | None:
    """The process's recorder, or None when ``RSA_BRIDGE_TIMINGS`` is unset (timings off).

    Raises:
        RSABridgeError: ``RSA_BRIDGE_TIMINGS`` cannot name a file (:func:`check_path`); raised at the
            first stage, before that stage's work.
    """
    if "r" not in _state:
        path = os.environ.get(ENV, "")
        _state["r"] = _Recorder(check_path(path)) if path else None
    return _state["r"]


def begin(name: str) -> None:
    """Start stage ``name`` (no-op when timings are off)."""
    rec = recorder()
    if rec is not None:
        rec.begin(name)


def end(name: str) -> None:
    """End stage ``name`` and add its wall/CPU seconds and peak memory (no-op when off or not begun)."""
    rec = recorder()
    if rec is not None:
        rec.end(name)


def add(name: str, **counts: float) -> None:
    """Add numeric counters to stage ``name``'s record (e.g. ``io_read_bytes=...``; no-op when timings are off)."""
    rec = recorder()
    if rec is None:
        return
    with rec.lock:
        record = rec.stages.setdefault(name, {"wall_s": 0.0, "cpu_s": 0.0, "peak_rss_mib": 0.0, "calls": 0})
        for key, value in counts.items():
            record[key] = record.get(key, 0) + value


def note(name: str, **values: float) -> None:
    """Set values in stage ``name``'s record, the last call's winning (e.g. ``memory_budget_bytes=...``; no-op when
    timings are off)."""
    rec = recorder()
    if rec is None:
        return
    with rec.lock:
        rec.stages.setdefault(name, {"wall_s": 0.0, "cpu_s": 0.0, "peak_rss_mib": 0.0, "calls": 0}).update(values)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time the block as stage ``name`` (no-op when timings are off); the stage ends on errors too."""
    begin(name)
    try:
        yield
    finally:
        end(name)
