"""One switch decides every progress bar: the call's progress=, then set_progress / --quiet, then
RSA_BRIDGE_PROGRESS, then automatic (on in Jupyter and on a terminal, off in logs and pipes)."""
from __future__ import annotations

import io
import json
import os
import sys
import types

import numpy as np
import pytest

from rsa_bridge import progress as prog
from rsa_bridge.stats import BootstrapOptions, PermutationOptions


class _TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


class ZMQInteractiveShell:  # the class name Jupyter's kernel shell has
    config: dict = {}


class TerminalInteractiveShell:  # plain `ipython` in a terminal
    config: dict = {}


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    """No switch, no variable, no IPython: each test sets what it needs."""
    monkeypatch.delenv(prog.ENV, raising=False)
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    prog.set_progress(None)
    yield
    prog.set_progress(None)


def _fake_ipython(monkeypatch, shell):
    module = types.ModuleType("IPython")
    module.get_ipython = lambda: shell
    monkeypatch.setitem(sys.modules, "IPython", module)


def test_automatic_rule_terminal_on_log_off(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a log file / pipe
    assert not prog.in_notebook() and not prog.progress_enabled()
    bar = prog.progress_bar(total=5, desc="work")
    bar.update(5)
    bar.close()
    assert sys.stderr.getvalue() == ""
    monkeypatch.setattr(sys, "stderr", _TTY())
    assert prog.progress_enabled()


def test_jupyter_is_detected_and_turns_bars_on(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a kernel's stderr is no terminal
    _fake_ipython(monkeypatch, ZMQInteractiveShell())
    assert prog.in_notebook() and prog.progress_enabled()
    _fake_ipython(monkeypatch, TerminalInteractiveShell())
    assert not prog.in_notebook() and not prog.progress_enabled()
    _fake_ipython(monkeypatch, None)  # IPython imported, no shell running
    assert not prog.in_notebook()
    shell = TerminalInteractiveShell()
    shell.config = {"IPKernelApp": {}}  # another kernel shell class, started by IPKernelApp
    _fake_ipython(monkeypatch, shell)
    assert prog.in_notebook()


def test_in_notebook_draws_one_display_line_without_ipywidgets(monkeypatch):
    """Without ipywidgets the bar is one text/plain display output, updated in place; nothing on stderr.
    (tests/test_progress_notebook.py runs the same in a real kernel and checks the saved notebook.)"""
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    _fake_ipython(monkeypatch, ZMQInteractiveShell())
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import fails
    shown, updates = [], []

    class Handle:
        def update(self, obj, raw=False):
            updates.append(obj["text/plain"])

    display_mod = types.ModuleType("IPython.display")
    display_mod.display = lambda obj, raw=False, display_id=False: shown.append(obj["text/plain"]) or Handle()
    monkeypatch.setitem(sys.modules, "IPython.display", display_mod)
    bar = prog.progress_bar(total=4, desc="folds", unit="fold")
    for _ in range(4):
        bar.update(1)
    bar.close()
    assert sys.stderr.getvalue() == ""
    assert len(shown) == 1 and shown[0].startswith("folds:") and "0/4" in shown[0]
    assert "\r" not in updates[-1] and updates[-1].startswith("folds: 100%") and "4/4" in updates[-1]


def test_precedence_argument_switch_environment(monkeypatch):
    monkeypatch.setattr(sys, "stderr", _TTY())
    monkeypatch.setenv(prog.ENV, "0")
    assert not prog.progress_enabled()  # environment beats the automatic rule
    prog.set_progress(True)
    assert prog.progress_enabled()  # the session switch beats the environment
    assert not prog.progress_enabled(False)  # the call's own argument beats everything
    prog.set_progress(False)
    assert prog.progress_enabled(True)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    prog.set_progress(None)
    monkeypatch.setenv(prog.ENV, "on")
    assert prog.progress_enabled()
    with pytest.raises(TypeError):
        prog.set_progress("yes")


def test_switch_context_restores(monkeypatch):
    prog.set_progress(True)
    with prog.progress_switch(False):
        assert not prog.progress_enabled()
    assert prog.progress_enabled()
    with prog.progress_switch(None):  # --quiet not given: the switch is left alone
        assert prog.progress_enabled()


def _rdms(rng):
    x = rng.normal(size=(10, 4))
    rdm = lambda a: np.sqrt(((a[:, None] - a[None]) ** 2).sum(-1))  # noqa: E731
    return np.stack([rdm(x), rdm(x + rng.normal(size=x.shape))]), {
        "IT": np.stack([rdm(x + 0.5 * rng.normal(size=x.shape)) for _ in range(2)])}


def test_switch_covers_bootstrap_and_permutation_bars(rng, monkeypatch, capsys):
    from rsa_bridge.stats import bootstrap_similarity, permutation_test

    model, neural = _rdms(rng)
    prog.set_progress(True)
    bootstrap_similarity(model, neural, n_samples=8, seed=0)
    permutation_test(model, neural, n_permutations=8, seed=0)
    err = capsys.readouterr().err
    assert "bootstrap samples" in err and "permutations" in err and "9/9" in err  # identity + 8
    prog.set_progress(False)
    a = bootstrap_similarity(model, neural, n_samples=8, seed=0)
    b = permutation_test(model, neural, n_permutations=8, seed=0)
    assert capsys.readouterr().err == ""
    prog.set_progress(None)
    assert np.array_equal(a.samples, bootstrap_similarity(model, neural, n_samples=8, seed=0,
                                                          options=BootstrapOptions(progress=True)).samples)
    assert np.array_equal(b.p_value, permutation_test(model, neural, n_permutations=8, seed=0,
                                                      options=PermutationOptions(progress=True)).p_value)


def test_compare_progress_argument_covers_the_statistics(monkeypatch, capsys):
    """progress= of compare_models reaches the bootstrap bar (a control model: no network to build)."""
    from rsa_bridge.app.pipeline import StatsOptions, compare_models

    monkeypatch.setattr(sys, "stderr", _TTY())  # a terminal: bars would show by default
    compare_models(["pixels"], ["IT"], stats=StatsOptions(bootstrap=5), progress=False, cache=False)
    assert "bootstrap samples" not in sys.stderr.getvalue()
    compare_models(["pixels"], ["IT"], stats=StatsOptions(bootstrap=5), progress=True, cache=False)
    assert "bootstrap samples" in sys.stderr.getvalue()


def test_real_jupyter_kernel_detects_itself(tmp_path, monkeypatch):
    """In a real IPython kernel, stderr is no terminal, yet bars are on (the bug of issue 18)."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = tmp_path / "kernels" / "rsa-bridge-progress"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "progress test", "language": "python",
        "env": {"PYTHONPATH": root, "OMP_NUM_THREADS": "1"}}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import sys\nfrom rsa_bridge.progress import in_notebook, progress_enabled\n"
        "print(sys.stderr.isatty(), in_notebook(), progress_enabled())")])
    nbclient.NotebookClient(nb, kernel_name="rsa-bridge-progress", timeout=120).execute()
    assert nb.cells[0].outputs[0]["text"].split() == ["False", "True", "True"]


def test_stage_lines_in_logs(monkeypatch, capsys):
    """With stderr a log, the command line's bars become a line after STAGE_AFTER_S, one a minute, one at the end."""
    clock = iter([0.0, 1.0, 6.0, 30.0, 70.0, 71.0, 72.0])  # start, then one reading per update / close
    monkeypatch.setattr(prog.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(prog, "_stderr_is_terminal", lambda: False)
    monkeypatch.delenv(prog.ENV, raising=False)
    prog.set_progress(None)
    prog.set_stage_lines(True)
    try:
        bar = prog.progress_bar(total=5, desc="bootstrap samples", unit="sample")
        assert isinstance(bar, prog.StageLines)
        for _ in range(5):
            bar.update(1)
        bar.close()
        bar.close()  # a second close prints nothing
        lines = capsys.readouterr().err.splitlines()
        assert lines == ["rsa-bridge: bootstrap samples: running, 2/5 samples, 6 s",   # 6 s >= STAGE_AFTER_S
                         "rsa-bridge: bootstrap samples: running, 4/5 samples, 70 s",  # 64 s after the last line
                         "rsa-bridge: bootstrap samples: done, 5/5 samples in 72 s"]
        monkeypatch.setattr(prog.time, "monotonic", lambda: 0.0)
        quick = prog.progress_bar(range(3), desc="folds", unit="fold")  # under STAGE_AFTER_S: silent
        assert list(quick) == [0, 1, 2] and capsys.readouterr().err == ""
        assert not isinstance(prog.progress_bar(total=3, progress=False), prog.StageLines)  # explicit off
        monkeypatch.setenv(prog.ENV, "0")
        assert not isinstance(prog.progress_bar(total=3), prog.StageLines)
    finally:
        prog.set_stage_lines(False)
