"""Issue 25 item 7: in a saved notebook each progress bar is one clean output line, not red stderr blocks.

A tiny notebook runs a 50-step bar in a real kernel (this interpreter, as in tests/test_notebooks.py) with
``ipywidgets`` made unimportable; the executed notebook, as nbclient saves it, must hold one output for the
cell: no stderr stream, one line, the bar's last state ``50/50``.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KERNEL_NAME = "rsa-bridge-progress-test"

CODE = """\
import sys
sys.modules["ipywidgets"] = None  # the kernel has no widgets: the text-line bar
from rsa_bridge.progress import progress_bar
for _ in progress_bar(range(50), desc="steps", unit="step"):
    pass
"""


def _kernel_dir(base: Path) -> Path:
    spec = base / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True)
    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "rsa-bridge progress test kernel", "language": "python", "env": env}))
    return base


def _run_cell(code: str, tmp_path: Path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("JUPYTER_PATH", str(_kernel_dir(tmp_path / "jupyter")))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.delenv("RSA_BRIDGE_PROGRESS", raising=False)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nbclient.NotebookClient(nb, kernel_name=KERNEL_NAME, timeout=120,
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    saved = tmp_path / "saved.ipynb"
    nbformat.write(nb, str(saved))  # what a user's saved notebook (and the docs' HTML) holds
    return nbformat.read(str(saved), as_version=4).cells[0]["outputs"]


def test_a_bar_is_one_clean_line_in_a_saved_notebook(tmp_path, monkeypatch):
    outputs = _run_cell(CODE, tmp_path, monkeypatch)
    assert not [o for o in outputs if o.get("name") == "stderr"], outputs  # no red blocks
    assert len(outputs) == 1, outputs
    (out,) = outputs
    text = out["data"]["text/plain"] if "data" in out else out["text"]
    lines = text.strip("\n").splitlines()
    assert len(lines) == 1 and "\r" not in text, text
    assert lines[0].startswith("steps: 100%") and "50/50" in lines[0], text
