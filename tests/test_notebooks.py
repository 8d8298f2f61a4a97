"""Every notebook in notebooks/ runs top to bottom without an error, and is stored without outputs.

The kernel is this interpreter (``sys.executable``): a kernel spec written into a temporary Jupyter data
folder, so the test needs nothing but ``pip install -e ".[test]"`` (nbclient, nbformat, ipykernel) - no
``jupyter kernelspec install`` on the CI machine. Notebooks run in their own folder, as a user would run them.

Each executed notebook, outputs included, is saved to ``build/notebooks/`` (git ignores ``build/``): the docs
build publishes those copies as the tutorials, with their tables and figures (``scripts/mkdocs_hooks.py``).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXECUTED_DIR = ROOT / "build" / "notebooks"  # read by the docs build (scripts/mkdocs_hooks.py)
KERNEL_NAME = "rsa-bridge-test"
CELL_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory) -> Path:
    """A Jupyter data folder holding one kernel spec that starts ``sys.executable -m ipykernel_launcher``."""
    data = tmp_path_factory.mktemp("jupyter")
    spec = data / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True)
    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
           "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "rsa-bridge test kernel", "language": "python", "env": env,
    }))
    return data


def _execute(path: Path, kernel_dir: Path, monkeypatch) -> float:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("JUPYTER_PATH", os.pathsep.join(p for p in (str(kernel_dir), os.environ.get("JUPYTER_PATH"))
                                                       if p))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name=KERNEL_NAME, timeout=CELL_TIMEOUT_S,
                                     resources={"metadata": {"path": str(path.parent)}}, allow_errors=False)
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    EXECUTED_DIR.mkdir(parents=True, exist_ok=True)
    tmp = EXECUTED_DIR / f".{path.name}.tmp"
    nbformat.write(nb, str(tmp))
    os.replace(tmp, EXECUTED_DIR / path.name)  # the docs build never sees half a notebook
    return seconds


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, kernel_dir, monkeypatch, capsys):
    seconds = _execute(path, kernel_dir, monkeypatch)
    with capsys.disabled():
        print(f"\n{path.name}: {seconds:.1f} s")


def test_there_are_notebooks():
    assert {"01_quickstart.ipynb", "02_your_own_model.ipynb", "03_neural_data.ipynb"} <= {p.name for p in NOTEBOOKS}


def _tracked_notebooks() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "notebooks/*.ipynb"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return NOTEBOOKS  # not a git checkout: check the files that are there
    tracked = [ROOT / line for line in out.splitlines() if line.strip()]
    return tracked or NOTEBOOKS


def test_notebooks_are_stored_without_outputs():
    """Outputs and execution counts never enter git (files in git, or in the folder when untracked)."""
    dirty = []
    for path in sorted(set(_tracked_notebooks()) | set(NOTEBOOKS)):
        if not path.is_file():
            continue
        nb = json.loads(path.read_text())
        for k, cell in enumerate(nb["cells"]):
            if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count") is not None):
                dirty.append(f"{path.name} cell {k}")
    assert not dirty, f"notebooks with outputs (clear them before committing): {dirty}"
