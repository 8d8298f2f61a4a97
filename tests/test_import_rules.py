"""Import rules that cover new code (issue 24 item 5).

The import-linter contracts in pyproject.toml name whole packages (``protected``: only the allowed importers may
import ``rsa_bridge.app``, ``extractors``, ``torch``, ``torchvision``), so a core module added tomorrow is checked
without editing a list. import-linter cannot see imports by string (``importlib.import_module("rsa_bridge.app")``):
:func:`string_imports` finds those in the core.
"""
from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "rsa_bridge"
#: a string that names a module above the core (optionally ``:attribute``), as importlib would take it
UPPER = re.compile(r"(rsa_bridge\.app|extractors|analyses)(\.\w+)*(:\w+)?")
#: the allowed places: rsa_bridge/__init__.py's lazy facade (PEP 562 __getattr__), which imports
#: rsa_bridge.app.pipeline only when rsa_bridge.compare_model (...) is first asked for; rsa_bridge/_siblings.py,
#: which asks importlib.util.find_spec where the sibling packages are (it never imports them)
# the package's face lazily re-exports the application layer's entry points (compare_model, NetworkOptions, ...)
ALLOWED = {("rsa_bridge/__init__.py", "rsa_bridge.app.pipeline"), ("rsa_bridge/__init__.py", "rsa_bridge.app.network"),
           ("rsa_bridge/_siblings.py", "extractors"),
           ("rsa_bridge/_siblings.py", "analyses")}


def _lint_imports() -> str | None:
    found = shutil.which("lint-imports")
    beside = Path(sys.executable).parent / "lint-imports"
    return found or (str(beside) if beside.exists() else None)


def core_files(root: Path = ROOT) -> list[Path]:
    """Every .py file of the core: rsa_bridge/ less rsa_bridge/app/."""
    return sorted(p for p in (root / "rsa_bridge").rglob("*.py") if p.relative_to(root / "rsa_bridge").parts[0] != "app")


def string_imports(path: Path) -> list[tuple[int, str]]:
    """(line, text) of each string in ``path`` that names a module above the core: a whole string constant
    (``"rsa_bridge.app.cache"``, ``"extractors.hooks:run"``) or the literal start of an f-string."""
    tree = ast.parse(path.read_text(), filename=str(path))
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and UPPER.fullmatch(node.value.strip()):
            hits.append((node.lineno, node.value))
        elif isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
            head = str(node.values[0].value)
            if UPPER.match(head) and UPPER.match(head).end() == len(head.rstrip(".:")):
                hits.append((node.lineno, head + "{...}"))
    return sorted(hits)


def test_no_core_module_imports_the_app_by_string():
    bad = [f"{p.relative_to(ROOT).as_posix()}:{line}: {text!r}" for p in core_files() for line, text in string_imports(p)
           if (p.relative_to(ROOT).as_posix(), text) not in ALLOWED]
    assert bad == [], "core modules name modules above the core (import them from rsa_bridge.app instead):\n" + "\n".join(bad)


def test_the_string_check_is_not_vacuous(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('import importlib\n'
                   'importlib.import_module("rsa_bridge.app.pipeline")\n'
                   'loader = "extractors.hooks:run"\n'
                   'name = "cache"\n'
                   'importlib.import_module(f"rsa_bridge.app.{name}")\n'
                   'fine = "the extractors layer"\n')
    assert [line for line, _ in string_imports(bad)] == [2, 3, 5]


def test_importing_rsa_bridge_does_not_import_the_app():
    code = ("import sys, rsa_bridge, rsa_bridge.neural, rsa_bridge.stats\n"
            "assert not [m for m in sys.modules if m.startswith(('rsa_bridge.app', 'extractors', 'analyses'))], "
            "sorted(m for m in sys.modules if m.startswith(('rsa_bridge.app', 'extractors', 'analyses')))\n"
            "from rsa_bridge.app.pipeline import compare_model\n"
            "assert rsa_bridge.compare_model is compare_model\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]


def test_contracts_name_whole_packages():
    """No contract lists core modules one by one (a new module would slip through such a list)."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    by_type = {}
    for c in contracts:
        by_type.setdefault(c["type"], []).append(c)
    protected = {m for c in by_type["protected"] for m in c["protected_modules"]}
    assert {"rsa_bridge.app", "extractors", "torch", "torchvision"} <= protected
    for c in contracts:
        sources = c.get("source_modules", []) + c.get("protected_modules", [])
        assert all(m.count(".") <= 1 for m in sources), c["name"]
    torch = next(c for c in by_type["protected"] if c["protected_modules"] == ["torch"])
    core_torch = sorted(m for m in torch["allowed_importers"] if m.startswith("rsa_bridge.") and m != "rsa_bridge.app")
    assert core_torch == ["rsa_bridge.gram", "rsa_bridge.rdm", "rsa_bridge.stats.rank_torch"]


@pytest.mark.skipif(_lint_imports() is None, reason="import-linter is not installed (pip install -e '.[test]')")
def test_real_tree_keeps_every_contract():
    run = subprocess.run([_lint_imports()], cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout


@pytest.mark.slow
@pytest.mark.skipif(_lint_imports() is None, reason="import-linter is not installed (pip install -e '.[test]')")
def test_new_code_that_breaks_the_layers_fails_lint_imports(tmp_path):
    """A copy of the tree with a NEW core module importing extractors, another importing the app, torch.nn
    in compare.py and rsa_bridge/__init__.py importing the app: lint-imports fails and names each one."""
    for name in ("rsa_bridge", "extractors", "stimuli", "analyses"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("data", "__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "rsa_bridge" / "_scratch_new.py").write_text("from extractors import hooks  # noqa\n")
    (tmp_path / "rsa_bridge" / "neural" / "_scratch_app.py").write_text("import rsa_bridge.app.pipeline  # noqa\n")
    with open(tmp_path / "rsa_bridge" / "compare.py", "a") as f:
        f.write("\nimport torch.nn  # noqa\n")
    with open(tmp_path / "rsa_bridge" / "__init__.py", "a") as f:
        f.write("\nfrom rsa_bridge.app import pipeline  # noqa\n")
    run = subprocess.run([_lint_imports()], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "PYTHONPATH": str(tmp_path)})
    out = " ".join(run.stdout.split())
    assert run.returncode != 0, out[-3000:]
    for line in ("rsa_bridge._scratch_new -> extractors", "rsa_bridge.neural._scratch_app -> rsa_bridge.app.pipeline",
                 "rsa_bridge.compare -> torch", "rsa_bridge -> rsa_bridge.app"):
        assert line in out, (line, out[-3000:])
