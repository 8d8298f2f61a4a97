"""Count the library's long functions and long parameter lists (issue 24): no function may take more than 10.

Walks every ``.py`` file under ``rsa_bridge/``, ``extractors/``, ``stimuli/`` and ``analyses/`` with :mod:`ast`
(nothing is imported or run). A function's parameters are its positional (positional-only included) and
keyword-only parameters, without a method's ``self``/``cls``; ``*args``/``**kwargs`` are not counted. Its
length is the lines from ``def`` to its last line (decorators excluded).

Prints every function with more than 10 parameters, then the totals of functions longer than 50 lines, with
>= 10 parameters and with > 10 parameters; exits 1 when any function takes more than 10.

Usage::

    python scripts/count_parameters.py            # from the repository root
    python scripts/count_parameters.py --list      # also list the functions with >= 10 parameters
    python scripts/count_parameters.py --json      # the totals and offenders as JSON
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rsa_bridge", "extractors", "stimuli", "analyses")
#: the most parameters a function may take
MAX_PARAMETERS = 10
#: a function longer than this many lines counts as long (reported, not enforced)
LONG_LINES = 50


@dataclass(frozen=True)
class Function:
    path: str
    line: int
    name: str
    parameters: int
    lines: int


def count(node: ast.FunctionDef | ast.AsyncFunctionDef, method: bool) -> int:
    """Positional + keyword-only parameters of ``node``, without the first one of a method (self/cls)."""
    args = node.args
    positional = list(args.posonlyargs) + list(args.args)
    static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list)
    if method and not static and positional and positional[0].arg in ("self", "cls", "mcs", "metacls"):
        positional = positional[1:]
    return len(positional) + len(args.kwonlyargs)


def functions(path: Path, root: Path = ROOT) -> list[Function]:
    """Every function and method of one file (nested ones too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: list[Function] = []

    def walk(node: ast.AST, prefix: str, in_class: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.append(Function(str(path.relative_to(root)), child.lineno, prefix + child.name,
                                    count(child, in_class), child.end_lineno - child.lineno + 1))
                walk(child, f"{prefix}{child.name}.", False)
            elif isinstance(child, ast.ClassDef):
                walk(child, f"{prefix}{child.name}.", True)
            else:
                walk(child, prefix, in_class)

    walk(tree, "", False)
    return out


def scan(root: Path = ROOT, packages=PACKAGES) -> list[Function]:
    """The functions of every package under ``root`` (sorted by file and line)."""
    found: list[Function] = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            found.extend(functions(path, root))
    return found


def totals(found: list[Function]) -> dict:
    return {"functions": len(found),
            f"longer_than_{LONG_LINES}_lines": sum(f.lines > LONG_LINES for f in found),
            f"at_least_{MAX_PARAMETERS}_parameters": sum(f.parameters >= MAX_PARAMETERS for f in found),
            f"more_than_{MAX_PARAMETERS}_parameters": sum(f.parameters > MAX_PARAMETERS for f in found)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root (default: this checkout)")
    parser.add_argument("--list", action="store_true", help="also list the functions with >= 10 parameters")
    parser.add_argument("--json", action="store_true", help="print the totals and offenders as JSON")
    args = parser.parse_args(argv)
    found = scan(args.root)
    over = [f for f in found if f.parameters > MAX_PARAMETERS]
    summary = totals(found)
    if args.json:
        print(json.dumps({**summary, "offenders": [asdict(f) for f in over]}, indent=1))
    else:
        shown = [f for f in found if f.parameters >= MAX_PARAMETERS] if args.list else over
        for f in sorted(shown, key=lambda f: (-f.parameters, f.path, f.line)):
            print(f"{f.path}:{f.line}: {f.name} takes {f.parameters} parameters ({f.lines} lines)")
        print(" | ".join(f"{k.replace('_', ' ')}: {v}" for k, v in summary.items()))
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
