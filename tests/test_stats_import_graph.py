"""rsa_bridge.stats has no import cycle: an ast check of every import (function-level ones included) and a
fresh interpreter importing each module that used to sit in the bootstrap <-> stores <-> subset <->
permutation cycle on its own."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STATS = ROOT / "rsa_bridge" / "stats"
PACKAGE = "rsa_bridge.stats"


def import_graph(folder: Path = STATS, package: str = PACKAGE) -> dict[str, set[str]]:
    """module -> the modules of ``package`` it imports anywhere in its code (module level or inside functions);
    ``from package import name`` counts as the submodule ``name`` when one exists, else the package itself."""
    modules = {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
    graph: dict[str, set[str]] = {}
    for path in sorted(folder.glob("*.py")):
        me = package if path.stem == "__init__" else f"{package}.{path.stem}"
        edges = graph.setdefault(me, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                base = node.module if node.level == 0 else f"{package}.{node.module}"
                names = [f"{base}.{a.name}" if base == package and a.name in modules else base for a in node.names]
            else:
                continue
            for name in names:
                if name == package or name.startswith(package + "."):
                    target = ".".join(name.split(".")[:3])
                    if target != me:
                        edges.add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_checker_finds_a_cycle_through_a_function_level_import(tmp_path):
    pkg = tmp_path / "stats"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from rsa_bridge.stats.b import f\n")
    (pkg / "b.py").write_text("def f():\n    from rsa_bridge.stats import a\n    return a\n")
    (pkg / "c.py").write_text("import rsa_bridge.stats.a\n")
    assert cycles(import_graph(pkg)) == [["rsa_bridge.stats.a", "rsa_bridge.stats.b"]]


def test_stats_import_graph_has_no_cycle():
    graph = import_graph()
    assert "rsa_bridge.stats.plan" in graph["rsa_bridge.stats.bootstrap"]  # the graph sees real edges
    assert cycles(graph) == []


def test_the_planner_and_the_store_data_sit_below_the_statistics():
    graph = import_graph()
    for low in ("rsa_bridge.stats.plan", "rsa_bridge.stats.subset", "rsa_bridge.stats.stores",
                "rsa_bridge.stats.results"):
        assert not graph[low] & {"rsa_bridge.stats.bootstrap", "rsa_bridge.stats.permutation"}, low


@pytest.mark.parametrize("module", ["plan", "subset", "stores", "results", "permutation", "bootstrap"])
def test_each_former_cycle_module_imports_first_in_a_fresh_interpreter(module):
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", f"import {PACKAGE}.{module}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
